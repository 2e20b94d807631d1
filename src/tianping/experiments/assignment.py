"""Deterministic assignment of units to experiment variants (pure: numpy only).

The algorithm is language-neutral; ``docs/experiments.md`` spells it out byte by byte and
``tests/cases/assignment.json`` pins expected values for SDKs in other languages.

Hashing (all arithmetic on unsigned 32-bit integers, wrapping):

- ``fnv1a32(bytes)``: FNV-1a, offset basis ``0x811C9DC5``, prime ``0x01000193``; for each
  byte ``h = (h XOR byte) * prime``.
- ``fmix32(h)``: the MurmurHash3 finaliser: ``h ^= h >> 16; h *= 0x85EBCA6B; h ^= h >> 13;
  h *= 0xC2B2AE35; h ^= h >> 16``.
- ``draw(seed, unit_id) = fmix32(fnv1a32(utf8(unit_id)) XOR fnv1a32(utf8(seed))) mod 10000``,
  a bucket in ``[0, 10000)``. The unit's bytes are hashed once and every draw mixes in a
  different seed, so the draws of one unit under different seeds behave as independent.

Assignment of one unit to one experiment, in order:

1. forced: a unit on the experiment's QA allow-list gets its listed variant;
2. holdout: ``draw(holdout.salt, id) < round(10000 * holdout.fraction)`` → not assigned;
3. layer: ``draw(layer.salt, id)`` must fall in the experiment's ``layer_buckets``
   ``[start, end)`` (experiments of one layer own disjoint ranges: mutually exclusive);
4. traffic: ``draw(salt + ":traffic", id) < round(10000 * traffic)`` (raising traffic only
   adds units);
5. variant: ``draw(salt + ":variant", id)`` is compared with cumulative weight boundaries
   ``round(10000 * cumsum(w) / sum(w))``; the first boundary above it names the variant.

A **shipped** experiment (``shipped`` names its winning variant) is no longer an experiment:
every unit outside the global holdout gets the shipped variant; forced units, layer, traffic
and weights no longer apply, and the SDK reports no exposures for it.

``round`` is round-half-up: ``floor(x + 0.5)`` in IEEE double precision.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tianping.errors import InvalidInput, NotFound

BUCKETS = 10_000
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
MASK32 = 0xFFFFFFFF
NOT_ASSIGNED = -1
SNAPSHOT_VERSION = 1


# -- hashing (scalar) -------------------------------------------------------------------


def fnv1a32(data: bytes) -> int:
    """FNV-1a 32-bit hash of ``data``.

    >>> hex(fnv1a32(b"a"))
    '0xe40c292c'
    """
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & MASK32
    return h


def fmix32(h: int) -> int:
    """MurmurHash3's 32-bit finaliser: spreads every input bit over every output bit."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    return h ^ (h >> 16)


def unit_hash(unit_id: str | int) -> int:
    """``fnv1a32`` of the unit id's UTF-8 bytes (an integer id hashes as its decimal string)."""
    return fnv1a32(str(unit_id).encode("utf-8"))


def seed_hash(seed: str) -> int:
    """``fnv1a32`` of the seed's UTF-8 bytes."""
    return fnv1a32(seed.encode("utf-8"))


def draw(seed: str, unit_id: str | int) -> int:
    """The unit's bucket in ``[0, 10000)`` for ``seed``."""
    return fmix32(unit_hash(unit_id) ^ seed_hash(seed)) % BUCKETS


def round_half_up(x: float) -> int:
    """``floor(x + 0.5)``: the rounding every SDK uses for thresholds."""
    return math.floor(x + 0.5)


# -- configuration ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of an experiment and its share of the experiment's traffic (any positive scale)."""

    name: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Layer:
    """A set of mutually exclusive experiments; its salt makes it orthogonal to other layers."""

    name: str
    salt: str


