"""Launcher so `python njord.py ...` works from a checkout without installing."""

from njord.cli import main

if __name__ == "__main__":
    main()
