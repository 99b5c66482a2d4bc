"""Limits on the YAML that Yinsi reads (declarations, data maps): hostile input is refused, fast.

A small YAML file can stand for an enormous document: anchors and aliases (``&a`` / ``*a``) nest, so
ten lines of "billion laughs" expand to 10⁹ nodes, and whatever walks the loaded document (validation,
rendering) runs for minutes. Deep nesting exhausts the stack; a huge file exhausts memory. Before a
document is loaded, :func:`check_yaml` reads its parse *events* once — linear in the text, nothing is
expanded — and refuses it when one of these limits is exceeded (environment variables, integers):

``YINSI_YAML_MAX_BYTES`` (default 1 000 000)
    size of the file, checked before it is read.
``YINSI_YAML_MAX_DEPTH`` (default 64)
    nesting of mappings and lists, aliases expanded.
``YINSI_YAML_MAX_ALIASES`` (default 200)
    number of aliases (``*name``, including merge keys ``<<: *name``).
``YINSI_YAML_MAX_NODES`` (default 100 000)
    number of nodes of the document once every alias is expanded (computed, not built).

The seed declarations and the demo data map use less than a tenth of each.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    ScalarEvent,
)

__all__ = ["YamlLimitError", "YamlLimits", "check_size", "check_yaml", "limits"]

MAX_BYTES_ENV = "YINSI_YAML_MAX_BYTES"
MAX_DEPTH_ENV = "YINSI_YAML_MAX_DEPTH"
MAX_ALIASES_ENV = "YINSI_YAML_MAX_ALIASES"
MAX_NODES_ENV = "YINSI_YAML_MAX_NODES"


class YamlLimitError(ValueError):
    """A YAML text over one of the limits; ``line`` (1-based) where it was noticed, if known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class YamlLimits:
    max_bytes: int = 1_000_000
    max_depth: int = 64
    max_aliases: int = 200
    max_nodes: int = 100_000


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise YamlLimitError(f"环境变量 {name} 应为正整数（当前为 {raw[:40]!r}）") from None
    if value < 1:
        raise YamlLimitError(f"环境变量 {name} 应为正整数（当前为 {value}）")
    return value


def limits(environ: Mapping[str, str] | None = None) -> YamlLimits:
    """The limits in force (defaults, or the environment variables above)."""
    env = os.environ if environ is None else environ
    d = YamlLimits()
    return YamlLimits(_int(env, MAX_BYTES_ENV, d.max_bytes), _int(env, MAX_DEPTH_ENV, d.max_depth),
                      _int(env, MAX_ALIASES_ENV, d.max_aliases), _int(env, MAX_NODES_ENV, d.max_nodes))


def check_size(size: int, lim: YamlLimits | None = None) -> None:
    """Refuse a file of ``size`` bytes over the size limit (before reading it)."""
    lim = lim or limits()
    if size > lim.max_bytes:
        raise YamlLimitError(f"文件过大：{size} 字节，超过上限 {lim.max_bytes} 字节（可用环境变量 {MAX_BYTES_ENV} 调整）")


class _Frame:
    __slots__ = ("anchor", "depth", "nodes")

    def __init__(self, anchor: str | None) -> None:
        self.anchor = anchor
        self.nodes = 1  # the collection itself
        self.depth = 0  # levels below it, aliases expanded


def check_yaml(text: str, lim: YamlLimits | None = None) -> None:
    """Refuse ``text`` if it is over a limit. Syntax errors are left to the loader (they are reported with
    their line there); this only walks the events the parser yields until the first one."""
    lim = lim or limits()
    check_size(len(text.encode("utf-8", errors="surrogatepass")), lim)
    anchors: dict[str, tuple[int, int]] = {}  # anchor → (expanded nodes, expanded depth below it)
    stack: list[_Frame] = []
    total = 0
    aliases = 0

    def add(nodes: int, depth_below: int, line: int | None) -> None:
        nonlocal total
        if not stack:
            total += nodes
            current = nodes
        else:
            top = stack[-1]
            top.nodes += nodes
            top.depth = max(top.depth, depth_below + 1)
            current = top.nodes
        if max(total, current) > lim.max_nodes:
            raise YamlLimitError(f"展开别名后节点过多：超过 {lim.max_nodes} 个（环境变量 {MAX_NODES_ENV}）；"
                                 "这可能是用别名层层引用构造的“YAML 炸弹”", line)
        if len(stack) + depth_below > lim.max_depth:
            raise YamlLimitError(f"嵌套过深：超过 {lim.max_depth} 层（环境变量 {MAX_DEPTH_ENV}）", line)

    _check_flow_depth(text, lim)
    events = YAML(typ="rt").parse(text)
    try:
        for event in events:
            line = _line(event)
            if isinstance(event, DocumentStartEvent):
                anchors.clear()  # anchors do not cross documents
            elif isinstance(event, CollectionStartEvent):
                stack.append(_Frame(event.anchor))
                if len(stack) > lim.max_depth:
                    raise YamlLimitError(f"嵌套过深：超过 {lim.max_depth} 层（环境变量 {MAX_DEPTH_ENV}）", line)
            elif isinstance(event, CollectionEndEvent):
                if not stack:
                    continue
                frame = stack.pop()
                if frame.anchor is not None:
                    anchors[frame.anchor] = (frame.nodes, frame.depth)
                add(frame.nodes, frame.depth, line)
            elif isinstance(event, ScalarEvent):
                if event.anchor is not None:
                    anchors[event.anchor] = (1, -1)
                add(1, -1, line)
            elif isinstance(event, AliasEvent):
                aliases += 1
                if aliases > lim.max_aliases:
                    raise YamlLimitError(f"别名（*引用）过多：超过 {lim.max_aliases} 个（环境变量 {MAX_ALIASES_ENV}）", line)
                nodes, depth = anchors.get(str(event.anchor), (1, -1))
                add(nodes, depth, line)
    except YAMLError:
        return  # the loader reports the syntax error with its line
    except RecursionError:
        raise YamlLimitError(f"嵌套过深：超过 {lim.max_depth} 层（环境变量 {MAX_DEPTH_ENV}）") from None


_BRACKETS = re.compile(r"[\[\]{}]")


def _check_flow_depth(text: str, lim: YamlLimits) -> None:
    """Brackets nested deeper than the limit, counted on the raw text (the YAML scanner slows down
    quadratically on deeply nested flow collections, so they are refused before it runs). Brackets inside
    quoted text count too: a false alarm would need more than ``max_depth`` unbalanced ones."""
    depth = 0
    for m in _BRACKETS.finditer(text):
        if m.group() in "[{":
            depth += 1
            if depth > lim.max_depth:
                line = text.count("\n", 0, m.start()) + 1
                raise YamlLimitError(f"嵌套过深：超过 {lim.max_depth} 层（环境变量 {MAX_DEPTH_ENV}）", line)
        elif depth:
            depth -= 1


def _line(event: Event) -> int | None:
    mark = getattr(event, "start_mark", None)
    return mark.line + 1 if mark is not None else None
