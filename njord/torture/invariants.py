"""The invariants of a tortured seed, each a named line of the report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import msgspec

from njord.core.ledger import net_of_base_fee
from njord.store.torture import DbFill, DbTrade
from njord.torture.venues import Venue

HALT_WITHIN_MS = 1_000  # SPEC §9: a halt is effective within 1 s, even between bars

NAMES = (
    "runs_as_planned",
    "no_duplicate_execution",
    "fills_exact",
    "book_equals_venue",
    "audit_passes",
    "bars_once",
    "halt_within_1s",
    "decisions_equal_reference",
)


class Check(msgspec.Struct, frozen=True):
    name: str
    problem: str | None = None  # None: it holds
    skipped: str | None = None  # why it was not checked (it then holds vacuously)

    @property
    def ok(self) -> bool:
        return self.problem is None


def no_duplicate_execution(venue: Venue) -> Check:
    twice = sorted(coid for coid, n in venue.received().items() if n > 1)
    problem = None
    if twice:
        problem = f"{len(twice)} client order ids reached the venue more than once: {twice[0]}"
    return Check("no_duplicate_execution", problem)


def fills_exact(venue: Venue, db_fills: Sequence[DbFill]) -> Check:
    """Each venue execution is one db fill, booked at its exact numbers: the quantity net
    of a base-asset commission, the price, the commission in quote (a base commission at
    the fill price), under its venue trade id."""
    expected: Counter[DbFill] = Counter()
    for fill in venue.fills():
        e = fill.execution
        received, _, base_fee = net_of_base_fee(e.qty_e8, e.price_e8, e.fee_qty_e8)
        key = DbFill(fill.client_order_id, fill.trade_id, received, e.price_e8, e.fee_e8 + base_fee)
        expected[key] += 1
    booked = Counter(db_fills)
    missing, extra = expected - booked, booked - expected
    if missing:
        return Check("fills_exact", f"venue fill not booked exactly once: {min(missing)}")
    if extra:
        return Check("fills_exact", f"db fill the venue never made: {min(extra)}")
    return Check("fills_exact")


def trades_exact(venue: Venue, db_trades: Sequence[DbTrade]) -> Check:
    """Live: each venue trade (the simulator's myTrades) is one db fill, with the venue's
    trade id, executed quantity, price, commission and commission asset exactly."""
    expected: Counter[DbTrade] = Counter(
        DbTrade(
            f.client_order_id,
            f.trade_id,
            f.execution.qty_e8,
            f.execution.price_e8,
            f.execution.commission_e8,
            f.execution.fee_asset,
        )
        for f in venue.fills()
    )
    booked = Counter(db_trades)
    missing, extra = expected - booked, booked - expected
    if missing:
        return Check("fills_exact", f"venue trade not booked exactly once: {_first(missing)}")
    if extra:
        return Check("fills_exact", f"db fill the venue never made: {_first(extra)}")
    return Check("fills_exact")


def _first(trades: Counter[DbTrade]) -> DbTrade:
    return min(trades, key=lambda t: (t.client_order_id, t.trade_id or ""))


def reconciled(
    external: list[tuple[str, str]],
    recorded: set[tuple[str, str]],
    *,
    deposited: str | None,
) -> Check:
    """Live: `njord reconcile` found nothing (`external` empty), or only differences a
    session reconciliation already recorded as external events; and the by-hand balance
    change (`deposited`: its asset) is one such event."""
    odd = sorted(set(external) - recorded)
    if odd:
        kind, subject = odd[0]
        return Check(
            "book_equals_venue",
            f"njord reconcile: {kind} {subject} differs, and no external event explains it",
        )
    if deposited is not None and ("balance", deposited) not in recorded:
        return Check(
            "book_equals_venue",
            f"the by-hand {deposited} balance change is not an external event",
        )
    return Check("book_equals_venue")


def book_equals_venue(
    venue: Venue, *, book_open: set[str], book_balances: dict[str, int], external: set[str]
) -> Check:
    """Open orders and balances agree, or the difference is an external event's subject."""
    venue_open = venue.open_orders()
    odd = sorted((venue_open ^ book_open) - external)
    if odd:
        where = "venue" if odd[0] in venue_open else "book"
        return Check("book_equals_venue", f"order {odd[0]} is open only at the {where}")
    held = venue.balances()
    for asset in sorted(held):
        if held[asset] != book_balances.get(asset, 0) and asset not in external:
            return Check(
                "book_equals_venue",
                f"{asset}: venue {held[asset]} e8, book {book_balances.get(asset, 0)} e8, "
                "and no external event explains it",
            )
    return Check("book_equals_venue")


def audit_passes(failed: list[str]) -> Check:
    return Check("audit_passes", f"njord audit: {'; '.join(failed)}" if failed else None)


def bars_once(committed: list[int], expected: list[int]) -> Check:
    doubled = sorted(t for t, n in Counter(committed).items() if n > 1)
    if doubled:
        return Check("bars_once", f"bar {doubled[0]} committed {committed.count(doubled[0])} times")
    missed = sorted(set(expected) - set(committed))
    if missed:
        return Check(
            "bars_once", f"{len(missed)} bars the venue served are missing, from {missed[0]}"
        )
    extra = sorted(set(committed) - set(expected))
    if extra:
        return Check("bars_once", f"bar {extra[0]} committed but the venue never served it")
    if committed != sorted(committed):
        return Check("bars_once", "bars committed out of order")
    return Check("bars_once")


def halt_within_1s(halts: list[tuple[int, int | None]]) -> Check:
    if not halts:
        return Check("halt_within_1s", "no halt was posted")
    for posted, applied in halts:
        if applied is None:
            return Check("halt_within_1s", "a halt posted was never applied")
        if applied - posted > HALT_WITHIN_MS:
            return Check("halt_within_1s", f"a halt took {applied - posted} ms to apply")
    return Check("halt_within_1s")


def decisions_equal(
    tortured: dict[str, list[tuple[object, ...]]],
    reference: dict[str, list[tuple[object, ...]]],
    *,
    rejections: Sequence[str] = (),
) -> Check:
    """`rejections`: what the venue refused or failed in the tortured run; its decisions
    then differ from an uninterrupted run's by design, and are not compared."""
    if rejections:
        return Check(
            "decisions_equal_reference",
            skipped=f"{len(rejections)} venue rejection(s), first {rejections[0]}",
        )
    for table, rows in reference.items():
        got = tortured.get(table, [])
        for i, (a, b) in enumerate(zip(got, rows, strict=False)):
            if a != b:
                return Check(
                    "decisions_equal_reference", f"{table} row {i + 1}: {a} != reference {b}"
                )
        if len(got) != len(rows):
            return Check(
                "decisions_equal_reference",
                f"{table}: {len(got)} rows, the uninterrupted run has {len(rows)}",
            )
    return Check("decisions_equal_reference")
