"""The analytics warehouse: Ibis over DuckDB (default) or PySpark."""

from tianping.warehouse.backend import Warehouse, connect

__all__ = ["Warehouse", "connect"]
