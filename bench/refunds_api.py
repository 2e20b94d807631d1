"""Benchmark: refund decisions through the HTTP API, on SQLite and PostgreSQL.

Target (issue 7): at least 1,000 refund decisions/s through the HTTP API on SQLite on 2 cores
with p99 under 50 ms; PostgreSQL reported too. A loopback load test: ``tianping serve``
(uvicorn) runs in its own process on a store preloaded with orders and refund history; an
asyncio client keeps ``--concurrency`` requests in flight, each a new ``POST
/v1/refund-requests`` with its own ``Idempotency-Key`` on its own order (a decision by the
shipped default policy, and the refund paid in the ledger when the policy refunds).

Peers measured in the same run, on the same server settings and client:

- ``floor``: a FastAPI app whose route only validates the same body and answers fixed JSON —
  what HTTP + uvicorn + FastAPI cost with no store at all;
- ``in-process``: the same decisions through the service layer without HTTP, split into the
  phases of a request (inputs from the store, policy evaluation, the writing transaction).

Throughput is measured with ``--concurrency`` requests in flight (saturated), twice: on a
freshly started server, then at once for as many requests again on the server that has just
written them (a burst of writes must not slow what follows); latency is also measured with 2
in flight, where queueing does not dominate. The CPU time per decision of the server, of
PostgreSQL's processes and of the client itself is printed beside each rate, so a reader sees
whose the two cores' time was.

Run: python bench/refunds_api.py [--requests N] [--concurrency C] [--orders M] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

FLOOR_APP = """
from fastapi import FastAPI, Header
from pydantic import BaseModel, Field

class Body(BaseModel):
    order_id: str
    reason: str
    requested_amount_minor: int = Field(strict=True, ge=1)
    evidence_urls: list[str] = []

app = FastAPI()

@app.post("/v1/refund-requests", status_code=201)
def create(body: Body, key: str | None = Header(None, alias="Idempotency-Key")):
    return {"id": key, "status": "refunded", "decision": {"action": "refund_only",
            "refund_amount_minor": body.requested_amount_minor, "requires_return": False,
            "payer": "merchant", "reasons": [], "policy_version": "x"}}
"""

REASONS = ("quality", "not_as_described", "changed_mind", "damaged", "wrong_size")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def preload(store_url: str, orders: int, history: int) -> str | None:
    """``orders`` fresh orders to refund, plus ``history`` orders with refunds already decided.

    Returns an API key of the ``service`` role when the API checks keys (None otherwise).
    """
    from datetime import UTC, datetime, timedelta

    from tianping.clock import FixedClock
    from tianping.races.refund_arms import arm_for
    from tianping.refunds import orders as refund_orders
    from tianping.refunds import service
    from tianping.refunds.env import Env
    from tianping.refunds.schemas import OrderIn, RefundRequestIn
    from tianping.store import init_schema, make_engine, make_sessionmaker

    engine = make_engine(store_url)
    init_schema(engine)
    now = datetime.now(UTC)
    env = Env(clock=FixedClock(now - timedelta(days=1)), arms=arm_for)
    session = make_sessionmaker(engine)()

    def order(i: int, prefix: str) -> OrderIn:
        return OrderIn(
            order_id=f"{prefix}{i}",
            buyer_id=f"b{i % 2000}",
            merchant_id=f"m{i % 200}",
            product_id=f"p{i % 3000}",
            category=("apparel", "food", "electronics", "home")[i % 4],
            amount_minor=1_000 + (i * 7919) % 300_000,
            currency="CNY",
            paid_at=now - timedelta(days=3),
            delivered_at=now - timedelta(days=2),
        )

    for i in range(history):
        o = order(i, "h")
        refund_orders.record_order(o, session=session, env=env)
        if i % 3 == 0:
            body = RefundRequestIn(
                order_id=o.order_id, reason=REASONS[i % 5], requested_amount_minor=o.amount_minor
            )
            service.request_refund(body, session=session, env=env)
        if i % 500 == 499:
            session.commit()
    for i in range(orders):
        refund_orders.record_order(order(i, "o"), session=session, env=env)
        if i % 500 == 499:
            session.commit()
    key = _service_key(session, now)
    session.commit()
    session.close()
    engine.dispose()
    return key


def _service_key(session, now) -> str | None:
    try:
        from tianping.auth import service as auth
    except ImportError:  # an API without keys
        return None
    return auth.create("service", session=session, now=now, name="bench")[1]


def start_server(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def _proc_stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its live descendants (uvicorn workers);
    Linux ``/proc``, 0 elsewhere.

    The machine is shared: wall-clock rates move with other load, the server's CPU time per
    request much less.
    """
    stats = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _proc_stat(int(entry.name))
        if fields is not None:
            stats[int(entry.name)] = fields
    family, grew = {pid}, True
    while grew:
        more = {p for p, f in stats.items() if int(f[1]) in family} - family
        family |= more
        grew = bool(more)
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) for p in family if p in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


