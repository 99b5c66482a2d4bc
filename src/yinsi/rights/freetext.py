"""Personal information inside free text (自由文本中的个人信息): erasure, copy and read-back over the data map's
free-text columns (``free_text: true``), in every row of each column, not only the person's own.

- **Which identifiers**: the values of the subject kind's ``identifiers`` attributes, captured in the
  encrypted plan before anything is erased (:func:`person_identifiers`); their kinds come from the PI item
  of the attribute's column (:mod:`yinsi.domain.freetext`).
- **Where**: the free-text index (:mod:`yinsi.rights.freetext_index`): keyed hashes of the identifiers each
  row mentions → row keys, kept current from a high-water mark on the primary key (and the map's
  ``updated_at`` column when given). Every use first indexes the rows added since the last run (the tail),
  then looks the person's identifiers up: per request, an index lookup plus a bounded tail, never a scan of
  the whole table.
- **Erasure** (:func:`redact_column`): in each row found, every written variant of every identifier is
  replaced by :data:`~yinsi.domain.freetext.MARKER` (``[已删除]``), and so is a name the scanner finds right
  next to one of them (``联系人：张三 电话：138…``: before it with at most a label between, or after it in
  brackets); nothing else of the text changes. Each row is written only if it still holds the text that
  was read (a concurrent edit is read again), and is indexed again at once.
- **Copy** (:func:`passages`): the sentence around each mention, with the store, table and column named;
  other people's phone numbers, ID numbers, e-mail addresses and plates in that sentence are hidden. Rows
  that match only by name are left out of a copy (a namesake's text is not the person's).
- **Read-back** (:func:`remaining`): the tail is indexed again, the person's identifiers looked up, and
  every row found (and every row the erasure changed) is searched with the variant patterns; anything
  left fails the step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update

from yinsi.domain import freetext as ft
from yinsi.domain.datamap import DataMap, SqlStore, Subject
from yinsi.domain.taxonomy import taxonomy

#: Step keys of free-text redaction: ``freetext:store.table.column``.
STEP_PREFIX = "freetext:"
CHUNK = 500


@dataclass(frozen=True)
class FreeTextColumn:
    """A free-text column of the data map."""

    store: str
    table: str
    column: str
    item: str
    item_name: str
    sensitive: bool
    updated_at: str | None = None

    @property
    def id(self) -> str:
        return f"{self.store}.{self.table}.{self.column}"

    @property
    def step_key(self) -> str:
        return STEP_PREFIX + self.id


def free_text_columns(dm: DataMap) -> list[FreeTextColumn]:
    """Every column marked ``free_text`` in the map's SQL stores, in map order."""
    tax = taxonomy()
    out: list[FreeTextColumn] = []
    for store in dm.stores:
        if not isinstance(store, SqlStore):
            continue
        for tname, table in store.tables.items():
            for cname, col in table.columns.items():
                if col.free_text and not col.not_pi and col.item is not None:
                    pi = tax.items.get(col.item)
                    out.append(FreeTextColumn(store.id, tname, cname, col.item, pi.name if pi else col.item,
                                              bool(pi and pi.sensitive), table.updated_at))
    return out


def identifier_kinds(dm: DataMap, subj: Subject) -> dict[str, str]:
    """attribute → identifier kind, for the subject kind's declared identifiers."""
    out: dict[str, str] = {}
    for name in subj.identifiers:
        column = subj.attributes.get(name)
        if column is None:
            continue
        kind = ft.kind_of_item(dm.subject_column_item(subj.id, column))
        if kind == "text":  # an unmapped or generic item: the attribute's own name may say (phone, email…)
            kind = ft.kind_of_item(f"x.{name}")
        out[name] = kind
    return out


def needs_identifiers(dm: DataMap, subj: Subject | None) -> bool:
    """Whether an erasure or copy of this subject kind searches free text (so the plan captures attributes)."""
    return subj is not None and bool(subj.identifiers) and bool(free_text_columns(dm))


def person_identifiers(dm: DataMap, subj: Subject, attributes: Mapping[str, Any]) -> list[ft.Identifier]:
    """The person's identifiers from the plan's captured attributes."""
    kinds = identifier_kinds(dm, subj)
    return ft.identifiers([(kind, str(attributes[name])) for name, kind in kinds.items()
                           if attributes.get(name) not in (None, "")])


def applies(dm: DataMap, subj: Subject, chosen_items: Sequence[str] | None) -> list[FreeTextColumn]:
    """The free-text columns an erasure redacts: all of them, unless the person chose items and none of
    them is a free-text column's item or an item of one of the identifiers."""
    cols = free_text_columns(dm) if subj.identifiers else []
    if not chosen_items or not cols:
        return cols
    ident_items = {dm.subject_column_item(subj.id, subj.attributes[a]) for a in subj.identifiers
                   if a in subj.attributes}
    chosen = set(chosen_items)
    return cols if chosen & ({c.item for c in cols} | ident_items) else []


