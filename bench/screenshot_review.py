"""Screenshot the review page from a scripted site, to check its layout by eye.

Usage (from the repository root, in the project's virtualenv; no Ollama needed):

    python bench/screenshot_review.py                 # writes docs/review.png
    python bench/screenshot_review.py --out /tmp/review.png --width 1100 --height 1000

The run is real: WordPress's comments table (`MODERATION_PRESET=wordpress`: status strings,
author, posting time) on a fresh SQLite file, one `moderate` batch against the Ollama-compatible
test server (tests/fakeollama.py) answering by keywords (negative comments, a hostile one, a
server error, an unparseable answer), then `moderate review --port 0` in a child process,
driven by Debian's Chromium through Playwright: the second comment is selected with `j` and its
raw answer opened.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakeollama import FakeOllama  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
NEGATIVE = '{"label": "negative"}'
# (author, minutes ago, body)
COMMENTS = [
    ("Ana", 5, "Thanks, the migration guide saved my weekend!"),
    ("troll42", 12, "Only an idiot would write a post like this."),
    ("Mallory", 30, 'Nice! <script>alert("hi")</script> <a href="javascript:alert(1)">prize</a>'),
    ("Lucía", 55, "No entiendo nada, este artículo es basura."),
    ("Bob", 90, "Does this work with version 3.2 of the diagrams plugin?"),
    ("eve", 240, "Great post \u202etxt.exe download here"),
    ("Chen", 600, "Meh. I've read better."),
]
RULES = [
    {"contains": "idiot", "answer": NEGATIVE},
    {"contains": "basura", "answer": NEGATIVE},
    {"contains": "prize", "answer": "**NEGATIVE**\nA link that tries to run script."},
    {"contains": "download", "answer": NEGATIVE},
    {"contains": "meh", "answer": "It could be neutral or negative, hard to say."},
]
FAULTS = [{"contains": "diagrams", "kind": "status", "status": 500}]
SETTINGS = {"MODERATION_PRESET": "wordpress", "MODERATION_MAX_ATTEMPTS": "1"}


def make_site(path: Path) -> None:
    now = datetime.now(UTC)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE wp_comments (comment_ID INTEGER PRIMARY KEY, comment_author TEXT, "
            "comment_date_gmt DATETIME, comment_content TEXT NOT NULL, "
            "comment_approved VARCHAR(20) NOT NULL DEFAULT '1')"
        )
        db.executemany(
            "INSERT INTO wp_comments (comment_author, comment_date_gmt, comment_content, "
            "comment_approved) VALUES (?, ?, ?, '0')",
            [
                (author, (now - timedelta(minutes=ago)).strftime("%Y-%m-%d %H:%M:%S"), body)
                for author, ago, body in reversed(COMMENTS)
            ],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "review.png")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--height", type=int, default=1150)
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit(f"screenshot_review: {CHROMIUM} is missing; run: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as work, FakeOllama(rules=RULES, faults=FAULTS) as fake:
        make_site(Path(work) / "site.db")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODERATION_", "OLLAMA_"))}
        env.update(SETTINGS, MODERATION_DATABASE_URL=f"sqlite:///{work}/site.db")
        env.update(OLLAMA_HOST=fake.url, MODERATION_HTTP_TRANSPORT="httpx")
        command = [sys.executable, "-m", "moderation"]
        batch = subprocess.run([*command, "--json"], env=env, cwd=work, capture_output=True)
        if batch.returncode not in (0, 3):
            sys.exit(f"moderate exited {batch.returncode}: {batch.stderr.decode()[-500:]}")
        review = subprocess.Popen(
            [*command, "review", "--port", "0", "--reviewer", "ana"],
            env=env,
            cwd=work,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert review.stdout is not None
            url = review.stdout.readline().strip()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=[
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--no-first-run",
                    ],
                )
                page = browser.new_page(viewport={"width": args.width, "height": args.height})
                page.goto(url)
                page.keyboard.press("j")
                page.locator("article.current summary").click()
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=False)
                browser.close()
        finally:
            review.terminate()
            review.wait(timeout=15)
    print(f"screenshot: {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
