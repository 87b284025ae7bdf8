"""Fails at import time, so the worker cannot load the app."""

raise RuntimeError("raise_on_import refuses to load")
