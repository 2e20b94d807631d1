"""Quorum rules, spend caps and the decision state machine, as pure functions.

A decision is approved when ``required`` of its named approvers approve (the proposer's own
vote never counts and is refused), rejected as soon as the quorum can no longer be reached,
vetoed by one veto where the kind allows vetoes, and expired when nobody decided in time.
A spend request above the cap is rejected with that reason unless the proposer asks for an
override; the override is then decided by the override role with its own, higher quorum.
The quorum in force is frozen into the decision when it is proposed, so later rule changes
do not move the goalposts of a pending decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tianping import inputs, yamldoc
from tianping.audit.canonical import dumps, sha256
from tianping.errors import Conflict, Forbidden, InvalidInput, TianpingError
from tianping.money import exponent_of, format_major

KINDS = ("ship_experiment", "ship_race_winner", "refund_policy", "spend", "goal_change")
STATUSES = ("pending", "approved", "rejected", "vetoed", "expired")
FINAL = frozenset(STATUSES) - {"pending"}
CHOICES = ("approve", "reject", "veto")
#: 1,500,000.00 yuan in fen: "spending requests above 1.5 million are, in principle, not approved".
DEFAULT_CAP_MINOR = 150_000_000
DEFAULT_EXPIRY_DAYS = 14.0
#: The code of a quorum that names fewer approvers than it needs (a rule across fields).
UNREACHABLE = "unreachable_quorum"


@dataclass(frozen=True)
class KindRule:
    """Who decides one kind of decision and how.

    Attributes:
        approvers: the named approvers (e.g. a squad's three leaders).
        required: approvals needed (default 2 of 3).
        veto: whether one approver's veto rejects at once.
        expiry_days: days a decision stays open before it expires.
    """

    approvers: tuple[str, ...] = ()
    required: int = 2
    veto: bool = True
    expiry_days: float = DEFAULT_EXPIRY_DAYS


@dataclass(frozen=True)
class SpendCap:
    """Spend requests above ``cap_minor`` need the override role's higher quorum."""

    cap_minor: int = DEFAULT_CAP_MINOR
    currency: str = "CNY"
    override_approvers: tuple[str, ...] = ()
    override_required: int = 3


@dataclass(frozen=True)
class Rules:
    """The governance rules in force; ``version`` is the SHA-256 of their canonical content."""

    default: KindRule = KindRule()
    kinds: Mapping[str, KindRule] = field(default_factory=dict)
    spend_cap: SpendCap = SpendCap()

    def rule_for(self, kind: str) -> KindRule:
        """The rule for decisions of ``kind``: its own, else the default."""
        check_kind(kind)
        return self.kinds.get(kind, self.default)

    def to_dict(self) -> dict[str, Any]:
        """The rules as the plain document they are stored, hashed and shown as."""
        return {
            "default": _rule_dict(self.default),
            "kinds": {k: _rule_dict(r) for k, r in sorted(self.kinds.items())},
            "spend_cap": {
                "cap_minor": self.spend_cap.cap_minor,
                "currency": self.spend_cap.currency,
                "override_approvers": list(self.spend_cap.override_approvers),
                "override_required": self.spend_cap.override_required,
            },
        }

    @property
    def version(self) -> str:
        """The rules' version: the SHA-256 of their canonical document (a decision records the one it was proposed under)."""
        return sha256(dumps(self.to_dict()))


def _rule_dict(r: KindRule) -> dict[str, Any]:
    return {
        "approvers": list(r.approvers),
        "required": r.required,
        "veto": r.veto,
        "expiry_days": r.expiry_days,
    }


def check_kind(kind: str) -> str:
    """``kind`` when it is a decision kind, else :class:`InvalidInput` listing them."""
    if kind not in KINDS:
        raise InvalidInput(
            f"unknown decision kind {kind!r}; kinds: {', '.join(KINDS)}", field="kind"
        )
    return kind


# -- parsing the rules document --------------------------------------------------------------


def parse_rules(doc: Any, *, origin: str = "rules") -> Rules:
    """Validate a rules document (parsed YAML/JSON) into :class:`Rules`.

    Shape: ``{"default": {approvers, required, veto, expiry_days}, "kinds": {kind: {...}},
    "spend_cap": {cap_minor, currency, override_approvers, override_required}}``; every part is
    optional, a kind's entry overrides the default field by field.

    Raises:
        InvalidInput: naming the field at fault.
    """
    doc = _mapping(doc, origin, {"default", "kinds", "spend_cap"})
    default = _kind_rule(doc.get("default", {}), f"{origin}.default", KindRule())
    kinds_doc = _mapping(doc.get("kinds", {}), f"{origin}.kinds", set(KINDS))
    kinds = {k: _kind_rule(v, f"{origin}.kinds.{k}", default) for k, v in sorted(kinds_doc.items())}
    rules = Rules(default, kinds, _spend_cap(doc.get("spend_cap", {}), f"{origin}.spend_cap"))
    cap, spend = rules.spend_cap, rules.rule_for("spend")
    if cap.override_approvers and cap.override_required <= spend.required:
        raise InvalidInput(
            f"{origin}.spend_cap.override_required ({cap.override_required}) must be higher than "
            f"the spend quorum ({spend.required})",
            field=f"{origin}.spend_cap.override_required",
            code=UNREACHABLE,
        )
    return rules


def _mapping(value: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where} must be a mapping", field=where)
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InvalidInput(
            f"{where}: unknown key {unknown[0]!r}{yamldoc.hint(str(unknown[0]), allowed)}",
            field=f"{where}.{unknown[0]}",
            code=yamldoc.UNKNOWN_KEY,
        )
    return value


def _kind_rule(value: Any, where: str, base: KindRule) -> KindRule:
    doc = _mapping(value, where, {"approvers", "required", "veto", "expiry_days"})
    approvers = _names(doc.get("approvers", base.approvers), f"{where}.approvers")
    required = _int(doc.get("required", base.required), f"{where}.required", 1)
    if approvers and required > len(approvers):
        raise InvalidInput(
            f"{where}.required is {required} but only {len(approvers)} approvers are named",
            field=f"{where}.required",
            code=UNREACHABLE,
        )
    veto = doc.get("veto", base.veto)
    if not isinstance(veto, bool):
        raise InvalidInput(f"{where}.veto must be true or false", field=f"{where}.veto")
    expiry = doc.get("expiry_days", base.expiry_days)
    if isinstance(expiry, bool) or not isinstance(expiry, int | float) or not 0 < expiry <= 3660:
        raise InvalidInput(
            f"{where}.expiry_days must be a number of days in (0, 3660]",
            field=f"{where}.expiry_days",
        )
    return KindRule(approvers, required, veto, float(expiry))


def _spend_cap(value: Any, where: str) -> SpendCap:
    doc = _mapping(
        value, where, {"cap_minor", "currency", "override_approvers", "override_required"}
    )
    base = SpendCap()
    currency = doc.get("currency", base.currency)
    if not isinstance(currency, str):
        raise InvalidInput(f"{where}.currency must be an ISO 4217 code", field=f"{where}.currency")
    exponent_of(currency)  # raises on an unknown currency
    approvers = _names(doc.get("override_approvers", ()), f"{where}.override_approvers")
    required = _int(
        doc.get("override_required", base.override_required), f"{where}.override_required", 1
    )
    if approvers and required > len(approvers):
        raise InvalidInput(
            f"{where}.override_required is {required} but only {len(approvers)} override "
            "approvers are named",
            field=f"{where}.override_required",
            code=UNREACHABLE,
        )
    cap = _int(doc.get("cap_minor", base.cap_minor), f"{where}.cap_minor", 0)
    return SpendCap(cap, currency, approvers, required)


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str) and v.strip(inputs.BLANKS) for v in value
    ):
        raise InvalidInput(f"{where} must be a list of non-empty names", field=where)
    names = tuple(inputs.name(v, field=where) for v in value)
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise InvalidInput(f"{where} names {dup!r} twice", field=where)
    return names


