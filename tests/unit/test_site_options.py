"""A WordPress site's own moderation options, added to the rules before the model."""

from __future__ import annotations

import pytest

from moderation.batch.pipeline import run_batch
from moderation.site.options import SiteRules, read_site_rules
from moderation.storage.engines import create_engine
from tests.fakes import FakeClassifier
from tests.helpers import execute, make_settings, read_table
from tests.site_schemas import WORDPRESS_NAMES_ONLY_SQLITE_DDL

OPTIONS_DDL = (
    "CREATE TABLE wp_options (option_id INTEGER PRIMARY KEY, option_name VARCHAR(191) UNIQUE, "
    "option_value TEXT NOT NULL, autoload VARCHAR(20))"
)
OPTION = "INSERT INTO wp_options (option_name, option_value) VALUES (:name, :value)"
COMMENT = "INSERT INTO wp_comments (comment_content, comment_approved) VALUES (:body, '0')"
BODIES = [
    "Thanks, a lovely post",  # 1: approved by the model
    "Great post! Buy Cheap Pills here",  # 2: a moderation key
    "Nice! Visit my CASINO",  # 3: a disallowed key
    "One link: http://a.example",  # 4: the site's limit is one link
]


def wordpress_site(url: str, options: dict[str, str] | None) -> None:
    statements = [*WORDPRESS_NAMES_ONLY_SQLITE_DDL]
    rows = [(COMMENT, {"body": b}) for b in BODIES]
    if options is not None:
        statements.append(OPTIONS_DDL)
        rows += [(OPTION, {"name": k, "value": v}) for k, v in options.items()]
    execute(url, *statements, rows=rows)


SITE_OPTIONS = {
    "moderation_keys": "cheap pills\n\n  viagra  \n",
    "disallowed_keys": "casino",
    "comment_max_links": "1",
    "blogname": "A blog",
}


def test_the_sites_own_keys_and_link_limit_hold_before_the_model(sqlite_url: str) -> None:
    wordpress_site(sqlite_url, SITE_OPTIONS)
    settings = make_settings(sqlite_url, preset="wordpress")
    engine = create_engine(sqlite_url)
    assert read_site_rules(engine, settings) == SiteRules(("cheap pills", "viagra"), ("casino",), 1)
    engine.dispose()

    classifier = FakeClassifier()
    report = run_batch(settings, classifier=classifier)

    decisions = {d.comment_id: (d.outcome, d.rule, d.error) for d in report.decisions}
    assert decisions == {
        1: ("approved", None, None),
        2: ("held", "hold_word", 'rule: hold word "cheap pills"'),
        3: ("held", "never_approve_word", 'rule: never-approve word "casino"'),
        4: ("held", "links", "rule: 1 links >= 1"),
    }
    assert classifier.asked == [BODIES[0]]  # only the comment no rule held
    approved = read_table(
        sqlite_url, "SELECT comment_ID FROM wp_comments WHERE comment_approved = '1'"
    )
    assert approved == [(1,)]


@pytest.mark.parametrize(
    "overrides",
    [{"site_rules": "off"}, {"preset": None, "comments_table": "wp_comments"}],
)
def test_off_or_another_preset_leaves_the_site_options_alone(
    sqlite_url: str, overrides: dict[str, object]
) -> None:
    wordpress_site(sqlite_url, SITE_OPTIONS)
    settings = make_settings(sqlite_url, **{"preset": "wordpress", **overrides})
    engine = create_engine(sqlite_url)
    assert read_site_rules(engine, settings) == SiteRules()
    engine.dispose()


def test_without_an_options_table_the_batch_goes_on(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    wordpress_site(sqlite_url, None)
    classifier = FakeClassifier()
    report = run_batch(make_settings(sqlite_url, preset="wordpress"), classifier=classifier)
    assert report.count("approved") == 4  # the default rules only: none has two links
    assert "could not read the site's moderation options from wp_options" in caplog.text
