"""KPI goals whose every revision is kept (docs/metrics.md#goals)."""