@dataclass(frozen=True, slots=True)
class Holdout:
    """A global holdout: this fraction of all units sees no experiment."""

    salt: str
    fraction: float


@dataclass(frozen=True, slots=True)
class ExperimentConfig:
    """What an SDK needs to assign one experiment.

    Attributes:
        name: the experiment's unique name (also written to exposures).
        salt: seed of its draws; keep it when renaming, change it to reshuffle.
        variants: the arms, control first.
        traffic: fraction of eligible units included, in ``[0, 1]``.
        layer: name of its layer, or None for an experiment that overlaps all others.
        layer_buckets: the ``[start, end)`` range of layer buckets it owns (0..10000).
        forced: ``(unit_id, variant)`` pairs for QA allow-lists; they bypass every rule.
        shipped: the variant served to every unit outside the holdout once the experiment
            was shipped (None while it runs).
    """

    name: str
    salt: str
    variants: tuple[Variant, ...]
    traffic: float = 1.0
    layer: str | None = None
    layer_buckets: tuple[int, int] = (0, BUCKETS)
    forced: tuple[tuple[str, str], ...] = ()
    shipped: str | None = None

    def __post_init__(self) -> None:
        _check_experiment(self)

    @property
    def variant_names(self) -> tuple[str, ...]:
        """The variants' names, in the order indices refer to."""
        return tuple(v.name for v in self.variants)

    @property
    def weights(self) -> tuple[float, ...]:
        """Weights normalised to sum to 1 (the planned split, e.g. for the SRM check)."""
        total = sum(v.weight for v in self.variants)
        return tuple(v.weight / total for v in self.variants)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything an SDK needs to assign offline: experiments, layers and the holdout."""

    experiments: tuple[ExperimentConfig, ...] = ()
    layers: tuple[Layer, ...] = ()
    holdout: Holdout | None = None
    version: int = SNAPSHOT_VERSION
    _by_name: dict[str, ExperimentConfig] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_snapshot(self)
        self._by_name.update({e.name: e for e in self.experiments})

    def experiment(self, name: str) -> ExperimentConfig:
        """The experiment called ``name``.

        Raises:
            NotFound: no such experiment in the snapshot.
        """
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFound(
                f"experiment {name!r} is not in the snapshot", field="experiment"
            ) from None

    def layer(self, name: str) -> Layer:
        """The layer ``name``; :class:`NotFound` when the snapshot has none."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise NotFound(f"layer {name!r} is not in the snapshot", field="layer")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see ``docs/experiments.md``)."""
        return {
            "version": self.version,
            "holdout": None
            if self.holdout is None
            else {"salt": self.holdout.salt, "fraction": self.holdout.fraction},
            "layers": [{"name": la.name, "salt": la.salt} for la in self.layers],
            "experiments": [_experiment_dict(e) for e in self.experiments],
        }

    def to_json(self) -> str:
        """The snapshot as the JSON SDK clients load (:meth:`from_json` reads it back)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        """Read the JSON form.

        Raises:
            InvalidInput: a field is missing, unknown or out of range.
        """
        _only(data, {"version", "holdout", "layers", "experiments"}, "snapshot")
        version = data.get("version", SNAPSHOT_VERSION)
        if version != SNAPSHOT_VERSION:
            raise InvalidInput(
                f"snapshot version {version!r} is not supported (expected 1)", field="version"
            )
        hold = data.get("holdout")
        if hold is not None:
            _only(hold, {"salt", "fraction"}, "holdout")
        return cls(
            experiments=tuple(experiment_from_dict(e) for e in data.get("experiments", ())),
            layers=tuple(
                Layer(str(la["name"]), str(la.get("salt", la["name"])))
                for la in data.get("layers", ())
            ),
            holdout=None if hold is None else Holdout(str(hold["salt"]), float(hold["fraction"])),
        )

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        """A snapshot from its JSON text; malformed JSON is an :class:`InvalidInput` naming the position."""
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"snapshot is not valid JSON: {exc}", field="snapshot") from None


def _experiment_dict(e: ExperimentConfig) -> dict[str, Any]:
    out = {
        "name": e.name,
        "salt": e.salt,
        "variants": [{"name": v.name, "weight": v.weight} for v in e.variants],
        "traffic": e.traffic,
        "layer": e.layer,
        "layer_buckets": list(e.layer_buckets),
        "forced": dict(e.forced),
    }
    if e.shipped is not None:  # only then, so snapshots of running experiments are unchanged
        out["shipped"] = e.shipped
    return out


_EXPERIMENT_KEYS = {
    "name", "salt", "variants", "traffic", "layer", "layer_buckets", "forced", "shipped"
}  # fmt: skip


def experiment_from_dict(data: Mapping[str, Any]) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from its JSON form; ``salt`` defaults to the name."""
    _only(data, _EXPERIMENT_KEYS, "experiment")
    if "name" not in data or "variants" not in data:
        raise InvalidInput("an experiment needs 'name' and 'variants'", field="experiment")
    variants = tuple(
        Variant(str(v["name"]), float(v.get("weight", 1.0)))
        if isinstance(v, Mapping)
        else Variant(str(v))
        for v in data["variants"]
    )
    buckets = data.get("layer_buckets") or (0, BUCKETS)
    return ExperimentConfig(
        name=str(data["name"]),
        salt=str(data.get("salt") or data["name"]),
        variants=variants,
        traffic=float(data.get("traffic", 1.0)),
        layer=data.get("layer"),
        layer_buckets=(int(buckets[0]), int(buckets[1])),
        forced=tuple((str(k), str(v)) for k, v in (data.get("forced") or {}).items()),
        shipped=None if data.get("shipped") is None else str(data["shipped"]),
    )


