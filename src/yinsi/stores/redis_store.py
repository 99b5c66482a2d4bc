"""The Redis connector: finds a subject's keys by expanding the data map's key patterns.

Placeholders in a pattern (``{name}``):

- ``{subject}``: the subject's key value;
- an attribute of the subject (``{phone}``): a column of the subject's row in its SQL store. Read it
  **before** the SQL side erases it: ``resolve_attributes`` at plan time, then ``bind`` the snapshot. An
  unbound connector reads the attributes itself on first use and keeps them for its lifetime;
- with ``members_of``, the one remaining placeholder takes each member of that set, list or sorted set
  (``session:{token}`` from ``user:{subject}:sessions``);
- any other free placeholder is found with ``SCAN MATCH`` (``*`` for the placeholder, one key segment
  without ``:``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from yinsi.domain.datamap import DataMap, Location, RedisStore, StoreKind
from yinsi.stores.base import AttributesUnavailable, EraseResult, Row

_PLACEHOLDER = re.compile(r"\{(\w*)\}")
_lock = threading.Lock()
_clients: dict[str, Any] = {}
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")

Resolver = Callable[[str, str], dict[str, str]]  # (subject kind, subject value) → attributes


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _client(url: str) -> Any:
    """One client (and connection pool) per URL for the life of the process; redis-py clients are
    thread-safe."""
    import redis

    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=5)
        return client


def dispose_clients() -> None:
    """Close every cached Redis client."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


def _glob_escape(text: str) -> str:
    return _GLOB_SPECIAL.sub(r"\\\1", text)


