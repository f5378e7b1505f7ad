"""Adapters: implementations of the ports for each mode."""
