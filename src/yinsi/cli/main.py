"""Entry point of the ``yinsi`` command.

Every module named ``*_cmds`` in this package registers its commands on import; importing them all here
means adding a command area is adding one module.
"""

from __future__ import annotations

import importlib
import pkgutil

from yinsi.cli import __path__ as _cli_path
from yinsi.cli.apps import app

for _module in sorted(m.name for m in pkgutil.iter_modules(_cli_path) if m.name.endswith("_cmds")):
    importlib.import_module(f"yinsi.cli.{_module}")

__all__ = ["app"]


if __name__ == "__main__":  # python -m yinsi.cli.main
    app()
