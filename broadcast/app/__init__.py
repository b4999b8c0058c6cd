"""Composition root (组装): builds every part from settings and starts/stops them in order. Nothing in broadcast/ imports it; only the CLI, the demo and tests do."""
