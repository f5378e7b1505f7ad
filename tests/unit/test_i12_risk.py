"""Issue 12 item 1: exposure rules never block an order that only shrinks a position."""

from __future__ import annotations

from decimal import Decimal

from njord.adapters.sim_router import SimRouter
from njord.config import RiskConfig, risk_limits
from njord.contract import settle
from njord.core.book import BarE8, Book
from njord.core.execution import CostModel, SymbolRules
from njord.core.money import E8
from njord.core.risk import PreTradeRisk
from njord.reasons import Reason, TradingState
from njord.records import OrderIntent, Side

ENTRY = BarE8(0, 100 * E8, 100 * E8, 100 * E8, 100 * E8)
BAR = BarE8(60_000, 100 * E8, 100 * E8, 100 * E8, 100 * E8)  # the next minute: new order ids


def _long_book(**risk: object) -> tuple[Book, SimRouter]:
    """A book holding 50 units at 100 (notional 5,000), then held to the given limits."""
    book = Book(
        symbol="BTCUSDT",
        initial_cash_e8=10_000 * E8,
        costs=CostModel(commission_bps=Decimal(0), min_notional_e8=10 * E8),
        rules=SymbolRules(),
        risk=PreTradeRisk(risk_limits(RiskConfig(), mode="backtest")),
        allow_short=True,
        order_key="k",
    )
    router = SimRouter(book.costs, book.rules)
    router.on_bar(ENTRY)
    book.decide(ENTRY, [OrderIntent(symbol="BTCUSDT", side=Side.BUY, qty=Decimal(50))])
    settle(book, router)
    assert book.ledger.position_e8("BTCUSDT") == 50 * E8
    book.take_outbox()
    book.risk = PreTradeRisk(risk_limits(RiskConfig(**risk), mode="backtest"))  # type: ignore[arg-type]
    return book, router


def _sell(qty: str) -> OrderIntent:
    return OrderIntent(symbol="BTCUSDT", side=Side.SELL, qty=Decimal(qty))


def test_i12_01_reducing_orders_skip_exposure_rules() -> None:
    # A cap below the position's notional, a loss limit already hit, the state HALTED:
    # none of them may keep the position on. A sell beyond the long (a flip) still adds.
    book, router = _long_book(notional_cap=Decimal(1000))
    book.state = TradingState.HALTED
    book.daily_realised_e8 = -10_000 * E8
    router.on_bar(BAR)
    book.decide(BAR, [_sell("20"), _sell("60"), _sell("30")])
    settle(book, router)
    reasons = [row.verdict.reason for row in book.take_outbox().intents]
    assert reasons == [Reason.OK, Reason.HALTED, Reason.OK]
    assert book.ledger.position_e8("BTCUSDT") == 0


def test_i12_01_strategy_exits_keep_the_order_rate_a_flatten_does_not() -> None:
    book, router = _long_book(notional_cap=Decimal(1000), max_orders_per_minute=2)
    router.on_bar(BAR)
    book.decide(BAR, [_sell("1"), _sell("1"), _sell("1")])
    settle(book, router)
    reasons = [row.verdict.reason for row in book.take_outbox().intents]
    assert reasons == [Reason.OK, Reason.OK, Reason.ORDER_RATE_LIMIT]
    book.control("flatten", BAR, by="operator", reason="test")
    settle(book, router)
    out = book.take_outbox()
    closing = out.intents[-1]
    assert closing.verdict.reason is Reason.OK
    assert closing.verdict.inputs["flatten"] is True
    assert book.ledger.position_e8("BTCUSDT") == 0
    assert book.state is TradingState.HALTED
    assert out.state_changes[-1].reason == "test; flatten: flat"


def test_an_order_adds_exposure_unless_it_only_shrinks_the_position() -> None:
    # What a live restart asks of an order decided before a halt posted while it was down.
    from njord.records import Order, OrderStatus, OrderType

    book, _ = _long_book()

    def order(side: Side, qty: int) -> Order:
        return Order(
            client_order_id="x",
            intent_id=0,
            symbol="BTCUSDT",
            side=side,
            type=OrderType.MARKET,
            qty_e8=qty * E8,
            limit_e8=None,
            status=OrderStatus.NEW,
            created_ms=0,
        )

    assert not book.adds_exposure(order(Side.SELL, 50))  # the whole long
    assert book.adds_exposure(order(Side.SELL, 51))  # a flip
    assert book.adds_exposure(order(Side.BUY, 1))
