"""The statistics of impact: how much a group's gains moved, and how sure we can be.

The rules it keeps:
- A group's change is an `Estimate`: how many people (`n`), their mean gain with a Student's t
  interval of the mean, the share who improved (gain > 0) and the share who got worse
  (gain < 0), each with a Wilson score interval. All intervals are two-sided at `confidence`
  (95% unless asked otherwise).
- Disclosure: a group of fewer than `min_group` people (`MIN_GROUP`, 10, unless asked
  otherwise) is suppressed: its `n` is kept, so a report can say "fewer than 10", but every
  statistic is None, so nothing about so few people can be read off it.
- Complementary suppression: where groups are shown beside their total (initiatives beside
  everyone), a withheld group could be worked out by subtracting the shown ones from the
  total. `complementary_withheld` withholds the smallest shown groups as well until the
  withheld ones hold at least `min_group` people between them (or none at all).
- When every gain in a group is the same (no spread) the mean's interval is (mean, mean).
- `GainTally` streams: per key (a group such as ("heading", "GS", "skill") or
  ("initiative", "Device loans", "overall")) it keeps a count, a running mean and sum of
  squared deviations (Welford's algorithm, stable however many gains) and the improved and
  worse counts. Its memory grows with the number of keys, never with the number of people,
  and it gives the same estimates as `estimate` on the same gains.

Pure Python (`math` only: the `statistics` module imports `random`, which the core may not).
Quantiles are found by bisection on exact distribution functions (the normal's via
`math.erfc`, Student's t via the regularized incomplete beta function), to about 1e-12.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

MIN_GROUP = 10
"""Groups with fewer people than this are suppressed in every report and export."""
CONFIDENCE = 0.95

GainKey = str | tuple[str, ...]
K = TypeVar("K")
"""What a tally groups gains by, e.g. ("heading", "GS", "skill")."""

_BISECTIONS = 200
"""Far more halvings than a double has bits: bisection stops early once the bracket stops
shrinking."""
_BETA_TERMS = 100_000
_BETA_EPSILON = 1e-16


@dataclass(frozen=True)
class Estimate:
    """One group's change. When `suppressed` (fewer than `min_group` people) every statistic
    is None and only `n` is known."""

    n: int
    mean: float | None
    ci_low: float | None
    """The t interval of the mean gain."""
    ci_high: float | None
    improved: float | None
    """The share of people whose gain is above 0."""
    improved_ci: tuple[float, float] | None
    """Wilson score interval of `improved`."""
    worse: float | None
    """The share of people whose gain is below 0."""
    worse_ci: tuple[float, float] | None
    suppressed: bool


def withheld(found: Estimate) -> Estimate:
    """`found` with every statistic withheld and its `n` kept."""
    return Estimate(found.n, None, None, None, None, None, None, None, True)


def complementary_withheld(sizes: Mapping[K, int], min_group: int = MIN_GROUP) -> frozenset[K]:
    """The groups to withhold among groups shown beside their total: those under
    `min_group`, and then the smallest others until the withheld ones hold at least
    `min_group` people together (so none can be worked out from the total), ties broken by
    the order given."""
    hidden = [group for group, size in sizes.items() if size < min_group]
    together = sum(sizes[group] for group in hidden)
    shown = sorted((g for g in sizes if g not in hidden), key=lambda g: sizes[g])
    while 0 < together < min_group and shown:
        group = shown.pop(0)
        hidden.append(group)
        together += sizes[group]
    return frozenset(hidden)


def estimate(
    gains: Sequence[float], min_group: int = MIN_GROUP, confidence: float = CONFIDENCE
) -> Estimate:
    """The estimate for one group's gains (one per person)."""
    running = _Running()
    for gain in gains:
        running.add(gain)
    return running.estimate(min_group, confidence)


