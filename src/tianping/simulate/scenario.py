"""Scenarios: the experiments and strategies a simulation runs, with their true effects (pure).

A scenario is YAML (see ``src/tianping/scenarios/default.yaml`` and ``docs/simulator.md``)::

    name: default
    market: {new_buyer_share: 0.1}          # optional overrides of MarketParams numbers
    experiments:
      - name: checkout_red_packet
        kind: ab                            # ab | horse_race
        start_day: 7                        # days after the simulation start (default 0)
        end_day: 90                         # exclusive (default: end of the window)
        traffic: 1.0                        # share of buyers in the experiment
        layer: checkout                     # experiments in one layer never share a buyer
        arms:
          - {name: control, weight: 0.5}
          - {name: red_packet, weight: 0.5, effects: {conversion: 0.03}}

Effects are relative to the marketplace without the experiment: ``conversion`` multiplies the
chance a visit ends in an order, ``order_value`` the goods value of an order, ``refund`` the
chance an order gets a refund request, ``repurchase`` the conversion after the buyer's first
order since exposure; ``nps`` is in NPS points (NPS is a difference of shares and may be zero
or negative, so a relative effect would be ill-defined).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tianping import yamldoc
from tianping.errors import InvalidInput
from tianping.simulate.params import MarketParams

EFFECTS = ("conversion", "order_value", "refund", "repurchase", "nps")
KINDS = ("ab", "horse_race")


@dataclass(frozen=True, slots=True)
class Effects:
    """True effects of one arm (relative, except ``nps`` in NPS points)."""

    conversion: float = 0.0
    order_value: float = 0.0
    refund: float = 0.0
    repurchase: float = 0.0
    nps: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Every true effect by name (zero where the arm has none)."""
        return {name: getattr(self, name) for name in EFFECTS}


@dataclass(frozen=True, slots=True)
class Arm:
    """One variant of an experiment: its name, its assignment weight and its true effects."""

    name: str
    weight: float
    effects: Effects = field(default_factory=Effects)


@dataclass(frozen=True, slots=True)
class ExperimentSpec:
    """An experiment (or horse race) the simulated marketplace runs on its buyers."""

    name: str
    arms: tuple[Arm, ...]
    kind: str = "ab"
    start_day: int = 0
    end_day: int | None = None
    traffic: float = 1.0
    layer: str | None = None
    description: str = ""

    @property
    def weights(self) -> tuple[float, ...]:
        """The arms' assignment weights, in arm order."""
        return tuple(a.weight for a in self.arms)

    def window(self, days: int) -> tuple[int, int]:
        """``[start_day, end_day)`` clipped to a window of ``days`` days."""
        end = days if self.end_day is None else min(self.end_day, days)
        return min(self.start_day, days), end


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named set of experiments plus optional overrides of the market parameters."""

    name: str = "baseline"
    description: str = ""
    experiments: tuple[ExperimentSpec, ...] = ()
    market: tuple[tuple[str, float], ...] = ()

    def apply_market(self, params: MarketParams) -> MarketParams:
        """``params`` with this scenario's market overrides."""
        return dataclasses.replace(params, **dict(self.market)) if self.market else params


def parse_scenario(text: str, source: str = "scenario") -> Scenario:
    """Parse and validate a scenario from YAML text.

    Raises:
        InvalidInput: not YAML, unknown keys, bad weights, effects or windows; the message
            names the source and the field.
    """
    data = yamldoc.read(text, source=source)
    if data is None:
        data = {}
    try:
        return _scenario(data, source)
    except InvalidInput as exc:
        raise yamldoc.with_line(exc, source, text) from None


def _scenario(data: Any, source: str) -> Scenario:
    _expect_mapping(data, source)
    _no_unknown(data, {"name", "description", "market", "experiments"}, source)
    experiments = data.get("experiments")
    experiments = [] if experiments is None else experiments
    if not isinstance(experiments, list):
        raise InvalidInput(f"{source}: experiments must be a list", field="experiments")
    specs = tuple(_experiment(e, f"{source}: experiments[{i}]") for i, e in enumerate(experiments))
    _unique([s.name for s in specs], f"{source}: experiments", "experiment")
    return Scenario(
        name=str(data.get("name", "scenario")),
        description=str(data.get("description", "")),
        experiments=specs,
        market=_market({} if data.get("market") is None else data["market"], f"{source}: market"),
    )


