"""API keys and roles: who calls the service and what each role may reach."""
