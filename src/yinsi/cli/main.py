"""Entry point of the ``yinsi`` command: importing the command modules registers their commands."""

from __future__ import annotations

from yinsi.cli import policy_cmds  # noqa: F401  (registers commands)
from yinsi.cli.apps import app

__all__ = ["app"]
