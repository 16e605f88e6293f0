"""The cleanup: list, plan and delete, through the one safe delete (``deletion``).

It uses the domain and the stores and readers it is given; it prints nothing (``output`` does).
"""

__all__ = [
    "apply",
    "deletion",
    "executor",
    "group_pipeline",
    "group_sweep",
    "inventory",
    "options",
    "outcome",
    "page_delete",
    "plan_file",
    "progress",
    "ref_lists",
    "restore",
    "sizes",
    "sweep",
]
