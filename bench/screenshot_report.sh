#!/usr/bin/env bash
# Render an evaluation report from a scripted run and screenshot it in headless Chromium, to
# check by eye that the HTML report lays out well (headline figures, heat maps, escaped texts).
#
# Usage (from anywhere; needs the project's virtualenv, no Ollama):
#
#   bench/screenshot_report.sh            # writes the two files below
#   LIMIT=80 HEIGHT=6000 bench/screenshot_report.sh
#
# Writes /tmp/moderation-report.html and /tmp/moderation-report.png (override with REPORT and
# SHOT). The run is real `moderate eval` against the Ollama-compatible test server
# (tests/fakeollama.py) answering by keywords, so the report holds right and wrong answers,
# false approvals, one server error and one unparseable answer, plus a comparison with a
# stricter prompt. Chromium and an emoji font come from Debian's packages; when they are
# missing and the script runs as root, it installs them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPORT="${REPORT:-/tmp/moderation-report.html}"
SHOT="${SHOT:-/tmp/moderation-report.png}"
LIMIT="${LIMIT:-40}"
WIDTH="${WIDTH:-1280}"
HEIGHT="${HEIGHT:-2400}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

# The fixtures hold emoji; without a colour emoji font they show as empty boxes.
PACKAGES=()
[[ -x "$CHROMIUM" ]] || PACKAGES+=(chromium)
fc-list 2>/dev/null | grep -qi "color emoji" || PACKAGES+=(fonts-noto-color-emoji)
if ((${#PACKAGES[@]})); then
    if [[ "$(id -u)" -eq 0 ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}"
    elif [[ ! -x "$CHROMIUM" ]]; then
        echo "screenshot_report: $CHROMIUM is missing; run: apt-get install -y chromium" >&2
        exit 2
    else
        echo "screenshot_report: no emoji font (apt-get install fonts-noto-color-emoji)" >&2
    fi
fi

PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON=python3

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# The run itself, in Python because the test server is a Python class. Variant B's template
# ends with a phrase that one rule matches first, so B answers "negative" to everything: a
# cautious prompt with no false approvals and many missed approvals, which fills the
# comparison section.
cd "$ROOT"
REPORT="$REPORT" LIMIT="$LIMIT" WORK="$WORK" "$PYTHON" - <<'PY'
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fakeollama import FakeOllama

work = Path(os.environ["WORK"])
# An even spread of the shipped fixtures: the file is grouped by language and label, so its
# first lines alone would all be English praise.
lines = Path("fixtures/comments.jsonl").read_text(encoding="utf-8").splitlines()
step = max(1, len(lines) // int(os.environ["LIMIT"]))
sample = work / "sample.jsonl"
sample.write_text("\n".join(lines[::step][: int(os.environ["LIMIT"])]) + "\n", encoding="utf-8")
strict = work / "strict.j2"
strict.write_text(
    "Classify the blog comment.\n<comment>\n{{ comment }}\n</comment>\nWhen unsure, hold it.\n",
    encoding="utf-8",
)
rules = [
    {"contains": "when unsure, hold it", "answer": '{"label": "negative"}'},
    {"contains": "wrong and badly", "answer": '{"label": "negative"}'},
    {"contains": "terrible", "answer": '{"label": "negative"}'},
    {"contains": "clown", "answer": '{"label": "negative"}'},
    {"contains": "хрень", "answer": '{"label": "negative"}'},
    {"contains": "susto", "answer": '{"label": "negative"}'},
    {"contains": "<system>", "answer": "**NEGATIVE**\nAn insult with a fake system message."},
    {"contains": "?", "answer": '{"label": "neutral"}'},
    {"contains": "first!", "answer": '{"label": "neutral"}'},
    {"contains": "🤡", "answer": "It could be positive or negative."},
]
faults = [{"contains": "diagrams", "kind": "status", "status": 500}]
with FakeOllama(rules=rules, faults=faults, default_answer='{"label": "positive"}') as fake:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODERATION_", "OLLAMA_"))}
    env.update(OLLAMA_HOST=fake.url, MODERATION_EVAL_HISTORY=str(work / "history.jsonl"))
    run = subprocess.run(
        [sys.executable, "-m", "moderation", "eval", str(sample), "--json",
         "--compare", f"prompt={strict}", "--report", os.environ["REPORT"]],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        check=False,
    )
    if run.returncode != 0:
        sys.exit(f"moderate eval exited {run.returncode}")
PY

# --user-data-dir in a fresh directory and the --disable-* flags keep Chromium from touching
# the network or a profile; --no-sandbox because containers usually run as root.
"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$WORK/profile" --window-size="$WIDTH,$HEIGHT" \
    --screenshot="$SHOT" "file://$REPORT" 2>"$WORK/chromium.log" || {
    cat "$WORK/chromium.log" >&2
    exit 1
}
echo "report:     $REPORT"
echo "screenshot: $SHOT"
