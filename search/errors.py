"""Errors the search raises before any work starts (its own module, so that the driver and
the Tune wiring both import it without importing each other)."""

from __future__ import annotations


class SearchSetupError(ValueError):
    """A configuration or environment problem found before any work starts."""
