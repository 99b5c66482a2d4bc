"""Loading a data map from YAML (errors name file, line and path) and checking it against the policy
declaration and the live stores: SQL schemas by SQLAlchemy inspection, Redis by a sample of its keys.

The checks themselves are pure (``yinsi.domain.datamap``); this module does the I/O around them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from yinsi.declarations import line_of
from yinsi.domain.datamap import (
    DataMap,
    DataMapProblem,
    LiveColumn,
    LiveSchema,
    Loc,
    RedisStore,
    SqlStore,
    check_live_redis,
    check_live_sql,
    format_path,
)
from yinsi.domain.policy import Declaration
from yinsi.yaml_guard import YamlLimitError, check_size, check_yaml

#: At most this many Redis keys are sampled (SCAN) when checking a live Redis store.
REDIS_SAMPLE = 20_000


@dataclass(frozen=True)
class MapProblem:
    """One problem in a data map file, for people: ``file:line: path: message``."""

    file: str
    line: int | None
    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '<根>'}: {self.message}"


class DataMapError(ValueError):
    """A data map file that cannot be loaded; ``problems`` lists every issue found."""

    def __init__(self, problems: list[MapProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class DataMapFile:
    """A loaded data map with the parsed YAML kept for line numbers."""

    datamap: DataMap
    file: str
    raw: Any

    def locate(self, problem: DataMapProblem) -> MapProblem:
        return MapProblem(self.file, line_of(self.raw, problem.loc), format_path(self.raw, problem.loc),
                          problem.message, problem.severity)


# ------------------------------------------------------------------------------------------ loading
_ZH_ERRORS = {
    "missing": "缺少必填字段",
    "extra_forbidden": "未知字段（拼写错误？）",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "string_type": "应为字符串",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "dict_type": "应为映射（键: 值）",
    "list_type": "应为列表",
    "greater_than_equal": "数值过小",
    "string_pattern_mismatch": "格式不符合要求",
}


def _clean_loc(raw: Any, loc: tuple[int | str, ...]) -> Loc:
    """Drop pydantic's union tags (``sql``, ``redis``, ``manual``) that are not keys of the document."""
    out: list[int | str] = []
    node = raw
    for key in loc:
        if isinstance(node, Mapping) and isinstance(key, str) and key not in node and key in ("sql", "redis", "manual"):
            continue
        out.append(key)
        if isinstance(node, Mapping):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            node = None
    return tuple(out)


def _zh_message(err: Mapping[str, Any]) -> str:
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if kind in ("enum", "literal_error"):
        expected = str(ctx.get("expected", "")).replace("' or '", "', '").replace("'", "").replace(", ", "、")
        return f"未知的取值 {err.get('input')!r}（可用：{expected}）"
    if kind == "union_tag_invalid":
        return f"未知的存储类型 {ctx.get('tag')!r}（可用：sql、redis、manual）"
    if kind == "union_tag_not_found":
        return "存储缺少 kind（sql、redis 或 manual）"
    return _ZH_ERRORS.get(kind, str(err.get("msg", "")).removeprefix("Value error, "))


