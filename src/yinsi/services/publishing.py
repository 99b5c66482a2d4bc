"""Publishing and archiving policy versions (发布与存档).

``publish`` takes a declaration file, lints and renders it, and archives the exact file text with the
rendered policy under the tenant and the version's label. A label is published once: publishing the
same text again returns the stored version; a different text under the same label is refused, so an
archived version never changes.

Schema handling: the default embedded SQLite database (``./.yinsi/yinsi.db`` or ``YINSI_DATA_DIR``) is
created and migrated automatically; any other database must be migrated explicitly with
``yinsi db upgrade`` (a production schema changes only when an operator says so), otherwise
``SchemaNotCurrent`` is raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from yinsi.audit import SYSTEM_ACTOR, AuditAction
from yinsi.config import database_url, is_default_database
from yinsi.declarations import DeclarationError, Problem, parse_declaration, text_hash
from yinsi.domain.policy import Declaration
from yinsi.services.audit_trail import AuditTrail
from yinsi.storage.engine import make_engine, make_session_factory
from yinsi.storage.migrate import ensure_current
from yinsi.storage.tables import LABEL_LEN, NAME_LEN, TENANT_ID_LEN, PolicyVersion, Tenant
from yinsi.storage.uow import UnitOfWork


class PublishError(Exception):
    """A publishing problem a person can act on (message in Chinese)."""


class VersionConflict(PublishError):
    """The label is already published with different content."""

    def __init__(self, tenant: str, label: str) -> None:
        self.tenant = tenant
        self.label = label
        super().__init__(f"版本 {label} 已发布且内容不同；请使用新的版本标签")


class VersionNotFound(PublishError):
    """No such version for the tenant."""

    def __init__(self, tenant: str, label: str) -> None:
        self.tenant = tenant
        self.label = label
        super().__init__(f"租户 {tenant} 没有已发布的版本 {label}")


@dataclass(frozen=True)
class PublishedVersion:
    """A published version's metadata (what ``history`` lists)."""

    tenant: str
    label: str
    app_name: str
    controller_name: str | None
    effective_date: date | None
    updated_date: date | None
    declaration_hash: str
    rendered_hash: str
    lint_errors: int
    lint_warnings: int
    published_at: datetime
    published_by: str | None
    #: False when ``publish`` found the identical version already archived (idempotent republish).
    created: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dates and times as ISO 8601 text."""
        out = asdict(self)
        for key in ("effective_date", "updated_date", "published_at"):
            value = out[key]
            out[key] = value.isoformat() if value is not None else None
        return out


@dataclass(frozen=True)
class ArchivedVersion:
    """A version as published: its metadata, the exact declaration text and the rendered policy."""

    version: PublishedVersion
    declaration_yaml: str
    rendered_markdown: str


def _to_published(row: PolicyVersion, *, created: bool = False) -> PublishedVersion:
    return PublishedVersion(
        tenant=row.tenant_id,
        label=row.label,
        app_name=row.app_name,
        controller_name=row.controller_name,
        effective_date=row.effective_date,
        updated_date=row.updated_date,
        declaration_hash=row.declaration_hash,
        rendered_hash=row.rendered_hash,
        lint_errors=row.lint_errors,
        lint_warnings=row.lint_warnings,
        published_at=row.published_at,
        published_by=row.published_by,
        created=created,
    )


@contextmanager
def _session_factory(url: str | None) -> Iterator[sessionmaker[Session]]:
    """Sessions on a database whose schema is current (the default SQLite database is migrated)."""
    resolved = url or database_url()
    ensure_current(resolved, auto_upgrade=is_default_database(resolved))
    engine = make_engine(resolved)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def _read_exact(path: Path) -> str:
    """The file's text exactly as stored (no newline translation), so the hash identifies the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DeclarationError([Problem(str(path), None, "", "file not found")]) from None
    except IsADirectoryError:
        raise DeclarationError([Problem(str(path), None, "", "not a file")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DeclarationError([Problem(str(path), None, "", "not UTF-8 text")]) from None


def _check_lengths(decl: Declaration, by: str | None) -> None:
    controller = decl.controller.legal_name.value
    for what, value, limit in (
        ("租户标识", decl.tenant, TENANT_ID_LEN),
        ("版本标签", decl.version.label, LABEL_LEN),
        ("应用名称", decl.app.name, NAME_LEN),
        ("运营者名称", controller, NAME_LEN),
        ("发布人", by, NAME_LEN),
    ):
        if value is not None and len(value) > limit:
            raise PublishError(f"{what}过长：最多 {limit} 个字符，实际 {len(value)} 个（{value[:20]}…）")


def _render(decl: Declaration) -> str:
    """The policy text; imported lazily (rendering loads templates)."""
    try:
        from yinsi.render import render_markdown
    except ImportError as exc:
        raise PublishError(f"无法渲染政策文本：渲染模块不可用（{exc}）") from None
    return render_markdown(decl)


def _lint_counts(decl: Declaration) -> tuple[int, int]:
    """Numbers of lint errors and warnings (informational findings are not counted)."""
    try:
        from yinsi.domain.lint import lint_declaration
    except ImportError as exc:
        raise PublishError(f"无法进行合规检查：检查模块不可用（{exc}）") from None
    findings = lint_declaration(decl)
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = sum(1 for f in findings if f.severity == "warning")
    return errors, warnings


def _same_or_conflict(row: PolicyVersion, declaration_hash: str) -> PublishedVersion:
    if row.declaration_hash != declaration_hash:
        raise VersionConflict(row.tenant_id, row.label)
    return _to_published(row, created=False)


def publish(
    decl_path: str | Path,
    url: str | None = None,
    by: str | None = None,
    *,
    now: datetime | None = None,
    notify: bool = False,
    channels: Any = None,
) -> PublishedVersion:
    """Lint, render and archive the declaration at ``decl_path`` as a new version of its tenant.

    Returns the stored version; ``created`` is False if the identical text was already published under
    this label. Raises ``DeclarationError`` (invalid file), ``VersionConflict`` (label taken by other
    content), ``PublishError`` and ``yinsi.storage.StorageError`` (database problems).
    ``now`` is the publication time (timezone-aware; default: the current UTC time).

    ``notify``: schedule the notices of the change to everyone who consented under an older version
    (:mod:`yinsi.services.policy_notices`); the version is refused, before anything is archived, when they
    could not arrive before the effective date (``policy_changes.notice_days`` days before, if promised).
    ``channels`` are the outbox adapters the notices use later (default: from the environment).
    """
    if now is not None and now.utcoffset() is None:
        raise ValueError("publish(now=...) needs a timezone-aware datetime")
    path = Path(decl_path)
    text = _read_exact(path)
    decl = parse_declaration(text, str(path))
    by = by.strip() if by and by.strip() else None
    _check_lengths(decl, by)
    markdown = _render(decl)
    lint_errors, lint_warnings = _lint_counts(decl)
    declaration_hash = text_hash(text)
    published_at = (now or datetime.now(UTC)).astimezone(UTC)
    tenant_id, label = decl.tenant, decl.version.label
    prepared = _prepare_notices(decl, url, published_at, channels) if notify else None

    with _session_factory(url) as factory:
        trail = AuditTrail(factory)
        for attempt in range(2):
            with UnitOfWork(factory) as uow:
                existing = uow.versions.get(tenant_id, label)
                if existing is not None:
                    return _same_or_conflict(existing, declaration_hash)
                tenant = uow.tenants.get(tenant_id)
                if tenant is None:
                    tenant = Tenant(id=tenant_id, name=decl.app.name, created_at=published_at)
                    uow.tenants.add(tenant)
                row = PolicyVersion(
                    tenant=tenant,
                    label=label,
                    app_name=decl.app.name,
                    controller_name=decl.controller.legal_name.value,
                    effective_date=decl.version.effective_date.value,
                    updated_date=decl.version.updated_date.value,
                    declaration_yaml=text,
                    declaration_hash=declaration_hash,
                    rendered_markdown=markdown,
                    rendered_hash=text_hash(markdown),
                    lint_errors=lint_errors,
                    lint_warnings=lint_warnings,
                    published_at=published_at,
                    published_by=by,
                )
                uow.versions.add(row)
                try:
                    uow.flush()
                    trail.record_in(uow.session, tenant_id, by or SYSTEM_ACTOR, AuditAction.POLICY_PUBLISH,
                                    details={"label": label, "declaration_hash": declaration_hash,
                                             "lint_errors": lint_errors})
                    uow.commit()
                except IntegrityError:
                    # Someone published the same tenant or label concurrently: look again.
                    if attempt:
                        raise
                    continue
                published = _to_published(row, created=True)
            trail.ensure_tenant_keys(tenant_id)  # a tenant has its keys from its first publication
            if prepared is not None:
                from yinsi.services.policy_notices import PolicyNotices

                with PolicyNotices(url, channels=channels) as notices:
                    notices.schedule_change(prepared, by=by)
            return published
    raise AssertionError("unreachable")  # pragma: no cover


def _prepare_notices(decl: Declaration, url: str | None, now: datetime, channels: Any) -> Any:
    """The change's notices, checked to arrive in time (``PublishError`` in Chinese otherwise)."""
    from yinsi.services.policy_notices import NoticeRefused, PolicyNotices

    with PolicyNotices(url, channels=channels) as notices:
        try:
            return notices.prepare_change(decl, now=now)
        except NoticeRefused as exc:
            raise PublishError(str(exc)) from None


def history(tenant: str, url: str | None = None) -> list[PublishedVersion]:
    """The tenant's published versions, by effective date (or publication date), then publication time.

    An unknown tenant has an empty history.
    """
    with _session_factory(url) as factory, UnitOfWork(factory) as uow:
        return [_to_published(row) for row in uow.versions.list_for_tenant(tenant)]


def latest_version(tenant: str, url: str | None = None) -> PublishedVersion | None:
    """The last version in history order, or ``None``."""
    with _session_factory(url) as factory, UnitOfWork(factory) as uow:
        row = uow.versions.latest(tenant)
        return _to_published(row) if row is not None else None


def get_version(tenant: str, label: str, url: str | None = None) -> ArchivedVersion:
    """A version as archived: exact declaration text and rendered policy. Raises ``VersionNotFound``."""
    with _session_factory(url) as factory, UnitOfWork(factory) as uow:
        row = uow.versions.get(tenant, label)
        if row is None:
            raise VersionNotFound(tenant, label)
        return ArchivedVersion(_to_published(row), row.declaration_yaml, row.rendered_markdown)
