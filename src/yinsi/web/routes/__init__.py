"""The web pages: every module here with a ``router`` is included by :func:`yinsi.web.app.mount`."""
