"""Attribution: a metric's change split into its causes (the change bridge), closing exactly."""
