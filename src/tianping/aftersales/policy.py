"""Evaluate a refund policy: one decision with its explanation, or a vectorised batch (pure).

The refund service calls :func:`evaluate` with :class:`RefundInputs` and records the
:class:`Decision` (action, refund amount, payer, reason codes, the rule that fired and the policy
version); the what-if replay calls :func:`evaluate_batch` with NumPy columns. Both read the same
compiled table, so a batch gives exactly the decisions the single evaluator gives.

Semantics (``docs/aftersales.md``): rules are tried from the highest priority down; the first
rule whose every condition holds fires. Loading guarantees that rules at the same priority never
overlap and that every input is covered, so exactly one rule fires and file order never matters.

>>> policy = load_builtin("pinduoduo-2021")
>>> d = evaluate(policy, RefundInputs(amount_minor=1500, currency="CNY", category="food",
...     reason="quality", buyer_score=600, merchant_score=4.5, defect_flag=False,
...     delivered=True, days_since_delivery=2, buyer_recent_claims=0))
>>> d.action, d.refund_amount_minor, d.requires_return, d.payer
('refund_only', 1500, False, 'merchant')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from fractions import Fraction

import numpy as np

from tianping.aftersales.policy_space import Interval, Values
from tianping.aftersales.policy_table import (
    ACTIONS,
    AUTOMATIC,
    DIMENSION_NAMES,
    DIMENSIONS,
    NEGOTIATION_REASON,
    PAYERS,
    REFUNDING,
    Action,
    Policy,
    ReasonCode,
    Rule,
    builtin_names,
    load_builtin,
    load_policy,
    parse_policy,
    read_policy,
    resolve_policy,
)
from tianping.errors import InvalidInput

__all__ = [
    "ACTIONS",
    "Coded",
    "ConditionMatch",
    "Decision",
    "DecisionBatch",
    "Policy",
    "ReasonCode",
    "RefundInputs",
    "builtin_names",
    "evaluate",
    "evaluate_batch",
    "load_builtin",
    "load_policy",
    "parse_policy",
    "read_policy",
    "refund_amount",
    "resolve_policy",
]


#: Inputs a request may leave out: no abnormal behaviour, not in a ring.
OPTIONAL = {
    "abnormal_behaviour": False,
    "ring_size": 1,
    "ring_burst_accounts": 0,
    "ring_reason": "",
}
RING_INPUTS = ("ring_size", "ring_burst_accounts")


@dataclass(frozen=True, slots=True)
class RefundInputs:
    """What a policy decides on, for one refund request.

    Attributes:
        amount_minor: the refund requested, in minor units (fen).
        currency: must be the policy's currency.
        category: the product's category, as in ``orders.category``.
        reason: the buyer's reason, normalised (``quality``, ``not_received``, ...; see
            :func:`tianping.aftersales.vocabulary.normalise`).
        buyer_score: buyer credit score, 350–950.
        merchant_score: merchant quality score, 0–5.
        defect_flag: the product is flagged defective from refund data.
        delivered: the goods were delivered.
        days_since_delivery: whole days since delivery (0 when not delivered).
        buyer_recent_claims: the buyer's refund requests in the last 30 days, this one excluded.
        abnormal_behaviour: abuse detection flagged this claim or buyer.
        ring_size, ring_burst_accounts: the buyer's abuse ring (:mod:`tianping.aftersales.rings`):
            its accounts (1: linked to no one) and how many of them claimed within 48 h.
        ring_reason: what links the buyer to the ring (the shared values), cited by a decision
            whose rule tested a ring input.
        evidence_count: evidence references (photos, documents) attached to the claim.
        has_photo: a photo is among them.
    """

    amount_minor: int
    currency: str
    category: str
    reason: str
    buyer_score: float
    merchant_score: float
    defect_flag: bool
    delivered: bool
    days_since_delivery: int
    buyer_recent_claims: int
    abnormal_behaviour: bool = False
    # abuse rings
    ring_size: int = 1
    ring_burst_accounts: int = 0
    ring_reason: str = ""
    evidence_count: int = 0
    has_photo: bool = False

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> RefundInputs:
        """Build from a JSON-like mapping, naming unknown and missing fields.

        Raises:
            InvalidInput: unknown or missing fields.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"unknown input field(s): {', '.join(unknown)}", field=unknown[0])
        optional = {*OPTIONAL, *(d.name for d in DIMENSIONS if d.default is not None)}
        missing = [f.name for f in fields(cls) if f.name not in data and f.name not in optional]
        if missing:
            raise InvalidInput(f"missing input field(s): {', '.join(missing)}", field=missing[0])
        return cls(**data)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ConditionMatch:
    """One condition of the rule that fired and the input value that satisfied it."""

    input: str
    condition: str
    value: object


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's decision on one request, with everything needed to explain and replay it.

    Attributes:
        action: one of :data:`ACTIONS`.
        refund_amount_minor: money refunded by this decision (0 for review, negotiation, reject).
        currency: the policy's currency.
        requires_return: the refund waits for the goods to come back.
        payer: ``merchant`` or ``platform`` for refunds, else None.
        reasons: reason codes with their texts for the buyer and the merchant.
        rule_id: the rule that fired.
        priority: that rule's priority.
        policy_name: the policy's name.
        policy_version: SHA-256 of the policy's canonical content.
        matched: each condition of the rule with the input value that satisfied it (a rule
            without conditions is the policy's catch-all).
        fraction: the partial-refund fraction as a decimal string, else None.
        ring_reason: the shared values linking the buyer to its ring, when the rule that fired
            tested a ring input (else empty).
    """

    action: str
    refund_amount_minor: int
    currency: str
    requires_return: bool
    payer: str | None
    reasons: tuple[ReasonCode, ...]
    rule_id: str
    priority: int
    policy_name: str
    policy_version: str
    matched: tuple[ConditionMatch, ...]
    fraction: str | None = None
    ring_reason: str = ""

    @property
    def automatic(self) -> bool:
        """Decided without a person: not sent to negotiation or manual review."""
        return self.action in AUTOMATIC

    @property
    def outcome_key(self) -> tuple[int, int]:
        """The buyer's view of the outcome: larger is better (action order, then money)."""
        return ACTIONS.index(self.action), self.refund_amount_minor

    def explain(self) -> str:
        """One paragraph: which rule fired and why."""
        why = "; ".join(f"{m.condition} (was {_show(m.value)})" for m in self.matched)
        why = why or "no condition: the catch-all rule"
        if self.ring_reason:
            why += f"; the buyer {self.ring_reason}"
        return (
            f"policy {self.policy_name}@{self.policy_version[:12]}: rule {self.rule_id} "
            f"(priority {self.priority}) fired because {why} -> {self.action}"
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (reasons as ``{code, buyer, merchant}``)."""
        return {
            "action": self.action,
            "refund_amount_minor": self.refund_amount_minor,
            "currency": self.currency,
            "requires_return": self.requires_return,
            "payer": self.payer,
            "fraction": self.fraction,
            "ring_reason": self.ring_reason,
            "reasons": [
                {"code": r.code, "buyer": r.buyer, "merchant": r.merchant} for r in self.reasons
            ],
            "rule_id": self.rule_id,
            "priority": self.priority,
            "policy_name": self.policy_name,
            "policy_version": self.policy_version,
            "matched": [
                {"input": m.input, "condition": m.condition, "value": m.value} for m in self.matched
            ],
            "explanation": self.explain(),
        }


def refund_amount(amount_minor: int, fraction: Fraction, rounding: str) -> int:
    """``amount_minor × fraction`` in whole minor units, rounded by the policy's rule.

    >>> refund_amount(2005, Fraction(1, 2), "half_up"), refund_amount(2005, Fraction(1, 2), "down")
    (1003, 1002)
    >>> refund_amount(2005, Fraction(1, 2), "half_even"), refund_amount(2007, Fraction(1, 2), "half_even")
    (1002, 1004)
    """
    q, r = divmod(amount_minor * fraction.numerator, fraction.denominator)
    return q + int(_round_up(q, r, fraction.denominator, rounding))


def _round_up(q, r, d, rounding: str):
    """Whether to add one to the quotient (works on ints and on NumPy arrays alike)."""
    if rounding == "down":
        return r < 0  # never: the remainder is non-negative
    if rounding == "up":
        return r > 0
    if rounding == "half_up":
        return 2 * r >= d
    return (2 * r > d) | ((2 * r == d) & (q % 2 == 1))


# -- single decisions ----------------------------------------------------------------------

Check = Callable[[object], bool]
_COMPILED: dict[str, tuple[tuple[Rule, tuple[tuple[int, Check], ...]], ...]] = {}


def _compiled(policy: Policy):
    table = _COMPILED.get(policy.version)
    if table is None:
        table = tuple(
            (r, tuple((c.index, _check(c.set)) for c in r.conditions)) for r in policy.rules
        )
        _COMPILED[policy.version] = table
    return table


def _check(cset: Interval | Values) -> Check:
    if isinstance(cset, Values):
        members = cset.values
        return (lambda v: v not in members) if cset.negated else members.__contains__
    lo, hi = cset.lo, cset.hi
    low = (
        (lambda v: True)
        if lo == -math.inf
        else (lambda v: v >= lo)
        if cset.lo_closed
        else (lambda v: v > lo)
    )
    if hi == math.inf:
        return low
    if cset.hi_closed:
        return lambda v: low(v) and v <= hi
    return lambda v: low(v) and v < hi


def evaluate(policy: Policy, inputs: RefundInputs, *, negotiate: bool = True) -> Decision:
    """Decide one refund request.

    A policy with negotiation first sends a request its table would refund to a merchant at or
    above its quality bar; ``negotiate=False`` gives the table's own decision, the one the
    platform takes when the negotiation's SLA passes without agreement.

    Raises:
        InvalidInput: an input outside its domain (named), or a currency other than the policy's.
    """
    values = _validated(policy, inputs)
    for rule, checks in _compiled(policy):
        for index, ok in checks:
            if not ok(values[index]):
                break
        else:
            decided = _decision(policy, rule, inputs, values)
            return _negotiated(policy, rule, decided, inputs) if negotiate else decided
    raise AssertionError(f"policy {policy.name} covers every input, yet no rule matched")


def _decision(policy: Policy, rule: Rule, inputs: RefundInputs, values: tuple) -> Decision:
    act: Action = rule.action
    return Decision(
        action=act.action,
        refund_amount_minor=refund_amount(
            inputs.amount_minor, act.refund_fraction, policy.rounding
        ),
        currency=policy.currency,
        requires_return=act.requires_return,
        payer=act.payer,
        reasons=tuple(policy.reasons[c] for c in act.reasons),
        rule_id=rule.id,
        priority=rule.priority,
        policy_name=policy.name,
        policy_version=policy.version,
        matched=tuple(
            ConditionMatch(c.dimension, c.text, values[c.index]) for c in rule.conditions
        ),
        fraction=_decimal(act.fraction) if act.fraction is not None else None,
        ring_reason=inputs.ring_reason
        if any(c.dimension in RING_INPUTS for c in rule.conditions)
        else "",
    )


def _negotiated(policy: Policy, rule: Rule, d: Decision, inputs: RefundInputs) -> Decision:
    n = policy.negotiation
    if n is None or not n.applies(inputs.merchant_score, rule):
        return d
    reasons = tuple(policy.reasons[c] for c in n.reasons) or (NEGOTIATION_REASON,)
    bar = ConditionMatch(
        "merchant_score", f"merchant_score >= {n.quality_bar:g} (negotiation first)",
        inputs.merchant_score,
    )  # fmt: skip
    return Decision(  # built directly: dataclasses.replace cost a third of a decision
        action="merchant_negotiation",
        refund_amount_minor=0,
        currency=d.currency,
        requires_return=False,
        payer=None,
        reasons=reasons,
        rule_id=d.rule_id,
        priority=d.priority,
        policy_name=d.policy_name,
        policy_version=d.policy_version,
        matched=(*d.matched, bar),
        fraction=None,
    )


def _validated(policy: Policy, x: RefundInputs) -> tuple:
    if x.currency != policy.currency:
        raise InvalidInput(
            f"currency {x.currency!r} differs from policy {policy.name}'s {policy.currency}",
            field="currency",
            code="other_currency",
        )
    values = (
        x.amount_minor, x.category, x.reason, x.buyer_score, x.merchant_score, x.defect_flag,
        x.delivered, x.days_since_delivery, x.buyer_recent_claims, x.abnormal_behaviour,
        x.ring_size, x.ring_burst_accounts,
        x.evidence_count, x.has_photo,
    )  # fmt: skip
    for dim, v in zip(DIMENSIONS, values, strict=True):
        _check_value(dim, v)
    return values


def _check_value(dim, v) -> None:
    kind = dim.kind
    if kind == "bool":
        ok = isinstance(v, bool)
    elif kind == "category":
        ok = isinstance(v, str)
    elif kind == "int":
        ok = isinstance(v, int) and not isinstance(v, bool) and dim.lo <= v <= dim.hi
    else:
        ok = isinstance(v, int | float) and not isinstance(v, bool) and dim.lo <= v <= dim.hi
    if not ok:
        raise InvalidInput(f"{dim.name}={v!r} is not {_expected(dim)}", field=dim.name)


def _expected(dim) -> str:
    if dim.kind == "bool":
        return "true or false"
    if dim.kind == "category":
        return "a string"
    hi = "" if dim.hi == math.inf else f" and {dim.hi:g}"
    what = "an integer" if dim.kind == "int" else "a number"
    return f"{what} between {dim.lo:g}{hi}" if hi else f"{what} >= {dim.lo:g}"


def _decimal(f: Fraction) -> str:
    return format(Decimal(f.numerator) / Decimal(f.denominator), "f")


def _show(v: object) -> str:
    return "true" if v is True else "false" if v is False else str(v)


# -- batches -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coded:
    """A dictionary-encoded string column (as Arrow's dictionary arrays): ``labels[codes]``."""

    codes: np.ndarray
    labels: Sequence[str]


@dataclass(frozen=True)
class DecisionBatch:
    """Decisions for many requests as NumPy columns, row for row with the inputs.

    Attributes:
        rule_ids: the policy's rules in evaluation order; ``rule_index`` points into it.
        rule_index: the rule that fired, per row.
        action_code: index into :data:`ACTIONS`, per row.
        refund_amount_minor: money refunded, per row.
        requires_return: per row.
        payer_code: index into :data:`PAYERS`, or -1 when no money moves.
    """

    policy_name: str
    policy_version: str
    currency: str
    rule_ids: tuple[str, ...]
    rule_index: np.ndarray
    action_code: np.ndarray
    refund_amount_minor: np.ndarray
    requires_return: np.ndarray
    payer_code: np.ndarray

    def __len__(self) -> int:
        return len(self.rule_index)

    @property
    def actions(self) -> np.ndarray:
        """Each decision's action name (``refund_only``, ``return_and_refund``, …)."""
        return np.asarray(ACTIONS, dtype=object)[self.action_code]

    @property
    def payers(self) -> np.ndarray:
        """Each decision's payer (``merchant``, ``platform``), None where no money moves."""
        return np.asarray((*PAYERS, None), dtype=object)[self.payer_code]

    @property
    def automatic(self) -> np.ndarray:
        """Whether each decision is made without a person (not sent to manual review or negotiation)."""
        return np.isin(self.action_code, [ACTIONS.index(a) for a in AUTOMATIC])

    def row(self, i: int) -> dict[str, object]:
        """Row ``i`` as the single evaluator's fields."""
        return {
            "rule_id": self.rule_ids[self.rule_index[i]],
            "action": ACTIONS[self.action_code[i]],
            "refund_amount_minor": int(self.refund_amount_minor[i]),
            "requires_return": bool(self.requires_return[i]),
            "payer": PAYERS[self.payer_code[i]] if self.payer_code[i] >= 0 else None,
        }


def evaluate_batch(
    policy: Policy, columns: Mapping[str, object], *, negotiate: bool = True
) -> DecisionBatch:
    """Decide many requests at once, exactly as :func:`evaluate` would one by one.

    Args:
        policy: the policy.
        columns: one array per input of :class:`RefundInputs` (``currency`` may be one string);
            string inputs may be NumPy arrays or :class:`Coded`. The evidence columns may
            be left out (no evidence on any row).
        negotiate: apply the policy's negotiation first, as :func:`evaluate` does.

    Raises:
        InvalidInput: a missing column, lengths that differ, or a value outside its domain
            (naming the column and the first bad row).
    """
    n, cols = _batch_columns(policy, columns)
    index = np.full(n, -1, dtype=np.int32)
    open_rows = np.arange(n)
    for i, rule in enumerate(policy.rules):
        mask = np.ones(len(open_rows), dtype=bool)
        for c in rule.conditions:
            mask &= _vector_test(c.set, cols[c.dimension], open_rows, policy, c.dimension)
        index[open_rows[mask]] = i
        open_rows = open_rows[~mask]
        if not len(open_rows):
            break
    out = _batch_outputs(policy, index, cols["amount_minor"])
    n_ = policy.negotiation
    if negotiate and n_ is not None:
        eligible = np.array(
            [r.action.action in REFUNDING and r.id not in n_.exempt for r in policy.rules]
        )
        first = eligible[index] & (cols["merchant_score"] >= n_.quality_bar)
        out.action_code[first] = ACTIONS.index("merchant_negotiation")
        out.refund_amount_minor[first] = 0
        out.requires_return[first] = False
        out.payer_code[first] = -1
    return out


def _vector_test(cset, col, rows: np.ndarray, policy: Policy, name: str) -> np.ndarray:
    if isinstance(cset, Values):
        if isinstance(col, tuple):  # category code column and its vocabulary
            codes, vocab = col
            table = np.array([cset.contains(v) for v in vocab] + [cset.negated])
            return table[codes[rows]]
        return col[rows] if True in cset.values else ~col[rows]
    v = col[rows]
    ok = np.ones(len(rows), dtype=bool)
    if cset.lo != -math.inf:
        ok &= (v >= cset.lo) if cset.lo_closed else (v > cset.lo)
    if cset.hi != math.inf:
        ok &= (v <= cset.hi) if cset.hi_closed else (v < cset.hi)
    return ok


def _batch_columns(policy: Policy, columns: Mapping[str, object]) -> tuple[int, dict]:
    n = len(columns["amount_minor"]) if "amount_minor" in columns else 0  # type: ignore[arg-type]
    defaults = {
        d.name: np.full(n, d.default, dtype=bool if d.kind == "bool" else np.int64)
        for d in DIMENSIONS
        if d.default is not None and d.name not in columns
    }
    columns = {**columns, **defaults}
    missing = [n for n in DIMENSION_NAMES if n not in columns and n not in RING_INPUTS]
    if missing:
        raise InvalidInput(f"missing column(s): {', '.join(missing)}", field=missing[0])
    n = len(columns["amount_minor"])  # type: ignore[arg-type]
    defaults = {k: np.full(n, OPTIONAL[k]) for k in RING_INPUTS}  # absent: not in a ring
    columns = {**defaults, **columns}
    _batch_currency(policy, columns.get("currency", policy.currency), n)
    cols = {}
    for dim in DIMENSIONS:
        raw = columns[dim.name]
        length = len(raw.codes) if isinstance(raw, Coded) else len(raw)  # type: ignore[arg-type]
        if length != n:
            raise InvalidInput(
                f"column {dim.name} has {length} rows, amount_minor has {n}", field=dim.name
            )
        cols[dim.name] = _batch_column(policy, dim, raw)
    return n, cols


def _batch_currency(policy: Policy, currency: object, n: int) -> None:
    values = (
        np.unique(np.asarray(currency, dtype=object))
        if not isinstance(currency, str)
        else [currency]
    )
    bad = [c for c in values if c != policy.currency]
    if bad:
        raise InvalidInput(
            f"currency {bad[0]!r} differs from policy {policy.name}'s {policy.currency}",
            field="currency",
            code="other_currency",
        )


def _batch_column(policy: Policy, dim, raw):
    if dim.kind == "category":
        return _encode(policy, dim.name, raw)
    arr = np.asarray(raw)
    if dim.kind == "bool":
        if arr.dtype != np.bool_:
            raise InvalidInput(
                f"column {dim.name} must be boolean, got {arr.dtype}", field=dim.name
            )
        return arr
    if dim.kind == "int" and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInput(f"column {dim.name} must hold integers, got {arr.dtype}", field=dim.name)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InvalidInput(f"column {dim.name} must be numeric, got {arr.dtype}", field=dim.name)
    arr = arr.astype(np.int64 if dim.kind == "int" else np.float64, copy=False)
    bad = ~((arr >= dim.lo) & (arr <= dim.hi))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"column {dim.name}, row {row}: {arr[row]!r} is not {_expected(dim)}", field=dim.name
        )
    return arr


def _encode(policy: Policy, name: str, raw) -> tuple[np.ndarray, list[str]]:
    """Codes into the values the policy names for this input (last code: any other value)."""
    vocab = sorted(
        {v for r in policy.rules for c in r.conditions if c.dimension == name for v in c.set.values}
    )
    other = len(vocab)
    if isinstance(raw, Coded):
        labels = list(raw.labels)
        remap = np.array([vocab.index(v) if v in vocab else other for v in labels], dtype=np.int32)
        codes = np.asarray(raw.codes)
        if len(codes) and (codes.min() < 0 or codes.max() >= len(labels)):
            raise InvalidInput(f"column {name}: codes outside its {len(labels)} labels", field=name)
        return remap[codes], vocab
    arr = np.asarray(raw)
    if arr.dtype.kind not in "UOT":
        raise InvalidInput(f"column {name} must hold strings, got {arr.dtype}", field=name)
    codes = np.full(len(arr), other, dtype=np.int32)
    for k, v in enumerate(vocab):
        codes[arr == v] = k
    return codes, vocab


def _batch_outputs(policy: Policy, index: np.ndarray, amount: np.ndarray) -> DecisionBatch:
    acts = [r.action for r in policy.rules]
    action_code = np.array([ACTIONS.index(a.action) for a in acts], dtype=np.int8)[index]
    num = np.array([a.refund_fraction.numerator for a in acts], dtype=np.int64)[index]
    den = np.array([a.refund_fraction.denominator for a in acts], dtype=np.int64)[index]
    q, r = np.divmod(amount * num, den)
    refund = q + _round_up(q, r, den, policy.rounding).astype(np.int64)
    payer = np.array([PAYERS.index(a.payer) if a.payer else -1 for a in acts], dtype=np.int8)[index]
    returns = np.array([a.requires_return for a in acts], dtype=bool)[index]
    return DecisionBatch(
        policy_name=policy.name,
        policy_version=policy.version,
        currency=policy.currency,
        rule_ids=tuple(r.id for r in policy.rules),
        rule_index=index,
        action_code=action_code,
        refund_amount_minor=refund,
        requires_return=returns,
        payer_code=payer,
    )