class RedisConnector:
    """Reads, erases, verifies and corrects one Redis store's PI (see ``yinsi.stores.base``)."""

    kind = StoreKind.REDIS

    def __init__(self, datamap: DataMap, store: RedisStore, url: str, *, resolver: Resolver | None = None,
                 client: Any = None) -> None:
        self.datamap = datamap
        self.store = store
        self.url = url
        self.resolver = resolver
        self.client = client if client is not None else _client(url)
        self._bound: dict[str | None, dict[str, str]] = {}
        self._resolved: dict[tuple[str, str], dict[str, str]] = {}

    # --- attributes ----------------------------------------------------------------------------------
    def bind(self, attributes: Mapping[str, str], subject_value: str | None = None) -> RedisConnector:
        """Use this snapshot of the subject's attributes (from ``resolve_attributes``, read before any
        erasure) instead of reading them from SQL. The snapshot is authoritative: an attribute missing
        from it means the subject had none, so its keys do not exist. ``subject_value`` limits the
        snapshot to one subject (default: every subject this connector is asked about)."""
        self._bound[subject_value] = {str(k): str(v) for k, v in attributes.items() if v is not None}
        return self

    def _attributes(self, loc: Location, subject_value: str, *, strict: bool) -> dict[str, str]:
        needed = [name for name, _ in loc.attributes]
        if subject_value in self._bound:
            return self._bound[subject_value]
        if None in self._bound:
            return self._bound[None]
        cache_key = (loc.subject, subject_value)
        found = dict(self._resolved.get(cache_key, {}))
        if any(n not in found for n in needed) and self.resolver is not None:
            found.update(self.resolver(loc.subject, subject_value))
            if found:
                self._resolved[cache_key] = found  # keep what was read before the SQL side erases it
        missing = [n for n in needed if n not in found]
        if missing and strict:
            cols = "、".join(f"{n}（{c}）" for n, c in loc.attributes if n in missing)
            raise AttributesUnavailable(
                f"Redis 键模式 {loc.key_pattern} 需要主体属性 {cols}，但主体行中已没有该值（可能已被删除）："
                "请在删除前用 resolve_attributes 读取并 bind 到连接器，否则无法确认这些键已删除")
        return found

    # --- keys ----------------------------------------------------------------------------------------
    def keys(self, loc: Location, subject_value: str, *, strict: bool = True) -> list[str]:
        """The concrete keys of ``loc`` that exist now for the subject, sorted."""
        if loc.store_kind is not StoreKind.REDIS or not loc.key_pattern:
            raise ValueError(f"位置 {loc.id} 不是 Redis 位置")
        names = _PLACEHOLDER.findall(loc.key_pattern)
        fill: dict[str, str] = {"subject": subject_value}  # also fills members_of (user:{subject}:sessions)
        if loc.attributes:
            attrs = self._attributes(loc, subject_value, strict=strict)
            for name, _ in loc.attributes:
                if name not in attrs:
                    return []  # the subject has no such attribute: no key can exist
                fill[name] = attrs[name]
        free = [n for n in dict.fromkeys(names) if n not in fill]
        if loc.members_of:
            if len(free) != 1:
                raise ValueError(f"键模式 {loc.key_pattern} 使用 members_of 时必须恰好有一个待填占位符")
            members: set[str] = set()
            for set_key in self._expand(loc.members_of, fill):
                members.update(self._members(set_key))
            candidates = sorted({_fill(loc.key_pattern, {**fill, free[0]: m}) for m in members})
            return self._existing(candidates)
        if free:
            return self._expand(loc.key_pattern, fill)
        return self._existing([_fill(loc.key_pattern, fill)])

    def _expand(self, pattern: str, fill: Mapping[str, str]) -> list[str]:
        """Existing keys matching ``pattern`` with ``fill`` applied; free placeholders found by SCAN."""
        names = set(_PLACEHOLDER.findall(pattern))
        if names <= set(fill):
            return self._existing([_fill(pattern, fill)])
        parts = _PLACEHOLDER.split(pattern)
        glob, rx = [], []
        for k, part in enumerate(parts):
            if k % 2 == 0:
                glob.append(_glob_escape(part))
                rx.append(re.escape(part))
            elif part in fill:
                glob.append(_glob_escape(fill[part]))
                rx.append(re.escape(fill[part]))
            else:
                glob.append("*")
                rx.append("[^:]+")
        matcher = re.compile("^" + "".join(rx) + "$")
        found = {str(_text(k)) for k in self.client.scan_iter(match="".join(glob), count=1000)}
        return sorted(k for k in found if matcher.match(k))

    def _members(self, key: str) -> list[str]:
        rtype = str(_text(self.client.type(key)))
        if rtype == "set":
            raw = self.client.smembers(key)
        elif rtype == "list":
            raw = self.client.lrange(key, 0, -1)
        elif rtype == "zset":
            raw = self.client.zrange(key, 0, -1)
        else:
            return []
        return [str(_text(m)) for m in raw]

    def _existing(self, keys: list[str]) -> list[str]:
        if not keys:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        return [k for k, n in zip(keys, pipe.execute(), strict=True) if n]

    def _value(self, key: str) -> Any:
        rtype = str(_text(self.client.type(key)))
        c = self.client
        if rtype == "string":
            return _text(c.get(key))
        if rtype == "list":
            return [_text(v) for v in c.lrange(key, 0, -1)]
        if rtype == "set":
            return sorted(str(_text(v)) for v in c.smembers(key))
        if rtype == "hash":
            return {str(_text(k)): _text(v) for k, v in c.hgetall(key).items()}
        if rtype == "zset":
            return [[_text(m), s] for m, s in c.zrange(key, 0, -1, withscores=True)]
        if rtype == "stream":
            return [[_text(i), {str(_text(k)): _text(v) for k, v in f.items()}] for i, f in c.xrange(key)]
        return None  # the key expired in between

    def _rows(self, keys: list[str]) -> list[Row]:
        return [Row(f"redis:{k}", {"value": self._value(k)}) for k in keys]

    # --- the connector interface ---------------------------------------------------------------------
    def read(self, loc: Location, subject_value: str, *, whole: bool = False) -> list[Row]:
        """One ``Row`` per existing key, ``{"value": ...}`` (strings, lists, sorted set members, hashes)."""
        return self._rows(self.keys(loc, subject_value, strict=False))

    def erase(self, loc: Location, subject_value: str) -> EraseResult:
        """Delete the subject's keys of this pattern (``delete_key``; ``keep_legal_hold`` after the caller
        captured them). Idempotent: 0 when none is left."""
        keys = self.keys(loc, subject_value, strict=True)
        n = int(self.client.delete(*keys)) if keys else 0
        return EraseResult(n, f"删除 {n} 个键" if n else "已无数据")

    def remaining(self, loc: Location, subject_value: str) -> list[Row]:
        """The subject's keys of this pattern that still exist."""
        return self._rows(self.keys(loc, subject_value, strict=True))

    def correct(self, loc: Location, subject_value: str, new_value: Any) -> int:
        """Set the value of the subject's string keys of this pattern, keeping their TTL."""
        n = 0
        for key in self.keys(loc, subject_value, strict=False):
            rtype = str(_text(self.client.type(key)))
            if rtype != "string":
                raise ValueError(f"Redis 键 {key} 的类型是 {rtype}，只能更正字符串类型的值")
            if self.client.set(key, new_value, keepttl=True, xx=True):
                n += 1
        return n

    def close(self) -> None:
        """Nothing to release: clients are shared per URL (``dispose_clients`` closes them)."""


def _fill(pattern: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], pattern)
