"""The adapter contract suite: one set of scenarios over every adapter and its simulator."""
