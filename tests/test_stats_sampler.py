"""The discrete Laplace sampler of ``yinsi stats --noise laplace`` draws from the exact distribution.

Pr[X = x] = tanh(ε/2)·exp(-ε·|x|). Checked with a chi-square goodness-of-fit test on a seeded generator
(repeatable), with a power check (the same test rejects a neighbouring ε), and, when OpenDP is installed,
with a two-sample test against OpenDP's own discrete Laplace sampler.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from fractions import Fraction

import pytest

from yinsi.protect.stats import StatsError, discrete_laplace, epsilon_fraction

DRAWS = 30_000


def _pmf(epsilon: float, x: int) -> float:
    return math.tanh(epsilon / 2) * math.exp(-epsilon * abs(x))


def _chi2_critical(df: int, z: float) -> float:
    """Upper quantile of the chi-square distribution (Wilson–Hilferty), ``z`` the normal quantile."""
    h = 2 / (9 * df)
    return df * (1 - h + z * math.sqrt(h)) ** 3


def _bins(epsilon: float, n: int) -> int:
    """Largest |x| whose expected count is still at least 5 (the tails beyond are pooled)."""
    b = 0
    while n * _pmf(epsilon, b + 1) >= 5:
        b += 1
    return b


def _goodness_of_fit(draws: list[int], epsilon: float) -> tuple[float, int]:
    """(chi-square statistic, degrees of freedom) of ``draws`` against the exact pmf for ``epsilon``."""
    n = len(draws)
    b = _bins(epsilon, n)
    counts = Counter(max(-b - 1, min(b + 1, d)) for d in draws)
    tail = math.exp(-epsilon * (b + 1)) / (1 + math.exp(-epsilon))  # Pr[X ≥ b+1] = Pr[X ≤ -b-1]
    stat = 0.0
    for x in range(-b - 1, b + 2):
        p = tail if abs(x) == b + 1 else _pmf(epsilon, x)
        stat += (counts[x] - n * p) ** 2 / (n * p)
    return stat, 2 * b + 2


class _IntegersOnly(random.Random):
    """A seeded generator that fails the test if the sampler asks it for a float."""

    def random(self) -> float:  # pragma: no cover - called only by a float sampler
        raise AssertionError("the sampler drew a float")

    def getrandbits(self, k: int) -> int:  # integers keep coming from the seeded Mersenne Twister
        return super().getrandbits(k)


@pytest.mark.parametrize("epsilon", [0.1, 0.5, 1.0, 2.0, 3.7])
def test_draws_fit_the_exact_distribution(epsilon: float) -> None:
    rng = _IntegersOnly(20261203)
    draws = [discrete_laplace(epsilon, rng) for _ in range(DRAWS)]
    stat, df = _goodness_of_fit(draws, epsilon)
    assert stat < _chi2_critical(df, 3.09), (stat, df)  # α = 0.001


@pytest.mark.parametrize("epsilon", [0.5, 1.0])
def test_the_fit_test_tells_a_neighbouring_epsilon_apart(epsilon: float) -> None:
    """The test above has power: the same draws do not fit ε·1.15."""
    rng = random.Random(7)
    draws = [discrete_laplace(epsilon, rng) for _ in range(DRAWS)]
    stat, df = _goodness_of_fit(draws, epsilon * 1.15)
    assert stat > _chi2_critical(df, 3.09)


def test_epsilon_is_read_as_the_decimal_written() -> None:
    assert epsilon_fraction(0.1) == Fraction(1, 10)
    assert epsilon_fraction("0.25") == Fraction(1, 4)
    assert epsilon_fraction(Fraction(2, 3)) == Fraction(2, 3)
    for bad in (0, -1.0, "abc", float("nan"), math.inf):
        with pytest.raises(StatsError):
            epsilon_fraction(bad)


def test_default_randomness_is_the_os_csprng() -> None:
    draws = {discrete_laplace(0.5) for _ in range(200)}
    assert len(draws) > 3 and all(isinstance(d, int) for d in draws)


@pytest.mark.parametrize("epsilon", [0.5, 1.0])
def test_same_distribution_as_opendp(epsilon: float) -> None:
    """Two-sample chi-square test of homogeneity against OpenDP's discrete Laplace (dev dependency)."""
    dp = pytest.importorskip("opendp.prelude")
    dp.enable_features("contrib")
    measurement = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int),
                                    scale=1 / epsilon)
    theirs = list(measurement([0] * DRAWS))
    rng = random.Random(99)
    ours = [discrete_laplace(epsilon, rng) for _ in range(DRAWS)]
    b = _bins(epsilon, DRAWS)
    a = Counter(max(-b - 1, min(b + 1, d)) for d in ours)
    o = Counter(max(-b - 1, min(b + 1, d)) for d in theirs)
    stat = 0.0
    for x in range(-b - 1, b + 2):
        total = a[x] + o[x]
        if total:
            expected = total / 2  # equal sample sizes
            stat += (a[x] - expected) ** 2 / expected + (o[x] - expected) ** 2 / expected
    # OpenDP's draws are not seeded: a strict level keeps a false alarm below one in a million runs.
    assert stat < _chi2_critical(2 * b + 2, 4.75), stat
