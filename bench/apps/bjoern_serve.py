"""Runs a WSGI app under bjoern: python bjoern_serve.py MODULE:APP PORT."""

import importlib
import sys

import bjoern

module, _, name = sys.argv[1].partition(":")
app = getattr(importlib.import_module(module), name)
bjoern.run(app, "127.0.0.1", int(sys.argv[2]))
