"""The ``registry-cleanup`` command, one module per command group (as regctl's cmd/regctl).

app.py puts the groups together; options.py declares the options they share.
"""

from registry_cleanup.cli.app import build_app, main

__all__ = ["build_app", "main"]
