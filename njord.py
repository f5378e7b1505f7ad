"""Launcher so `python njord.py ...` works from a checkout without installing.

It runs the package's `__main__` instead of importing the CLI itself: an import here would be
read by import-linter (which also parses this file as `njord`) as the package importing its CLI.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("njord", run_name="__main__", alter_sys=True)
