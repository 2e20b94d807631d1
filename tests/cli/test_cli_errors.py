"""What a new user gets wrong on the command line is answered in one line, with the exit status
the README documents (1: nothing to answer from, 2: bad usage), never a traceback, and never a
database created where nobody asked for one."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tianping.cli.main import app

runner = CliRunner()
TIANPING = str(Path(sys.executable).parent / "tianping")


def run(*args: str):
    return runner.invoke(app, list(args))


def one_line(out) -> str:
    text = out.output.strip()
    assert "Traceback" not in text, text
    assert len(text.splitlines()) == 1, text
    return text


@pytest.fixture
def orders_csv(tmp_path):
    path = tmp_path / "orders.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["order_id", "buyer_id", "merchant_id", "category", "amount", "created_at"])
        w.writerow(["o1", "b1", "m1", "food", "10.10", "2024-03-01T10:00:00Z"])
        w.writerow(["o2", "b2", "m1", "toys", "20.20", "2024-03-02T10:00:00Z"])
    return path


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("notaurl", "'notaurl' is not a store URL"),
        ("foo://bar", "the store URL foo://bar (--store / TIANPING_STORE) names a database"),
        (
            "postgresql+psycopg://someone:secret@127.0.0.1:1/db",
            "cannot open the store postgresql+psycopg://someone:***@127.0.0.1:1/db",
        ),
    ],
)
def test_a_bad_store_is_one_line_and_exit_2(tmp_path, store, message):
    out = run("--home", str(tmp_path / "h"), "--store", store, "keys", "create", "--role", "admin")
    assert out.exit_code == 2 and message in one_line(out)
    assert "secret" not in out.output  # the password is never printed


def test_a_store_or_warehouse_in_a_missing_folder_is_an_error_not_a_new_database(tmp_path):
    typo = tmp_path / "nope" / "store.sqlite"
    out = run("--home", str(tmp_path / "h"), "--store", f"sqlite:///{typo}", "keys", "create",
              "--role", "admin")  # fmt: skip
    assert out.exit_code == 2
    assert f"--store: the folder {typo.parent} does not exist" in one_line(out)
    wh = tmp_path / "nope" / "w.duckdb"
    out = run("--home", str(tmp_path / "h"), "--warehouse", f"duckdb://{wh}", "simulate",
              "--buyers", "100", "--days", "5")  # fmt: skip
    assert out.exit_code == 2 and f"--warehouse: the folder {wh.parent} does not exist" in one_line(
        out
    )
    assert not (tmp_path / "nope").exists() and not (tmp_path / "h").exists()


def test_a_mistyped_warehouse_file_is_not_created_by_a_read(tmp_path):
    typo = tmp_path / "warehuose.duckdb"
    out = run("--home", str(tmp_path), "--warehouse", f"duckdb://{typo}", "metrics")
    assert out.exit_code == 1
    assert f"no warehouse data at {typo} yet: `tianping demo`" in one_line(out)
    assert not typo.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["metrics"], "no warehouse data in {home} yet: `tianping demo`"),
        (["metrics", "explain", "--from", "2024-01", "--to", "2024-02"], "no warehouse data in"),
        (["merchants", "quality"], "no warehouse data in"),
        (["goal", "status"], "nothing is recorded in {home} yet"),
        (["decision", "list"], "nothing is recorded in {home} yet"),
        (["keys", "list"], "nothing is recorded in {home} yet"),
        (["experiment", "list"], "nothing is recorded in {home} yet"),
        (["race", "list"], "nothing is recorded in {home} yet"),
        (["audit"], "nothing is recorded in {home} yet"),
    ],
)
def test_read_commands_on_an_empty_home_say_so(tmp_path, args, message):
    home = tmp_path / "empty"
    out = run("--home", str(home), *args)
    assert out.exit_code == 1, out.output
    assert message.format(home=home) in one_line(out)
    assert not home.exists()  # a read creates nothing


def test_an_empty_list_says_so_on_stderr_and_succeeds(tmp_path):
    home = tmp_path / "h"
    assert run("--home", str(home), "keys", "create", "--role", "admin").exit_code == 0
    out = run("--home", str(home), "decision", "list")
    assert out.exit_code == 0
    assert one_line(out).startswith("no decisions yet: `tianping decision propose")
    assert out.stdout.strip() == ""  # nothing on stdout for a pipe
    out = run("--home", str(home), "decision", "list", "--format", "json")
    assert out.exit_code == 0 and json.loads(out.stdout) == []


def test_simulate_refuses_to_replace_ingested_orders_without_rebuild(tmp_path, orders_csv):
    home = tmp_path / "h"
    assert run("--home", str(home), "ingest", "orders", str(orders_csv)).exit_code == 0
    out = run("--home", str(home), "simulate", "--buyers", "300", "--days", "20")
    assert out.exit_code == 2
    assert "already holds event data (2 orders); `tianping simulate --rebuild`" in one_line(out)
    metrics = run("--home", str(home), "metrics", "--format", "json")
    assert [r["orders"] for r in json.loads(metrics.stdout)] == [1, 1]  # untouched
    out = run("--home", str(home), "simulate", "--buyers", "300", "--days", "20", "--rebuild",
              "--format", "json")  # fmt: skip
    assert out.exit_code == 0, out.output
    rows = {r["table"]: r["rows"] for r in json.loads(out.stdout)}
    assert rows["orders"] > 2


EXPERIMENT = """\
name: red-packet
hypothesis: a red packet at checkout converts more buyers
variants:
  - name: control
  - name: packet
