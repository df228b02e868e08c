"""What approving through WordPress's REST API costs against writing its table, per comment.

Usage (from a clone, in the project's virtualenv, on a machine with Debian's ``wordpress``,
``php-cli``, ``php-mysql`` and MariaDB on 127.0.0.1:3306, as root)::

    python bench/wordpress_rest.py [N]

One live test site (tests/wordpress_site.py: PHP's built-in server, one worker, a persistent
object cache in a file). N comments (default 1,000) are posted through ``wp_new_comment()``,
then one batch approves them all with ``wordpress-rest``; N more, then one batch with the SQL
``wordpress`` preset. The classifier is an in-process fake that answers at once, so the
figures are the site's cost alone: wall time per comment and requests (HTTP requests to
WordPress, or SQL statements to its database) per comment.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # tests.*, when run as `python bench/wordpress_rest.py`

from moderation.batch.pipeline import run_batch  # noqa: E402
from tests.fakes import FakeClassifier  # noqa: E402
from tests.helpers import make_settings  # noqa: E402
from tests.wordpress_site import WordPressSite, missing  # noqa: E402


def post(site: WordPressSite, n: int, tag: str) -> None:
    started = time.perf_counter()
    for start in range(0, n, 500):
        texts = [f"{tag} comment {i}: thank you!" for i in range(start, min(n, start + 500))]
        site.add_comments(texts)
    print(f"  posted {n} comments in {time.perf_counter() - started:.1f}s")


def statements() -> list[int]:
    """A counter of SQL statements sent by any engine in this process."""
    count = [0]

    @sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        count[0] += 1

    return count


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    reason = missing()
    if reason:
        sys.exit(f"no live WordPress here: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        site = WordPressSite(Path(tmp)).start()
        try:
            print(f"WordPress at {site.url}, {n} comments per preset")
            post(site, n, "rest")
            rest = make_settings(
                f"sqlite:///{tmp}/own.db",
                preset="wordpress-rest",
                wordpress_url=site.url,
                wordpress_user=site.editor.login,
                wordpress_app_password=site.editor.app_password,
                batch_size=100,
            )
            before = site.request_count()
            started = time.perf_counter()
            report = run_batch(rest, classifier=FakeClassifier())
            rest_wall = time.perf_counter() - started
            rest_requests = site.request_count() - before
            assert report.tally["approved"] == n, report.tally

            post(site, n, "sql")
            sql = make_settings(site.database_url, preset="wordpress", batch_size=100)
            counter = statements()
            started = time.perf_counter()
            report = run_batch(sql, classifier=FakeClassifier())
            sql_wall = time.perf_counter() - started
            assert report.tally["approved"] == n, report.tally
        finally:
            site.close()
    print(f"{'preset':<16}{'wall s':>8}{'ms/comment':>12}{'requests':>10}{'per comment':>13}")
    for name, wall, requests in (
        ("wordpress-rest", rest_wall, rest_requests),
        ("wordpress (SQL)", sql_wall, counter[0]),
    ):
        print(f"{name:<16}{wall:>8.1f}{1000 * wall / n:>12.1f}{requests:>10}{requests / n:>13.2f}")
    print("(requests: HTTP requests to WordPress for wordpress-rest, SQL statements for SQL)")


if __name__ == "__main__":
    main()
