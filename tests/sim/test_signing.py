"""Signing: njord's client, Binance's connector and the simulator's own check agree, and all
reproduce Binance's two published HMAC examples."""

from __future__ import annotations

from typing import Any

import requests
from binance.lib.authentication import hmac_hashing
from binance.lib.utils import encoded_string
from hypothesis import given, settings
from hypothesis import strategies as st

from njord.adapters.binance import sign, signed_query
from njord.sim.server import SimServer, signature_of
from tests.sim.conftest import KEY, SECRET

# rest-api.md, "SIGNED Endpoint Examples for POST /api/v3/order", HMAC keys.
EXAMPLE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
EXAMPLE_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
# Example 1 (all in the query string, or all in the body) and example 3 (mixed).
EXAMPLE_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
MIXED_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
MIXED_BODY = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
MIXED_SIGNATURE = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"


def test_the_published_examples() -> None:
    assert sign(EXAMPLE_SECRET, EXAMPLE_PAYLOAD) == EXAMPLE_SIGNATURE
    assert signature_of(EXAMPLE_SECRET, EXAMPLE_PAYLOAD, "") == EXAMPLE_SIGNATURE
    assert signature_of(EXAMPLE_SECRET, "", EXAMPLE_PAYLOAD) == EXAMPLE_SIGNATURE
    assert signature_of(EXAMPLE_SECRET, MIXED_QUERY, MIXED_BODY) == MIXED_SIGNATURE
    signed = f"{EXAMPLE_PAYLOAD}&signature={EXAMPLE_SIGNATURE}"
    assert signature_of(EXAMPLE_SECRET, signed, "") == EXAMPLE_SIGNATURE  # signature excluded


def test_the_simulator_reads_a_signature_sent_in_the_body(stepped: SimServer) -> None:
    """Binance's example 3: part of the parameters in the query string, part in the body."""
    now = requests.get(f"{stepped.url}/api/v3/time", timeout=5).json()["serverTime"]
    query = "symbol=BTCUSDT&side=BUY&type=MARKET"
    body = f"quantity=0.01&recvWindow=5000&timestamp={now}"
    signature = signature_of(SECRET, query, body)
    answer = requests.post(
        f"{stepped.url}/api/v3/order?{query}",
        data=f"{body}&signature={signature}",
        headers={"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "FILLED"


AWKWARD = st.text(
    alphabet=st.sampled_from([*"ABCxyz019 +@/&=%-_.:", "é", "ü", "中", "₿", "😀"]),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(symbol=AWKWARD, client_id=AWKWARD, quantity=st.decimals(0, 10**6, places=8))
def test_njord_and_the_official_client_sign_the_same_bytes(
    symbol: str, client_id: str, quantity: Any
) -> None:
    params = {
        "symbol": symbol,
        "side": "BUY",
        "type": "LIMIT",
        "quantity": f"{quantity}",
        "newClientOrderId": client_id,
        "recvWindow": 5000,
        "timestamp": 1_499_827_319_559,
    }
    official = encoded_string(params)
    expected = f"{official}&signature={hmac_hashing(SECRET, official)}"
    ours = signed_query(params, SECRET)
    assert ours == expected
    # ... and the simulator, reading those bytes as received, computes the same signature.
    assert signature_of(SECRET, ours, "") == hmac_hashing(SECRET, official)