def _only(data: Mapping[str, Any], allowed: set[str], what: str) -> None:
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{what} must be an object", field=what)
    unknown = set(data) - allowed
    if unknown:
        raise InvalidInput(f"{what}: unknown field(s) {', '.join(sorted(unknown))}", field=what)


def _check_experiment(e: ExperimentConfig) -> None:
    where = f"experiment {e.name!r}"
    if not e.name:
        raise InvalidInput("an experiment needs a name", field="name")
    if len(e.variants) < 2:
        raise InvalidInput(f"{where}: needs at least two variants", field="variants")
    names = [v.name for v in e.variants]
    if len(set(names)) != len(names):
        raise InvalidInput(f"{where}: variant names must be unique", field="variants")
    for v in e.variants:
        if not (v.weight > 0 and math.isfinite(v.weight)):
            raise InvalidInput(f"{where}: variant {v.name!r} weight must be > 0", field="variants")
    if not 0.0 <= e.traffic <= 1.0:
        raise InvalidInput(f"{where}: traffic must be in [0, 1], got {e.traffic}", field="traffic")
    start, end = e.layer_buckets
    if not 0 <= start < end <= BUCKETS:
        raise InvalidInput(
            f"{where}: layer_buckets must satisfy 0 <= start < end <= {BUCKETS}",
            field="layer_buckets",
        )
    if e.layer is None and (start, end) != (0, BUCKETS):
        raise InvalidInput(f"{where}: layer_buckets need a layer", field="layer_buckets")
    for unit, variant in e.forced:
        if variant not in names:
            raise InvalidInput(
                f"{where}: forced unit {unit!r} names unknown variant {variant!r}", field="forced"
            )
    if e.shipped is not None and e.shipped not in names:
        raise InvalidInput(f"{where}: shipped variant {e.shipped!r} is not one of its variants",
                           field="shipped")  # fmt: skip


