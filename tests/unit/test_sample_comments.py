"""The set-up's sample comments: unlabelled, realistic, several languages, and none of them a
qualification fixture (a batch over the fixtures themselves would only ask again what
qualification asked)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from moderation.evaluation.evaluate import default_fixture_paths, load_fixtures
from moderation.site.importer import import_comments
from moderation.storage.engines import connected
from tests.helpers import make_settings, read_table
from tests.readme_lines import ROOT, setup_line

SAMPLE = "fixtures/sample/sample-comments.jsonl"


def bodies() -> list[str]:
    lines = (ROOT / SAMPLE).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert all(list(row) == ["body"] for row in rows), "unlabelled: a body and nothing else"
    return [row["body"] for row in rows]


def test_the_readme_set_up_imports_the_samples() -> None:
    assert f"moderate import {SAMPLE}" in setup_line()
    assert "fixtures/comments.jsonl" not in setup_line()


def test_the_samples_are_not_fixtures() -> None:
    texts = bodies()
    assert 35 <= len(texts) <= 50 and len(set(texts)) == len(texts)
    assert (ROOT / SAMPLE) not in default_fixture_paths()
    shipped = sorted((ROOT / "fixtures").rglob("*.jsonl"))
    fixtures = load_fixtures([p for p in shipped if "sample" not in p.parts])
    assert not set(texts) & {f.text for f in fixtures}


def test_the_samples_are_several_languages_with_spam_and_links() -> None:
    texts = bodies()
    assert any(re.search("[а-яА-Я]", t) for t in texts)  # Cyrillic
    assert any(re.search("[\u3040-\u30ff]", t) for t in texts)  # Japanese kana
    assert sum(1 for t in texts if re.search("[¿¡ñ]", t)) >= 3  # Spanish
    assert sum(1 for t in texts if re.search(r"https?://|www\.", t)) >= 6


def test_the_samples_import(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    with connected(url) as engine:
        inserted, sanitised, created = import_comments(engine, make_settings(url), ROOT / SAMPLE)
    assert (inserted, sanitised, created) == (len(bodies()), 0, True)
    assert read_table(url, "SELECT count(*) FROM comments WHERE NOT approved") == [(inserted,)]