def measured(
    proc: subprocess.Popen, port: int, n: int, concurrency: int, db_pid: int | None = None, **kw
) -> dict:
    """:func:`load`, plus the CPU milliseconds per request of the server, of the database's
    processes (PostgreSQL's postmaster and its backends) and of this client."""
    before, db_before = cpu_seconds(proc.pid), cpu_seconds(db_pid) if db_pid else 0.0
    client = time.process_time()
    result = _run(load(port, n, concurrency, **kw))
    result["client_cpu_ms"] = 1000 * (time.process_time() - client) / n
    result["server_cpu_ms"] = 1000 * (cpu_seconds(proc.pid) - before) / n
    result["db_cpu_ms"] = 1000 * (cpu_seconds(db_pid) - db_before) / n if db_pid else 0.0
    return result


def _run(coro):
    """Run the client on uvloop when installed (it comes with uvicorn's standard extras)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _requests(start: int, n: int, auth: str) -> list[bytes]:
    """The ``n`` requests' bytes, built before the clock starts (the client's work while
    measuring is only to send, read and time)."""
    out = []
    for i in range(start, start + n):
        body = json.dumps(
            {"order_id": f"o{i}", "reason": REASONS[i % 5], "requested_amount_minor": 500 + i % 500}
        ).encode()
        head = (
            f"POST /v1/refund-requests HTTP/1.1\r\nHost: bench\r\n"
            f"Content-Type: application/json\r\nIdempotency-Key: k{i}\r\n{auth}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


async def _connection(port: int, jobs, latencies: list[float], statuses: dict[int, int]) -> None:
    """One keep-alive HTTP/1.1 connection sending requests one after another.

    A bare asyncio client (no HTTP library): the load generator shares the 2 cores with the
    server, so it must cost far less per request than the server does; its CPU time is
    measured and printed beside the server's.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for request in jobs:
            t = time.perf_counter()
            writer.write(request)
            header = await reader.readuntil(b"\r\n\r\n")
            status = int(header[9:12])
            at = header.lower().index(b"content-length:") + 15
            length = int(header[at : header.index(b"\r\n", at)])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def load(
    port: int, n: int, concurrency: int, start: int = 0, key: str | None = None
) -> dict[str, float]:
    """``n`` refund requests, ``concurrency`` in flight; throughput and latency percentiles."""
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    jobs = iter(_requests(start, n, auth))
    # The client's own garbage collections (it imported tianping to preload the store) would
    # pause every connection at once and count as server latency: none while measuring.
    gc.collect()
    gc.disable()
    t0 = time.perf_counter()
    try:
        await asyncio.gather(
            *(_connection(port, jobs, latencies, statuses) for _ in range(concurrency))
        )
    finally:
        wall = time.perf_counter() - t0
        gc.enable()
    latencies.sort()
    return {
        "rate": n / wall,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "statuses": statuses,
    }


