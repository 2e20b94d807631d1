"""Alembic migrations of the store, shipped inside the package (``init_schema`` runs them)."""
