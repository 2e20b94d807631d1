"""The assignment API for clients: every running experiment's variant and exposure logging."""