def _check_snapshot(s: Snapshot) -> None:
    names = [e.name for e in s.experiments]
    if len(set(names)) != len(names):
        raise InvalidInput("snapshot: experiment names must be unique", field="experiments")
    layer_names = {la.name for la in s.layers}
    if len(layer_names) != len(s.layers):
        raise InvalidInput("snapshot: layer names must be unique", field="layers")
    if s.holdout is not None and not 0.0 <= s.holdout.fraction < 1.0:
        raise InvalidInput("snapshot: holdout fraction must be in [0, 1)", field="holdout")
    for e in s.experiments:
        if e.layer is not None and e.layer not in layer_names:
            raise InvalidInput(
                f"experiment {e.name!r}: layer {e.layer!r} is not defined", field="layer"
            )
    check_layer_ranges(s.experiments)


def check_layer_ranges(experiments: Iterable[ExperimentConfig]) -> None:
    """Experiments of one layer must own disjoint bucket ranges.

    Raises:
        InvalidInput: two experiments of a layer overlap.
    """
    by_layer: dict[str, list[ExperimentConfig]] = {}
    for e in experiments:
        if e.layer is not None and e.shipped is None:  # a shipped one holds no layer range
            by_layer.setdefault(e.layer, []).append(e)
    for layer, members in by_layer.items():
        members.sort(key=lambda e: e.layer_buckets)
        for a, b in zip(members, members[1:], strict=False):
            if b.layer_buckets[0] < a.layer_buckets[1]:
                raise InvalidInput(
                    f"layer {layer!r}: experiments {a.name!r} {list(a.layer_buckets)} and "
                    f"{b.name!r} {list(b.layer_buckets)} overlap",
                    field="layer_buckets",
                )


# -- compiled plan ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """An experiment's draws precomputed: seed hashes, thresholds and variant boundaries."""

    experiment: ExperimentConfig
    holdout_seed: int | None
    holdout_threshold: int
    layer_seed: int | None
    layer_start: int
    layer_end: int
    traffic_seed: int
    traffic_threshold: int
    variant_seed: int
    boundaries: tuple[int, ...]
    forced: dict[str, int]
    shipped: bool = False


def variant_boundaries(weights: Sequence[float]) -> tuple[int, ...]:
    """Cumulative bucket boundaries of the variants; the last is always 10000.

    >>> variant_boundaries([1, 1, 2])
    (2500, 5000, 10000)
    """
    total = float(sum(weights))
    cumulative = 0.0
    bounds = []
    for w in weights:
        cumulative += w
        bounds.append(round_half_up(BUCKETS * cumulative / total))
    bounds[-1] = BUCKETS
    return tuple(bounds)


def compile_plan(snapshot: Snapshot, name: str) -> Plan:
    """Precompute everything :func:`assign` needs for experiment ``name``."""
    e = snapshot.experiment(name)
    hold = snapshot.holdout
    layer = snapshot.layer(e.layer) if e.layer is not None else None
    index = {v.name: i for i, v in enumerate(e.variants)}
    if e.shipped is not None:
        return _shipped_plan(e, hold, index[e.shipped])
    return Plan(
        experiment=e,
        holdout_seed=None if hold is None else seed_hash(hold.salt),
        holdout_threshold=0 if hold is None else round_half_up(BUCKETS * hold.fraction),
        layer_seed=None if layer is None else seed_hash(layer.salt),
        layer_start=e.layer_buckets[0],
        layer_end=e.layer_buckets[1],
        traffic_seed=seed_hash(e.salt + ":traffic"),
        traffic_threshold=round_half_up(BUCKETS * e.traffic),
        variant_seed=seed_hash(e.salt + ":variant"),
        boundaries=variant_boundaries([v.weight for v in e.variants]),
        forced={unit: index[variant] for unit, variant in e.forced},
    )


