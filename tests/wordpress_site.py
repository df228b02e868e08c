"""A live WordPress for tests: Debian's package, PHP's built-in server, one MariaDB database.

Each site gets its own database (root@127.0.0.1), its own ``/etc/wordpress/config-<name>.php``
(Debian's ``wp-config.php`` reads it; the router names it on every request), and its own
``WP_CONTENT_DIR`` holding a persistent object cache drop-in (WordPress's own
``WP_Object_Cache`` kept in a file between requests, standing in for Redis) and a must-use
plugin that logs ``transition_comment_status``, ``wp_set_comment_status`` and every
``wp_mail`` (sending none) to ``hooks.jsonl``. Comments are made through ``wp_new_comment()``
so that WordPress's own rules set their status. Pretty permalinks are off: the REST API
answers at ``/?rest_route=/wp/v2/...``.

``missing()`` names what this machine lacks (php, the package, MariaDB); the tests skip for
it, except in CI (``CI=true``), where it is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

WORDPRESS = Path("/usr/share/wordpress")
CONFIG_DIR = Path("/etc/wordpress")
PHP_FILES = Path(__file__).parent / "wordpress"
# PHP's server logs "[date] 127.0.0.1:port Accepted" for each connection, and it closes the
# connection after every request.
_REQUEST_LINE = re.compile(r" Accepted$")
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def missing() -> str | None:
    """Why no live WordPress can run here, or None."""
    if shutil.which("php") is None:
        return "php is not installed (apt-get install php-cli php-mysql)"
    if not (WORDPRESS / "wp-settings.php").is_file():
        return f"{WORDPRESS} is missing (apt-get install wordpress)"
    if not os.access(CONFIG_DIR, os.W_OK):
        return f"{CONFIG_DIR} is not writable (a site's config goes there)"
    try:
        _mariadb().close()
    except Exception as exc:
        return f"MariaDB at 127.0.0.1:3306 is not reachable ({type(exc).__name__})"
    return None


def required() -> bool:
    """In CI a missing WordPress fails the tests instead of skipping them."""
    return os.environ.get("CI", "").lower() in ("true", "1")


def _mariadb() -> Any:
    import pymysql

    return pymysql.connect(**MARIADB, autocommit=True, connect_timeout=3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class User:
    id: int
    login: str
    app_password: str


class WordPressSite:
    """One WordPress site, installed and served; ``close()`` removes every trace of it."""

    def __init__(self, workdir: Path) -> None:
        self.name = f"modtest-{uuid.uuid4().hex[:12]}"
        self.database = self.name.replace("-", "_")
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.content = workdir / "wp-content"
        self.config = CONFIG_DIR / f"config-{self.name}.php"
        self.server: subprocess.Popen[bytes] | None = None
        self.requests = 0  # REST requests the server logged (see ``request_count``)
        self._server_log = workdir / "php-server.log"

    # -- set-up ---------------------------------------------------------------------------
    def start(self) -> WordPressSite:
        """Install and serve the site; on any failure, remove what was made and re-raise."""
        try:
            return self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> WordPressSite:
        conn = _mariadb()
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4")
        conn.close()
        (self.content / "mu-plugins").mkdir(parents=True)
        for sub in ("themes", "plugins"):
            (self.content / sub).symlink_to(WORDPRESS / "wp-content" / sub)
        shutil.copy(PHP_FILES / "object-cache.php", self.content / "object-cache.php")
        shutil.copy(PHP_FILES / "hooks-log.php", self.content / "mu-plugins" / "hooks-log.php")
        self.config.write_text(
            "<?php\n"
            f"define('DB_NAME', '{self.database}');\n"
            "define('DB_USER', 'root');\n"
            "define('DB_PASSWORD', '');\n"
            "define('DB_HOST', '127.0.0.1:3306');\n"
            f"define('WP_CONTENT_DIR', '{self.content}');\n"
            f"define('WP_HOME', '{self.url}');\n"
            f"define('WP_SITEURL', '{self.url}');\n"
            # Application Passwords over plain HTTP: only on a 'local' site.
            "define('WP_ENVIRONMENT_TYPE', 'local');\n"
            "define('DISABLE_WP_CRON', true);\n"
            "define('AUTOMATIC_UPDATER_DISABLED', true);\n"
            "$table_prefix = 'wp_';\n"
        )
        installed = json.loads(self.php("install.php"))
        assert installed["supported"], "Application Passwords are not offered"
        self.editor = User(**installed["editor"])
        self.author = User(**installed["author"])
        self.post = int(installed["post"])
        self.post_author_email = installed["post_author_email"]
        env = dict(os.environ, MODERATION_TEST_WP_CONFIG=self.name)
        log = self._server_log.open("wb")
        self.server = subprocess.Popen(
            ["php", "-S", self.host, "-t", str(WORDPRESS), str(PHP_FILES / "router.php")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=WORDPRESS,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/?rest_route=/", timeout=5)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"php -S did not answer: {self._server_log.read_text()[-2000:]}")

    def close(self) -> None:
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.config.unlink(missing_ok=True)
        conn = _mariadb()
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{self.database}`")
        conn.close()

    def php(self, script: str, stdin: str = "") -> str:
        """Run one of the PHP scripts beside this module against this site."""
        done = subprocess.run(
            ["php", str(PHP_FILES / script), self.name, self.host],
            input=stdin.encode(),
            capture_output=True,
            cwd=WORDPRESS,
            timeout=300,
        )
        out = done.stdout.decode()
        if done.returncode != 0:
            raise RuntimeError(f"{script} failed: {out[-2000:]} {done.stderr.decode()[-2000:]}")
        # PHP notices may precede the JSON on stdout: the answer is the last line.
        return out.strip().splitlines()[-1]

    # -- comments -------------------------------------------------------------------------
    def add_comments(self, texts: Sequence[str], post: int | None = None) -> list[int]:
        """New comments through ``wp_new_comment()``; their ids (all must be held)."""
        wanted = [{"post": post or self.post, "content": t} for t in texts]
        made = json.loads(self.php("comments.php", json.dumps(wanted)))
        bad = [m for m in made if "id" not in m or m["status"] != "unapproved"]
        assert not bad, f"WordPress did not hold these comments: {bad}"
        return [int(m["id"]) for m in made]

    # -- what WordPress says --------------------------------------------------------------
    def rest(self, user: User | None = None) -> httpx.Client:
        auth = None if user is None else (user.login, user.app_password)
        return httpx.Client(base_url=self.url, auth=auth, timeout=30)

    def comment(self, comment_id: int) -> dict[str, Any]:
        """One comment as the REST API shows a moderator (context=edit)."""
        with self.rest(self.editor) as client:
            answer = client.get(
                "/", params={"rest_route": f"/wp/v2/comments/{comment_id}", "context": "edit"}
            )
        answer.raise_for_status()
        return dict(answer.json())

    def listed(self, status: str) -> list[int]:
        """Ids of the comments the REST API lists with this status (through the object cache)."""
        with self.rest(self.editor) as client:
            answer = client.get(
                "/",
                params={
                    "rest_route": "/wp/v2/comments",
                    "status": status,
                    "per_page": 100,
                    "context": "edit",
                    "_fields": "id",
                },
            )
        answer.raise_for_status()
        return sorted(int(c["id"]) for c in answer.json())

    def comment_count(self, post: int | None = None) -> int:
        """The post's ``comment_count`` as WordPress holds it (the REST API does not show it)."""
        conn = _mariadb()
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT comment_count FROM `{self.database}`.wp_posts WHERE ID = %s",
                (post or self.post,),
            )
            (count,) = cur.fetchone()
        conn.close()
        return int(count)

    def meta(self, comment_id: int) -> dict[str, str]:
        conn = _mariadb()
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT meta_key, meta_value FROM `{self.database}`.wp_commentmeta "
                "WHERE comment_id = %s",
                (comment_id,),
            )
            rows = dict(cur.fetchall())
        conn.close()
        return rows

    def hooks(self) -> list[dict[str, Any]]:
        path = self.content / "hooks.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def flush_cache(self) -> None:
        """Empty the persistent object cache (what a Redis FLUSHALL does)."""
        (self.content / "object-cache.data").unlink(missing_ok=True)

    def clear_hooks(self) -> None:
        (self.content / "hooks.jsonl").unlink(missing_ok=True)

    @property
    def database_url(self) -> str:
        """The site's database for the SQL ``wordpress`` preset."""
        return f"mysql+pymysql://root@127.0.0.1:3306/{self.database}"

    def request_count(self) -> int:
        """How many requests the PHP server has answered so far (from its log)."""
        if not self._server_log.exists():
            return 0
        lines = self._server_log.read_text(errors="replace").splitlines()
        return sum(bool(_REQUEST_LINE.search(line)) for line in lines)
