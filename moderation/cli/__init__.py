"""The ``moderate`` command line: a thin layer over the package; nothing below imports it."""

from moderation.cli.app import main

__all__ = ["main"]
