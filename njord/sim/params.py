"""Request parameters read the way Binance reads them: legal ranges, mandatory names.

The legal ranges are the ones Binance itself prints in its -1100 messages (reference §3.3).
"""

from __future__ import annotations

import re
from decimal import Decimal

from njord.sim.errors import ApiError

INTEGER = "^[0-9]{1,20}$"
DECIMAL = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"
RECV_WINDOW = "^[0-9]{1,20}(\\.[0-9]{1,3})?$"
CLIENT_ORDER_ID = "^[a-zA-Z0-9-_]{1,36}$"


def illegal(name: str, pattern: str) -> ApiError:
    return ApiError(
        400,
        -1100,
        f"Illegal characters found in parameter '{name}'; legal range is '{pattern}'.",
    )


def mandatory(name: str) -> ApiError:
    return ApiError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def either(first: str, second: str) -> ApiError:
    return ApiError(
        400, -1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!"
    )


def not_required(name: str) -> ApiError:
    return ApiError(400, -1106, f"Parameter '{name}' sent when not required.")


def _matched(p: dict[str, str], name: str, pattern: str) -> str | None:
    raw = p.get(name)
    if raw is None:
        return None
    if raw == "":
        raise mandatory(name)
    if re.fullmatch(pattern, raw) is None:
        raise illegal(name, pattern)
    return raw


def integer(p: dict[str, str], name: str) -> int | None:
    raw = _matched(p, name, INTEGER)
    return None if raw is None else int(raw)


def integer_or(p: dict[str, str], name: str, default: int) -> int:
    value = integer(p, name)
    return default if value is None else value


def required_integer(p: dict[str, str], name: str) -> int:
    value = integer(p, name)
    if value is None:
        raise mandatory(name)
    return value


def decimal(p: dict[str, str], name: str) -> Decimal | None:
    """A quantity or price: plain digits, no sign, no exponent (`1e-3` is illegal)."""
    raw = _matched(p, name, DECIMAL)
    return None if raw is None else Decimal(raw)


def recv_window_ms(p: dict[str, str]) -> Decimal:
    raw = _matched(p, "recvWindow", RECV_WINDOW)
    return Decimal(5000) if raw is None else Decimal(raw)


def new_client_order_id(p: dict[str, str]) -> str | None:
    if p.get("newClientOrderId") == "":
        raise ApiError(400, -1118, "New client order ID was empty.")
    return _matched(p, "newClientOrderId", CLIENT_ORDER_ID)


def text(p: dict[str, str], name: str) -> str:
    value = p.get(name)
    if not value:
        raise mandatory(name)
    return value
