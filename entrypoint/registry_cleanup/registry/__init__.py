"""The door to the registry: regctl, run as a subprocess with a private config.

It knows the domain's image references; the engine reaches it only through the stores and
readers the command hands in.
"""

__all__ = ["failures", "hosts", "regctl"]
