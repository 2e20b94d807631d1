"""Run a simulation: generate chunk by chunk, write the warehouse (and Parquet), keep the truth.

Buyers are simulated in chunks of ``chunk_buyers`` so memory stays flat at any size; each
chunk's rows are appended to the warehouse as they are made. The same seed, sizes, scenario
and chunk size give the same data, byte for byte. A run replaces every table it writes; a run
that is interrupted leaves partial tables behind, and running it again replaces them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tianping.errors import InvalidInput, UsageError
from tianping.simulate import columns
from tianping.simulate.assign import scenario_assigner
from tianping.simulate.calendar import festival_days
from tianping.simulate.marketplace import ChunkEvents, simulate_chunk
from tianping.simulate.params import MarketParams, check_size
from tianping.simulate.scenario import Scenario, parse_scenario
from tianping.simulate.tables import (
    EVENT_TABLES,
    Numbering,
    chunk_tables,
    merchants_truth,
    products_truth,
    width,
)
from tianping.simulate.world import World, build_world

CHUNK_BUYERS = 50_000
SHIPPED = ("default", "baseline", "rings")
TRUTH_FILE = "truth.json"

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """What a run wrote: rows per table, the truth document and where files went."""

    rows: dict[str, int]
    truth: dict[str, Any]
    seconds: float
    files: tuple[Path, ...] = ()


def start_date(text: str) -> date:
    """The first simulated day from an ISO date.

    Raises:
        UsageError: not an ISO date.
    """
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"start must be an ISO date like 2024-04-01, not {text!r}", field="start"
        ) from None


def refuse_existing_events(wh: Any, *, where: Path, command: str) -> None:
    """Stop before a simulation replaces event data the warehouse already holds.

    Raises:
        UsageError: naming how many rows of which tables are there and how to go on
            (``--rebuild``, or another home).
    """
    mapped = sorted(set(getattr(wh, "mapped", {})) & set(EVENT_TABLES))
    if mapped:
        raise UsageError(
            f"the sources file maps {', '.join(mapped)} onto your own tables, and tianping "
            f"never writes to them; `tianping {command}` fills tianping's own warehouse: run "
            "it without --sources (and TIANPING_SOURCES), in a home of its own",
            field="sources",
        )
    held = {t: wh.row_count(t) for t in EVENT_TABLES if wh.has_table(t)}
    held = {t: n for t, n in held.items() if n}
    if held:
        what = ", ".join(f"{n:,} {t}" for t, n in held.items())
        raise UsageError(
            f"{where} already holds event data ({what}); `tianping {command} --rebuild` "
            f"replaces it with a simulation, or choose an empty home with "
            f"`tianping --home DIR {command}`",
            field="home",
        )


def load_scenario(source: str | Path | None) -> Scenario:
    """A shipped scenario by name (``default``, ``baseline``, ``rings``) or a YAML file; None = default.

    Raises:
        UsageError: the file cannot be read.
        InvalidInput: the scenario is not valid.
    """
    if source is None or str(source) in SHIPPED:
        name = "default" if source is None else str(source)
        text = resources.files("tianping").joinpath(f"scenarios/{name}.yaml").read_text("utf-8")
        return parse_scenario(text, f"{name}.yaml")
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read scenario {path}: {exc}", field="scenario") from None
    return parse_scenario(text, str(path))


def run_simulation(
    wh: Any,
    *,
    buyers: int,
    merchants: int | None = None,
    days: int = 90,
    seed: int = 0,
    start: date | None = None,
    scenario: Scenario | None = None,
    params: MarketParams | None = None,
    out: Path | None = None,
    truth_dir: Path | None = None,
    chunk_buyers: int = CHUNK_BUYERS,
    progress: Progress | None = None,
) -> SimulationResult:
    """Simulate the marketplace into the warehouse ``wh`` (and Parquet under ``out``).

    Args:
        wh: a :class:`tianping.warehouse.Warehouse` (DuckDB or Spark), or None for files only.
        buyers, merchants, days: sizes; merchants default to one per 20 buyers (at least 20).
        seed: the seed of every random draw.
        start: first simulated day (default 2024-04-01, so 90 days include 618).
        scenario: experiments with true effects (default: none).
        params: model parameters (default: the calibrated :class:`MarketParams`).
        out: folder for Parquet copies of every table and the truth (``out/ground_truth``).
        truth_dir: folder for ``truth.json`` (the CLI uses ``<home>/ground_truth``).
        chunk_buyers: buyers per chunk; part of what makes a run reproducible.
        progress: called with (buyers done, buyers in total) after each chunk.

    Raises:
        InvalidInput: a size or the scenario is out of range.
        UsageError: the warehouse's currency does not have 2 decimals.
    """
    began = time.perf_counter()
    merchants = max(20, buyers // 20) if merchants is None else merchants
    check_size(buyers, merchants, days)
    if chunk_buyers < 1:
        raise InvalidInput("chunk_buyers must be positive", field="chunk_buyers")
    if wh is not None and getattr(wh, "scale", 2) != 2:
        raise UsageError("the simulator writes CNY amounts: use a currency with 2 decimals")
    scenario = scenario or Scenario()
    params = scenario.apply_market((params or MarketParams()).with_window(start, days))
    buyer_width = width(buyers, 8)
    assign = scenario_assigner(scenario, lambda n: columns.fixed_ids_unicode("B", n, buyer_width))
    world = build_world(params, scenario, seed, merchants, assign)
    ids = Numbering.for_sizes(buyers, merchants, world.products.size)
    sink = _Sink(wh, out)
    tally = _Tally.for_world(world)
    try:
        for index, first in enumerate(range(0, buyers, chunk_buyers)):
            n = min(chunk_buyers, buyers - first)
            events = simulate_chunk(world, index, first, n)
            tally.add(events)
            sink.write(chunk_tables(world, events, ids))
            if progress is not None:
                progress(first + n, buyers)
        sink.write(
            {
                "sim_merchants": merchants_truth(world, ids),
                "sim_products": products_truth(world, ids),
            }
        )
        truth = truth_document(world, scenario, buyers, chunk_buyers, tally, sink.rows)
        sink.write({"sim_truth": pa.table({"json": [json.dumps(truth)]})})
    finally:
        sink.flush()
    files = sink.close(truth, truth_dir)
    return SimulationResult(dict(sink.rows), truth, time.perf_counter() - began, files)


@dataclass(slots=True)
class _Tally:
    """Running counts the truth document needs: exposures and NPS gains per arm, abusers."""

    exposed: list[np.ndarray]
    nps_gain: list[np.ndarray]
    honesty: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.int64))

    @classmethod
    def for_world(cls, world: World) -> _Tally:
        sizes = [p.spec.arms for p in world.experiments]
        return cls(
            [np.zeros(len(a), np.int64) for a in sizes], [np.zeros((2, len(a))) for a in sizes]
        )

    def add(self, ev: ChunkEvents) -> None:
        x = ev.exposures
        for e, counts in enumerate(self.exposed):
            counts += np.bincount(x["arm"][x["experiment"] == e], minlength=counts.size)
            self.nps_gain[e] += ev.nps_effect[e]
        self.honesty += np.bincount(ev.buyers.honesty, minlength=3)


class _Sink:
    """Writes each table to the warehouse (replace on first write, then append) and Parquet.

    On DuckDB and for files, a chunk is written by a background thread while the next chunk is
    simulated (DuckDB, Arrow and most of NumPy release the GIL, so the two cores both work);
    at most one chunk is in flight, and writes keep their order. Spark writes in the caller's
    thread.
    """

    def __init__(self, wh: Any, out: Path | None):
        self.wh, self.out = wh, out
        self.rows: dict[str, int] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._paths: list[Path] = []
        background = wh is None or getattr(wh, "kind", "duckdb") == "duckdb"
        self._pool = ThreadPoolExecutor(1, "tianping-sink") if background else None
        self._pending: Future | None = None
        if out is not None:
            (out / "ground_truth").mkdir(parents=True, exist_ok=True)

    def write(self, tables: dict[str, pa.Table]) -> None:
        """Queue ``tables`` for writing, after the previous chunk's writes have finished."""
        plan = []
        for name, table in tables.items():
            plan.append((name, table, name in self.rows))
            self.rows[name] = self.rows.get(name, 0) + table.num_rows
        self.flush()
        if self._pool is None:
            self._store(plan)
        else:
            self._pending = self._pool.submit(self._store, plan)

    def flush(self) -> None:
        """Wait for the write in flight; re-raise its error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _store(self, plan: list[tuple[str, pa.Table, bool]]) -> None:
        for name, table, seen in plan:
            if self.wh is not None:
                (self.wh.append if seen else self.wh.replace)(name, table)
            if self.out is not None:
                self._parquet(name, table)

    def _parquet(self, name: str, table: pa.Table) -> None:
        writer = self._writers.get(name)
        if writer is None:
            folder = self.out if name in EVENT_TABLES else self.out / "ground_truth"
            path = folder / f"{name}.parquet"
            writer = self._writers[name] = pq.ParquetWriter(path, table.schema)
            self._paths.append(path)
        writer.write_table(table)

    def close(self, truth: dict[str, Any], truth_dir: Path | None) -> tuple[Path, ...]:
        self.flush()
        if self._pool is not None:
            self._pool.shutdown()
        for writer in self._writers.values():
            writer.close()
        text = json.dumps(truth, indent=2, ensure_ascii=False) + "\n"
        folders = [d for d in (truth_dir, self.out and self.out / "ground_truth") if d is not None]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / TRUTH_FILE).write_text(text, encoding="utf-8")
            self._paths.append(folder / TRUTH_FILE)
        return tuple(self._paths)


def truth_document(
    world: World,
    scenario: Scenario,
    buyers: int,
    chunk_buyers: int,
    tally: _Tally,
    rows: dict[str, int],
) -> dict[str, Any]:
    """The scenario's ground truth as JSON-ready data (documented in ``docs/simulator.md``)."""
    p = world.params
    end = p.start + timedelta(days=p.days)
    return {
        "seed": world.seed,
        "start": p.start.isoformat(),
        "end": end.isoformat(),
        "days": p.days,
        "buyers": buyers,
        "merchants": world.merchants.size,
        "products": world.products.size,
        "chunk_buyers": chunk_buyers,
        "scenario": {"name": scenario.name, "description": scenario.description},
        "festivals": festival_days(p),
        "population": {
            "honest": int(tally.honesty[0]),
            "opportunists": int(tally.honesty[1]),
            "professionals": int(tally.honesty[2]),
            "lemon_products": int(world.products.lemon.sum()),
        },
        "experiments": [_experiment_truth(world, e, tally) for e in range(len(world.experiments))],
        "rows": dict(rows),
        "parameters": json.loads(json.dumps(dataclasses.asdict(p), default=str)),
    }


def _experiment_truth(world: World, e: int, tally: _Tally) -> dict[str, Any]:
    plan, start = world.experiments[e], world.params.start
    gain_sum, responses = tally.nps_gain[e]
    arms = []
    for a, arm in enumerate(plan.spec.arms):
        n = responses[a]
        arms.append({
            "name": arm.name,
            "weight": arm.weight,
            "effects": arm.effects.as_dict(),
            "nps_latent_shift": float(plan.nps_shift[a]),
            "exposed": int(tally.exposed[e][a]),
            "nps_responses": int(n),
            "expected_nps_points": float(100 * gain_sum[a] / n) if n else None,
        })  # fmt: skip
    value = [(1 + a.effects.conversion) * (1 + a.effects.order_value) for a in plan.spec.arms]
    return {
        "name": plan.spec.name,
        "kind": plan.spec.kind,
        "description": plan.spec.description,
        "salt": plan.spec.name,
        "layer": plan.spec.layer,
        "traffic": plan.spec.traffic,
        "start": (start + timedelta(days=plan.start)).isoformat(),
        "end": (start + timedelta(days=plan.end)).isoformat(),
        "arms": arms,
        "best_arm": plan.spec.arms[int(np.argmax(value))].name,
    }
