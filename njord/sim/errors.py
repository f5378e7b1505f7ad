"""The simulator's one error type: an answer with an HTTP status, a Binance code, a message."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: int,
        msg: str,
        retry_after_s: float | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg
        self.retry_after_s = retry_after_s
        self.headers = headers or {}
