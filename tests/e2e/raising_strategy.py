"""A strategy outside the njord package that raises on its 101st bar."""

from __future__ import annotations

from njord.core.strategy import Context, Strategy
from njord.records import Bar, OrderIntent


class RaiseAt(Strategy):
    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.seen = 0

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        self.seen += 1
        if self.seen == 101:
            raise RuntimeError("boom")
        return []
