from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from njord.core.ledger import Ledger, net_of_base_fee
from njord.core.money import E8, mul_e8
from njord.records import Fill, Side


def fill(n: int, side: Side, qty: str, price: str, fee: str = "0") -> Fill:
    q, p = int(float(qty) * E8), int(float(price) * E8)
    return Fill(
        fill_id=n,
        client_order_id=f"c{n}",
        ts_ms=n * 60_000,
        symbol="X",
        side=side,
        qty_e8=q,
        price_e8=p,
        notional_e8=mul_e8(q, p),
        fee_e8=int(float(fee) * E8),
    )


def test_fifo_multi_lot_partial_close_and_reversal_to_the_cent() -> None:
    ledger = Ledger(10_000 * E8)
    ledger.apply(fill(1, Side.BUY, "1", "100", "0.10"))  # lot A: 1 @ 100
    ledger.apply(fill(2, Side.BUY, "2", "110", "0.22"))  # lot B: 2 @ 110
    realised, trades = ledger.apply(fill(3, Side.SELL, "1.5", "120", "0.18"))
    # FIFO: all of A (1 x (120-100) = 20) then 0.5 of B (0.5 x (120-110) = 5)
    assert realised == 25 * E8
    assert [t.pnl_e8 for t in trades] == [20 * E8, 5 * E8]
    assert ledger.position_e8("X") == int(1.5 * E8)
    # Reversal: sell 2.5 closes the remaining 1.5 of B at 105 (-7.5) and opens 1 short
    realised, trades = ledger.apply(fill(4, Side.SELL, "2.5", "105", "0.2625"))
    assert realised == -int(7.5 * E8)
    assert ledger.position_e8("X") == -E8
    assert ledger.cost_e8("X") == -105 * E8
    # Cover the short at 100: +5
    realised, _ = ledger.apply(fill(5, Side.BUY, "1", "100", "0.10"))
    assert realised == 5 * E8
    assert ledger.realised_e8 == int(22.5 * E8)
    assert ledger.fees_e8 == int(0.8625 * E8)
    # cash = 10000 - 100 - 220 + 180 + 262.5 - 100 - fees
    assert ledger.cash_e8 == int((10_000 - 100 - 220 + 180 + 262.5 - 100 - 0.8625) * E8)


@given(
    st.lists(
        st.tuples(
            st.booleans(), st.integers(1, 5 * E8), st.integers(E8, 200 * E8), st.integers(0, 10**6)
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(E8, 200 * E8),
)
def test_equity_reconciles_exactly(steps: list[tuple[bool, int, int, int]], mark: int) -> None:
    ledger = Ledger(10**6 * E8)
    for n, (buy, qty, price, fee) in enumerate(steps, start=1):
        ledger.apply(
            Fill(
                fill_id=n,
                client_order_id="c",
                ts_ms=n,
                symbol="X",
                side=Side.BUY if buy else Side.SELL,
                qty_e8=qty,
                price_e8=price,
                notional_e8=mul_e8(qty, price),
                fee_e8=fee,
            )
        )
    marks = {"X": mark}
    equity = ledger.equity_e8(marks)
    expected = 10**6 * E8 + ledger.realised_e8 + ledger.unrealised_e8(marks) - ledger.fees_e8
    assert equity == expected


@given(
    qty=st.integers(1, 10**10),
    price=st.integers(1, 10**13),
    bps=st.integers(0, 100),
)
def test_a_fee_in_the_base_asset_is_booked_exactly_at_the_fill_price(
    qty: int, price: int, bps: int
) -> None:
    fee_qty = qty * bps // 10_000
    received, notional, fee = net_of_base_fee(qty, price, fee_qty)
    assert received == qty - fee_qty
    assert notional + fee == mul_e8(qty, price), "to the unit, what the buy paid"
    ledger = Ledger(10**20)
    ledger.apply(
        Fill(
            fill_id=1,
            client_order_id="c1",
            ts_ms=0,
            symbol="X",
            side=Side.BUY,
            qty_e8=received,
            price_e8=price,
            notional_e8=notional,
            fee_e8=fee,
        )
    )
    assert ledger.cash_e8 == 10**20 - mul_e8(qty, price)
    assert ledger.position_e8("X") == qty - fee_qty
    assert ledger.fees_e8 == fee
