"""The demo's operational side: the store filled through the real services (orchestration).

The simulator writes the warehouse; a marketplace would also have called tianping's services
while those days happened. :func:`fill_aftersales` replays the last :data:`STORE_DAYS` days of
the simulation through them, in time order, on a clock that follows the simulated time: every
order is recorded (its red packet redeemed), every refund request is decided by the refund
policy in force, merchants answer negotiations (or stay silent until the SLA timer: the merchant
then pays, or the platform decides by the policy when it put the merchant first),
buyers send returns back, merchants appeal refunds they doubt, named reviewers work the
manual-review queue, and the SLA timers fire each midnight. What was still open when the
simulation ended stays open: the queue has requests and appeals waiting for a person.

:func:`fill_governance` names the demo's people: three approvers (two of three decide), an
analyst and a merchant, each with an API key; a goal whose revision went through an approved
``goal_change`` decision; a refund-policy change approved with its replay as evidence; and a
decision to ship the demo's A/B test, proposed now with one approval, waiting for a second.

Choices that a person would make (answer, appeal, ship the return) are drawn from a seeded
generator, with the simulator's truth (``refund_truth``) steering who appeals and how
reviewers decide, so the same seed gives the same store.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

#: Days of the simulation (up to its last) replayed through the store's services by default.
STORE_DAYS = 14
#: The demo's people: (name, role, what they do in the demo).
PEOPLE = (
    ("Li Na", "admin", "approver; runs the platform"),
    ("Wang Fang", "operator", "approver; reviews refunds"),
    ("Zhang Wei", "operator", "approver; reviews refunds"),
    ("Chen Jing", "analyst", "proposes decisions"),
)
APPROVERS = ("Li Na", "Wang Fang", "Zhang Wei")
REVIEWERS = ("Wang Fang", "Zhang Wei")
KEYS_FILE = "demo-keys.txt"
#: How people answer (probabilities).
MERCHANT_ACCEPTS, MERCHANT_REFUSES = 0.55, 0.25  # the rest stay silent until the timer pays
RETURN_SHIPPED, RETURN_CONFIRMED = 0.85, 0.8
APPEAL_IF_ABUSIVE, APPEAL_OTHERWISE = 0.7, 0.06
#: Hours a queued request or appeal waits for a reviewer (the queue at the end is what waits).
REVIEW_HOURS = (72.0, 240.0)


@dataclass
class AfterSales:
    """What :func:`fill_aftersales` did, for the summary and the report."""

    since: date
    orders: int = 0
    requests: int = 0
    decided: Counter = field(default_factory=Counter)  # first decision by action
    status: Counter = field(default_factory=Counter)  # status at the end
    events: Counter = field(default_factory=Counter)  # merchant answers, appeals, reviews...
    packets: Counter = field(default_factory=Counter)  # red packets returned: restored...
    queue: int = 0
    merchant: str | None = None  # the merchant with the most requests
    fund: dict[str, Any] = field(default_factory=dict)  # the protection fund at the end

    def to_dict(self) -> dict[str, Any]:
        """The counts as plain JSON-ready data (the demo's summary and its report read them)."""
        return {
            "since": self.since, "orders": self.orders, "requests": self.requests,
            "decided": dict(self.decided), "status": dict(self.status),
            "events": dict(self.events), "packets": dict(self.packets), "queue": self.queue,
            "merchant": self.merchant, "fund": self.fund,
        }  # fmt: skip


def fill_aftersales(
    wh: Any, session: Any, *, end: date, seed: int, policy: Any, currency: str = "CNY",
    days: int = STORE_DAYS,
) -> AfterSales:  # fmt: skip
    """Replay the simulation's last ``days`` days through the refund services.

    ``policy`` is put in force at the window's start; ``end`` is the simulation's last day.
    The caller commits.
    """
    from tianping.refunds import policies

    since = end - timedelta(days=days - 1)
    start_at = datetime.combine(since, time.min, tzinfo=UTC)
    stop_at = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    orders, requests, abusive = _read_window(wh, start_at, stop_at)
    run = _Replay(session, start_at, np.random.default_rng([seed, 15]), abusive, currency)
    policies.activate_policy(policy, session=session, now=start_at, by=APPROVERS[0])
    decision = _fill_fund(session, start_at, currency)
    run.done.since = since
    for o in orders:
        run.at(_utc(o["created_at"]), run.order, o)
    for r in requests:
        run.at(_utc(r["requested_at"]), run.request, r)
    day = start_at
    while day <= stop_at:
        run.at(day, run.tick, None)
        day += timedelta(days=1)
    run.play(until=stop_at)
    _count_end(run.done, session)
    run.done.fund = _fund_at_end(session, decision, currency)
    return run.done


def _fund_at_end(session: Any, decision: dict[str, Any], currency: str) -> dict[str, Any]:
    from tianping.refunds.fund import view

    mine = [f for f in view(session=session, limit=1)["funds"] if f["currency"] == currency]
    f = mine[0] if mine else {"balance_minor": 0, "payouts": 0, "paid_out_minor": 0}
    return {"decision": decision["id"], "currency": currency, "balance_minor": f["balance_minor"],
            "payouts": f["payouts"], "paid_out_minor": f["paid_out_minor"]}  # fmt: skip


#: What the approvers put in the merchant protection fund at the window's start, in major units.
FUND_MAJOR = 5_000


def _rules(session: Any, clock: Any, currency: str) -> None:
    """Two of the three approvers decide; the spend cap is in the marketplace's currency."""
    from tianping.governance import service as gov

    gov.set_rules({"default": {"approvers": list(APPROVERS), "required": 2},
                   "spend_cap": {"currency": currency}}, session=session,
                  actor=APPROVERS[0], clock=clock)  # fmt: skip


def _fill_fund(session: Any, at: datetime, currency: str) -> dict[str, Any]:
    """The rules, then an approved spend that fills the merchant protection fund, so upheld
    merchant appeals during the window are paid from it."""
    from tianping.clock import FixedClock
    from tianping.governance import service as gov
    from tianping.money import to_minor

    clock = FixedClock(at)
    _rules(session, clock, currency)
    p = gov.Proposal(
        f"Fill the merchant protection fund with {FUND_MAJOR:,} {currency}",
        "spend",
        {"amount_minor": to_minor(Decimal(FUND_MAJOR), currency), "currency": currency,
         "purpose": "merchants' upheld appeals this month", "fund": "protection_fund"},
    )  # fmt: skip
    return _decide(session, p, None, clock, approve=APPROVERS[:2])


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _read_window(wh: Any, start_at: datetime, stop_at: datetime):
    """The window's orders (and the older ones its requests refer to), its refund requests and
    which of them the simulator made abusive: plain dicts, read with one query each."""
    naive = (start_at.replace(tzinfo=None), stop_at.replace(tzinfo=None))
    refunds = wh.table("refunds")
    asked = refunds.filter((refunds.requested_at >= naive[0]) & (refunds.requested_at < naive[1]))
    if wh.has_table("refund_truth"):
        truth = wh.table("refund_truth").select(truth_id="refund_id", abusive="abusive")
        asked = asked.left_join(truth, asked.refund_id == truth.truth_id).drop("truth_id")
    o = wh.table("orders")
    wanted = (o.created_at >= naive[0]) & (o.created_at < naive[1])
    o = o.filter(wanted | o.order_id.isin(asked.order_id))
    if wh.has_table("sim_red_packets"):
        packets = wh.table("sim_red_packets")
        packets = packets.filter(packets.order_id.notnull()).select(
            order_id_p="order_id",
            packet_id="packet_id",
            value="value",
            min_spend="min_spend",
            expires_at="expires_at",
        )
        o = o.left_join(packets, o.order_id == packets.order_id_p)
    orders = wh.to_arrow(o.order_by("created_at")).to_pylist()
    paid = {r["order_id"] for r in orders}
    requests = [
        r for r in wh.to_arrow(asked.order_by("requested_at")).to_pylist() if r["order_id"] in paid
    ]
    return orders, requests, {r["refund_id"] for r in requests if r.get("abusive")}


class _Replay:
    """Events in time order on a clock that follows them; people's answers are scheduled as
    later events, and anything due after the simulation's end stays undone."""

    def __init__(self, session, start_at: datetime, rng, abusive: set[str], currency: str):
        from tianping.clock import FixedClock
        from tianping.races.refund_arms import arm_for
        from tianping.refunds.env import Env
        from tianping.refunds.lifecycle import RefundConfig
        from tianping.refunds.signals import Norms

        self.session, self.rng, self.abusive, self.currency = session, rng, abusive, currency
        self.clock = FixedClock(start_at)
        # Platform references recomputed at most daily: as a server would, every few minutes.
        self.env = Env(clock=self.clock, config=RefundConfig(), norms=Norms(ttl=timedelta(days=1)),
                       arms=arm_for)  # fmt: skip
        self.queue: list[tuple[datetime, int, Callable, Any]] = []
        self.seq = itertools.count()
        self.truth_of: dict[str, str] = {}  # our request id -> the simulator's refund id
        self.by_merchant: Counter = Counter()
        self.done = AfterSales(start_at.date())

    def at(self, when: datetime, action: Callable, payload: Any) -> None:
        heapq.heappush(self.queue, (when, next(self.seq), action, payload))

    def later(self, hours: tuple[float, float], action: Callable, payload: Any) -> None:
        self.at(
            self.clock.now() + timedelta(hours=float(self.rng.uniform(*hours))), action, payload
        )

    def play(self, *, until: datetime) -> None:
        while self.queue and self.queue[0][0] < until:
            when, _, action, payload = heapq.heappop(self.queue)
            self.clock.set(max(when, self.clock.now()))
            action(payload)

    # -- the marketplace's calls -------------------------------------------------------
    def order(self, o: dict[str, Any]) -> None:
        from tianping.refunds.orders import record_order
        from tianping.refunds.schemas import CouponIn, OrderIn

        coupon = None
        if o.get("packet_id"):
            coupon = CouponIn(coupon_id=o["packet_id"], amount_minor=self.minor(o["value"]),
                              expires_at=_utc(o["expires_at"]),
                              min_spend_minor=self.minor(o["min_spend"]))  # fmt: skip
        data = OrderIn(
            order_id=o["order_id"], buyer_id=o["buyer_id"], merchant_id=o["merchant_id"],
            product_id=o["product_id"] or o["order_id"], category=o["category"],
            amount_minor=self.minor(o["amount"]), currency=self.currency, coupon=coupon,
            paid_at=_utc(o["created_at"]),
            delivered_at=_utc(o["delivered_at"]) if o.get("delivered_at") else None,
        )  # fmt: skip
        if data.delivered_at is not None and data.delivered_at > self.clock.now():
            # as a shop system would: the delivery is reported when it happens
            self.at(data.delivered_at, self.delivered, data)
            data = data.model_copy(update={"delivered_at": None})
        record_order(data, session=self.session, env=self.env)
        self.done.orders += 1

    def delivered(self, data: Any) -> None:
        from tianping.refunds.orders import record_order

        record_order(data, session=self.session, env=self.env)

    def request(self, r: dict[str, Any]) -> None:
        from tianping.errors import TianpingError
        from tianping.refunds.schemas import RefundRequestIn
        from tianping.refunds.service import request_refund

        body = RefundRequestIn(order_id=r["order_id"], reason=r["reason"],
                               requested_amount_minor=max(1, self.minor(r["requested_amount"])))  # fmt: skip
        try:
            req = request_refund(body, session=self.session, env=self.env)
        except TianpingError:  # more than is still refundable: the marketplace would refuse it
            self.done.events["refused at the door"] += 1
            return
        self.truth_of[req.id] = r["refund_id"]
        self.by_merchant[req.merchant_id] += 1
        self.done.requests += 1
        self.done.decided[self.decision_action(req)] += 1
        self.follow_up(req)

    def decision_action(self, req) -> str:
        from tianping.refunds import repository as repo

        return repo.get_decision(self.session, req.decision_id).action

    def follow_up(self, req) -> None:
        """Schedule what people do next with a request in its new status."""
        from tianping.refunds import lifecycle as L

        if req.status == L.NEGOTIATING:
            draw = self.rng.random()
            if draw < MERCHANT_ACCEPTS + MERCHANT_REFUSES:
                accept = draw < MERCHANT_ACCEPTS
                self.later((2, 30), self.merchant_answers, (req.id, accept))
        elif req.status == L.AWAITING_RETURN and self.rng.random() < RETURN_SHIPPED:
            self.later((12, 72), self.buyer_ships, req.id)
        elif req.status in L.IN_QUEUE:  # the team works a backlog: days, not hours
            self.later(REVIEW_HOURS, self.reviewer_decides, req.id)
        elif req.status == L.REFUNDED and req.payer == "merchant" and req.refunded_minor > 0:
            doubtful = self.truth_of.get(req.id) in self.abusive
            if self.rng.random() < (APPEAL_IF_ABUSIVE if doubtful else APPEAL_OTHERWISE):
                self.later((6, 120), self.merchant_appeals, req.id)

    def merchant_answers(self, payload: tuple[str, bool]) -> None:
        from tianping.refunds.schemas import MerchantResponseIn
        from tianping.refunds.service import respond_as_merchant

        refund_id, accept = payload
        note = "" if accept else "the parcel left our warehouse complete"
        req = self.act(respond_as_merchant, refund_id, MerchantResponseIn(accept=accept, note=note))
        if req is not None:
            self.done.events["merchant accepted" if accept else "merchant refused"] += 1
            self.follow_up(req)

    def buyer_ships(self, refund_id: str) -> None:
        from tianping.refunds.schemas import ReturnShippedIn
        from tianping.refunds.service import return_shipped

        tracking = f"SF{self.rng.integers(10**9, 10**10)}"
        if self.act(return_shipped, refund_id, ReturnShippedIn(tracking_number=tracking)):
            self.done.events["return shipped"] += 1
            if self.rng.random() < RETURN_CONFIRMED:
                self.later((24, 96), self.merchant_receives, refund_id)

    def merchant_receives(self, refund_id: str) -> None:
        from tianping.refunds.schemas import ReturnReceivedIn
        from tianping.refunds.service import return_received

        req = self.act(return_received, refund_id, ReturnReceivedIn(note="received"))
        if req is not None:
            self.done.events["return received"] += 1
            self.follow_up(req)

    def merchant_appeals(self, refund_id: str) -> None:
        from tianping.refunds.schemas import AppealIn
        from tianping.refunds.service import appeal

        note = "the buyer's claims on our shop look like a pattern"
        req = self.act(appeal, refund_id, AppealIn(reason="merchant_appeal", note=note))
        if req is not None:
            self.done.events["merchant appealed"] += 1
            self.follow_up(req)

    def reviewer_decides(self, refund_id: str) -> None:
        from tianping.refunds import lifecycle as L
        from tianping.refunds.schemas import ReviewIn
        from tianping.refunds.service import get_or_raise, review

        req = get_or_raise(refund_id, session=self.session)
        doubtful = self.truth_of.get(refund_id) in self.abusive
        reviewer = REVIEWERS[int(self.rng.integers(len(REVIEWERS)))]
        if req.status == L.APPEALED:
            action = "uphold_appeal" if doubtful else "dismiss_appeal"
            note = "claims match an abuse pattern" if doubtful else "photos support the buyer"
        else:
            action = "reject" if doubtful else "refund_only"
            note = "claims match an abuse pattern" if doubtful else "evidence is consistent"
        body = ReviewIn(action=action, note=note)
        req = self.act(partial(review, reviewer=reviewer), refund_id, body, actor=reviewer)
        if req is not None:
            self.done.events[f"review: {action.replace('_', ' ')}"] += 1
            self.follow_up(req)

    def tick(self, _: Any) -> None:
        from tianping.refunds.timers import tick

        fired = tick(session=self.session, env=self.env)
        self.done.events["SLA timers fired"] += fired["timers_fired"]

    def act(self, step: Callable, refund_id: str, body: Any, actor: str | None = None):
        """Call a lifecycle step; a request that moved on meanwhile (a timer fired first, the
        window closed) is left as it is, as a real caller would be answered 409."""
        from tianping.audit.log import acting, acting_as
        from tianping.errors import TianpingError

        before = acting(self.session)
        if actor:
            acting_as(self.session, actor)
        try:
            return step(refund_id, body, session=self.session, env=self.env)
        except TianpingError as exc:
            if exc.code == "fund_insufficient":  # the appeal waits in the queue for a top-up
                self.done.events["appeal waits: protection fund too small"] += 1
            else:
                self.done.events["too late (timer first)"] += 1
            return None
        finally:
            if actor:
                acting_as(self.session, before[0] or "system", before[1])

    def minor(self, value: Decimal | float | None) -> int:
        from tianping.money import to_minor

        return 0 if value is None else to_minor(Decimal(str(value)), self.currency)


def _count_end(done: AfterSales, session: Any) -> None:
    from sqlalchemy import func, select

    from tianping.coupons.models import CouponRedemption
    from tianping.refunds import lifecycle as L
    from tianping.refunds.models import RefundRequest

    statuses = session.execute(
        select(RefundRequest.status, func.count()).group_by(RefundRequest.status)
    )
    done.status = Counter(dict(statuses.all()))
    done.queue = sum(done.status.get(s, 0) for s in L.IN_QUEUE)
    returned = session.execute(select(CouponRedemption.outcome, func.count())
                               .where(CouponRedemption.outcome.is_not(None))
                               .group_by(CouponRedemption.outcome))  # fmt: skip
    done.packets = Counter(dict(returned.all()))
    top = session.execute(select(RefundRequest.merchant_id, func.count()).group_by(RefundRequest.merchant_id)
                          .order_by(func.count().desc(), RefundRequest.merchant_id).limit(1)).first()  # fmt: skip
    done.merchant = top[0] if top else None


# -- people and decisions ----------------------------------------------------------------------


@dataclass
class People:
    """The demo's API keys (shown once, also written to ``<home>/demo-keys.txt``), its goal
    and its decisions."""

    keys: list[dict[str, str]] = field(default_factory=list)
    keys_file: Path | None = None
    goal: dict[str, Any] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)


