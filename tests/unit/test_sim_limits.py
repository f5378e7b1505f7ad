"""The simulator's rate limits, on a clock the test holds."""

from __future__ import annotations

from njord.sim.errors import ApiError
from njord.sim.limits import FIRST_BAN_S, RateLimits

# (now + 120) - now is 120.00000000000003 in floating point at this instant
AWKWARD_NOW = 262073.55512919227


def test_a_ban_says_its_length_in_whole_seconds_even_where_floats_round_up() -> None:
    limits = RateLimits(weight_limit=10, clock=lambda: AWKWARD_NOW)
    limits.charge(10)
    told = _refusal(limits)
    assert (told.status, told.retry_after_s) == (429, 60)
    banned = _refusal(limits)  # the 429 ignored
    assert (banned.status, banned.retry_after_s) == (418, FIRST_BAN_S)


def _refusal(limits: RateLimits) -> ApiError:
    try:
        limits.charge(1)
    except ApiError as e:
        return e
    raise AssertionError("the request was let through")
