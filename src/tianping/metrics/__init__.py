"""The metrics layer: every headline number, defined once (docs/metrics.md)."""
