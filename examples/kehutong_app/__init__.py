"""客户通 demo app: a property-management CRM (物业通) as the second test bed for Yinsi's rights engine.

``schema`` holds the SQLAlchemy Core tables, ``generator`` the deterministic bulk loader with its hard
cases, and ``datamap.yaml`` the data map against ``policies/kehutong-2021.yaml``. The
``yinsi demo-app … --app kehutong`` commands load this package from the checkout.
"""

from __future__ import annotations

from pathlib import Path

from .generator import (
    DEFAULT_NOW,
    DemoAppError,
    Generator,
    SeedResult,
    create_schema,
    marked,
    parse_now,
    redis_stats,
    seed,
    stats,
)
from .schema import TABLES, metadata

#: The data map shipped with the demo app.
DATAMAP = Path(__file__).with_name("datamap.yaml")
#: The policy declaration the data map is checked against.
POLICY = Path(__file__).resolve().parents[2] / "policies" / "kehutong-2021.yaml"

__all__ = [
    "DATAMAP", "DEFAULT_NOW", "POLICY", "TABLES", "DemoAppError", "Generator", "SeedResult", "create_schema",
    "marked", "metadata", "parse_now", "redis_stats", "seed", "stats",
]