def _shipped_plan(e: ExperimentConfig, hold: Holdout | None, winner: int) -> Plan:
    """Everyone outside the holdout in the shipped variant: no layer, full traffic, and
    boundaries that put every bucket in the winner (0 below it, 10000 from it on)."""
    return Plan(
        experiment=e,
        holdout_seed=None if hold is None else seed_hash(hold.salt),
        holdout_threshold=0 if hold is None else round_half_up(BUCKETS * hold.fraction),
        layer_seed=None,
        layer_start=0,
        layer_end=BUCKETS,
        traffic_seed=seed_hash(e.salt + ":traffic"),
        traffic_threshold=BUCKETS,
        variant_seed=seed_hash(e.salt + ":variant"),
        boundaries=tuple(0 if i < winner else BUCKETS for i in range(len(e.variants))),
        forced={},
        shipped=True,
    )


def _bucket(h: int, seed: int) -> int:
    return fmix32(h ^ seed) % BUCKETS


def assign_index(plan: Plan, unit_id: str | int) -> int:
    """Variant index of one unit under a compiled plan, or -1 when it is not in the experiment."""
    unit_id = str(unit_id)
    forced = plan.forced.get(unit_id)
    if forced is not None:
        return forced
    h = unit_hash(unit_id)
    if plan.holdout_seed is not None and _bucket(h, plan.holdout_seed) < plan.holdout_threshold:
        return NOT_ASSIGNED
    if (
        plan.layer_seed is not None
        and not plan.layer_start <= _bucket(h, plan.layer_seed) < plan.layer_end
    ):
        return NOT_ASSIGNED
    if _bucket(h, plan.traffic_seed) >= plan.traffic_threshold:
        return NOT_ASSIGNED
    bucket = _bucket(h, plan.variant_seed)
    for i, bound in enumerate(plan.boundaries):
        if bucket < bound:
            return i
    return NOT_ASSIGNED  # unreachable: the last boundary is BUCKETS


def assign(config: Snapshot | ExperimentConfig, experiment: str, unit_id: str | int) -> str | None:
    """The variant name of one unit, or None when it is not in the experiment.

    Args:
        config: a snapshot, or one experiment on its own (no layer, no holdout).
        experiment: the experiment's name.
        unit_id: the unit (a buyer id); an integer is taken as its decimal string.

    >>> e = ExperimentConfig("demo", "demo", (Variant("control"), Variant("treatment")))
    >>> assign(e, "demo", "buyer-1") in {"control", "treatment"}
    True
    """
    plan = compile_plan(_as_snapshot(config), experiment)
    i = assign_index(plan, unit_id)
    return None if i < 0 else plan.experiment.variants[i].name


SnapshotLike = Snapshot | ExperimentConfig | Mapping[str, Any] | str | os.PathLike
"""A snapshot, one experiment on its own, the snapshot's JSON as a dict or a string, or the
path of a JSON file (``tianping experiment snapshot > snapshot.json``)."""


def _as_snapshot(config: SnapshotLike) -> Snapshot:
    """The :class:`Snapshot` of any :data:`SnapshotLike`.

    Raises:
        InvalidInput: not a snapshot, invalid JSON, or a path that is not a readable file.
    """
    if isinstance(config, Snapshot):
        return config
    if isinstance(config, ExperimentConfig):
        return Snapshot(experiments=(config,))
    if isinstance(config, Mapping):
        return Snapshot.from_dict(config)
    if isinstance(config, str) and config.lstrip().startswith("{"):
        return Snapshot.from_json(config)
    if isinstance(config, str | os.PathLike):
        path = Path(config)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"snapshot {str(config)[:200]!r} is neither JSON nor a readable file "
                f"({getattr(exc, 'strerror', None) or exc})",
                field="snapshot",
            ) from None
        return Snapshot.from_json(text)
    raise InvalidInput(
        f"a snapshot is a Snapshot, a dict, a JSON string or a file path, not "
        f"{type(config).__name__}",
        field="snapshot",
    )


# -- vectorised ---------------------------------------------------------------------------

_P = np.uint32(FNV_PRIME)
_ZERO = 48
_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)


