"""Entry point of the ``yinsi`` command: importing the command modules registers their commands."""

from __future__ import annotations

from yinsi.cli import db_cmds, demo_cmds, policy_cmds, render_cmds  # noqa: F401  (importing registers the commands)
from yinsi.cli.apps import app

__all__ = ["app"]
