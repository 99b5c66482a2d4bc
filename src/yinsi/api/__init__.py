"""The HTTP API (FastAPI) that ``yinsi serve`` runs: apps, people and staff reach the same use cases the CLI
calls. See docs/api.md; :func:`yinsi.api.app.create_app` builds it."""
