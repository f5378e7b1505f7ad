"""Reconciliation with the venue, the part that asks it (njord/core/reconcile.py matches).

`run` reads the venue's balances, open orders and fills since the cursor, matches them to
the book's view, and looks up every order the book holds open that the venue does not
list open, so that the caller can close it with its real outcome. It changes nothing: the
caller applies the missed fills and the lookups' reports to the book, records the result
(njord/store/external.py) and halts or adopts as `venue.on_mismatch` says.
"""

from __future__ import annotations

from typing import Final

import msgspec

from njord.adapters.binance_router import BinanceRouter
from njord.core.filters import SymbolFilters
from njord.core.money import E8
from njord.core.reconcile import (
    Action,
    BookView,
    ExternalEvent,
    Policy,
    Reconciliation,
    VenueState,
    action,
    match,
    missing,
)
from njord.core.reports import Ack, Execution, Report
from njord.errors import NjordError
from njord.records import OrderStatus

# A quote balance within a thousandth of the symbol's minimum notional of the book's is the
# same (nothing that small can be traded), in the quote's own unit: a BTC-quoted pair is
# not let off by a hundredth of a bitcoin. Plus 2e-8 a fill since the last reconciliation:
# the venue rounds each trade's quote amount and commission to 1e-8. A cent when the venue
# gives no minimum.
DUST_QUOTE_E8: Final = E8 // 100
DUST_OF_MIN_NOTIONAL: Final = 1000
ROUNDING_PER_FILL_E8: Final = 2
READ_ATTEMPTS: Final = 3


class VenueBusy(NjordError):
    """The venue kept trading the symbol while it was read: reconcile again later."""


class Result(msgspec.Struct, frozen=True, kw_only=True):
    reconciliation: Reconciliation
    closed: dict[str, list[Report]]  # the lookups of `to_query`, by client order id
    action: Action
    venue: VenueState


def dust(filters: SymbolFilters, *, fills: int = 0) -> dict[str, int]:
    """Differences too small to mean anything: less than a lot step of the base asset; of
    the quote, a thousandth of the minimum notional and the rounding of `fills` trades."""
    least = filters.min_notional_e8
    quote = max(least // DUST_OF_MIN_NOTIONAL, 1) if least else DUST_QUOTE_E8
    return {
        filters.base_asset: max(filters.step_e8 - 1, 0),
        filters.quote_asset: quote + ROUNDING_PER_FILL_E8 * fills,
    }


def fetch(router: BinanceRouter, *, cursor: str) -> VenueState:
    """The venue's state, consistent: fills are read before and after the balances and
    open orders, and the reads are taken again if a fill landed in between (its effect
    would be in the balances but not in the fills, or the other way round)."""
    fills = router.fills_since(cursor)
    for _ in range(READ_ATTEMPTS):
        balances = router.balances()
        open_orders = [r for r in router.open_orders() if isinstance(r, Ack)]
        later = router.fills_since(_last(cursor, fills))
        if not later:
            return VenueState(
                ts_ms=router.client.now_ms(),
                balances_e8=balances,
                open_orders=open_orders,
                fills=fills,
                cursor=cursor,
            )
        fills += later
    raise VenueBusy(
        f"the venue kept trading {router.symbol} while it was read ({READ_ATTEMPTS} times); "
        "reconcile again"
    )


def _last(cursor: str, fills: list[Execution]) -> str:
    return max((f.trade_id for f in fills), key=int, default=cursor)


def run(
    router: BinanceRouter,
    book: BookView,
    *,
    cursor: str,
    policy: Policy,
    dust_e8: dict[str, int] | None = None,
) -> Result:
    venue = fetch(router, cursor=cursor)
    if dust_e8 is None:
        dust_e8 = dust(router.filters, fills=len(venue.fills))
    rec = match(book, venue, dust_e8=dust_e8)
    closed: dict[str, list[Report]] = {}
    gone: list[ExternalEvent] = []
    for coid in rec.to_query:
        found = router.query(coid)
        status = book.orders[coid].status
        if found is not None:
            closed[coid] = found
        elif status is not OrderStatus.NEW:
            # Acknowledged once, unknown to the venue now: nothing explains that.
            gone.append(missing(coid, status, venue.ts_ms))
        # A NEW order the venue never had was never sent: the loop sends it.
    if gone:
        rec = msgspec.structs.replace(rec, external=[*rec.external, *gone])
    return Result(reconciliation=rec, closed=closed, action=action(rec, policy), venue=venue)
