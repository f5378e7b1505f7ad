from __future__ import annotations

from decimal import Decimal

import pytest

from njord.config import RiskConfig, risk_limits
from njord.core.money import E8
from njord.core.risk import PreTradeRisk, RiskInputs
from njord.reasons import Reason, TradingState

CFG = RiskConfig(
    allowed_symbols=["BTCUSDT"],
    notional_cap=Decimal(1000),
    max_open_positions=1,
    daily_loss_limit=Decimal(100),
    max_orders_per_minute=2,
)


def inputs(**over: object) -> RiskInputs:
    base: dict[str, object] = dict(
        state=TradingState.ACTIVE,
        symbol="BTCUSDT",
        notional_e8=500 * E8,
        reduces=False,
        opens_position=True,
        open_positions=0,
        daily_realised_e8=0,
        orders_last_minute=0,
    )
    base.update(over)
    return RiskInputs(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"state": TradingState.HALTED}, Reason.HALTED),
        ({"state": TradingState.REDUCING}, Reason.REDUCE_ONLY),
        ({"symbol": "ETHUSDT"}, Reason.SYMBOL_NOT_ALLOWED),
        ({"notional_e8": 1001 * E8}, Reason.NOTIONAL_CAP),
        ({"open_positions": 1}, Reason.MAX_OPEN_POSITIONS),
        ({"daily_realised_e8": -100 * E8}, Reason.DAILY_LOSS_LIMIT),
        ({"orders_last_minute": 2}, Reason.ORDER_RATE_LIMIT),
    ],
)
def test_each_rule_blocks_its_breach_and_passes_otherwise(
    over: dict[str, object], reason: Reason
) -> None:
    engine = PreTradeRisk(risk_limits(CFG, mode="backtest"))
    verdict = engine.check(inputs(**over))
    assert verdict.reason is reason
    assert verdict.inputs["symbol"] == inputs(**over).symbol
    assert engine.check(inputs()).reason is Reason.OK


def test_first_failure_wins_in_documented_order() -> None:
    engine = PreTradeRisk(risk_limits(CFG, mode="backtest"))
    both = inputs(symbol="ETHUSDT", notional_e8=5000 * E8)
    assert engine.check(both).reason is Reason.SYMBOL_NOT_ALLOWED


def test_reducing_orders_pass_in_reducing_state_and_loss_limit() -> None:
    engine = PreTradeRisk(risk_limits(CFG, mode="backtest"))
    assert engine.check(inputs(state=TradingState.REDUCING, reduces=True)).allowed
    assert engine.check(inputs(daily_realised_e8=-200 * E8, reduces=True)).allowed


def test_rules_switch_off_per_mode() -> None:
    cfg = RiskConfig(notional_cap=Decimal(1), rules_off={"backtest": ["notional_cap"]})
    assert PreTradeRisk(risk_limits(cfg, mode="backtest")).check(inputs()).allowed
    assert (
        PreTradeRisk(risk_limits(cfg, mode="paper")).check(inputs()).reason is Reason.NOTIONAL_CAP
    )


def test_account_refusals_are_reason_rows_not_orders() -> None:
    from njord.adapters.sim_router import SimRouter
    from njord.contract import settle
    from njord.core.book import BarE8, Book
    from njord.core.execution import CostModel, SymbolRules
    from njord.records import OrderIntent, Side

    book = Book(
        symbol="BTCUSDT",
        initial_cash_e8=1_000 * E8,
        costs=CostModel(commission_bps=Decimal(10), min_notional_e8=10 * E8),
        rules=SymbolRules(),
        risk=PreTradeRisk(risk_limits(RiskConfig(notional_cap=Decimal(10**6)), mode="backtest")),
        allow_short=False,
        order_key="k",
    )
    router = SimRouter(book.costs, book.rules)
    bar = BarE8(0, 100 * E8, 100 * E8, 100 * E8, 100 * E8)
    router.on_bar(bar)
    book.decide(
        bar,
        [
            OrderIntent(symbol="BTCUSDT", side=Side.BUY, qty=Decimal("10")),  # 1,000 + fee > cash
            OrderIntent(symbol="BTCUSDT", side=Side.BUY, qty=Decimal("0.05")),  # notional 5 < 10
            OrderIntent(symbol="BTCUSDT", side=Side.SELL, qty=Decimal("1")),  # nothing to sell
            OrderIntent(symbol="BTCUSDT", side=Side.BUY, qty=Decimal("0.000001")),  # below a step
            OrderIntent(symbol="BTCUSDT", side=Side.BUY, qty=Decimal("9.9")),  # fits: 990 + 0.99
        ],
    )
    settle(book, router)
    reasons = [row.verdict.reason for row in book.out.intents]
    assert reasons == [
        Reason.INSUFFICIENT_CASH,
        Reason.BELOW_MIN_NOTIONAL,
        Reason.SHORT_NOT_ALLOWED,
        Reason.ZERO_QUANTITY,
        Reason.OK,
    ]
    assert [r.client_order_id is None for r in book.out.intents] == [True] * 4 + [False]
    assert book.ledger.cash_e8 == 1_000 * E8 - 990 * E8 - 99 * E8 // 100
