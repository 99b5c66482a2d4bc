"""Reaching the app's stores (访问业务存储): every call into a store connector names its store when it fails.

A store that cannot be reached (no address, connection refused, a timeout, a dropped connection) or that
refuses an operation raises :class:`StoreError`, a :class:`~yinsi.rights.context.RequestError` whose Chinese
message names the store (its id and name in the data map) and the kind of failure, never the driver's text:
that can carry the address with its password, or values of the person's rows (``Key (phone)=(…)``). The
command line turns it into a message and a non-zero exit; a run records it as the request's error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from yinsi.domain.datamap import DataMap
from yinsi.rights.context import RequestError


class StoreError(RequestError):
    """A store of the data map could not be reached or refused an operation (message names the store)."""


def _store_name(dm: DataMap, store_id: str) -> str:
    store = dm.store(store_id)
    name = getattr(store, "name", None) if store is not None else None
    return f"{store_id}（{name}）" if name and name != store_id else store_id


def _unreachable(exc: BaseException) -> bool | None:
    """True: the store cannot be reached; False: it refused the operation; None: not a store's error."""
    from sqlalchemy import exc as sa

    from yinsi.stores.base import StoreUnavailable

    if isinstance(exc, StoreUnavailable | sa.OperationalError | sa.InterfaceError | sa.TimeoutError
                  | sa.DisconnectionError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, sa.DBAPIError):
        return bool(exc.connection_invalidated)
    try:
        from redis import exceptions as redis_exc
    except ImportError:  # pragma: no cover - redis is a dependency
        return None
    if isinstance(exc, redis_exc.ConnectionError | redis_exc.TimeoutError):
        return True
    if isinstance(exc, redis_exc.RedisError):
        return False
    if isinstance(exc, OSError):
        return True
    return None


def store_error(dm: DataMap, store_id: str, exc: BaseException) -> StoreError | None:
    """The :class:`StoreError` for ``exc`` raised by store ``store_id``, or None if it is not a store's."""
    from yinsi.stores.base import StoreUnavailable

    unreachable = _unreachable(exc)
    if unreachable is None:
        return None
    where = _store_name(dm, store_id)
    if isinstance(exc, StoreUnavailable):
        return StoreError(f"无法访问存储 {where}：{exc}")
    kind = type(exc).__name__
    if unreachable:
        return StoreError(f"无法连接存储 {where}（{kind}）：请检查该存储的地址、网络与服务是否正常，然后重试")
    return StoreError(f"存储 {where} 拒绝了操作（{kind}）：请检查该存储的表结构与约束，然后重试")


@contextmanager
def reaching(dm: DataMap, store_id: str) -> Iterator[None]:
    """Turn a store's failure inside the block into a :class:`StoreError` naming ``store_id``."""
    try:
        yield
    except RequestError:
        raise
    except Exception as exc:
        err = store_error(dm, store_id, exc)
        if err is None:
            raise
        raise err from None


class Guarded:
    """A store connector whose every method names its store when the store fails (see the module)."""

    def __init__(self, dm: DataMap, store_id: str, connector: Any) -> None:
        self._dm, self._store_id, self._connector = dm, store_id, connector

    @property
    def wrapped(self) -> Any:
        return self._connector

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._connector, name)
        if not callable(value):
            return value
        dm, store_id = self._dm, self._store_id

        def call(*args: Any, **kwargs: Any) -> Any:
            with reaching(dm, store_id):
                return value(*args, **kwargs)

        return call


def guarded(dm: DataMap, store_id: str, make: Callable[[], Any]) -> Any:
    """``make()`` (a connector for ``store_id``) wrapped in :class:`Guarded`; its construction guarded too."""
    with reaching(dm, store_id):
        return Guarded(dm, store_id, make())
