"""The ``registry-cleanup`` command, one module per command group (as regctl's cmd/regctl).

app.py puts the groups together; options.py declares the options they share; connect.py opens
what a command hands the engine (GitLab, the registry login, a regctl session); scope.py
decides a sweep's scope from where its options came. A command is its options, one call into
the engine, and output.shown.Output.
"""

from registry_cleanup.cli.app import build_app, main

__all__ = ["build_app", "main"]
