"""The batched writer answers every request exactly as one transaction per request would.

The same jobs run on two fresh stores: once as a single batch (set-based reads, buffered
writes, one commit) and once one by one, each in its own transaction. Every answer and every
stored row that matters must be the same; then a job that fails while writing sends the whole
batch back to one transaction per job, and the others are still answered.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from refund_helpers import make_env, order_in, refund_in, use_lifecycle_policy
from tianping.api.batch import Batcher, Job
from tianping.api.deps import Store
from tianping.auth import service as auth
from tianping.errors import TianpingError
from tianping.refunds import orders as refund_orders
from tianping.refunds import reconcile as refund_reconcile
from tianping.refunds import service
from tianping.refunds.endpoints import _refund_json, refund_job
from tianping.refunds.models import Order, RefundDecision, RefundEvent, RefundRequest, RefundTimer
from tianping.store import init_schema, make_engine, make_sessionmaker


def _store(url: str):
    engine = make_engine(url)
    init_schema(engine)
    env = make_env()
    store = Store(make_sessionmaker(engine), env)
    with store.sessions() as s:
        use_lifecycle_policy(s, env)
        orders = [order_in("o1", 10_000), order_in("o2", 8_000, buyer_id="b2")]
        orders += [order_in(f"o{i}", 3_000, buyer_id="b3", product_id=f"p{i}") for i in range(3, 8)]
        orders += [
            order_in("o8", 5_000, buyer_id="b4", paid_at=env.clock.now() - timedelta(days=1))
        ]
        for o in orders:
            refund_orders.record_order(o, session=s, env=env)
        key = auth.create("service", session=s, now=env.clock.now(), name="t")[1]
        analyst = auth.create("analyst", session=s, now=env.clock.now(), name="a")[1]
        s.commit()
    return engine, store, key, analyst


def _jobs(store: Store, key: str, analyst: str) -> list[Job]:
    def job(order_id, amount, reason, idem, api_key=key):
        body = refund_in(order_id, amount, reason)
        return refund_job(store, body, api_key=api_key, idempotency_key=idem)

    return [
        job("o1", 4_000, "quality", "k1"),
        job("o1", 4_000, "wrong_size", "k2"),  # same order: sees k1's refund
        job("o1", 5_000, "quality", "k3"),  # more than is left: 422, the rest go on
        job("o1", 4_000, "quality", "k1"),  # same key and body: k1's answer again
        job("o2", 1_000, "quality", "k1"),  # same key, another body: 409
        job("nope", 1_000, "quality", "k6"),  # unknown order: 404
        job("o2", 1_000, "quality", "k7", api_key="tp_0000abcd_" + "x" * 43),  # 401
        job("o2", 1_000, "quality", "k7b", api_key=analyst),  # 403
        job("o2", 8_000, "changed_mind", "k8"),
        *(job(f"o{i}", 3_000, "not_received", f"k9-{i}") for i in range(3, 8)),  # a burst
        job("o8", 5_000, "fraud", "k14"),
    ]


def _outcome(result) -> tuple:
    if isinstance(result, BaseException):
        assert isinstance(result, TianpingError), result
        return ("error", type(result).__name__, result.code, result.field)
    status, body, replayed = result
    return ("ok", status, replayed, _strip(body))


def _strip(body):
    """The answer without the request's random id."""
    return {k: v for k, v in body.items() if k != "id"}


def _state(engine) -> dict:
    with make_sessionmaker(engine)() as s:
        orders = {o.id: (o.reserved_minor, o.refunded_minor) for o in s.scalars(select(Order))}
        requests = sorted(
            (r.order_id, r.status, r.refunded_minor, r.payer, r.decision_id is not None)
            for r in s.scalars(select(RefundRequest))
        )
        by_request = {r.id: r.order_id for r in s.scalars(select(RefundRequest))}
        events = Counter(
            (by_request[e.refund_id], e.seq, e.event, e.to_status)
            for e in s.scalars(select(RefundEvent))
        )
        decisions = sorted(
            (
                by_request[d.refund_id],
                d.action,
                d.refund_amount_minor,
                str(sorted(d.inputs.items())),
            )
            for d in s.scalars(select(RefundDecision))
        )
        linked = s.scalar(
            select(func.count())
            .select_from(RefundRequest)
            .join(RefundDecision, RefundDecision.id == RefundRequest.decision_id)
            .where(RefundDecision.refund_id == RefundRequest.id)
        )
        timers = Counter(
            (by_request[t.refund_id], t.kind, t.state) for t in s.scalars(select(RefundTimer))
        )
        ledger = {
            o: refund_orders.order_ledger(o, session=s, limit=500, offset=0)["totals"]
            for o in orders
        }
        assert refund_reconcile.audit(session=s) == []
        return {
            "orders": orders,
            "requests": requests,
            "linked": linked,
            "events": events,
            "decisions": decisions,
            "timers": timers,
            "ledger": ledger,
        }


