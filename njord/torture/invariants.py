"""The invariants of a tortured seed, each a named line of the report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import msgspec

from njord.core.ledger import net_of_base_fee
from njord.store.torture import DbFill
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
    tortured: dict[str, list[tuple[object, ...]]], reference: dict[str, list[tuple[object, ...]]]
) -> Check:
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
