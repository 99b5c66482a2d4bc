"""Loading declarations from YAML with errors that name file, line and path."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from yinsi.domain.policy import Declaration, ReferenceErrors
from yinsi.yaml_guard import YamlLimitError, check_size, check_yaml


@dataclass(frozen=True)
class Problem:
    """One validation problem in a declaration file."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '<root>'}: {self.message}"


class DeclarationError(ValueError):
    """A declaration file that cannot be loaded; ``problems`` lists every issue found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = False
    return y


def line_of(root: Any, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest node of ``loc`` that exists in the parsed YAML."""
    node = root
    line: int | None = None
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            pos = node.lc.key(key)
            line = pos[0] + 1 if pos else line
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            pos = node.lc.item(key)
            line = pos[0] + 1 if pos else line
            node = node[key]
        else:
            break
    if line is None and isinstance(root, CommentedMap):
        line = 1
    return line


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")


def _path(root: Any, loc: tuple[int | str, ...]) -> str:
    """A readable path: list items are named by their ``id`` where they have one."""
    parts: list[str] = []
    node = root
    for key in loc:
        if isinstance(key, int):
            ident = None
            if isinstance(node, list) and 0 <= key < len(node) and isinstance(node[key], dict):
                ident = node[key].get("id")
            # an id is shown only if it looks like one (a value such as a phone number is not repeated)
            parts.append(f"[{ident}]" if isinstance(ident, str) and _IDENT.fullmatch(ident) else f"[{key}]")
            node = node[key] if isinstance(node, list) and 0 <= key < len(node) else None
        else:
            if key.startswith(("function-", "constrained-")) or key in ("str", "date", "int"):
                continue  # pydantic's internal union labels
            parts.append(f".{key}" if parts else key)
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts)


def parse_declaration(text: str, file: str = "<string>") -> Declaration:
    """Parse and validate a declaration from YAML text (over a limit of :mod:`yinsi.yaml_guard`: refused)."""
    try:
        check_yaml(text)
        raw = _yaml().load(text)
    except YamlLimitError as exc:
        raise DeclarationError([Problem(file, exc.line, "", exc.message)]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise DeclarationError([Problem(file, line, "", f"YAML syntax error: {exc.problem}")]) from None
    except (YAMLError, RecursionError) as exc:
        raise DeclarationError([Problem(file, None, "", f"YAML 无法读取：{type(exc).__name__}")]) from None
    if not isinstance(raw, dict):
        raise DeclarationError([Problem(file, 1, "", "a declaration is a YAML mapping")])
    try:
        return Declaration.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, ReferenceErrors):
                for loc, msg in cause.errors:
                    problems.append(Problem(file, line_of(raw, loc), _path(raw, loc), msg))
                continue
            loc = tuple(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(Problem(file, line_of(raw, loc), _path(raw, loc), msg))
        raise DeclarationError(problems) from None


def load_declaration(path: str | Path) -> Declaration:
    """Load and validate a declaration file."""
    p = Path(path)
    try:
        check_size(p.stat().st_size)
        text = p.read_text(encoding="utf-8")
    except YamlLimitError as exc:
        raise DeclarationError([Problem(str(p), None, "", exc.message)]) from None
    except FileNotFoundError:
        raise DeclarationError([Problem(str(p), None, "", "file not found")]) from None
    except (IsADirectoryError, PermissionError) as exc:
        raise DeclarationError([Problem(str(p), None, "", f"无法读取：{exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise DeclarationError([Problem(str(p), None, "", "not UTF-8 text")]) from None
    return parse_declaration(text, str(p))


def text_hash(text: str) -> str:
    """SHA-256 of a text, hex: the identity of exactly what was published or shown."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
