"""``tianping sources check``: do the mapped tables hold what tianping expects?

Two passes per mapped table. Over the **whole table**, one aggregate: rows, required values
that are missing, negative amounts, currencies other than the marketplace's, and keys that
appear more than once (one grouped count). Over a **random sample** of rows, every value by
the same rules as ``tianping ingest`` (:mod:`tianping.events.validation`): formats, decimals,
ranges, enums — run in DuckDB on the sample, whatever engine holds the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import ibis
import pyarrow as pa

from tianping.events.schema import TABLES
from tianping.events.validation import column_sql, q
from tianping.warehouse.backend import Warehouse
from tianping.warehouse.mapped import MappedTable, Problem

SAMPLE = 10_000
#: Examples quoted per problem.
EXAMPLES = 1


@dataclass
class TableCheck:
    """What the check found in one mapped table."""

    name: str
    origin: str
    rows: int = 0
    sampled: int = 0
    problems: list[Problem] = field(default_factory=list)


@dataclass
class SourcesCheck:
    """Every mapped table's check; ``ok`` when none found a problem."""

    sources: str
    tables: list[TableCheck]

    @property
    def problems(self) -> list[Problem]:
        """All problems, table by table."""
        return [p for t in self.tables for p in t.problems]

    @property
    def ok(self) -> bool:
        """No table has a problem."""
        return not self.problems


def check_sources(wh: Warehouse, *, sample: int = SAMPLE, currency: str = "CNY") -> SourcesCheck:
    """Check every mapped table of ``wh`` (whole-table counts, then a sample by ingest's rules)."""
    checks = [_check_table(wh, m, sample=sample, currency=currency) for m in wh.mapped.values()]
    return SourcesCheck(wh.sources, checks)


def _check_table(wh: Warehouse, m: MappedTable, *, sample: int, currency: str) -> TableCheck:
    out = TableCheck(m.name, m.source.origin)
    schema = TABLES[m.name]
    raw, typed = m.raw, m.typed
    aggs = {"_rows": raw.count()}
    for col in schema.columns:
        if col.required:
            aggs[f"null_{col.name}"] = raw[col.name].isnull().sum()
    if m.currency is not None:
        aggs["other_currency"] = _other(raw, currency).sum()
    counts = _one_row(wh, raw.aggregate(**aggs))
    money = {
        f"neg_{c.name}": (typed[c.name] < 0).sum() for c in schema.columns if c.kind == "money"
    }
    if money:
        counts.update(_one_row(wh, typed.aggregate(**money)))
    out.rows = int(counts["_rows"] or 0)
    for col in schema.columns:
        missing = int(counts.get(f"null_{col.name}") or 0)
        if missing:
            out.problems.append(
                Problem(
                    m.name,
                    col.name,
                    f"{_n(missing)} of {_n(out.rows)} rows have no value (required)",
                )
            )
        negative = int(counts.get(f"neg_{col.name}") or 0)
        if negative:
            out.problems.append(
                Problem(
                    m.name, col.name, f"{_n(negative)} rows are negative (amounts must be >= 0)"
                )
            )
    if m.currency is not None and int(counts.get("other_currency") or 0):
        found = wh.to_arrow(
            raw.filter(_other(raw, currency))
            .group_by("_currency")
            .agg(n=ibis._.count())
            .order_by(ibis.desc("n"))
            .limit(3)
        ).to_pylist()
        shown = ", ".join(f"{r['_currency']} ({_n(r['n'])})" for r in found)
        out.problems.append(
            Problem(
                m.name,
                "currency",
                f"{_n(int(counts['other_currency']))} rows are not in {currency.upper()}: {shown}",
            )
        )
    out.problems.extend(_duplicate_keys(wh, m))
    sampled, found = _sample_problems(wh, m, sample=sample, rows=out.rows)
    out.sampled = sampled
    out.problems.extend(found)
    return out


def _other(raw: ibis.Table, currency: str) -> ibis.Value:
    return raw["_currency"].isnull() | (raw["_currency"].upper() != currency.upper())


def _one_row(wh: Warehouse, expr: ibis.Table) -> dict:
    rows = wh.to_arrow(expr).to_pylist()
    return rows[0] if rows else {}


def _duplicate_keys(wh: Warehouse, m: MappedTable) -> list[Problem]:
    schema = TABLES[m.name]
    keys = list(schema.key)
    t = m.typed
    repeated = t.group_by(keys).agg(_n=ibis._.count()).filter(ibis._._n > 1)
    summary = _one_row(wh, repeated.aggregate(keys=repeated.count(), extra=(repeated._n - 1).sum()))
    n = int(summary.get("keys") or 0)
    if not n:
        return []
    example = wh.to_arrow(repeated.order_by(ibis.desc("_n")).limit(1)).to_pylist()[0]
    shown = ", ".join(f"{k}={example[k]}" for k in keys)
    return [
        Problem(
            m.name,
            ",".join(keys),
            f"{_n(n)} keys appear more than once ({_n(int(summary['extra']))} extra rows; "
            f"e.g. {shown}, {example['_n']} times): each row must have its own key",
        )
    ]


def _sample_problems(
    wh: Warehouse, m: MappedTable, *, sample: int, rows: int
) -> tuple[int, list[Problem]]:
    if rows == 0 or sample <= 0:
        return 0, []
    raw = m.raw
    data = None
    if rows > sample:
        try:
            sampled = raw.sample(min(1.0, 1.5 * sample / rows), seed=20241111)
            data = wh.to_arrow(sampled.limit(sample))
        except Exception:  # an engine without TABLESAMPLE: the first rows instead
            data = None
    if data is None:
        data = wh.to_arrow(raw.limit(sample))
    return data.num_rows, _validate(m, data, scale=wh.scale)


def _validate(m: MappedTable, data: pa.Table, *, scale: int) -> list[Problem]:
    schema = TABLES[m.name]
    con = duckdb.connect()
    try:
        con.register("_s", data)
        types = dict(
            con.execute(
                "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM _s)"
            ).fetchall()
        )
        key = schema.key[0]
        aggs, meta = [], []
        for col in schema.columns:
            if col.name not in types or types[col.name] == '"NULL"':
                continue
            zone = m.zones.get(col.name) or "UTC"
            sql = column_sql(col, types[col.name], scale=scale, tz=zone)
            for condition, reason in sql.checks:
                whole_table = reason == "missing value" or (
                    col.kind == "money" and reason.startswith("must be >=")
                )
                if condition == "FALSE" or whole_table:
                    continue  # missing values and negative amounts are counted over every row
                cond = f"coalesce({condition}, false)"
                aggs.append(
                    f"count(*) FILTER (WHERE {cond}), "
                    f"first({sql.raw}) FILTER (WHERE {cond}), "
                    f"first(CAST({q(key)} AS VARCHAR)) FILTER (WHERE {cond})"
                )
                meta.append((col.name, reason))
        if not aggs:
            return []
        row = con.execute(f"SELECT {', '.join(aggs)} FROM _s").fetchone()
    finally:
        con.close()
    problems = []
    for i, (column, reason) in enumerate(meta):
        n, value, at = row[3 * i], row[3 * i + 1], row[3 * i + 2]
        if n:
            problems.append(
                Problem(
                    m.name,
                    column,
                    f"{reason} in {_n(n)} of {_n(data.num_rows)} sampled rows "
                    f"(e.g. {key} {at}: {value!r})",
                )
            )
    return problems


def _n(n: int) -> str:
    return f"{n:,}"
