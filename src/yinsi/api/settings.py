"""The server's settings (服务配置), from arguments or the environment.

``YINSI_DATABASE_URL`` / ``YINSI_DATA_DIR``: as everywhere (see :mod:`yinsi.config`).
``YINSI_DATAMAP``: data map files (comma-separated) of the tenants whose rights requests the server runs.
``YINSI_STORES``: ``STORE=URL,…`` addresses of the stores those maps name (else the map's ``connection``).
``YINSI_SECURE_COOKIES``: ``1`` sets the ``Secure`` flag on session cookies even when the request reached the
server over plain HTTP (behind a TLS-terminating proxy); cookies of requests that arrive over HTTPS are always
``Secure``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yinsi.config import data_dir, database_url

DATAMAP_ENV = "YINSI_DATAMAP"
STORES_ENV = "YINSI_STORES"
SECURE_COOKIES_ENV = "YINSI_SECURE_COOKIES"


def parse_store_urls(text: str) -> dict[str, str]:
    """``STORE=URL,STORE=URL`` → mapping; ``ValueError`` (Chinese) on a malformed entry."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" not in part:
            raise ValueError(f"{STORES_ENV} 的每一项应为 STORE=URL")
        key, _, url = part.partition("=")
        out[key.strip()] = url.strip()
    return out


@dataclass
class ApiSettings:
    """What :func:`yinsi.api.app.create_app` needs. ``datamaps``: tenant → its data map (rights requests);
    ``store_urls``: store id → address; ``channels``: notification channels (default: from the environment,
    see docs/notify.md); ``secure_cookies``: always mark cookies ``Secure``."""

    database_url: str
    data_dir: Path
    datamaps: Mapping[str, Any] = field(default_factory=dict)
    store_urls: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, Any] | None = None
    secure_cookies: bool = False
    title: str = "Yinsi（隐私）API"

    @classmethod
    def from_env(cls, **overrides: Any) -> ApiSettings:
        """Settings from the environment; keyword arguments win."""
        datamaps: dict[str, Any] = {}
        for raw in (p.strip() for p in os.environ.get(DATAMAP_ENV, "").split(",")):
            if raw:
                from yinsi.datamap_io import load_datamap

                dm = load_datamap(Path(raw)).datamap
                datamaps[dm.tenant] = dm
        values: dict[str, Any] = {
            "database_url": database_url(),
            "data_dir": data_dir(),
            "datamaps": datamaps,
            "store_urls": parse_store_urls(os.environ.get(STORES_ENV, "")),
            "secure_cookies": os.environ.get(SECURE_COOKIES_ENV, "").strip() in ("1", "true", "yes"),
        }
        values.update(overrides)
        return cls(**values)
