"""Exact money: prices, quantities and cash are integers scaled by 1e8 (`_e8`)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

E8: Final = 100_000_000
_D_E8: Final = Decimal(E8)


def to_e8(value: Decimal | int | str) -> int:
    scaled = Decimal(value) * _D_E8
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))


def float_to_e8(value: float) -> int:
    # Exact for prices with <= 8 decimals below ~9e7: float64 holds 15-16 digits.
    return round(value * E8)


def mul_e8(a_e8: int, b_e8: int) -> int:
    """(a * b) in e8, rounded half-even, so marks and notionals never drift."""
    q, r = divmod(a_e8 * b_e8, E8)
    twice = 2 * r
    if twice > E8 or (twice == E8 and q % 2):
        q += 1
    return q


def bps_of(amount_e8: int, bps: Decimal) -> int:
    return int((Decimal(amount_e8) * bps / 10_000).to_integral_value(rounding=ROUND_HALF_EVEN))


def fmt_e8(value: int) -> str:
    """Fixed 8-decimal text: the one number format of every export."""
    sign = "-" if value < 0 else ""
    q, r = divmod(abs(value), E8)
    return f"{sign}{q}.{r:08d}"


def e8_to_decimal(value: int) -> Decimal:
    return Decimal(value) / _D_E8
