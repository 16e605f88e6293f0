"""The cleanup: list, plan and delete, through the one safe delete (``deletion``).

It uses the domain and the stores and readers it is given; it prints nothing (``output`` does).
"""

__all__ = [
    "apply",
    "deletion",
    "group_pipeline",
    "group_sweep",
    "plan_file",
    "restore",
    "sweep",
]
