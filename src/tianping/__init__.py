"""tianping (天平, "the scales"): the decision system of a consumer-first marketplace."""

__version__ = "0.1.0"

__all__ = ["__version__"]
