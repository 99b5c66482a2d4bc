"""微聊客 demo app: the test bed for Yinsi's rights engine (schema, data generator, data map).

``schema`` holds the SQLAlchemy Core tables, ``generator`` the deterministic bulk loader, and
``datamap.yaml`` the data map against ``policies/weiliaoke-2022.yaml``. The ``yinsi demo-app`` commands
load this package from the checkout.
"""

from __future__ import annotations

from pathlib import Path

from .generator import DEFAULT_NOW, DemoAppError, SeedResult, create_schema, redis_stats, seed, stats
from .schema import TABLES, metadata

#: The data map shipped with the demo app.
DATAMAP = Path(__file__).with_name("datamap.yaml")

__all__ = [
    "DATAMAP", "DEFAULT_NOW", "TABLES", "DemoAppError", "SeedResult", "create_schema", "metadata", "redis_stats",
    "seed", "stats",
]
