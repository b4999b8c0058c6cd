"""Front-end (前端) relay adapter: one instruction to a street/village front-end for many terminals."""