def fill_governance(
    session: Any, wh: Any, *, end: date, home: Path, experiment: str, merchant: str | None,
    replay_policy: str, replay_days: int, dac: float,
) -> People:  # fmt: skip
    """Rules, keys, a goal revised by decision, an approved policy change and a pending
    decision. Simulated steps happen at the simulation's end; the pending decision is proposed
    now, so that it is still open when someone opens the dashboard. ``dac`` is the last
    month's daily buying customers, the goal's starting point. The caller commits."""
    from tianping.clock import FixedClock
    from tianping.governance import service as gov

    clock = FixedClock(datetime.combine(end, time(18, 0), tzinfo=UTC))
    if not gov.current_rules(session=session).default.approvers:  # the store step set them
        _rules(session, clock, "CNY")
    people = People(keys=_keys(session, merchant, clock.now()))
    people.goal = _goal(session, wh, clock, dac)
    first = end - timedelta(days=replay_days - 1)
    policy = gov.Proposal(
        f"Adopt the {replay_policy} refund rules",
        "refund_policy",
        {"policy": replay_policy},
        evidence=(f"policy-replay:{replay_policy}@{first}..{end}",),
    )
    people.decisions.append(_decide(session, policy, wh, clock, approve=APPROVERS[:2]))
    people.decisions.append(_ship(session, wh, experiment))
    people.keys_file = _write_keys(home, people.keys)
    return people


