"""Unit of work (Cosmic Python): one transaction; services call ``commit()`` explicitly.

Leaving the ``with`` block rolls back whatever was not committed, including after an exception, so a
failed use case leaves nothing half-written.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from yinsi.storage.repository import PolicyVersionRepository, TenantRepository


class UnitOfWork:
    """``with UnitOfWork(factory) as uow: ...; uow.commit()``."""

    tenants: TenantRepository
    versions: PolicyVersionRepository

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its with block")
        return self._session

    def __enter__(self) -> UnitOfWork:
        self._session = self.session_factory()
        self.tenants = TenantRepository(self._session)
        self.versions = PolicyVersionRepository(self._session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            self.session.close()
            self._session = None

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    def flush(self) -> None:
        self.session.flush()
