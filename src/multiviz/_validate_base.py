"""The exception every input check raises (kept apart so check modules can share it)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input to a multiviz function; the message names the argument and the fix."""
