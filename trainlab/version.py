"""The package version (one place; read by the environment record and the CLI)."""

__version__ = "0.1.0"