def unit_hashes(unit_ids: Any) -> np.ndarray:
    """``unit_hash`` of every id, vectorised (uint32 array).

    Fastest on numpy unicode arrays (``dtype='<U…'``) and integer arrays; lists, object arrays
    and Arrow arrays are converted first. Ids with non-ASCII characters are hashed exactly,
    one by one.
    """
    ids = np.asarray(unit_ids)
    if ids.ndim != 1:
        ids = ids.reshape(-1)
    if ids.dtype.kind in "iu":
        return _hash_integers(ids.astype(np.int64, copy=False))
    if ids.dtype.kind != "U":
        ids = ids.astype(str)
    return _hash_unicode(ids)


_CHUNK = 1 << 15


def _hash_unicode(ids: np.ndarray) -> np.ndarray:
    n = len(ids)
    h = np.full(n, FNV_OFFSET, dtype=np.uint32)
    if n == 0 or ids.dtype.itemsize == 0:
        return h
    # In blocks that stay in the CPU cache while every character position streams over them.
    for lo in range(0, n, _CHUNK):
        _hash_block(ids[lo : lo + _CHUNK], h[lo : lo + _CHUNK])
    return h


def _hash_block(ids: np.ndarray, h: np.ndarray) -> None:
    n, width = len(ids), ids.dtype.itemsize // 4
    columns = ids.view(np.uint32).reshape(n, width).T  # columns[j]: every id's j-th character
    lengths = np.strings.str_len(ids)
    shortest, longest = int(lengths.min()), int(lengths.max())
    for j in range(shortest):  # every id has this character: no mask
        np.bitwise_xor(h, columns[j], out=h)
        np.multiply(h, _P, out=h)
    tmp = np.empty(n, dtype=np.uint32)
    for j in range(shortest, longest):
        np.bitwise_xor(h, columns[j], out=tmp)
        np.multiply(tmp, _P, out=tmp)
        np.copyto(h, tmp, where=lengths > j)
    if longest == 0:
        return
    for i in np.flatnonzero(columns[:longest].max(axis=0) > 127):
        h[i] = unit_hash(str(ids[i]))  # non-ASCII: UTF-8 has several bytes per character


