"""Event tables: their documented schemas (pure) and their ingest."""