def _int(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInput(f"{where} must be a whole number >= {low}", field=where)
    return value


# -- the quorum a new decision gets ------------------------------------------------------------


@dataclass(frozen=True)
class Quorum:
    """The quorum frozen into one decision when it is proposed."""

    approvers: tuple[str, ...]
    required: int
    veto: bool
    expires_at: datetime
    override: bool = False


@dataclass(frozen=True)
class Opening:
    """How a proposal starts: ``pending`` with a quorum, or ``rejected`` with the reason."""

    status: str
    quorum: Quorum
    reason: str = ""


def open_decision(
    rules: Rules,
    kind: str,
    *,
    proposer: str,
    now: datetime,
    amount_minor: int | None = None,
    currency: str | None = None,
    override: bool = False,
) -> Opening:
    """The quorum (or the cap rejection) of a proposal made at ``now``.

    Raises:
        InvalidInput: no approvers are named for the kind, a spend amount is missing or in
            another currency than the cap, or an override is asked for without an override role.
    """
    rule = rules.rule_for(kind)
    expires_at = now + timedelta(days=rule.expiry_days)
    quorum = Quorum(rule.approvers, rule.required, rule.veto, expires_at)
    if kind == "spend":
        cap = rules.spend_cap
        _check_amount(amount_minor, currency, cap)
        above = amount_minor > cap.cap_minor  # type: ignore[operator]
        if above and override:
            if not cap.override_approvers:
                raise InvalidInput(
                    "an override was asked for but the rules name no override approvers "
                    "(spend_cap.override_approvers)",
                    field="override",
                    code=UNREACHABLE,
                )
            quorum = Quorum(
                cap.override_approvers, cap.override_required, rule.veto, expires_at, True
            )
        elif above:
            reason = (
                f"above the spend cap: {format_major(amount_minor, cap.currency)} {cap.currency} "  # type: ignore[arg-type]
                f"exceeds {format_major(cap.cap_minor, cap.currency)} {cap.currency}; only the "
                f"override role ({cap.override_required} of {len(cap.override_approvers)}) can "
                "approve it, on a proposal that asks for an override"
            )
            return Opening("rejected", quorum, reason)
    elif override:
        raise InvalidInput(
            "an override applies only to spend requests above the cap", field="override"
        )
    _check_reachable(quorum, proposer, kind)
    return Opening("pending", quorum)


def _check_amount(amount_minor: int | None, currency: str | None, cap: SpendCap) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise InvalidInput("a spend request needs a positive amount_minor", field="amount_minor")
    if currency != cap.currency:
        raise InvalidInput(
            f"the spend is in {currency}, the cap in {cap.currency}; propose it in {cap.currency}",
            field="currency",
            code="other_currency",
        )


def _check_reachable(q: Quorum, proposer: str, kind: str) -> None:
    if not q.approvers:
        raise InvalidInput(
            f"no approvers are named for {kind} decisions; set the rules first "
            "(tianping decision rules set FILE)",
            field="approvers",
            code=UNREACHABLE,
        )
    eligible = [a for a in q.approvers if a != proposer]
    if len(eligible) < q.required:
        raise InvalidInput(
            f"{proposer} is an approver and cannot approve their own proposal, which leaves "
            f"{len(eligible)} approvers for a quorum of {q.required}",
            field="proposer",
            code=UNREACHABLE,
        )


# -- voting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ballot:
    """One vote cast on a decision: who, approve/reject/veto, when."""

    voter: str
    choice: str
    at: datetime


@dataclass(frozen=True)
class Tally:
    """Where a pending decision stands after its ballots."""

    status: str
    reason: str
    approvals: tuple[str, ...]
    rejections: tuple[str, ...]


def check_ballot(
    q: Quorum,
    *,
    proposer: str,
    status: str,
    ballots: Sequence[Ballot],
    voter: str,
    choice: str,
) -> None:
    """Refuse a ballot the rules do not allow.

    Raises:
        InvalidInput: unknown choice, or a veto where the kind has none.
        Conflict: the decision is no longer pending, or the voter already voted.
        Forbidden: the voter is the proposer, or not a named approver.
    """
    if choice not in CHOICES:
        raise InvalidInput(f"unknown vote {choice!r}; use {', '.join(CHOICES)}", field="choice")
    if status != "pending":
        raise Conflict(
            f"the decision is already {status}; votes are closed", code="decision_closed"
        )
    if voter == proposer:
        raise Forbidden(f"{voter} proposed this decision and cannot vote on it", field="actor")
    if voter not in q.approvers:
        role = "override approvers" if q.override else "approvers"
        raise Forbidden(
            f"{voter} is not one of this decision's {role} ({', '.join(q.approvers)})",
            field="actor",
        )
    if any(b.voter == voter for b in ballots):
        raise Conflict(f"{voter} already voted on this decision", code="already_voted")
    if choice == "veto" and not q.veto:
        raise InvalidInput("this kind of decision has no veto; vote reject instead", field="choice")


def vote_refusal(
    q: Quorum, *, proposer: str, status: str, ballots: Sequence[Ballot], voter: str
) -> str | None:
    """Why ``voter`` cannot vote on the decision now, or None when they still may (what
    :func:`check_ballot` would refuse, asked before a choice is made).

    >>> q = Quorum(("Ada", "Oli"), 1, False, None)
    >>> vote_refusal(q, proposer="Ada", status="pending", ballots=[], voter="Ada")
    'Ada proposed this decision and cannot vote on it'
    >>> vote_refusal(q, proposer="Ada", status="pending", ballots=[], voter="Oli") is None
    True
    """
    try:
        check_ballot(
            q, proposer=proposer, status=status, ballots=ballots, voter=voter, choice="approve"
        )
    except TianpingError as exc:
        return exc.message
    return None


def tally(q: Quorum, *, proposer: str, ballots: Iterable[Ballot]) -> Tally:
    """The status the ballots lead to (``pending`` while the quorum is still open)."""
    ballots = list(ballots)
    approvals = tuple(b.voter for b in ballots if b.choice == "approve")
    rejections = tuple(b.voter for b in ballots if b.choice in ("reject", "veto"))
    vetoes = [b.voter for b in ballots if b.choice == "veto"]
    if vetoes:
        return Tally("vetoed", f"vetoed by {vetoes[0]}", approvals, rejections)
    if len(approvals) >= q.required:
        return Tally(
            "approved", f"{len(approvals)} of {len(q.approvers)} approved", approvals, rejections
        )
    voted = {b.voter for b in ballots}
    open_voters = [a for a in q.approvers if a != proposer and a not in voted]
    if len(approvals) + len(open_voters) < q.required:
        reason = (
            f"rejected by {', '.join(rejections)}: {q.required} approvals can no longer be reached"
        )
        return Tally("rejected", reason, approvals, rejections)
    return Tally("pending", "", approvals, rejections)


def is_expired(status: str, expires_at: datetime, now: datetime) -> bool:
    """True when a pending decision's time is up."""
    return status == "pending" and now >= expires_at


def check_transition(old: str, new: str) -> None:
    """Only a pending decision changes status, and only once.

    Raises:
        Conflict: the decision is already final.
    """
    if old != "pending" or new not in FINAL:
        raise Conflict(f"a decision cannot go from {old} to {new}", code="decision_closed")
