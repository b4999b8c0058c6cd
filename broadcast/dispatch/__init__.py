"""Stage 4, dispatch (调度控制): deliveries to adapters, the one retry policy, per-terminal preemption, receipts and link health, and the sink adapters report to."""