def parse_datamap(text: str, file: str = "<string>") -> DataMapFile:
    """Parse a data map from YAML text: structure and internal consistency (references, join paths,
    placeholders, erase actions, legal holds). Raises ``DataMapError`` listing every problem."""
    try:
        check_yaml(text)
        raw = YAML(typ="rt").load(text)
    except YamlLimitError as exc:
        raise DataMapError([MapProblem(file, exc.line, "", exc.message)]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise DataMapError([MapProblem(file, line, "", f"YAML 语法错误：{exc.problem}")]) from None
    except (YAMLError, RecursionError) as exc:
        raise DataMapError([MapProblem(file, None, "", f"YAML 无法读取：{type(exc).__name__}")]) from None
    if not isinstance(raw, dict):
        raise DataMapError([MapProblem(file, 1, "", "数据地图应是一个 YAML 映射")])
    try:
        dm = DataMap.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _clean_loc(raw, tuple(err["loc"]))
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                loc = (*loc, "kind")
            problems.append(MapProblem(file, line_of(raw, loc), format_path(raw, loc), _zh_message(err)))
        raise DataMapError(problems) from None
    loaded = DataMapFile(dm, file, raw)
    errors = [loaded.locate(p) for p in dm.problems() if p.severity == "error"]  # warnings: ``validate``
    if errors:
        raise DataMapError(errors)
    return loaded


def load_datamap(path: str | Path) -> DataMapFile:
    """Load a data map file (see ``parse_datamap``)."""
    p = Path(path)
    try:
        check_size(p.stat().st_size)
        text = p.read_text(encoding="utf-8")
    except YamlLimitError as exc:
        raise DataMapError([MapProblem(str(p), None, "", exc.message)]) from None
    except FileNotFoundError:
        raise DataMapError([MapProblem(str(p), None, "", "文件不存在")]) from None
    except (IsADirectoryError, PermissionError) as exc:
        raise DataMapError([MapProblem(str(p), None, "", f"无法读取：{exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise DataMapError([MapProblem(str(p), None, "", "不是 UTF-8 文本")]) from None
    return parse_datamap(text, str(p))


# ------------------------------------------------------------------------------------- live stores
def inspect_sql(url: str) -> LiveSchema:
    """Tables and columns of the database at ``url``."""
    from sqlalchemy import inspect

    from yinsi.storage.engine import make_engine

    engine = make_engine(url)
    try:
        insp = inspect(engine)
        return LiveSchema({
            t: tuple(LiveColumn(str(c["name"]), bool(c.get("nullable", True)), str(c.get("type", "")))
                     for c in insp.get_columns(t))
            for t in insp.get_table_names()
        })
    finally:
        engine.dispose()


def sample_redis(url: str, prefix: str = "", limit: int = REDIS_SAMPLE) -> dict[str, str]:
    """Up to ``limit`` keys under ``prefix`` with their Redis types."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        names: list[str] = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            names.append(key.decode() if isinstance(key, bytes) else str(key))
            if len(names) >= limit:
                break
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.type(name)
        types = [t.decode() if isinstance(t, bytes) else str(t) for t in pipe.execute()]
        return dict(zip(names, types, strict=True))
    finally:
        client.close()


@dataclass
class ValidationReport:
    """The outcome of ``validate``: problems (errors and warnings) and what was checked live."""

    file: str
    problems: list[MapProblem] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # e.g. "SQL 存储 app_db：sqlite:///…（13 张表）"
    not_checked: list[str] = field(default_factory=list)  # stores whose live check could not run, and why
    locations: int = 0

    @property
    def errors(self) -> list[MapProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[MapProblem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "ok": self.ok, "problems": [asdict(p) for p in self.problems],
                "checked": self.checked, "not_checked": self.not_checked, "locations": self.locations}


def _resolve(store_id: str, connection: Any, given: Mapping[str, str]) -> tuple[str | None, str]:
    """The URL of a store: ``given`` (from the command line) first, then the map's env var or URL."""
    if store_id in given:
        return given[store_id], "命令行"
    if connection is not None and connection.env:
        value = os.environ.get(connection.env)
        if value:
            return value, f"环境变量 {connection.env}"
        return None, f"未提供地址（环境变量 {connection.env} 未设置）"
    if connection is not None and connection.url:
        return connection.url, "数据地图"
    return None, "未提供地址"


def assign_urls(dm: DataMap, url: str | None, redis_url: str | None) -> tuple[dict[str, str], list[str]]:
    """Map ``--url``/``--redis`` to stores. A bare URL applies to the only store of its kind; ``ID=URL``
    names the store. Returns (store id → URL, problems in Chinese)."""
    out: dict[str, str] = {}
    problems: list[str] = []
    for value, stores, label in ((url, dm.sql_stores(), "SQL"), (redis_url, dm.redis_stores(), "Redis")):
        if not value:
            continue
        ids = [s.id for s in stores]
        head, sep, tail = value.partition("=")
        if sep and head in ids:
            out[head] = tail
        elif len(ids) == 1:
            out[ids[0]] = value
        elif not ids:
            problems.append(f"数据地图中没有 {label} 存储，不能使用该地址")
        else:
            problems.append(f"数据地图有多个 {label} 存储（{'、'.join(ids)}），请写成 存储编号=地址")
    return out, problems


def validate(
    map_path: str | Path,
    declaration: Declaration,
    *,
    urls: Mapping[str, str] | None = None,
    key_prefixes: Mapping[str, str] | None = None,
    live: bool = True,
) -> ValidationReport:
    """Load the data map, check it against ``declaration`` and, where a store's address is known
    (``urls`` by store id, else the map's ``connection``), against the live store. ``key_prefixes``
    overrides a Redis store's ``key_prefix`` (e.g. a test namespace)."""
    report = ValidationReport(str(map_path))
    try:
        loaded = load_datamap(map_path)
    except DataMapError as exc:
        report.problems.extend(exc.problems)
        return report
    dm = with_key_prefixes(loaded.datamap, key_prefixes or {})
    report.problems.extend(loaded.locate(p) for p in dm.problems() if p.severity == "warning")
    report.problems.extend(loaded.locate(p) for p in dm.check_declaration(declaration))
    given = dict(urls or {})
    if live:
        for store in dm.stores:
            if not isinstance(store, SqlStore | RedisStore):
                continue
            url, origin = _resolve(store.id, store.connection, given)
            kind = "SQL" if isinstance(store, SqlStore) else "Redis"
            if url is None:
                report.not_checked.append(f"{kind} 存储 {store.id}：{origin}，未检查实时结构")
                continue
            shown = _display(url)
            try:
                if isinstance(store, SqlStore):
                    schema = inspect_sql(url)
                    found = check_live_sql(dm, store.id, schema)
                    report.checked.append(f"SQL 存储 {store.id}：{shown}（{origin}，{len(schema.tables)} 张表）")
                else:
                    keys = sample_redis(url, store.key_prefix)
                    found = check_live_redis(dm, store.id, keys)
                    report.checked.append(f"Redis 存储 {store.id}：{shown}（{origin}，抽查 {len(keys)} 个键，"
                                          f"前缀 {store.key_prefix or '（无）'}）")
            except Exception as exc:  # an unreachable store is a problem to report, not a crash
                sk = next(k for k, s in enumerate(dm.stores) if s.id == store.id)
                reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
                found = [DataMapProblem(("stores", sk, "connection"), f"无法连接 {kind} 存储 {shown}：{reason}")]
            report.problems.extend(loaded.locate(p) for p in found)
    if report.ok:
        report.locations = len(dm.locations())
    return report


def with_key_prefixes(dm: DataMap, prefixes: Mapping[str, str]) -> DataMap:
    """The map with the ``key_prefix`` of the named Redis stores replaced."""
    if not prefixes:
        return dm
    stores = [s.model_copy(update={"key_prefix": prefixes[s.id]}) if isinstance(s, RedisStore) and s.id in prefixes
              else s for s in dm.stores]
    return dm.model_copy(update={"stores": stores})


def _display(url: str) -> str:
    from yinsi.storage.engine import display_url

    if url.startswith(("redis://", "rediss://", "unix://")):
        head, at, tail = url.rpartition("@")
        return f"{head.split('//')[0]}//***@{tail}" if at else url
    return display_url(url)
