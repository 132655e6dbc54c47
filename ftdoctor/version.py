"""The version, in the core: reports, baselines and the CLI read it without importing the package's lazy API."""

__version__ = "0.2.0"
