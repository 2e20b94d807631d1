"""How the CLI lays out what it prints: global options anywhere, tables that fit (pure parts)."""

from __future__ import annotations

from datetime import date

from tianping.cli.common import column_groups, plain_table
from tianping.cli.main import hoist_global_options
from tianping.demo import race_days


def test_global_options_after_the_subcommand_move_in_front_of_it():
    assert hoist_global_options(["metrics", "--grain", "day", "--home", "h"]) == [
        "--home", "h", "metrics", "--grain", "day"]  # fmt: skip
    assert hoist_global_options(["--home", "a", "keys", "list", "--store=s"]) == [
        "--home", "a", "--store=s", "keys", "list"]  # fmt: skip
    assert hoist_global_options(["ingest", "orders", "--", "--home"]) == [
        "ingest", "orders", "--", "--home"]  # after --, a value like any other  # fmt: skip
    assert hoist_global_options(["--version"]) == ["--version"]


def test_wide_tables_split_into_blocks_that_repeat_their_labels():
    columns = ["period", "category", *(f"metric_{i}" for i in range(12))]
    cells = [["2024-04-01", "electronics", *("123,456.78" for _ in range(12))]]
    groups = column_groups(columns, cells, width=80, keys=2)
    assert all(g[:2] == [0, 1] for g in groups) and len(groups) > 1
    assert sorted({i for g in groups for i in g}) == list(range(len(columns)))  # none dropped
    widths = [1 + sum(max(len(columns[i]), len(cells[0][i])) + 3 for i in g) for g in groups]
    assert max(widths) <= 80


def test_plain_tables_are_aligned_text_without_box_drawing():
    text = plain_table(["merchant", "score"], [["M000114", "4.57"], ["M2", "10.00"]],
                       [False, True], title="quality")  # fmt: skip
    assert text.splitlines() == ["quality", "merchant  score", "M000114    4.57", "M2        10.00"]


def test_the_demo_steps_its_race_on_days_spread_over_the_window():
    assert race_days(date(2024, 4, 15), date(2024, 5, 30)) == [
        date(2024, 4, 21), date(2024, 5, 11), date(2024, 5, 30)]  # fmt: skip
    assert race_days(date(2024, 5, 28), date(2024, 5, 30)) == [date(2024, 5, 30)]
