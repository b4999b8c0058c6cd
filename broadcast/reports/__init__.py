"""Operations reports (运维管理 / 效果评估): per-broadcast effect, terminal health, drill comparison.

The package computes figures from stored history and renders them; it never changes that history.
"""
