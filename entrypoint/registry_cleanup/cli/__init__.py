"""The ``registry-cleanup`` command, one module per command group (as regctl's cmd/regctl).

app.py puts the groups together; options.py declares the options they share.
"""

from registry_cleanup.cli.app import app, main

__all__ = ["app", "main"]