def test_one_batch_answers_and_stores_what_one_transaction_per_request_does(tmp_path, store_url):
    if store_url.startswith("sqlite"):
        other_url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    else:
        other_url = store_url.rsplit("/", 1)[0] + "/" + store_url.rsplit("/", 1)[1] + "_seq"
        _create_database_like(store_url, other_url)
    batch_engine, batch_store, key_a, analyst_a = _store(store_url)
    seq_engine, seq_store, key_b, analyst_b = _store(other_url)

    outcomes = Batcher(batch_store).run_batch(_jobs(batch_store, key_a, analyst_a))
    batched = [_outcome(o.error if o.error is not None else o.value) for o in outcomes]
    one_by_one = []
    for job in _jobs(seq_store, key_b, analyst_b):
        try:
            one_by_one.append(_outcome(seq_store.transact(job.run)))
        except TianpingError as exc:
            one_by_one.append(_outcome(exc))

    assert batched == one_by_one
    kinds = [o[0] if o[0] == "ok" else o[2] for o in batched]
    assert kinds == [
        "ok", "ok", "exceeds_refundable", "ok", "idempotency_key_reused", "not_found",
        "unauthorized", "wrong_role", "ok", "ok", "ok", "ok", "ok", "ok", "ok",
    ]  # fmt: skip
    assert batched[3][2] is True and batched[3][3] == batched[0][3]  # the replay
    burst = [o[3]["decision"]["action"] for o in batched[9:14]]
    assert burst == ["merchant_negotiation"] * 5
    state = _state(batch_engine)
    assert state == _state(seq_engine)
    assert state["linked"] == len(state["requests"]) == 9  # every request points at its decision
    assert state["orders"]["o1"] == (0, 6_000)  # 4,000 refunded, then half of 4,000
    # Each new request's answer equals the request read back through the response model.
    with batch_store.sessions() as s:
        for o in outcomes:
            if o.error is None and not o.value[2]:
                answer = o.value[1]
                again = _refund_json(service.get_or_raise(answer["id"], session=s), s)
                assert answer == again
    batch_engine.dispose()
    seq_engine.dispose()


def test_a_job_failing_while_writing_sends_each_job_to_its_own_transaction(tmp_path):
    engine, store, key, _ = _store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    batcher = Batcher(store)

    def explode(session, prepared):
        raise RuntimeError("disk on fire")

    jobs = [
        refund_job(store, refund_in("o1", 1_000), api_key=key, idempotency_key="a"),
        Job(lambda s: "prepared", explode),
        refund_job(store, refund_in("o2", 1_000), api_key=key, idempotency_key="b"),
    ]
    outcomes = batcher.run_batch(jobs)
    assert [o.error is None for o in outcomes] == [True, False, True]
    assert isinstance(outcomes[1].error, RuntimeError)
    with store.sessions() as s:
        orders = {o.id: o.refunded_minor for o in s.scalars(select(Order))}
        assert (orders["o1"], orders["o2"]) == (1_000, 1_000)  # each refunded once
        assert s.scalar(select(func.count()).select_from(RefundRequest)) == 2
        assert refund_reconcile.audit(session=s) == []
    engine.dispose()


def _create_database_like(url: str, other: str) -> None:
    """A second empty database on the same throw-away PostgreSQL cluster."""
    from sqlalchemy import create_engine, text

    admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{other.rsplit("/", 1)[1]}"'))
    admin.dispose()