def _hash_integers(ids: np.ndarray) -> np.ndarray:
    if (ids == np.iinfo(np.int64).min).any():
        return _hash_unicode(ids.astype(str))
    n = len(ids)
    h = np.full(n, FNV_OFFSET, dtype=np.uint32)
    negative = ids < 0
    h[negative] = ((FNV_OFFSET ^ ord("-")) * FNV_PRIME) & MASK32
    mag = np.abs(ids)
    digits = np.searchsorted(_POW10, mag, side="right")
    digits[mag == 0] = 1
    for d in np.unique(digits):
        rows = np.flatnonzero(digits == d)
        part, x = h[rows], mag[rows]
        for j in range(int(d)):
            # A scalar divisor lets numpy divide fast; each group shares its digit count.
            digit = (x // _POW10[d - 1 - j]) % 10 + _ZERO
            part = (part ^ digit.astype(np.uint32)) * _P
        h[rows] = part
    return h


def fmix32_array(h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """:func:`fmix32` on a uint32 array (into ``out`` when given)."""
    out = np.copy(h) if out is None else out
    if out is not h:
        np.copyto(out, h)
    tmp = np.empty_like(out)
    for shift, mult in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        np.right_shift(out, np.uint32(shift), out=tmp)
        np.bitwise_xor(out, tmp, out=out)
        np.multiply(out, np.uint32(mult), out=out)
    np.right_shift(out, np.uint32(16), out=tmp)
    np.bitwise_xor(out, tmp, out=out)
    return out


def draws(seed: str, hashes: np.ndarray) -> np.ndarray:
    """:func:`draw` for many units given their :func:`unit_hashes` (uint32 buckets)."""
    return _draws_seed(seed_hash(seed), hashes)


def _draws_seed(seed: int, hashes: np.ndarray) -> np.ndarray:
    out = np.bitwise_xor(hashes, np.uint32(seed))
    fmix32_array(out, out=out)
    np.remainder(out, np.uint32(BUCKETS), out=out)
    return out


def assign_batch(
    config: SnapshotLike,
    experiment: str,
    unit_ids: Any,
    *,
    hashes: np.ndarray | None = None,
    names: bool = False,
) -> np.ndarray:
    """Variants of many units at once: indices (-1 where a unit is not in the experiment), or
    with ``names`` their names (None where not in it).

    Gives exactly the answer of :func:`assign` for each unit. Index ``i`` names
    ``config.experiment(experiment).variants[i]`` (0 is the control).

    Args:
        config: a snapshot, one experiment on its own (no layer, no holdout), the snapshot's
            JSON as a dict or a string, or the path of a JSON file (:data:`SnapshotLike`).
        experiment: the experiment's name.
        unit_ids: 1-D ids: a numpy unicode or integer array is fastest; lists, object arrays
            and Arrow arrays work too.
        hashes: :func:`unit_hashes` of the same ids, to reuse across experiments.
        names: return variant names (an object array) instead of indices.

    Returns:
        An int16 array as long as ``unit_ids`` (an object array of names with ``names``).

    >>> e = ExperimentConfig("demo", "demo", (Variant("control"), Variant("treatment")))
    >>> assign_batch(e, "demo", np.array(["b1", "b2", "b3"])).tolist()
    [0, 1, 0]
    >>> snap = '{"experiments": [{"name": "demo", "variants": ["control", "treatment"]}]}'
    >>> assign_batch(snap, "demo", ["b1", "b2"], names=True).tolist()
    ['control', 'treatment']
    """
    snapshot = _as_snapshot(config)
    out = _indices(snapshot, experiment, unit_ids, hashes)
    return variant_labels(snapshot, experiment, out) if names else out


def _indices(snapshot: Snapshot, experiment: str, unit_ids: Any, hashes) -> np.ndarray:
    plan = compile_plan(snapshot, experiment)
    h = unit_hashes(unit_ids) if hashes is None else hashes
    bucket = _draws_seed(plan.variant_seed, h)
    out = np.searchsorted(
        np.asarray(plan.boundaries, dtype=np.uint32), bucket, side="right"
    ).astype(np.int16)
    if plan.traffic_threshold < BUCKETS:
        out[_draws_seed(plan.traffic_seed, h) >= plan.traffic_threshold] = NOT_ASSIGNED
    if plan.holdout_seed is not None and plan.holdout_threshold > 0:
        out[_draws_seed(plan.holdout_seed, h) < plan.holdout_threshold] = NOT_ASSIGNED
    if plan.layer_seed is not None:
        layer = _draws_seed(plan.layer_seed, h)
        out[(layer < plan.layer_start) | (layer >= plan.layer_end)] = NOT_ASSIGNED
    if plan.forced:
        _apply_forced(out, unit_ids, plan.forced)
    return out


def _apply_forced(out: np.ndarray, unit_ids: Any, forced: dict[str, int]) -> None:
    ids = np.asarray(unit_ids).reshape(-1)
    ids = ids.astype(str) if ids.dtype.kind != "U" else ids
    keys = np.array(list(forced), dtype=str)
    for i in np.flatnonzero(np.isin(ids, keys)):
        out[i] = forced[str(ids[i])]


def variant_labels(config: SnapshotLike, experiment: str, indices: np.ndarray) -> np.ndarray:
    """Variant names for indices from :func:`assign_batch` (None where -1), as an object array."""
    names = np.array(
        [*_as_snapshot(config).experiment(experiment).variant_names, None], dtype=object
    )
    return names[np.where(indices < 0, len(names) - 1, indices)]
