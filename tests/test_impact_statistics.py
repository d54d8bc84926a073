"""The statistics of impact: t quantiles, Wilson intervals, suppressed small groups, and the
streaming tally agreeing with the batch estimate. Expected values are from published tables
or worked by hand (shown in the comments)."""

from __future__ import annotations

import math
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.impact import (
    MIN_GROUP,
    Estimate,
    GainTally,
    complementary_withheld,
    estimate,
    t_quantile,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("probability", "df", "expected"),
    [
        (0.975, 9, 2.262157),
        (0.975, 1, 12.706205),
        (0.975, 30, 2.042272),
        (0.975, 1000, 1.962339),
        (0.995, 2, 9.924843),
        (0.95, 5, 2.015048),
        (0.9, 20, 1.325341),
        (0.025, 9, -2.262157),
    ],
)
def test_t_quantiles_match_the_tables(probability: float, df: int, expected: float) -> None:
    assert t_quantile(probability, df) == pytest.approx(expected, abs=1e-6)


def test_t_quantile_is_zero_at_the_median_and_tends_to_the_normal() -> None:
    assert t_quantile(0.5, 7) == 0
    # The normal's 97.5% point is 1.959964; with 10 million degrees of freedom t is within 1e-6.
    assert t_quantile(0.975, 10_000_000) == pytest.approx(1.959964, abs=1e-6)


@pytest.mark.parametrize(("probability", "df"), [(0, 5), (1, 5), (1.2, 5), (0.975, 0)])
def test_t_quantile_refuses_impossible_arguments(probability: float, df: int) -> None:
    with pytest.raises(ValueError, match=r"probability|degrees"):
        t_quantile(probability, df)


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # 8 of 10, z = 1.959964: centre (0.8 + 0.192073) / 1.384146 = 0.716746,
        # half width 1.416010 * sqrt(0.016 + 0.009604) = 0.226577.
        (8, 10, 0.4902, 0.9433),
        (5, 10, 0.2366, 0.7634),
        (2, 10, 0.0567, 0.5098),
        # None of 10: the upper end is z² / (n + z²) = 3.841459 / 13.841459.
        (0, 10, 0.0, 0.2775),
        # All of 12: the lower end is n / (n + z²) = 12 / 15.841459.
        (12, 12, 0.7575, 1.0),
    ],
)
def test_wilson_intervals_match_hand_checks(
    successes: int, n: int, low: float, high: float
) -> None:
    found = wilson_interval(successes, n)

    assert found == pytest.approx((low, high), abs=1e-4)


def test_wilson_interval_ends_are_exact_at_none_and_all() -> None:
    assert wilson_interval(0, 25)[0] == 0.0
    assert wilson_interval(25, 25)[1] == 1.0


def test_a_wider_confidence_gives_a_wider_wilson_interval() -> None:
    # 90%: z = 1.644854, so 8 of 10 gives (0.5408, 0.9314).
    assert wilson_interval(8, 10, confidence=0.90) == pytest.approx((0.5408, 0.9314), abs=1e-4)


@pytest.mark.parametrize(("successes", "n"), [(3, 0), (-1, 10), (11, 10)])
def test_wilson_interval_refuses_impossible_counts(successes: int, n: int) -> None:
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(successes, n)


def test_an_estimate_of_ten_gains_worked_by_hand() -> None:
    gains = [1, 1, 1, 1, 1, 0, 0, 0, -1, -1]

    found = estimate(gains)

    # Mean 3 / 10 = 0.3. Squared deviations: 5 x 0.49 + 3 x 0.09 + 2 x 1.69 = 6.1, so
    # sd = sqrt(6.1 / 9) = 0.823273, standard error 0.823273 / sqrt(10) = 0.260342, and the
    # half width 2.262157 x 0.260342 = 0.588933.
    assert found.n == 10
    assert not found.suppressed
    assert found.mean == pytest.approx(0.3)
    assert found.ci_low == pytest.approx(-0.288933, abs=1e-6)
    assert found.ci_high == pytest.approx(0.888933, abs=1e-6)
    assert found.improved == pytest.approx(0.5)
    assert found.improved_ci == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert found.worse == pytest.approx(0.2)
    assert found.worse_ci == pytest.approx((0.0567, 0.5098), abs=1e-4)


