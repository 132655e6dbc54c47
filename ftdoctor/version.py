"""The version, in the core: reports, baselines and the CLI read it without importing the package's lazy API."""

__version__ = "0.2.0"
#: the name on the package index (``ftdoctor`` there is an unrelated project with the same command)
DISTRIBUTION = "fine-tuning-doctor"
