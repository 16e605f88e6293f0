"""The pure core: what a ref, a tag and a rule are, and what to keep. No I/O, no adapters.

Every other layer may import it; it imports nothing of theirs (only ``errors``).
"""

__all__ = [
    "ci",
    "durations",
    "footprint",
    "guard",
    "image_age",
    "plan",
    "policy",
    "refs",
    "safety",
]