def in_process(store_url: str, n: int, start: int, key: str | None) -> dict[str, float]:
    """The same decisions without HTTP, timed by phase (mean ms per decision).

    ``batch16`` / ``batch1`` run the route's own job (:func:`tianping.refunds.endpoints.
    refund_job`: the key's check, the idempotency record, the decision, the writes, the commit,
    the answer as JSON) through the batched writer in batches of 16 (what 16 requests in flight
    become) and of 1 (a request arriving alone); ``*_cpu`` is this process's CPU time for the
    same (on PostgreSQL the database server's own CPU is not in it). ``inputs`` and ``policy``
    are two parts of that work timed on their own.
    """
    from tianping.aftersales.policy import RefundInputs, evaluate
    from tianping.api.batch import Batcher
    from tianping.api.deps import Store
    from tianping.races.refund_arms import arm_for
    from tianping.refunds import orders as refund_orders
    from tianping.refunds import policies, service
    from tianping.refunds.endpoints import refund_job
    from tianping.refunds.env import Env
    from tianping.refunds.schemas import RefundRequestIn
    from tianping.store import make_engine, make_sessionmaker

    engine = make_engine(store_url)
    env = Env(arms=arm_for)
    store = Store(make_sessionmaker(engine), env)
    batcher = Batcher(store)
    phases = dict.fromkeys(
        ("inputs", "policy", "batch16", "batch16_cpu", "batch1", "batch1_cpu"), 0.0
    )
    decided = {16: 0, 1: 0}  # decisions timed per batch size
    policy = store.read(lambda s: policies.active(session=s, now=env.clock.now()))
    _warm_merchants(store, env, range(start, start + n))
    bodies = [
        RefundRequestIn(
            order_id=f"o{i}", reason=REASONS[i % 5], requested_amount_minor=500 + i % 500
        )
        for i in range(start, start + n)
    ]
    half = n // 2
    for size, chunk in ((16, bodies[:half]), (1, bodies[half:])):
        for at in range(0, len(chunk) - size + 1, size):
            jobs = [
                refund_job(store, b, api_key=key, idempotency_key=f"ip-{b.order_id}")
                for b in chunk[at : at + size]
            ]
            t, c = time.perf_counter(), time.process_time()
            outcomes = batcher.run_batch(jobs)
            phases[f"batch{size}"] += time.perf_counter() - t
            phases[f"batch{size}_cpu"] += time.process_time() - c
            decided[size] += size
            failed = [o.error for o in outcomes if o.error is not None]
            if failed:
                raise RuntimeError(f"in-process decision failed: {failed[0]!r}")
    for body in bodies:

        def inputs(s, body=body):
            order = refund_orders.get_order_or_raise(body.order_id, session=s)
            return service.decision_inputs(
                order, body.reason, body.requested_amount_minor, session=s, env=env
            )

        t = time.perf_counter()
        snap = store.read(inputs)
        phases["inputs"] += time.perf_counter() - t
        t = time.perf_counter()
        evaluate(policy, RefundInputs(**snap))
        phases["policy"] += time.perf_counter() - t
    batcher.close()
    engine.dispose()
    per = {"inputs": len(bodies), "policy": len(bodies)}
    per |= {f"batch{size}{cpu}": k for size, k in decided.items() for cpu in ("", "_cpu")}
    return {k: 1000 * v / max(per[k], 1) for k, v in phases.items()}


def _warm_merchants(store, env, indices) -> None:
    from tianping.refunds import orders as refund_orders
    from tianping.refunds import signals

    def warm(s):
        snap = env.norms.get(s, env.clock.now())
        for i in indices:
            order = refund_orders.get_order_or_raise(f"o{i}", session=s)
            signals.merchant_quality(order.merchant_id, session=s, snap=snap)

    store.read(warm)


#: The server with SQLite's synchronous=NORMAL (the previous default), to measure what FULL
#: (what tianping ships) costs.
NORMAL_SERVER = (
    "import sys, tianping.store.db as db; db.SQLITE_SYNCHRONOUS = 'NORMAL'; "
    "from tianping.cli.main import main; sys.argv[0] = 'tianping'; main()"
)


def run_backend(
    name: str,
    store_url: str,
    a,
    home: Path,
    *,
    synchronous: str = "FULL",
    db_pid: int | None = None,
) -> dict:
    print(f"\n== {name}: preloading {a.orders} orders and {a.history} with refund history ...")
    t = time.perf_counter()
    key = preload(store_url, a.orders, a.history)
    print(f"   preloaded in {time.perf_counter() - t:.1f}s")
    port = free_port()
    env = {**os.environ, "TIANPING_HOME": str(home), "TIANPING_STORE": store_url}
    serve = [str(Path(sys.executable).parent / "tianping")]
    if synchronous != "FULL":
        serve = [sys.executable, "-c", NORMAL_SERVER]
    cmd = [
        *serve, "serve", "--port", str(port), "--tick-seconds", "0", "--workers", str(a.workers),
    ]  # fmt: skip
    server = start_server(cmd, env, port)
    n = a.requests
    try:
        _run(load(port, 100, a.concurrency, start=a.orders - 200, key=key))
        http = measured(server, port, n, a.concurrency, db_pid, key=key)
        # The same number again at once, on the server that has just written them.
        burst = measured(server, port, n, a.concurrency, db_pid, start=n, key=key)
        calm = _run(load(port, 100, 2, start=a.orders - 100, key=key))
    finally:
        stop(server)
    if synchronous != "FULL":
        return {"http": http, "burst": burst, "calm": calm, "phases": None}
    phases = in_process(store_url, min(512, a.orders - 2 * n - 200), 2 * n, key)
    return {"http": http, "burst": burst, "calm": calm, "phases": phases}


