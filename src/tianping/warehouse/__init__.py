"""The analytics warehouse: Ibis over DuckDB (default) or PySpark, and the loader of event files."""

from tianping.warehouse.backend import Warehouse, connect

__all__ = ["Warehouse", "connect"]
