"""``wordpress_count`` against WordPress itself: its own ``make_clickable`` and
``check_comment``'s count, run by php-cli from Debian's ``wordpress`` package
(tests/wordpress/count_links.php), one PHP process answering every text.

Skipped where php or the package is missing, except in CI (``CI=true``), where that is a
failure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from moderation.rules.links import wordpress_count
from tests.wordpress_site import PHP_FILES, WORDPRESS, required

pytestmark = pytest.mark.live

FORMATTING = WORDPRESS / "wp-includes" / "formatting.php"


def missing() -> str | None:
    if shutil.which("php") is None:
        return "php is not installed (apt-get install php-cli)"
    if not FORMATTING.is_file():
        return f"{FORMATTING} is missing (apt-get install wordpress)"
    return None


class WordPressCounter:
    """One php-cli process: a JSON array of texts per line in, their counts per line out."""

    def __init__(self, script: Path) -> None:
        self.process = subprocess.Popen(
            ["php", str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def counts(self, texts: list[str]) -> list[dict[str, Any]]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(texts) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, f"php exited with {self.process.wait()}"
        return list(json.loads(answer))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def wordpress() -> Iterator[WordPressCounter]:
    reason = missing()
    if reason:
        if required():
            pytest.fail(f"CI=true, but WordPress cannot be run here: {reason}")
        pytest.skip(f"WordPress cannot be run here: {reason}")
    counter = WordPressCounter(PHP_FILES / "count_links.php")
    yield counter
    counter.close()


HAND_PICKED = [
    "Great post! http://a.example",
    "see https://a.example/x?y=1, ftp://b.example and ftps://c.example",
    "irc6://chat.example news:x tel:+1 mailto:me@a.example mailto://me@a.example",
    "feed://a.example/x feed://b.example/x:y feed://c.example/?q:y feed://d.example/&#58;x",
    "javascript://a.example ssh://b.example xhttp://c.example",
    "www.a.example ftp.b.example WWW.C.EXAMPLE www. ftp. (www.d.example).",
    "write to me@mail.example, you@x.co.uk. or a@b.c",
    "http://日本.example www.ü.example ｈｔｔｐ://a.example",
    "<code>http://a.example</code> http://b.example",
    "<pre><code>http://a.example</code> http://b.example</pre> http://c.example",
    "<script>www.a.example</script><style>www.b.example</style></code> http://c.example",
    '<a href="http://a.example">http://a.example</a> <a href="x">www.b.example</a>',
    "<A HREF=x>1</A> <a\thref=y>2</a> <a title=z>3</a> <a  >4</a> <a>5</a>",
    "<3 http://a.example",
    "x <3 http://a.example <http://b.example> <http://c.example more>",
    "(see http://a.example/wiki/Foo_(bar)) and (http://b.example) http://c.example)x@y.co",
    "http://a.example, http://b.example; http://c.example. http://d.example..e@f.co",
    "http://a.example/&amp;x'y www.a.example/&#58;z %0ahttp://b.example",
    "x " * 4000 + "é" * 1060 + "(http://a.example",
    "x " * 4000 + "e" * 1060 + "(http://a.example",
    "http://" + "é" * 1000 + ".example x http://" + "e" * 1000 + ".example",
    "x" * 10001 + " http://a.example",
    "http://a.example/" + "x" * 2100 + " " + "y" * 8000 + " www.b.example",
    "<a " * 3000 + "href",
    "http://a." * 2000 + " www.a. " * 2000,
]


def test_hand_picked_texts_count_as_wordpress_counts_them(wordpress: WordPressCounter) -> None:
    answers = wordpress.counts(HAND_PICKED)
    for text, answer in zip(HAND_PICKED, answers, strict=True):
        assert answer["count"] is not None, answer
        assert wordpress_count(text) == answer["count"], text[:200]


PIECES = [
    *("http://", "https://", "ftp://", "feed://", "mailto:", "irc6://", "xyz://", "javascript:"),
    *("ftp.", "www.", "WWW.", "a@b.co", "x.y@z.org", "@", ".", ",", ";", ":", "!", "?", ")"),
    *("(", "'", '"', "[", "]", "<", ">", "<a href=", "<a ", "<A\tHREF=q>", "href", "</a>", "<a>"),
    *("</a></a>", "<code>", "</code>", "<pre>", "</pre>", "<script>", "</style>", "<b>", " "),
    *("  ", "\n", "\t", "a", "com", "example", "é", "日本", "-", "_", "/", "#", "%0a", "&#58;"),
    *("&amp;", "=", "+", "~", "*", "0", "1"),
]
LONG_RUNS = st.sampled_from(["x", "é", "a.", "x ", " "]).flatmap(
    lambda unit: st.integers(1000, 6000).map(lambda n: unit * n)
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.lists(st.one_of(st.sampled_from(PIECES), LONG_RUNS), max_size=40).map("".join))
def test_generated_texts_count_as_wordpress_counts_them(
    wordpress: WordPressCounter, text: str
) -> None:
    (answer,) = wordpress.counts([text])
    assume(answer["count"] is not None)  # PCRE gave up: WordPress's count is not a number
    assert wordpress_count(text) == answer["count"]
