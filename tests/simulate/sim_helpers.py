"""Helpers for the simulator's tests: run a small simulation into Parquet and read it back."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tianping.simulate.service import run_simulation


def simulate_to(folder: Path, **kwargs) -> dict[str, pa.Table]:
    """Run a simulation into Parquet files only and read every table back.

    The run's :class:`~tianping.simulate.service.SimulationResult` is under ``"_result"``.
    """
    result = run_simulation(None, out=folder, **kwargs)
    tables = {p.stem: pq.read_table(p) for p in folder.glob("*.parquet")}
    tables |= {p.stem: pq.read_table(p) for p in (folder / "ground_truth").glob("*.parquet")}
    tables["_result"] = result
    return tables
