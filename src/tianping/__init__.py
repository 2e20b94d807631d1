"""tianping (天平, "the scales"): the decision system of a consumer-first marketplace."""

from typing import Any

__version__ = "0.1.0"

__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported on first use so `tianping --help` does not pay for numpy.
    if name == "Client":
        from tianping.experiments.client import Client

        return Client
    raise AttributeError(f"module 'tianping' has no attribute {name!r}")
