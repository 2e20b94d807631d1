"""The audit log: every state change, appended under a lock and chained by hash (ground floor:
every domain appends through :mod:`tianping.audit.log`, none imports governance for it)."""
