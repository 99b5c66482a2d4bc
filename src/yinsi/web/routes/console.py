"""The staff console at ``/console/`` (pages in :mod:`yinsi.web.console`)."""

from yinsi.web.console import router

__all__ = ["router"]