# ------------------------------------------------------------------------------------------ the texts
def _scanner_names(text: str) -> list[tuple[int, int, bool]]:
    """Names in ``text`` as (start, end, bare): the scanner's name model where it is installed, and the
    spans that read as a name by their context (:func:`yinsi.domain.freetext.name_candidates`)."""
    from yinsi.scan import UnknownType, scan_text

    try:
        found = {(r.start, r.end): False for r in scan_text(text, types=["person_name"])}
    except UnknownType:  # the name model is not installed
        found = {}
    for s, e, bare in ft.name_candidates(text):
        found[(s, e)] = found.get((s, e), True) and bare
    return sorted((s, e, bare) for (s, e), bare in found.items())


def redaction_spans(text: str, idents: Sequence[ft.Identifier],
                    names: Callable[[str], list[tuple[int, int, bool]]] = _scanner_names) -> list[tuple[int, int]]:
    """What to cut out of ``text``: every mention of an identifier, and a name right next to a mention of
    a phone, ID number, e-mail or plate (see :func:`yinsi.domain.freetext.adjacent`)."""
    found = ft.mentions(text, idents)
    spans = [(s, e) for s, e, _ in found]
    strong = [(s, e) for s, e, ident in found if ident.kind not in ("name", "text")]
    if strong:
        folded = ft.fold(text)
        for ns, ne, bare in names(text):
            name = ft.without_labels(folded, ns, ne)  # a label the name model took with the name stays
            if name is not None and any(ft.adjacent(folded, *name, s, e, strict=bare) for s, e in strong):
                spans.append(name)
    return ft.merge(spans)


def redact_text(text: str, idents: Sequence[ft.Identifier],
                names: Callable[[str], list[tuple[int, int, bool]]] = _scanner_names) -> str:
    """``text`` with the person's identifiers (and the names next to them) replaced by the marker."""
    return ft.redact(text, redaction_spans(text, idents, names))


def quoted(text: str, idents: Sequence[ft.Identifier]) -> list[str]:
    """The passages of ``text`` mentioning the person (one per sentence), other people's numbers hidden."""
    out: dict[str, None] = {}
    mine = {(i.kind, i.value) for i in idents}
    for s, e, _ in ft.mentions(text, idents):
        sentence = ft.passage(text, s, e)
        folded = ft.fold(sentence)
        others = [(a, b) for kind, value, a, b in ft._numbers(folded) if (kind, value) not in mine]
        out.setdefault(ft.redact(sentence, others, ft.OTHER_MARKER) if others else sentence, None)
    return list(out)


# --------------------------------------------------------------------------------------- the columns
def _rows(conn: Any, col: FreeTextColumn, keys: Iterable[str]) -> dict[str, str]:
    """row key → text, for the rows of ``keys`` that still exist and hold text."""
    from yinsi.rights.freetext_index import key_column, parse_key

    t = conn.table(col.table)
    pk = key_column(t, col)
    out: dict[str, str] = {}
    wanted = sorted(set(keys))
    with conn.engine.connect() as c:
        for n in range(0, len(wanted), CHUNK):
            chunk = [parse_key(pk, k) for k in wanted[n:n + CHUNK]]
            for key, text in c.execute(select(pk, t.c[col.column]).where(pk.in_(chunk))).all():
                if text is not None:
                    out[str(key)] = str(text)
    return out


def _split(idents: Sequence[ft.Identifier], shared_names: Iterable[str]) -> tuple[list[ft.Identifier],
                                                                                  list[ft.Identifier]]:
    """(strong identifiers, identifiers that find a row on their own): a name another subject also holds
    (a namesake) finds no row on its own; it goes only where a strong identifier of the person stands."""
    shared = set(shared_names)
    strong = [i for i in idents if i.kind not in ("name", "text")]
    alone = [i for i in idents if not (i.kind == "name" and i.value in shared)]
    return strong, alone


def _row_identifiers(text: str, idents: Sequence[ft.Identifier], strong: Sequence[ft.Identifier],
                     alone: Sequence[ft.Identifier]) -> list[ft.Identifier]:
    """The identifiers to look for in one row: all of them where the row mentions a strong one."""
    return list(idents) if strong and ft.mentions(text, strong) else list(alone)