@dataclass(frozen=True)
class Moments:
    """The sufficient statistics of one group's gains: what `pool` combines exactly."""

    n: int
    mean: float
    """0.0 when `n` is 0."""
    m2: float
    """The sum of squared deviations from the mean."""
    improved: int
    """How many gains are above 0."""
    worse: int
    """How many gains are below 0."""

    def estimate(self, min_group: int = MIN_GROUP, confidence: float = CONFIDENCE) -> Estimate:
        """The same estimate as `estimate` on the gains these moments summarise."""
        return _Running.of(self).estimate(min_group, confidence)


NO_GAINS = Moments(n=0, mean=0.0, m2=0.0, improved=0, worse=0)


def pool(*groups: Moments) -> Moments:
    """The moments of all these groups' gains together."""
    running = _Running()
    for group in groups:
        running.merge(_Running.of(group))
    return running.moments()


class GainTally:
    """Gains streamed in one at a time, grouped by key; memory is per key, not per person."""

    def __init__(self) -> None:
        self._groups: dict[GainKey, _Running] = {}

    def add(self, key: GainKey, gain: float) -> None:
        running = self._groups.get(key)
        if running is None:
            running = self._groups[key] = _Running()
        running.add(gain)

    def merge(self, other: GainTally) -> None:
        """Fold `other`'s gains into this tally (as if they had been added here); `other` is
        left as it was."""
        for key, theirs in other._groups.items():
            mine = self._groups.get(key)
            if mine is None:
                mine = self._groups[key] = _Running()
            mine.merge(theirs)

    def count(self, key: GainKey) -> int:
        """How many gains were added under `key` (0 for a key never seen)."""
        running = self._groups.get(key)
        return running.count if running is not None else 0

    def moments(self, key: GainKey) -> Moments:
        """The sufficient statistics of the gains added under `key` (`NO_GAINS` for a key
        never seen)."""
        running = self._groups.get(key)
        return running.moments() if running is not None else NO_GAINS

    def keys(self) -> Iterator[GainKey]:
        """Every key, in the order it was first added."""
        return iter(self._groups)

    def __len__(self) -> int:
        return len(self._groups)

    def estimates(
        self, min_group: int = MIN_GROUP, confidence: float = CONFIDENCE
    ) -> dict[GainKey, Estimate]:
        """Key -> its estimate, keys in the order they were first added."""
        return {
            key: running.estimate(min_group, confidence) for key, running in self._groups.items()
        }


