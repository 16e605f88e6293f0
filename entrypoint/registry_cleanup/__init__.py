"""registry-cleanup: delete a branch's container image when the branch goes away."""

# The single source of the version: pyproject.toml reads it from here (hatch dynamic version),
# which also spares every run the import of importlib.metadata.
__version__ = "0.1.0"
