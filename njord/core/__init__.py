"""The pure core: no I/O, no clock, no environment, no randomness (a test enforces it)."""
