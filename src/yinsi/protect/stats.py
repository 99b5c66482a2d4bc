"""Statistics release (统计发布): counts per group that identify nobody.

Two protections, usable together:

- **k-threshold suppression (小单元格抑制)**: a group with fewer than ``k`` people (default 10) is not
  shown; only the number of hidden groups is. No total is released, so a hidden cell cannot be recovered
  by subtracting the shown ones from it.
- **Calibrated noise (差分隐私噪声)**: each count gets independent discrete Laplace noise (the two-sided
  geometric mechanism, Pr[X = x] ∝ exp(-ε·|x|)): the integer analogue of Laplace noise of scale 1/ε
  for counts of sensitivity 1 (one person changes one count by at most 1). Integer noise avoids the
  floating-point weakness of continuous Laplace sampling (Mironov 2012). Noisy counts are clamped at 0,
  and suppression is then decided on the *noisy* count, so the choice of shown groups is itself noisy.

Each person must contribute one row (one count): deduplicate per person before calling.
"""

from __future__ import annotations

import csv
import math
import random
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_K", "Cell", "Release", "StatsError", "discrete_laplace", "read_csv", "release_counts"]

DEFAULT_K = 10


class StatsError(ValueError):
    """A release that cannot be made as asked (message in Chinese, names the column or parameter)."""


@dataclass(frozen=True)
class Cell:
    """One released group: its values (in ``group_by`` order) and its (possibly noisy) count."""

    group: tuple[str, ...]
    count: int


@dataclass(frozen=True)
class Release:
    group_by: tuple[str, ...]
    k: int
    epsilon: float | None
    cells: list[Cell] = field(default_factory=list)
    #: How many groups were hidden because their count was below ``k``.
    suppressed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``yinsi stats --json``)."""
        return {
            "group_by": list(self.group_by),
            "k": self.k,
            "noise": None if self.epsilon is None else {
                "mechanism": "discrete_laplace", "epsilon": self.epsilon, "sensitivity": 1, "scale": 1 / self.epsilon,
            },
            "cells": [{"group": dict(zip(self.group_by, c.group, strict=True)), "count": c.count} for c in self.cells],
            "suppressed_groups": self.suppressed,
        }


def discrete_laplace(epsilon: float, rng: random.Random) -> int:
    """One draw of discrete Laplace noise with scale 1/ε: the difference of two geometric variables."""
    alpha = math.exp(-epsilon)
    log_alpha = math.log(alpha)

    def geometric() -> int:  # failures before the first success, success probability 1 - alpha
        return math.floor(math.log(1.0 - rng.random()) / log_alpha)

    return geometric() - geometric()


def release_counts(
    rows: Iterable[Mapping[str, Any]],
    group_by: Sequence[str],
    k: int = DEFAULT_K,
    epsilon: float | None = None,
    rng: random.Random | None = None,
) -> Release:
    """Count rows per combination of the ``group_by`` columns, suppress cells below ``k``, optionally add
    discrete Laplace noise of scale ``1/epsilon``. ``rng`` (a :class:`random.Random`) makes noise repeatable
    in tests; by default it comes from the OS CSPRNG. Missing values count as the empty string."""
    columns = tuple(group_by)
    if not columns:
        raise StatsError("至少需要一个分组列（--group-by）")
    if len(set(columns)) != len(columns):
        raise StatsError(f"分组列重复：{', '.join(columns)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise StatsError(f"k 必须是正整数（当前为 {k!r}）")
    if epsilon is not None and not (math.isfinite(epsilon) and epsilon > 0):
        raise StatsError(f"epsilon 必须是正数（当前为 {epsilon!r}）")
    counts: Counter[tuple[str, ...]] = Counter()
    checked = False
    for row in rows:
        if not checked:
            missing = [c for c in columns if c not in row]
            if missing:
                raise StatsError(f"数据中没有列：{', '.join(missing)}（现有列：{', '.join(map(str, row))}）")
            checked = True
        counts[tuple("" if row.get(c) is None else str(row.get(c)).strip() for c in columns)] += 1
    noise_rng: random.Random = rng if rng is not None else secrets.SystemRandom()
    cells: list[Cell] = []
    suppressed = 0
    for group in sorted(counts):
        count = counts[group]
        if epsilon is not None:
            count = max(0, count + discrete_laplace(epsilon, noise_rng))
        if count < k:
            suppressed += 1
        else:
            cells.append(Cell(group, count))
    return Release(columns, k, epsilon, cells, suppressed)


def read_csv(path: Path, encoding: str = "utf-8-sig") -> list[dict[str, str]]:
    """The rows of a CSV file with a header line (UTF-8 with or without BOM by default; GBK exports of
    Excel need ``encoding="gb18030"``)."""
    try:
        with path.open(newline="", encoding=encoding) as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                raise StatsError(f"{path} 没有表头行")
            return list(reader)
    except UnicodeDecodeError:
        raise StatsError(f"无法以 {encoding} 编码读取 {path}；如为 Excel 导出的 GBK 文件，请加 --encoding gb18030") from None
    except LookupError:
        raise StatsError(f"未知的文本编码：{encoding}") from None
