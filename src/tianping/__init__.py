"""tianping (天平, "the scales"): the decision system of a consumer-first marketplace.

In a notebook, ``import tianping as tp``:

- ``tp.headline_metrics``, ``tp.explain``, ``tp.movers``, ``tp.why``: headline metrics and why
  GMV moved; ``tp.bridge``: a change split into its causes, closing exactly;
- ``tp.market_comparison``, ``tp.market_periods``: our figures beside the market's, like with like;
- ``tp.experiment``, ``tp.race``, ``tp.race_steps``: experiment analyses and horse races;
- ``tp.policy_replay``: past refund requests decided again under a policy;
- ``tp.Client``, ``tp.assign_batch``: assignment from an experiment snapshot;
- ``tp.Settings``, ``tp.settings_of``: where the data lives (as the CLI finds it).

Every function returns a pandas DataFrame of plain floats, integers and timestamps; see
docs/notebook.md. Names are imported on first use, so ``tianping --help`` stays fast.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

#: Public name → the module that defines it.
_HOMES = {
    "Client": "tianping.experiments.client",
    "assign_batch": "tianping.experiments.assignment",
    "Settings": "tianping.settings",
    "settings_of": "tianping.notebook",
    "headline_metrics": "tianping.notebook",
    "explain": "tianping.notebook",
    "movers": "tianping.notebook",
    "why": "tianping.notebook",
    "bridge": "tianping.notebook",
    "market_comparison": "tianping.notebook",
    "market_periods": "tianping.notebook",
    "experiment": "tianping.notebook",
    "race": "tianping.notebook",
    "race_steps": "tianping.notebook",
    "policy_replay": "tianping.notebook",
}

__all__ = sorted([*_HOMES, "__version__"])


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tianping' has no attribute {name!r}")
    return getattr(import_module(home), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
