"""The change bridge: a metric's change split into its causes, closing exactly."""