def _experiment(data: Any, where: str) -> ExperimentSpec:
    _expect_mapping(data, where)
    known = {"name", "kind", "start_day", "end_day", "traffic", "layer", "arms", "description"}
    _no_unknown(data, known, where)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{where}: name is required", field="name")
    where = f"{where} ({name})"
    kind = data.get("kind", "ab")
    if kind not in KINDS:
        raise InvalidInput(f"{where}: kind must be one of {', '.join(KINDS)}", field="kind")
    arms = data.get("arms")
    if not isinstance(arms, list) or len(arms) < 2:
        raise InvalidInput(f"{where}: needs a list of at least two arms", field="arms")
    parsed = tuple(_arm(a, f"{where}: arms[{i}]") for i, a in enumerate(arms))
    _unique([a.name for a in parsed], f"{where}: arms", "arm")
    start, end = _int(data, "start_day", 0, where), data.get("end_day")
    if end is not None:
        end = _int(data, "end_day", 0, where)
        if end <= start:
            raise InvalidInput(f"{where}: end_day must be after start_day", field="end_day")
    traffic = _number(data, "traffic", 1.0, where)
    if not 0 < traffic <= 1:
        raise InvalidInput(f"{where}: traffic must be in (0, 1]", field="traffic")
    layer = data.get("layer")
    return ExperimentSpec(
        name=name,
        arms=parsed,
        kind=kind,
        start_day=start,
        end_day=end,
        traffic=traffic,
        layer=None if layer is None else str(layer),
        description=str(data.get("description", "")),
    )


def _arm(data: Any, where: str) -> Arm:
    _expect_mapping(data, where)
    _no_unknown(data, {"name", "weight", "effects"}, where)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{where}: name is required", field="name")
    weight = _number(data, "weight", 1.0, where)
    if weight <= 0:
        raise InvalidInput(f"{where}: weight must be positive", field="weight")
    effects = data.get("effects") or {}
    _expect_mapping(effects, f"{where}: effects")
    _no_unknown(effects, set(EFFECTS), f"{where}: effects")
    values = {k: _number(effects, k, 0.0, f"{where}: effects") for k in effects}
    for key in ("conversion", "order_value", "refund", "repurchase"):
        if values.get(key, 0.0) <= -1:
            raise InvalidInput(f"{where}: effects.{key} must be above -1 (relative)", field=key)
    if abs(values.get("nps", 0.0)) >= 100:
        raise InvalidInput(f"{where}: effects.nps is in NPS points, |nps| < 100", field="nps")
    return Arm(name=name, weight=weight, effects=Effects(**values))


def _market(data: Any, where: str) -> tuple[tuple[str, float], ...]:
    _expect_mapping(data, where)
    numeric = {
        f.name: f.type
        for f in dataclasses.fields(MarketParams)
        if f.type in ("float", "int") and f.name != "days"
    }
    _no_unknown(data, set(numeric), where)
    out = []
    for key in sorted(data):
        value = _number(data, key, 0.0, where)
        if numeric[key] == "int":
            value = int(value)
        out.append((key, value))
    return tuple(out)


def _expect_mapping(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}: expected a mapping, got {type(data).__name__}", field=where)


def _no_unknown(data: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise InvalidInput(
            f"{where}: unknown key {unknown[0]!r}{yamldoc.hint(unknown[0], known)}",
            field=unknown[0],
            code=yamldoc.UNKNOWN_KEY,
        )


def _unique(names: list[str], where: str, what: str) -> None:
    seen = set()
    for n in names:
        if n in seen:
            raise InvalidInput(f"{where}: duplicate {what} name {n!r}", field=n)
        seen.add(n)


def _number(data: dict, key: str, default: float, where: str) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where}: {key} must be a number, not {value!r}", field=key)
    return float(value)


def _int(data: dict, key: str, default: int, where: str) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{where}: {key} must be a whole number >= 0, not {value!r}", field=key)
    return value
