"""What a skipped test names, CONTRIBUTING.md explains."""

from __future__ import annotations

from tests.readme_lines import ROOT


def test_the_shared_corpora_a_skip_names_are_explained() -> None:
    skipping = (ROOT / "tests" / "process" / "test_corpora.py").read_text(encoding="utf-8")
    assert "the shared corpora are not here" in skipping
    assert "CONTRIBUTING.md, 'The shared corpora'" in skipping
    guide = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = guide.split("### The shared corpora\n", 1)[1].split("\n#", 1)[0]
    for fact in ("../shared/corpora", "/work/shared/corpora", "CC BY-SA", "read in place"):
        assert fact in section, fact