def test_fewer_than_ten_people_are_suppressed_but_counted() -> None:
    found = estimate([2, 1, 0, 3, 1, 1, 2, 4, -1])

    assert MIN_GROUP == 10
    assert found == Estimate(
        n=9,
        mean=None,
        ci_low=None,
        ci_high=None,
        improved=None,
        improved_ci=None,
        worse=None,
        worse_ci=None,
        suppressed=True,
    )
    assert estimate([]).n == 0
    assert estimate([]).suppressed


def test_the_smallest_group_can_be_raised_or_lowered() -> None:
    gains = [2, 1, 0, 3, 1, 1, 2, 4, -1]

    assert not estimate(gains, min_group=5).suppressed
    assert estimate(gains, min_group=5).mean == pytest.approx(13 / 9)
    assert estimate([1.0] * 12, min_group=20).suppressed
    with pytest.raises(ValueError, match="min_group"):
        estimate(gains, min_group=1)


def test_identical_gains_have_no_spread_so_the_interval_is_the_mean() -> None:
    found = estimate([2] * 12)

    assert (found.mean, found.ci_low, found.ci_high) == (2, 2, 2)
    assert (found.improved, found.worse) == (1, 0)
    assert found.improved_ci == pytest.approx((0.7575, 1.0), abs=1e-4)
    assert found.worse_ci == pytest.approx((0.0, 0.2425), abs=1e-4)


def test_a_wider_confidence_widens_the_mean_interval() -> None:
    gains = [1, 1, 1, 1, 1, 0, 0, 0, -1, -1]

    # 99%: t(0.995, 9) = 3.249836, half width 3.249836 x 0.260342 = 0.846068.
    found = estimate(gains, confidence=0.99)

    assert (found.ci_low, found.ci_high) == pytest.approx((-0.546068, 1.146068), abs=1e-6)


def test_a_gain_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        estimate([1.0, math.nan])


def test_the_tally_groups_gains_by_key_in_the_order_first_seen() -> None:
    tally = GainTally()
    for person in range(12):
        tally.add(("initiative", "Device loans", "overall"), 1.0 if person < 9 else 0.0)
        if person < 4:
            tally.add(("heading", "GS", "skill"), 2.0)
    tally.add("overall", -1.0)

    found = tally.estimates()

    assert list(found) == [
        ("initiative", "Device loans", "overall"),
        ("heading", "GS", "skill"),
        "overall",
    ]
    loans = found[("initiative", "Device loans", "overall")]
    assert (loans.n, loans.improved, loans.worse) == (12, 0.75, 0)
    assert loans.mean == pytest.approx(0.75)
    assert found[("heading", "GS", "skill")].suppressed
    assert found[("heading", "GS", "skill")].n == 4
    assert tally.count(("heading", "GS", "skill")) == 4
    assert tally.count("nobody") == 0
    assert len(tally) == 3


def test_merging_tallies_is_the_same_as_one_tally_of_everything() -> None:
    first, second = GainTally(), GainTally()
    for gain in [1, 1, 1, 1, 1, 0]:
        first.add("overall", gain)
    for gain in [0, 0, -1, -1]:
        second.add("overall", gain)
    second.add("only in the second", 3)

    first.merge(second)

    merged = first.estimates()["overall"]
    assert merged.n == 10
    assert merged.mean == pytest.approx(0.3)
    assert (merged.ci_low, merged.ci_high) == pytest.approx((-0.288933, 0.888933), abs=1e-6)
    assert (merged.improved, merged.worse) == (0.5, 0.2)
    assert first.count("only in the second") == 1
    assert second.count("overall") == 4


