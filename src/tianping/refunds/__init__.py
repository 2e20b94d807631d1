"""The refund lifecycle: orders, refund requests, decisions, SLA timers, appeals and reviews."""