def _keys(session: Any, merchant: str | None, now: datetime) -> list[dict[str, str]]:
    from tianping.auth import service as keys

    made = []
    for name, role, does in PEOPLE:
        _, key = keys.create(role, session=session, now=now, name=name)
        made.append({"name": name, "role": role, "does": does, "key": key})
    if merchant is not None:
        _, key = keys.create("merchant", session=session, now=now, merchant_id=merchant,
                             name=f"Shop {merchant}")  # fmt: skip
        made.append({"name": f"Shop {merchant}", "role": "merchant",
                     "does": "a merchant: sees only its own shop", "key": key})  # fmt: skip
    return made


def _goal(session: Any, wh: Any, clock: Any, base: float) -> dict[str, Any]:
    """A daily-buyers goal set (+50 % by year end), then raised (double) through an approved
    ``goal_change`` decision (its evidence: the goal as it stood)."""
    from tianping.goals.service import set_goal
    from tianping.governance import service as gov

    deadline = date(clock.now().year, 12, 31)
    first, raised = round(base * 1.5, 1), round(base * 2.0, 1)
    set_goal("dac-year-end", metric="dac", target=first, deadline=deadline, session=session,
             wh=wh, reason="grow daily buying customers by half by year end",
             author="Chen Jing", clock=clock)  # fmt: skip
    p = gov.Proposal(
        "Double daily buying customers by year end", "goal_change",
        {"goal": "dac-year-end", "metric": "dac", "target": raised, "deadline": deadline.isoformat(),
         "grain": "month", "reason": "618 showed the demand: double, not +50%"},
    )  # fmt: skip
    clock.advance(minutes=30)
    decided = _decide(session, p, wh, clock, approve=(APPROVERS[0], APPROVERS[2]))
    return {"name": "dac-year-end", "first": first, "raised": raised, "decision": decided["id"]}


