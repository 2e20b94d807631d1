"""The dashboard: server-rendered pages over the store and the warehouse, signed in with a key."""
