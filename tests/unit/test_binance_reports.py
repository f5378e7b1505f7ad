"""Binance payloads to venue reports (njord/adapters/binance_reports.py), exactly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from njord.adapters.binance_reports import fee_fields, reports, venue_text
from njord.core.filters import exact_e8
from njord.core.money import E8
from njord.core.reports import Ack, Execution, Expired


def _no_price(asset: str) -> int:
    raise AssertionError(f"{asset} should not need a price")


@given(st.integers(min_value=1, max_value=10**18))
def test_venue_text_is_plain_and_exact(value_e8: int) -> None:
    text = venue_text(value_e8)
    assert "e" not in text.lower()
    assert not text.endswith("0") or "." not in text
    assert exact_e8(text) == value_e8


def test_venue_text_examples() -> None:
    assert [venue_text(v) for v in (E8, 10 * E8, 150_000_000, 1000, 1)] == [
        "1",
        "10",
        "1.5",
        "0.00001",
        "0.00000001",
    ]


def test_commission_goes_where_it_was_taken() -> None:
    kw = {"base": "BTC", "quote": "USDT"}
    assert fee_fields("0.04200000", "USDT", price_of=_no_price, **kw) == {
        "fee_e8": 4_200_000,
        "fee_asset": "USDT",
        "commission_e8": 4_200_000,
    }
    assert fee_fields("0.00000100", "BTC", price_of=_no_price, **kw) == {
        "fee_e8": 0,
        "fee_qty_e8": 100,
        "fee_asset": "BTC",
        "commission_e8": 100,
    }
    # BNB: its value in the quote asset at BNBUSDT's last price (600.5), half-even to e8
    priced = fee_fields("0.00007", "BNB", price_of=lambda a: 60_050_000_000, **kw)
    assert priced == {"fee_e8": 4_203_500, "fee_asset": "BNB", "commission_e8": 7_000}


def test_a_full_answer_is_an_ack_each_fill_and_the_end() -> None:
    body = {
        "orderId": 12,
        "transactTime": 1000,
        "status": "EXPIRED",  # a MARKET order the book could not fill entirely
        "fills": [],
    }
    fills = [
        {
            "price": "42000.01",
            "qty": "0.001",
            "commission": "0.000001",
            "commissionAsset": "BTC",
            "tradeId": 7,
        },
        {
            "price": "42000.02",
            "qty": "0.0005",
            "commission": "0",
            "commissionAsset": "BTC",
            "tradeId": 8,
        },
    ]
    out = reports("c1", body, fills, base="BTC", quote="USDT", price_of=_no_price)
    assert out == [
        Ack(client_order_id="c1", ts_ms=1000, venue_order_id="12"),
        Execution(
            client_order_id="c1",
            ts_ms=1000,
            qty_e8=100_000,
            price_e8=4_200_001_000_000,
            fee_e8=0,
            fee_qty_e8=100,
            fee_asset="BTC",
            trade_id="7",
            commission_e8=100,
        ),
        Execution(
            client_order_id="c1",
            ts_ms=1000,
            qty_e8=50_000,
            price_e8=4_200_002_000_000,
            fee_e8=0,
            fee_asset="BTC",
            trade_id="8",
        ),
        Expired(client_order_id="c1", ts_ms=1000),
    ]