def redact_column(index: Any, conn: Any, col: FreeTextColumn, idents: Sequence[ft.Identifier],
                  shared_names: Iterable[str] = ()) -> dict[str, Any]:
    """Redact the person's identifiers in every row of ``col`` that mentions them; returns the step detail
    (how many rows changed and their keys, no text). ``shared_names``: names other subjects also hold,
    redacted only in rows that also mention a strong identifier of the person."""
    from yinsi.rights.freetext_index import key_column, parse_key

    strong, alone = _split(idents, shared_names)
    index.refresh(conn, col)
    keys = index.lookup(col, alone)
    t = conn.table(col.table)
    pk = key_column(t, col)
    target = t.c[col.column]
    changed: list[str] = []
    written: dict[str, str] = {}
    todo = _rows(conn, col, keys)
    for _attempt in range(3):
        retry: list[str] = []
        with conn.engine.begin() as c:
            for key, text in todo.items():
                new = redact_text(text, _row_identifiers(text, idents, strong, alone))
                if new == text:
                    continue
                res = c.execute(update(t).where(and_(pk == parse_key(pk, key), target == text)).values({col.column: new}))
                if res.rowcount == 1:
                    changed.append(key)
                    written[key] = new
                else:
                    retry.append(key)  # edited meanwhile: read it again
        if not retry:
            break
        todo = _rows(conn, col, retry)
    index.reindex(conn, col, changed, written)
    note = "；姓名另有同名者，仅在同时提及本人其他标识的行中遮盖" if len(alone) < len(idents) else ""
    return {"affected": len(changed), "rows": changed, "namesakes": len(idents) - len(alone),
            "detail": f"{col.id}：{len(changed)} 行文本中的标识已替换为 {ft.MARKER}{note}"}


def remaining(index: Any, conn: Any, col: FreeTextColumn, idents: Sequence[ft.Identifier],
              also: Iterable[str] = (), shared_names: Iterable[str] = ()) -> list[str]:
    """Row keys of ``col`` that still mention the person (index lookup after indexing the tail, plus the
    rows ``also`` named, e.g. those the erasure changed), by the rule of :func:`redact_column`."""
    strong, alone = _split(idents, shared_names)
    index.refresh(conn, col)
    keys = set(index.lookup(col, alone)) | {str(k) for k in also}
    return sorted(k for k, text in _rows(conn, col, keys).items()
                  if ft.mentions(text, _row_identifiers(text, idents, strong, alone)))


def shared_names(dm: DataMap, subj: Subject, conn: Any, subject_key: str, attributes: Mapping[str, Any]) -> list[str]:
    """The person's names (canonical) that another subject of the kind also holds (namesakes), from the
    subject's own table (``conn``: its store's connector)."""
    out: list[str] = []
    for attr, kind in identifier_kinds(dm, subj).items():
        value = attributes.get(attr)
        name = ft.canonical("name", str(value)) if kind == "name" and value not in (None, "") else None
        if name is None:
            continue
        keys = conn.subjects_with(subj, attr, [str(value)], limit=2)
        if any(k != str(subject_key) for k in keys):
            out.append(name)
    return out


def passages(index: Any, conn: Any, col: FreeTextColumn, idents: Sequence[ft.Identifier]) -> list[dict[str, Any]]:
    """The copy's entries for ``col``: per row mentioning the person by more than a name, the passages."""
    strong = [i for i in idents if i.kind not in ("name", "text")]
    if not strong:
        return []
    index.refresh(conn, col)
    keys = index.lookup(col, strong)
    out: list[dict[str, Any]] = []
    for key, text in sorted(_rows(conn, col, keys).items()):
        if not ft.mentions(text, strong):
            continue
        for sentence in quoted(text, idents):
            out.append({"item": col.item, "name": f"{col.item_name}（自由文本中提及）", "sensitive": col.sensitive,
                        "location": col.id, "source": f"{col.table}:{key}", "value": sentence})
    return out


# ------------------------------------------------------------------------------- the request's steps
def tenant_index(ctx: Any, tenant: str) -> Any:
    """The tenant's free-text index in Yinsi's database."""
    from yinsi.rights.freetext_index import FreeTextIndex, tenant_hasher

    return FreeTextIndex(ctx.sessions, tenant, tenant_hasher(ctx, tenant), clock=ctx.clock)


def _plan_identifiers(dm: DataMap, subj: Subject, plan: Mapping[str, Any]) -> list[ft.Identifier]:
    return person_identifiers(dm, subj, plan.get("attributes") or {})


def erase_steps(ctx: Any, job: Any, dm: DataMap, subj: Subject, plan: Mapping[str, Any],
                connectors: Mapping[str, Any], cols: Sequence[FreeTextColumn], status_of: Mapping[str, str]) -> None:
    """Run the free-text redaction steps not done yet (after the person's own rows were erased)."""
    from yinsi.rights.reach import reaching
    from yinsi.rights.steps import DONE, mark_step

    idents = _plan_identifiers(dm, subj, plan)
    todo = [col for col in cols if status_of.get(col.step_key) != DONE]
    if not todo:
        return
    index = tenant_index(ctx, job.tenant)
    with reaching(dm, subj.store):
        shared = shared_names(dm, subj, connectors[subj.store], job.subject, plan.get("attributes") or {})
    for col in todo:
        with reaching(dm, col.store):
            detail = redact_column(index, connectors[col.store], col, idents, shared) if idents else \
                {"affected": 0, "rows": [], "detail": f"{col.id}：计划中没有该主体的标识，无需遮盖"}
        mark_step(ctx, job, col.step_key, DONE, detail)


