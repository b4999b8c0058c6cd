"""Shared test helpers: polling with a deadline, and a recording adapter sink."""