def _decide(session: Any, p: Any, wh: Any, clock: Any, *, approve: Sequence[str]) -> dict[str, Any]:
    """Propose as the analyst, then the named approvers approve in turn."""
    from tianping.governance import service as gov

    d = gov.propose(p, session=session, actor="Chen Jing", clock=clock, warehouse=wh)
    for name in approve:
        if clock is not None:
            clock.advance(minutes=20)
        gov.vote(d.id, "approve", session=session, actor=name, clock=clock,
                 comment="the evidence holds up")  # fmt: skip
    return {"id": d.id, "title": d.title, "status": d.status, "approvals": len(approve),
            "required": d.required}  # fmt: skip


def _ship(session: Any, wh: Any, experiment: str) -> dict[str, Any]:
    """A pending proposal to ship the experiment's red packet, with one approval of two.

    The experiment's decision rule is asked first (``experiment decide``): when it says ship,
    its own proposal is the one voted on; otherwise the analyst proposes anyway and the title
    says what the rule said, so the approvers weigh it knowingly.
    """
    from tianping.governance import service as gov
    from tianping.governance.verdicts import propose_ship

    ruled = propose_ship(experiment, session=session, warehouse=wh, actor="Chen Jing")
    if ruled.decision is None:
        ship = gov.Proposal(
            f"Ship the red packet of {experiment}, although its decision rule says {ruled.verdict}",
            "ship_experiment",
            {"experiment": experiment, "variant": "red_packet"},
            evidence=(f"experiment:{experiment}",),
        )
        return _decide(session, ship, wh, None, approve=APPROVERS[1:2])
    d = ruled.decision
    gov.vote(d.id, "approve", session=session, actor=APPROVERS[1],
             comment="the evidence holds up")  # fmt: skip
    return {"id": d.id, "title": d.title, "status": d.status, "approvals": 1,
            "required": d.required}  # fmt: skip


def _write_keys(home: Path, made: list[dict[str, str]]) -> Path:
    """The demo's keys, readable only by their owner (a demo home is not a production one)."""
    import os

    path = home / KEYS_FILE
    lines = ["# tianping demo API keys: sign in to the dashboard with one (tianping serve)."]
    lines += [f"{k['name']}\t{k['role']}\t{k['key']}\t{k['does']}" for k in made]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path
