"""Statistics release (统计发布): counts per group that identify nobody.

Two protections, usable together:

- **k-threshold suppression (小单元格抑制)**: a group with fewer than ``k`` people (default 10) is not
  shown; only the number of hidden groups is. No total is released, so a hidden cell cannot be recovered
  by subtracting the shown ones from it.
- **Calibrated noise (差分隐私噪声)**: each count gets independent discrete Laplace noise (the two-sided
  geometric mechanism, Pr[X = x] ∝ exp(-ε·|x|)): the integer analogue of Laplace noise of scale 1/ε
  for counts of sensitivity 1 (one person changes one count by at most 1). Noisy counts are clamped at 0,
  and suppression is then decided on the *noisy* count, so the choice of shown groups is itself noisy.

The noise is sampled *exactly* (Canonne, Kamath & Steinke, "The Discrete Gaussian for Differential
Privacy", 2020, algorithms 1–2): only integer arithmetic on ε as a fraction and uniform random integers,
never a floating-point logarithm or exponential, so the released distribution is exactly the one the
privacy guarantee is about (floating-point samplers leak through their rounding, Mironov 2012). ε is taken
as the decimal the user wrote (``0.1`` is exactly 1/10).

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
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_K", "Cell", "Release", "StatsError", "discrete_laplace", "epsilon_fraction", "read_csv", "release_counts",
]

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


def _bernoulli(num: int, den: int, rng: random.Random) -> bool:
    """True with probability exactly ``num/den`` (0 ≤ num ≤ den)."""
    return rng.randrange(den) < num


def _bernoulli_exp_le1(num: int, den: int, rng: random.Random) -> bool:
    """True with probability exactly exp(-num/den), for 0 ≤ num/den ≤ 1 (CKS algorithm 1, first part)."""
    k = 1
    while _bernoulli(num, den * k, rng):
        k += 1
    return k % 2 == 1


def _bernoulli_exp(num: int, den: int, rng: random.Random) -> bool:
    """True with probability exactly exp(-num/den), for num/den ≥ 0 (CKS algorithm 1)."""
    while num > den:
        if not _bernoulli_exp_le1(1, 1, rng):
            return False
        num -= den
    return _bernoulli_exp_le1(num, den, rng)


def epsilon_fraction(epsilon: float | Fraction | int | str) -> Fraction:
    """ε as an exact positive fraction; a float is read as the decimal it prints as (0.1 → 1/10)."""
    try:
        value = Fraction(repr(epsilon)) if isinstance(epsilon, float) else Fraction(epsilon)
    except (ValueError, ZeroDivisionError, TypeError):
        raise StatsError(f"epsilon 必须是正数（当前为 {epsilon!r}）") from None
    if value <= 0:
        raise StatsError(f"epsilon 必须是正数（当前为 {epsilon!r}）")
    return value


def discrete_laplace(epsilon: float | Fraction | int | str, rng: random.Random | None = None) -> int:
    """One exact draw of discrete Laplace noise of scale 1/ε: Pr[X = x] = tanh(ε/2)·exp(-ε·|x|).

    Canonne–Kamath–Steinke algorithm 2 with scale t/s = 1/ε: only integer draws from ``rng``
    (``randrange``), by default the OS CSPRNG (:class:`secrets.SystemRandom`).
    """
    eps = epsilon_fraction(epsilon)
    s, t = eps.numerator, eps.denominator  # scale t/s
    source: random.Random = rng if rng is not None else secrets.SystemRandom()
    while True:
        u = source.randrange(t)
        if not _bernoulli_exp(u, t, source):  # accept u with probability exp(-u/t)
            continue
        v = 0
        while _bernoulli_exp(1, 1, source):  # v ~ Geometric(1 - exp(-1))
            v += 1
        y = (u + t * v) // s  # u + t·v ~ Geometric(1 - exp(-1/t)); y ~ Geometric(1 - exp(-s/t))
        negative = _bernoulli(1, 2, source)
        if negative and y == 0:  # would count zero twice
            continue
        return -y if negative else y


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
    exact_epsilon = epsilon_fraction(epsilon) if epsilon is not None else None
    cells: list[Cell] = []
    suppressed = 0
    for group in sorted(counts):
        count = counts[group]
        if exact_epsilon is not None:
            count = max(0, count + discrete_laplace(exact_epsilon, noise_rng))
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