def _postmaster_pid(cluster) -> int | None:
    try:
        return int((cluster.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--orders", type=int, default=7000, help="fresh orders (≥ 2 × requests + 700)"
    )
    parser.add_argument("--history", type=int, default=6000)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--sqlite-normal", action="store_true",
        help="also run SQLite with synchronous=NORMAL: what durable commits (FULL) cost",
    )  # fmt: skip
    a = parser.parse_args()
    a.orders = max(a.orders, 2 * a.requests + 700)
    print(f"{os.cpu_count()} CPUs; {a.requests} requests, {a.concurrency} in flight")

    with tempfile.TemporaryDirectory() as tmp:
        floor_py = Path(tmp) / "floor_app.py"
        floor_py.write_text(FLOOR_APP)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": tmp}
        cmd = [
            sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        floor_server = start_server(cmd, env, port)
        try:
            floor = measured(floor_server, port, a.requests, a.concurrency)
        finally:
            stop(floor_server)
        print(
            f"floor (FastAPI, no store): {floor['rate']:,.0f} req/s, "
            f"server CPU {floor['server_cpu_ms']:.2f} ms/request, "
            f"p50 {floor['p50_ms']:.1f} ms, p99 {floor['p99_ms']:.1f} ms"
        )

        results = {}
        home = Path(tmp) / "sqlite"
        results["sqlite"] = run_backend("SQLite", f"sqlite:///{home / 'store.sqlite'}", a, home)
        if a.sqlite_normal:
            home = Path(tmp) / "sqlite-normal"
            results["sqlite-nrm"] = run_backend(
                "SQLite, synchronous=NORMAL (for comparison)",
                f"sqlite:///{home / 'store.sqlite'}", a, home, synchronous="NORMAL",
            )  # fmt: skip
        if not a.no_postgres:
            from pgcluster import Cluster, find_bin

            if find_bin() is None:
                print("\nPostgreSQL not installed (apt-get install postgresql): skipped")
            else:
                cluster = Cluster()
                try:
                    url = cluster.create_database("bench")
                    results["postgres"] = run_backend(
                        "PostgreSQL", url, a, Path(tmp) / "pg", db_pid=_postmaster_pid(cluster)
                    )
                finally:
                    cluster.stop()

    print(
        "\nbackend     phase            decisions/s  p50 ms  p99 ms  vs floor"
        "   CPU ms/decision: server  database  client  statuses"
    )
    for name, r in results.items():
        for phase, h in (("fresh server", r["http"]), ("after a burst", r["burst"])):
            print(
                f"{name:<10}  {phase:<15} {h['rate']:>11,.0f} {h['p50_ms']:>7.1f} "
                f"{h['p99_ms']:>7.1f} {h['rate'] / floor['rate']:>8.2f}x {h['server_cpu_ms']:>22.2f}"
                f" {h['db_cpu_ms']:>9.2f} {h['client_cpu_ms']:>7.2f}  {h['statuses']}"
            )
    print(
        f"(the floor's client: {floor['client_cpu_ms']:.2f} ms of CPU per request; 'database' is "
        "PostgreSQL's own processes — SQLite runs inside the server)"
    )
    print("\nlatency with 2 requests in flight (not saturated):")
    for name, r in results.items():
        c = r["calm"]
        print(
            f"{name:<10} {c['rate']:>8,.0f}/s  p50 {c['p50_ms']:.1f} ms  p99 {c['p99_ms']:.1f} ms"
        )
    print("\nwhere a decision's time goes, in-process without HTTP (mean ms per decision):")
    for name, r in results.items():
        p = r["phases"]
        if p is None:
            continue
        outside = r["http"]["server_cpu_ms"] - p["batch16_cpu"]
        print(
            f"{name:<10} the route's job in batches of 16: {p['batch16']:.2f} wall / "
            f"{p['batch16_cpu']:.2f} CPU; alone: {p['batch1']:.2f} wall / {p['batch1_cpu']:.2f} "
            f"CPU; of which the decision's inputs {p['inputs']:.2f}, policy {p['policy']:.3f}. "
            f"Server CPU through HTTP {r['http']['server_cpu_ms']:.2f}, so HTTP, framework "
            f"and the event loop ≈ {outside:.2f}"
        )
    if "sqlite-nrm" in results:
        full, normal = results["sqlite"]["http"], results["sqlite-nrm"]["http"]
        print(
            f"\ndurable commits (synchronous=FULL) vs NORMAL on SQLite: "
            f"{full['rate'] / normal['rate']:.2f}x the throughput, p99 {full['p99_ms']:.1f} vs "
            f"{normal['p99_ms']:.1f} ms"
        )
    print(
        "\ntargets (2 cores, server, database and client sharing them): ≥ 1,500 decisions/s on"
        " SQLite; ≥ 1,000/s with p99 < 50 ms on PostgreSQL; the same after a burst of writes"
    )


if __name__ == "__main__":
    main()
