"""What a run shows and keeps: lines, tables, JSON, report files, the page, progress.

It reads the engine's results; nothing below it imports it.
"""

__all__ = [
    "figures",
    "group_report",
    "page",
    "progress",
    "report",
    "shown",
    "sweep_table",
]
