"""registry-cleanup: delete a branch's container image when the branch goes away."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("registry-cleanup")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
