"""Untrusted text (comments, model answers, fixture tags) in rich's output.

Always a ``Text``, never a string that rich would read as markup (``[/quote]`` would stop the
command, ``[link=...]`` would make a hyperlink), on one line (a newline in a table cell would
fake a row), each hidden character shown as its code in reverse video. Imported only by the
commands that print with rich, when they print.
"""

from __future__ import annotations

from rich.text import Text

from moderation.text import inert

CODE_STYLE = "reverse"


def cell(text: object) -> Text:
    """``text`` for a table cell or a printed line, inert."""
    shown = Text()
    for run, is_code in inert.pieces(str(text), inert.ONE_LINE):
        if is_code:
            shown.append(f"<{inert.code(run)}>", style=CODE_STYLE)
        else:
            shown.append(run)
    return shown
