"""How long each step before the model takes on the worst comments anyone can write.

For each bomb shape and each step, the time per comment at 8, 16, 32 and 64 KB (the best of
``--repeat`` runs, so that another process's noise does not count) and the growth from 8 to
64 KB. Linear work grows 8x; the targets are at most 50 ms per 64 KB comment for every shape
and step, and a growth of at most 12x. A figure over either target is marked with ``!``.

    python bench/hostile.py              # every shape and step
    python bench/hostile.py --repeat 5 --shapes "[a](" "&amp;"
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from moderation import rules
from moderation.model.delimiters import defuse_delimiters
from moderation.model.labels import MAX_ANSWER_CHARS, parse_label
from moderation.rules.links import LinkDialect, count_links
from moderation.text.canonical import canonical
from moderation.text.view import normalised_view, plain_view

SIZES_KB = (8, 16, 32, 64)
TARGET_MS = 50.0
TARGET_GROWTH = 12.0

# Each shape: the text of a given size. Most repeat one piece after a friendly opening.
SHAPES: dict[str, Callable[[int], str]] = {
    "[a](": lambda n: "Great post! " + "[a](" * (n // 4),
    "[": lambda n: "[" * n,
    "](": lambda n: "](" * (n // 2),
    "[x][": lambda n: "[x][" * (n // 4),
    "![": lambda n: "![" * (n // 2),
    "<a ": lambda n: "<a " * (n // 3),
    "<a href=": lambda n: "<a href=" * (n // 8),
    "&amp;": lambda n: "&amp;" * (n // 5),
    "nested &amp;": lambda n: "&" + "amp;" * (n // 4) + "lt;",
    "&#x": lambda n: "&#x" * (n // 3),
    "digits": lambda n: "&#" + "0" * n + "60;",
    "<!--": lambda n: "<!--" * (n // 4),
    "backticks": lambda n: "`" * n,
    "spaces": lambda n: "<" + " " * n + "/comment>",
    "http://a.": lambda n: "Great post! " + "http://a." * (n // 9),
    "www.a.": lambda n: "www.a." * (n // 6),
    "a@b.": lambda n: "a@b." * (n // 4),
    "<https:": lambda n: "<https:" * (n // 7),
    "marks": lambda n: "a\u0301\u200b" * (n // 3),
    "emoji joins": lambda n: "👨\u200d👩\u200d👧 " * (n // 9),
    "control tokens": lambda n: "<|im_start|>[INST]" * (n // 18),
    "cyrillic": lambda n: "Прекрасная статья, спасибо! " * (n // 28),
    "fullwidth &": lambda n: "é＆ｌｔ;" * (n // 5),
    "marks, then &": lambda n: "а\u0301б" * (n // 3) + "＆",
}


def _context() -> rules.RuleContext:
    return rules.RuleContext(
        hold_links=2,
        hold_hidden=True,
        hold_words=("casino", "cheap watches"),
        never_approve_words=("viagra",),
        max_duplicates=2,
    )


STEPS: dict[str, Callable[[str], object]] = {
    "view": normalised_view,
    "canonical": canonical,
    "flood key": rules.flood_key,
    "delimiters": defuse_delimiters,
    "hidden": rules.hidden_characters,
    "links wp": lambda t: count_links(t, LinkDialect.WORDPRESS),
    "links md": lambda t: count_links(t, LinkDialect.MARKDOWN),
    "links any": lambda t: count_links(t, LinkDialect.ANY),
    "words": lambda t: rules.hold_word(t, _context()),
    "all rules": lambda t: rules.check(t, _context()),
    # The parser refuses answers past MAX_ANSWER_CHARS at once: timed on what it reads.
    "label parser": lambda t: parse_label(t[:MAX_ANSWER_CHARS]),
}


def _time(step: Callable[[str], object], text: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        plain_view.cache_clear()
        canonical.cache_clear()
        started = time.perf_counter()
        step(text)
        best = min(best, time.perf_counter() - started)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES))
    parser.add_argument("--steps", nargs="*", default=list(STEPS))
    args = parser.parse_args()
    worst_ms, worst_growth = 0.0, 0.0
    header = f"{'shape':<15} {'step':<13}" + "".join(f"{kb:>7} KB" for kb in SIZES_KB)
    print(header + "   growth")
    for shape in args.shapes:
        for step in args.steps:
            figures = [_time(STEPS[step], SHAPES[shape](kb * 1024), args.repeat) for kb in SIZES_KB]
            growth = figures[-1] / max(figures[0], 0.01)
            # Growth is only meaningful once the time is measurable at all.
            measurable = figures[-1] > 1.0
            worst_ms = max(worst_ms, figures[-1])
            worst_growth = max(worst_growth, growth if measurable else 0.0)
            flag_growth = growth > TARGET_GROWTH and measurable
            cells = "".join(f"{ms:>8.1f}ms" for ms in figures)
            mark = "!" if figures[-1] > TARGET_MS or flag_growth else " "
            print(f"{shape:<15} {step:<13}{cells} {growth:>7.1f}x {mark}")
    print(
        f"\nworst: {worst_ms:.1f} ms per 64 KB comment (target {TARGET_MS:.0f}); "
        f"growth {worst_growth:.1f}x (target {TARGET_GROWTH:.0f}x, linear 8x; "
        "steps under 1 ms left out: their growth is noise)"
    )


if __name__ == "__main__":
    main()
