"""Stage 2, policy (播发策略): the pure decision rules, and the intake desk (值班台) that applies them, records them and carries operator actions."""