primery_metric: orders
start_date: 2024-03-01
"""


def test_yaml_errors_name_the_file_the_line_and_the_key_meant(tmp_path):
    typo = tmp_path / "exp.yaml"
    typo.write_text(EXPERIMENT)
    out = run("--home", str(tmp_path / "h"), "experiment", "create", str(typo))
    assert out.exit_code == 1
    assert one_line(out) == (
        f"error: {typo}:6: unknown key 'primery_metric' (did you mean 'primary_metric'?)"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nvariants: [a\n  b: c\n")
    out = run("--home", str(tmp_path / "h"), "experiment", "create", str(broken))
    assert out.exit_code == 1
    text = one_line(out)
    assert text.startswith(f"error: {broken}:3:4: not valid YAML: expected ',' or ']'")
    assert "<unicode string>" not in text
    nested = tmp_path / "nested.yaml"
    nested.write_text(EXPERIMENT.replace("  - name: packet", "  - name: packet\n    wieght: 2")
                      .replace("primery_metric", "primary_metric"))  # fmt: skip
    out = run("--home", str(tmp_path / "h"), "experiment", "create", str(nested))
    assert "nested.yaml:6: unknown key 'variants.1.wieght' (did you mean 'weight'?)" in one_line(
        out
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text("default:\n  approvers: [Ada, Oli, Bo]\n  requried: 2\n")
    out = run(
        "--home", str(tmp_path / "h"), "decision", "rules", "set", str(rules), "--actor", "Ada"
    )
    assert out.exit_code == 1
    assert (
        f"{rules}:3: rules.default: unknown key 'requried' (did you mean 'required'?)"
        in one_line(out)
    )


def test_analysing_an_experiment_without_exposures_is_one_line(tmp_path, orders_csv):
    home = tmp_path / "h"
    assert run("--home", str(home), "ingest", "orders", str(orders_csv)).exit_code == 0
    spec = tmp_path / "exp.yaml"
    spec.write_text(EXPERIMENT.replace("primery_metric", "primary_metric"))
    assert run("--home", str(home), "experiment", "create", str(spec)).exit_code == 0
    out = run("--home", str(home), "experiment", "analyze", "red-packet")
    assert out.exit_code == 1
    assert "experiment 'red-packet' has no exposures from 2024-03-01 to" in one_line(out)
    out = run("--home", str(home), "experiment", "analyze", "nope")
    assert out.exit_code == 2 and "no experiment" in one_line(out)


def test_global_options_may_follow_the_subcommand(tmp_path, orders_csv):
    home = tmp_path / "h"
    out = run("ingest", "orders", str(orders_csv), "--home", str(home))
    assert out.exit_code == 0, out.output
    out = run("metrics", "--grain", "month", "--format", "json", f"--home={home}")
    assert out.exit_code == 0 and json.loads(out.stdout)[0]["orders"] == 2
    out = run("keys", "create", "--role", "admin", "--name", "Ada", "--home", str(home),
              "--store", f"sqlite:///{tmp_path / 'other.sqlite'}")  # fmt: skip
    assert out.exit_code == 0 and (tmp_path / "other.sqlite").exists()
    assert not (home / "store.sqlite").exists()


def test_serve_on_a_busy_port_fails_before_its_banner(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([TIANPING, "--home", str(tmp_path), "serve", "--port", str(port)],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use (is another server "
        "running there? choose another --port)"
    )


def test_tables_are_plain_when_piped_and_csv_or_json_everywhere(tmp_path, orders_csv):
    home = tmp_path / "h"
    run("--home", str(home), "ingest", "orders", str(orders_csv))
    out = run("--home", str(home), "metrics", "--grain", "day", "--by", "category")
    assert out.exit_code == 0
    assert not set("┃│┏━╇") & set(out.stdout) and "…" not in out.stdout
    lines = out.stdout.splitlines()  # two days, many metrics: one line per metric
    assert lines[1].split() == ["period", "2024-03-01", "2024-03-02"]
    assert lines[2].split() == ["category", "food", "toys"]
    assert lines[3].split() == ["gmv", "10.10", "20.20"]
    out = run("--home", str(home), "metrics", "explain", "--from", "2024-03-01", "--to",
              "2024-03-02", "--grain", "day", "--format", "csv")  # fmt: skip
    assert out.exit_code == 0
    head = out.stdout.splitlines()[0]
    assert head.startswith("section,factor,before,after,contribution,category")
    assert {line.split(",")[0] for line in out.stdout.splitlines()[1:]} == {
        "contributions",
        "movers",
    }


def test_metrics_why_names_a_bad_dimension_and_a_too_short_period(tmp_path, orders_csv):
    home = tmp_path / "h"
    run("--home", str(home), "ingest", "orders", str(orders_csv))
    out = run("--home", str(home), "metrics", "why", "--from", "2024-02-01", "--to",
              "2024-03-01", "--dims", "category,city")  # fmt: skip
    assert out.exit_code == 2
    assert (
        one_line(out)
        == "error: cannot search dimension 'city'; use any of category, channel, delivery_mode, buyer_type"
    )
    out = run("--home", str(home), "metrics", "why", "--from", "2024-03-01", "--to",
              "2024-03-02", "--grain", "day")  # fmt: skip
    assert out.exit_code == 1
    assert "each period needs at least two days" in one_line(out)
