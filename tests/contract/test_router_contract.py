"""The OrderRouter (v2) contract, every check against every router (njord/router_contract.py).

Adding a router is one entry in ROUTERS: a factory that takes the faults a check needs and
returns a harness (njord.router_contract.Harness) in a context manager, or None when it
cannot inject them (the check is then skipped for it, as is a check that needs what the
harness's `can` does not list).
"""

from __future__ import annotations

import pytest

from njord.router_contract import (
    CHECKS,
    Factory,
    RouterCheck,
    binance_on_sim,
    in_process,
    paper_broker,
    sim_matcher,
)
from tests.conftest import SAMPLE

ROUTERS: dict[str, Factory] = {
    "binance/sim": lambda faults: binance_on_sim(SAMPLE, faults),
    "sim": in_process(sim_matcher),
    "paper": in_process(paper_broker),
}


@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
@pytest.mark.parametrize("router", list(ROUTERS))
def test_router_contract(router: str, check: RouterCheck) -> None:
    harness = ROUTERS[router](check.faults)
    if harness is None:
        pytest.skip(f"{router} cannot inject {check.faults}")
    with harness as h:
        if check.needs - h.can:
            pytest.skip(f"{router} does not do {sorted(check.needs - h.can)}")
        ok, detail = check.run(h)
    assert ok, detail
