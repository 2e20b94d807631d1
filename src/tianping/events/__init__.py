"""Event tables: their documented schemas and validation rules, as data (pure; the loader that
runs them is :mod:`tianping.warehouse.ingest`)."""