class _Running:
    """Welford's running mean and sum of squared deviations, with the sign counts."""

    __slots__ = ("count", "improved", "mean", "squares", "worse")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.squares = 0.0
        """The sum of squared deviations from the mean."""
        self.improved = 0
        self.worse = 0

    @classmethod
    def of(cls, moments: Moments) -> _Running:
        if (
            moments.n < 0
            or moments.m2 < 0
            or not 0 <= moments.improved + moments.worse <= moments.n
        ):
            raise ValueError(f"not the moments of any gains: {moments}")
        if not (math.isfinite(moments.mean) and math.isfinite(moments.m2)):
            raise ValueError(f"moments must be finite numbers: {moments}")
        running = cls()
        running.count = moments.n
        running.mean = moments.mean if moments.n else 0.0
        running.squares = moments.m2 if moments.n else 0.0
        running.improved = moments.improved
        running.worse = moments.worse
        return running

    def moments(self) -> Moments:
        return Moments(self.count, self.mean, self.squares, self.improved, self.worse)

    def add(self, gain: float) -> None:
        if not math.isfinite(gain):
            raise ValueError(f"a gain must be a finite number, not {gain!r}")
        self.count += 1
        delta = gain - self.mean
        self.mean += delta / self.count
        self.squares += delta * (gain - self.mean)
        self.improved += gain > 0
        self.worse += gain < 0

    def merge(self, other: _Running) -> None:
        """Chan et al.'s pairwise combination of two running summaries."""
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.squares = other.count, other.mean, other.squares
            self.improved, self.worse = other.improved, other.worse
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / total
        self.squares += other.squares + delta * delta * self.count * other.count / total
        self.count = total
        self.improved += other.improved
        self.worse += other.worse

    def estimate(self, min_group: int, confidence: float) -> Estimate:
        if min_group < 2:
            raise ValueError(f"min_group must be at least 2 (a spread needs two), not {min_group}")
        _check_confidence(confidence)
        n = self.count
        if n < min_group:
            return Estimate(n, None, None, None, None, None, None, None, suppressed=True)
        half_width = 0.0
        if self.squares > 0:
            sd = math.sqrt(self.squares / (n - 1))
            half_width = t_quantile(1 - (1 - confidence) / 2, n - 1) * sd / math.sqrt(n)
        return Estimate(
            n=n,
            mean=self.mean,
            ci_low=self.mean - half_width,
            ci_high=self.mean + half_width,
            improved=self.improved / n,
            improved_ci=wilson_interval(self.improved, n, confidence),
            worse=self.worse / n,
            worse_ci=wilson_interval(self.worse, n, confidence),
            suppressed=False,
        )


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval for a share `successes / n`, within 0..1."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, not {successes} of {n}")
    _check_confidence(confidence)
    z = normal_quantile(1 - (1 - confidence) / 2)
    share = successes / n
    z2_n = z * z / n
    centre = (share + z2_n / 2) / (1 + z2_n)
    half_width = z / (1 + z2_n) * math.sqrt(share * (1 - share) / n + z2_n / (4 * n))
    # At 0 or n successes one end is exactly 0 or 1; say so rather than 1e-17 off it.
    low = 0.0 if successes == 0 else max(0.0, centre - half_width)
    high = 1.0 if successes == n else min(1.0, centre + half_width)
    return low, high


@lru_cache(maxsize=256)
def normal_quantile(probability: float) -> float:
    """The standard normal quantile: x with P(Z <= x) = probability, 0 < probability < 1."""
    _check_probability(probability)
    if probability == 0.5:
        return 0.0
    if probability < 0.5:
        return -normal_quantile(1 - probability)
    tail = 1 - probability
    return _decreasing_root(lambda x: 0.5 * math.erfc(x / math.sqrt(2)), tail)


@lru_cache(maxsize=256)
def t_quantile(probability: float, df: int) -> float:
    """Student's t quantile with `df` degrees of freedom: t with P(T <= t) = probability."""
    _check_probability(probability)
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, not {df}")
    if probability == 0.5:
        return 0.0
    if probability < 0.5:
        return -t_quantile(1 - probability, df)
    # Solved on the upper tail, not the distribution function, to keep precision far out.
    return _decreasing_root(lambda t: t_upper_tail(t, df), 1 - probability)


def t_upper_tail(t: float, df: float) -> float:
    """P(T > t) for t >= 0: half the regularized incomplete beta I_x(df/2, 1/2),
    x = df / (df + t²)."""
    return 0.5 * regularized_beta(df / (df + t * t), df / 2, 0.5)


def regularized_beta(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction
    (modified Lentz), using the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) where it converges
    faster."""
    if not 0 <= x <= 1:
        raise ValueError(f"x must be within 0..1, not {x}")
    if x == 0 or x == 1:
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1 - math.exp(log_front) * _beta_fraction(1 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny = 1e-300
    c = 1.0
    d = 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, _BETA_TERMS):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1) < _BETA_EPSILON:
            return fraction
    raise ArithmeticError(f"incomplete beta did not converge for x={x}, a={a}, b={b}")


def _decreasing_root(function: Callable[[float], float], target: float) -> float:
    """The x >= 0 where a function falling from 0.5 at 0 towards 0 equals `target`."""
    low, high = 0.0, 1.0
    while function(high) > target:
        low, high = high, high * 2
    for _ in range(_BISECTIONS):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if function(middle) > target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _check_probability(probability: float) -> None:
    if not 0 < probability < 1:
        raise ValueError(f"a probability must be strictly between 0 and 1, not {probability}")


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, not {confidence}")
