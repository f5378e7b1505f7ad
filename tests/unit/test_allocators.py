"""The allocator port (issue 17): FixedFraction and RiskParity, exact to the e8 unit."""

from __future__ import annotations

from njord.core.money import E8
from njord.core.sleeves import FixedFraction, RiskParity, Sleeve, split


def _sleeve(index: int, allocation_e8: int, equities: list[int]) -> Sleeve:
    sleeve = Sleeve(
        id=f"s{index}", index=index, symbols=("BTCUSDT",), allocation_e8=allocation_e8, cash_e8=0
    )
    for day, equity in enumerate(equities):
        sleeve.begin_day(day, equity, keep=30)
    return sleeve


def test_fixed_fraction_shares_are_the_allocations() -> None:
    sleeves = [_sleeve(0, 50_000_000, []), _sleeve(1, 30_000_000, [])]
    assert FixedFraction().shares(sleeves) == [50_000_000, 30_000_000]


def test_risk_parity_weighs_the_calmer_sleeve_more_and_sums_exactly() -> None:
    # The second sleeve's daily returns swing twice as far: half the weight of the first.
    calm = [E8 * 100, E8 * 101, E8 * 100, E8 * 101, E8 * 100]
    wild = [E8 * 100, E8 * 102, E8 * 100, E8 * 102, E8 * 100]
    sleeves = [_sleeve(0, 40_000_000, calm), _sleeve(1, 40_000_000, wild)]
    shares = RiskParity(lookback=20).shares(sleeves)
    assert sum(shares) == 80_000_000
    assert shares[0] > 2 * shares[1] * 0.95
    assert shares[0] > shares[1]


def test_risk_parity_keeps_the_allocations_until_every_sleeve_has_two_returns() -> None:
    sleeves = [_sleeve(0, 50_000_000, [E8, 2 * E8]), _sleeve(1, 30_000_000, [E8, E8, 2 * E8])]
    assert RiskParity(lookback=20).shares(sleeves) == [50_000_000, 30_000_000]
    flat = [_sleeve(0, 50_000_000, [E8] * 5), _sleeve(1, 30_000_000, [E8, 2 * E8, E8, 2 * E8])]
    assert RiskParity(lookback=20).shares(flat) == [50_000_000, 30_000_000]  # no volatility


def test_split_gives_the_units_left_over_to_the_largest_remainders() -> None:
    assert split(10, [1, 1, 1]) == [4, 3, 3]
    assert split(100, [1, 2]) == [33, 67]
    assert sum(split(99_999_999, [0.3, 0.7, 1.1])) == 99_999_999
