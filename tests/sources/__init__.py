"""Tests of broadcast.sources (CAP intake)."""