def test_the_tallys_memory_does_not_grow_with_the_number_of_people() -> None:
    tally = GainTally()
    keys = [("heading", heading, "skill") for heading in ("GS", "CM", "HI")]
    tracemalloc.start()
    try:
        for person in range(1_000):
            for key in keys:
                tally.add(key, person % 5 - 2)
        after_a_thousand, _ = tracemalloc.get_traced_memory()
        for person in range(30_000):
            for key in keys:
                tally.add(key, person % 5 - 2)
        after_thirty_thousand, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert after_thirty_thousand - after_a_thousand < 4_096
    assert tally.count(keys[0]) == 31_000
    assert tally.estimates()[keys[0]].mean == pytest.approx(0.0, abs=1e-9)


GAINS = st.one_of(
    st.integers(min_value=-4, max_value=4).map(float),
    st.fractions(min_value=-4, max_value=4, max_denominator=8).map(float),
)
KEYS = st.sampled_from(["overall", ("heading", "GS", "skill"), ("initiative", "Loans", "GS")])


@given(st.lists(st.tuples(KEYS, GAINS), max_size=80), st.integers(min_value=2, max_value=12))
def test_the_tally_gives_what_estimate_gives_on_the_same_gains(
    pairs: list[tuple[str | tuple[str, ...], float]], min_group: int
) -> None:
    tally = GainTally()
    by_key: dict[str | tuple[str, ...], list[float]] = {}
    for key, gain in pairs:
        tally.add(key, gain)
        by_key.setdefault(key, []).append(gain)

    assert tally.estimates(min_group) == {
        key: estimate(gains, min_group) for key, gains in by_key.items()
    }


@given(st.lists(GAINS, min_size=2, max_size=60), st.data())
def test_merged_halves_estimate_what_the_whole_estimates(
    gains: list[float], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(gains)))
    first, second = GainTally(), GainTally()
    for gain in gains[:cut]:
        first.add("overall", gain)
    for gain in gains[cut:]:
        second.add("overall", gain)

    first.merge(second)

    merged, whole = first.estimates(min_group=2)["overall"], estimate(gains, min_group=2)
    assert merged.n == whole.n
    assert (merged.improved, merged.worse) == (whole.improved, whole.worse)
    assert (merged.mean, merged.ci_low, merged.ci_high) == pytest.approx(
        (whole.mean, whole.ci_low, whole.ci_high), abs=1e-9
    )


@given(st.lists(GAINS, min_size=MIN_GROUP, max_size=60))
def test_the_intervals_hold_their_estimates(gains: list[float]) -> None:
    found = estimate(gains)

    assert found.mean is not None
    assert found.ci_low is not None
    assert found.ci_high is not None
    assert found.ci_low <= found.mean <= found.ci_high
    for share, interval in ((found.improved, found.improved_ci), (found.worse, found.worse_ci)):
        assert share is not None
        assert interval is not None
        assert 0 <= interval[0] <= share <= interval[1] <= 1


@pytest.mark.parametrize(
    ("sizes", "hidden"),
    [
        ({"A": 9, "B": 12, "C": 15}, {"A", "B"}),  # B next smallest: 9 alone is too few
        ({"A": 9, "B": 3, "C": 20}, {"A", "B"}),  # 9 + 3 withheld together: enough
        ({"A": 12, "B": 15}, set()),
        ({"A": 0, "B": 40}, {"A"}),  # nobody to give away
        ({"A": 5}, {"A"}),
        ({"A": 4, "B": 11, "C": 11}, {"A", "B"}),  # a tie goes to the first given
    ],
)
def test_complementary_withholding(sizes: dict[str, int], hidden: set[str]) -> None:
    assert complementary_withheld(sizes, min_group=10) == hidden