def read_back(ctx: Any, job: Any, dm: DataMap, subj: Subject, plan: Mapping[str, Any],
              connectors: Mapping[str, Any], cols: Sequence[FreeTextColumn]) -> int:
    """Search every free-text column for the person's identifiers again; raise ErasureIncomplete (and
    reopen the column's step) where any is left. Returns how many columns were checked."""
    from yinsi.rights.context import ErasureIncomplete
    from yinsi.rights.reach import reaching
    from yinsi.rights.steps import PENDING, mark_step

    idents = _plan_identifiers(dm, subj, plan)
    if not idents or not cols:
        return len(cols)
    index = tenant_index(ctx, job.tenant)
    changed = _changed_rows(ctx, job.request_id)
    with reaching(dm, subj.store):
        shared = shared_names(dm, subj, connectors[subj.store], job.subject, plan.get("attributes") or {})
    left: list[str] = []
    for col in cols:
        with reaching(dm, col.store):
            keys = remaining(index, connectors[col.store], col, idents, changed.get(col.step_key, ()), shared)
        if keys:
            where = f"{col.id}（自由文本，{len(keys)} 行仍提及该主体，例如 {col.table}:{keys[0]}）"
            mark_step(ctx, job, col.step_key, PENDING, {"read_back_left": [where]})
            left.append(where)
    if left:
        raise ErasureIncomplete("删除后回读发现自由文本中仍有该主体的标识，请求未完成（相应步骤已重新打开，可重试）："
                                + "；".join(left))
    return len(cols)


def _changed_rows(ctx: Any, request_id: str) -> dict[str, list[str]]:
    """step key → the row keys its redaction changed (from the steps' details)."""
    import json

    from yinsi.storage.rights_tables import RequestStep

    with ctx.sessions() as s:
        rows = s.execute(select(RequestStep.location_id, RequestStep.detail).where(
            RequestStep.request_id == request_id, RequestStep.location_id.startswith(STEP_PREFIX))).all()
    out: dict[str, list[str]] = {}
    for key, detail in rows:
        try:
            out[str(key)] = [str(k) for k in (json.loads(detail or "{}").get("rows") or [])]
        except (ValueError, AttributeError):
            continue
    return out


def copy_entries(ctx: Any, job: Any, dm: DataMap) -> list[dict[str, Any]]:
    """The passages of every free-text column that mention the person (for a copy package)."""
    from yinsi.rights.reach import reaching

    subj = dm.subject(job.kind)
    if not needs_identifiers(dm, subj):
        return []
    assert subj is not None
    idents = person_identifiers(dm, subj, ctx.attributes(dm, job.kind, job.subject))
    if not idents:
        return []
    index = tenant_index(ctx, job.tenant)
    out: list[dict[str, Any]] = []
    for col in free_text_columns(dm):
        with reaching(dm, col.store):
            out.extend(passages(index, ctx.connector(dm, job.tenant, col.store), col, idents))
    return out


def build_index(ctx: Any, tenant: str, dm: DataMap, progress: Callable[[str, int], None] | None = None,
                totals: Callable[[str, int], None] | None = None) -> list[dict[str, Any]]:
    """Bring the tenant's free-text index up to date for every free-text column of ``dm`` (``yinsi freetext
    index``): the rows added since the last run (and those changed, with ``updated_at``). ``totals`` is
    told each column's count of rows still to index before it starts; returns each column's state."""
    from sqlalchemy import func

    from yinsi.rights.freetext_index import key_column, parse_key
    from yinsi.rights.reach import reaching

    index = tenant_index(ctx, tenant)
    out: list[dict[str, Any]] = []
    for col in free_text_columns(dm):
        with reaching(dm, col.store):
            conn = ctx.connector(dm, tenant, col.store)
            if totals is not None:
                mark = index.state(col)["key_mark"]
                t = conn.table(col.table)
                pk = key_column(t, col)
                stmt = select(func.count()).select_from(t)
                if mark is not None:
                    stmt = stmt.where(pk > parse_key(pk, mark))
                with conn.engine.connect() as c:
                    totals(col.id, int(c.execute(stmt).scalar() or 0))
            read = index.refresh(conn, col, progress)
        out.append({**index.state(col), "read": read})
    return out
