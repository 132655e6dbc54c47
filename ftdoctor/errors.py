"""Errors that end a command with exit 2 and a one-paragraph message."""

from __future__ import annotations


class FtdoctorError(Exception):
    """Bad input the user can fix: usage, config, missing file. Exit 2, no traceback."""
