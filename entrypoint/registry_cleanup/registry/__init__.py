"""The door to the registry: regctl, run as a subprocess with a private config, for every
delete and restore; and, for the storage figures alone, a reader of manifests over HTTP
(``manifests``: regctl's process per read is too slow for every tag's image).

It knows the domain's image references; the engine reaches it only through the stores and
readers the command hands in.
"""

__all__ = ["failures", "hosts", "manifests", "regctl"]
