"""njord: a trading appliance in one file — one bar loop, one SQLite session db."""

__version__ = "0.1.0"
