"""Refund policies as versioned decision tables: the format, its validation and its version (pure).

A policy file (YAML or JSON) names its inputs' conditions per rule and the action each rule
takes; ``docs/aftersales.md`` documents the format. Loading checks everything a reviewer would:
unknown fields, bounds outside an input's domain or empty ranges, two rules at the same priority
that can match the same input, inputs that no rule covers, refund-without-return outside the
policy's category scope, and a higher buyer score getting a worse outcome. Each error names the
rule(s) and, for overlaps and gaps, the region of the input space concerned.

The version is the SHA-256 of the policy's canonical JSON (keys sorted, defaults made explicit,
value sets sorted), so whitespace, key order, comments and YAML-vs-JSON do not change it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from importlib import resources
from pathlib import Path

from tianping import yamldoc
from tianping.aftersales import policy_space as space
from tianping.aftersales.policy_space import INF, Interval, Values
from tianping.errors import InvalidInput, NotFound, UsageError
from tianping.money import exponent_of

#: Actions, and the outcome order a buyer sees (worst first); docs/aftersales.md explains it.
ACTIONS = (
    "reject",
    "manual_review",
    "merchant_negotiation",
    "return_and_refund",
    "partial_refund",
    "refund_only",
)
REFUNDING = frozenset({"refund_only", "partial_refund", "return_and_refund"})
KEEPS_GOODS = frozenset({"refund_only", "partial_refund"})
AUTOMATIC = frozenset({"refund_only", "partial_refund", "return_and_refund", "reject"})
PAYERS = ("merchant", "platform")
ROUNDING = ("half_up", "half_even", "down", "up")
#: Largest amount a policy decides on (10 billion in major units of a 2-decimal currency).
MAX_AMOUNT_MINOR = 10**12
#: A partial-refund fraction has at most this many decimal places.
FRACTION_PLACES = 4


@dataclass(frozen=True, slots=True)
class Dimension:
    """One input of the decision table and its domain."""

    name: str
    kind: str  # "int" | "real" | "category" | "bool"
    lo: float = -INF
    hi: float = INF
    doc: str = ""
    #: The value assumed when a caller does not supply this input (None: it is required).
    default: object = None

    @property
    def domain(self) -> space.Set:
        """Every value this input can take (booleans, integers or reals within its bounds, any category)."""
        if self.kind == "bool":
            return Values(frozenset({False, True}))
        if self.kind == "category":
            return Values(frozenset(), negated=True)
        return Interval.make(self.lo, True, self.hi, True, self.kind == "int")


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("amount_minor", "int", 0, MAX_AMOUNT_MINOR, "refund requested, minor units"),
    Dimension("category", "category", doc="product category"),
    Dimension("reason", "category", doc="the buyer's stated reason"),
    Dimension("buyer_score", "real", 350, 950, "buyer credit score, higher = more trustworthy"),
    Dimension("merchant_score", "real", 0, 5, "merchant quality (store experience) score"),
    Dimension("defect_flag", "bool", doc="product flagged defective from refund data"),
    Dimension("delivered", "bool", doc="the goods were delivered"),
    Dimension("days_since_delivery", "int", 0, INF, "whole days; 0 when not delivered"),
    Dimension("buyer_recent_claims", "int", 0, INF, "buyer's refund requests, last 30 days"),
    Dimension("abnormal_behaviour", "bool", doc="abuse detection flagged the claim"),
    # abuse rings (tianping.aftersales.rings); absent = linked to no one
    Dimension("ring_size", "int", 1, INF, "accounts in the buyer's ring (1: linked to no one)"),
    Dimension("ring_burst_accounts", "int", 0, INF, "ring accounts that claimed within 48 h"),
)
#: Evidence the buyer attached to the claim (references with their hashes; none when absent).
EVIDENCE_DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("evidence_count", "int", 0, INF, "evidence references attached", default=0),
    Dimension("has_photo", "bool", doc="a photo is among the evidence", default=False),
)
DIMENSIONS += EVIDENCE_DIMENSIONS
DIMENSION_NAMES = tuple(d.name for d in DIMENSIONS)
DOMAIN: space.Box = tuple(d.domain for d in DIMENSIONS)
_DIM = {d.name: d for d in DIMENSIONS}

_TOP_KEYS = {
    "name",
    "title",
    "source",
    "description",
    "currency",
    "rounding",
    "refund_only_categories",
    "reasons",
    "rules",
    "negotiation",
}
_NEGOTIATION_KEYS = {"quality_bar", "sla_hours", "reasons", "except"}
#: Longest negotiation SLA a policy may set (30 days).
MAX_SLA_HOURS = 720
_RULE_KEYS = {"id", "priority", "description", "when", "then"}
_THEN_KEYS = {"action", "payer", "fraction", "reasons"}
_BOUND_OPS = {"gt", "gte", "lt", "lte"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_REASON = re.compile(r"^[a-z0-9_]+$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class Condition:
    """One input's condition in a rule, e.g. ``amount_minor < 2000``."""

    dimension: str
    index: int
    set: space.Set
    text: str


@dataclass(frozen=True, slots=True)
class ReasonCode:
    """A reason code with its explanation for the buyer and for the merchant."""

    code: str
    buyer: str
    merchant: str


@dataclass(frozen=True, slots=True)
class Action:
    """What a rule does: the action, who pays, the partial fraction and the reason codes."""

    action: str
    payer: str | None
    fraction: Fraction | None
    reasons: tuple[str, ...]

    @property
    def requires_return(self) -> bool:
        """Whether the buyer must send the goods back before the money moves."""
        return self.action == "return_and_refund"

    @property
    def refund_fraction(self) -> Fraction:
        """Share of the requested amount refunded: 1, the partial fraction, or 0."""
        if self.action == "partial_refund":
            return self.fraction
        return Fraction(1) if self.action in REFUNDING else Fraction(0)

    @property
    def outcome_key(self) -> tuple[int, Fraction]:
        """Position in the buyer's outcome order (larger is better)."""
        return ACTIONS.index(self.action), self.refund_fraction


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table: an id, a priority, its conditions and its action."""

    id: str
    priority: int
    conditions: tuple[Condition, ...]
    action: Action
    description: str = ""

    @property
    def box(self) -> space.Box:
        """The inputs this rule matches, one set per dimension (unconstrained ones whole)."""
        box = list(DOMAIN)
        for c in self.conditions:
            box[c.index] = c.set
        return tuple(box)


@dataclass(frozen=True, slots=True)
class Negotiation:
    """Negotiation first: a merchant at or above the quality bar settles with the buyer first.

    A request the table would refund goes to the merchant instead; if no agreement is reached
    within ``sla_hours`` the platform decides it by the table (docs/refunds.md).

    Attributes:
        quality_bar: lowest merchant quality score (0-5) that negotiates first.
        sla_hours: how long the merchant has to agree before the platform decides.
        reasons: the reason codes the negotiation decision gives.
        exempt: rules whose refunds are paid at once even at such merchants (e.g. goods not
            delivered).
    """

    quality_bar: float
    sla_hours: float
    reasons: tuple[str, ...]
    exempt: frozenset[str] = frozenset()

    def applies(self, merchant_score: float, rule: Rule) -> bool:
        """Whether a request the table decides by ``rule`` is negotiated first."""
        return (
            rule.action.action in REFUNDING
            and rule.id not in self.exempt
            and merchant_score >= self.quality_bar
        )


#: The reason a negotiation decision gives when the policy names none.
NEGOTIATION_REASON = ReasonCode(
    "negotiation_first",
    "Please settle this with the store first; the platform decides if you do not agree in time.",
    "Your quality score lets you settle with the buyer first; the platform decides if you do "
    "not agree in time.",
)


@dataclass(frozen=True)
class Policy:
    """A validated refund policy.

    Attributes:
        name: short name, e.g. ``taobao-2024-08``.
        version: SHA-256 (hex) of the canonical content.
        rules: in evaluation order (priority high to low, then file order).
        content: the canonical content the version hashes.
        warnings: findings that are not errors (rules that can never fire, unused reason codes).
    """

    name: str
    title: str
    source: str
    description: str
    currency: str
    rounding: str
    refund_only_categories: Values | None
    reasons: Mapping[str, ReasonCode]
    rules: tuple[Rule, ...]
    version: str
    content: Mapping[str, object]
    warnings: tuple[str, ...] = ()
    negotiation: Negotiation | None = None

    @property
    def short_version(self) -> str:
        """The content version's first 12 characters, as pages and messages show it."""
        return self.version[:12]

    def rule(self, rule_id: str) -> Rule:
        """The rule with id ``rule_id``; :class:`NotFound` when the policy has none."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise NotFound(f"policy {self.name} has no rule {rule_id!r}", field="rule_id")


class _Problems:
    def __init__(self, text: str | None = None) -> None:
        self.items: list[tuple[str, str]] = []
        self.text = text  # the YAML the document came from, to name lines

    def add(self, where: str, message: str) -> None:
        self.items.append((where, message))

    def raise_if_any(self, origin: str) -> None:
        if not self.items:
            return
        listed = "; ".join(f"{w}: {m}" if w else m for w, m in self.items)
        n = len(self.items)
        raise InvalidInput(
            f"policy {origin} has {n} error{'s' if n > 1 else ''}: {listed}",
            field=self.items[0][0] or None,
        )


# -- loading -------------------------------------------------------------------------------


def canonical_json(content: object) -> str:
    """The canonical JSON text the version hashes (sorted keys, no spaces, UTF-8)."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def version_of(content: object) -> str:
    """SHA-256 hex of the canonical JSON of ``content``."""
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


_CACHE: dict[str, Policy] = {}


def parse_policy(data: object, *, origin: str = "<policy>", text: str | None = None) -> Policy:
    """Validate a policy document (the parsed YAML/JSON) and build the :class:`Policy`.

    ``text``, the YAML the document was read from, lets an unknown field name its line.

    Raises:
        InvalidInput: every problem found, each naming its rule and field (an unknown field
            with the one probably meant).
    """
    problems = _Problems(text)
    content = _canonical(data, problems)
    problems.raise_if_any(origin)
    version = version_of(content)
    if version not in _CACHE:
        _CACHE[version] = _build(content, version, origin)
    return _CACHE[version]


def read_policy(text: str, *, origin: str = "<policy>") -> Policy:
    """Parse YAML (or JSON) text into a validated :class:`Policy`."""
    data = yamldoc.read(text, source=origin, strict=True)
    return parse_policy(data, origin=origin, text=text)


def load_policy(path: str | Path) -> Policy:
    """Load and validate a policy file (``.yaml``, ``.yml`` or ``.json``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read policy file {path}: {exc}", field=str(path)) from None
    return read_policy(text, origin=str(path))


def builtin_names() -> list[str]:
    """Names of the policies shipped with tianping."""
    folder = resources.files("tianping").joinpath("policies")
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_builtin(name: str) -> Policy:
    """A shipped policy by name, e.g. ``load_builtin("taobao-2024-08")``.

    Raises:
        NotFound: no shipped policy has that name.
    """
    if name not in builtin_names():
        raise NotFound(
            f"no built-in policy {name!r}; known: {', '.join(builtin_names())}", field="policy"
        )
    text = resources.files("tianping").joinpath("policies", f"{name}.yaml").read_text("utf-8")
    return read_policy(text, origin=name)


def resolve_policy(ref: str) -> Policy:
    """A policy from a file path, or else a built-in name."""
    if Path(ref).is_file():
        return load_policy(ref)
    if ref.endswith((".yaml", ".yml", ".json")):
        raise UsageError(f"policy file {ref} does not exist", field="policy")
    return load_builtin(ref)


# -- canonical content ---------------------------------------------------------------------


def _canonical(data: object, p: _Problems) -> dict:
    if not isinstance(data, Mapping):
        p.add("", "a policy is a mapping with name, title, currency, reasons and rules")
        return {}
    _unknown(data, _TOP_KEYS, "", p)
    out: dict[str, object] = {
        "name": _text(data, "name", "", p, pattern=_NAME),
        "title": _text(data, "title", "", p),
        "source": _text(data, "source", "", p),
        "description": _text(data, "description", "", p, required=False),
        "currency": _currency(data.get("currency"), p),
        "rounding": _rounding(data.get("rounding", "half_up"), p),
        "refund_only_categories": None,
    }
    if data.get("refund_only_categories") is not None:
        out["refund_only_categories"] = _categorical(
            data["refund_only_categories"], "refund_only_categories", p
        )
    out["reasons"] = _reasons(data.get("reasons"), p)
    out["rules"] = _rules(data.get("rules"), set(out["reasons"]), p)
    if "negotiation" in data:  # absent, the key stays out so older versions keep their hash
        out["negotiation"] = _negotiation(data["negotiation"], set(out["reasons"]), out["rules"], p)
    return out


def _negotiation(data: object, codes: set[str], out_rules: list, p: _Problems) -> dict:
    loc = "negotiation"
    if not isinstance(data, Mapping):
        p.add(loc, "must be a mapping with quality_bar and sla_hours")
        return {}
    _unknown(data, _NEGOTIATION_KEYS, loc, p)
    out: dict[str, object] = {}
    bar = data.get("quality_bar")
    if not _is_number(bar) or not math.isfinite(bar) or not 0 <= bar <= 5:
        p.add(f"{loc}.quality_bar", f"must be a merchant score between 0 and 5, got {bar!r}")
    else:
        out["quality_bar"] = int(bar) if float(bar).is_integer() else bar
    hours = data.get("sla_hours")
    if not _is_number(hours) or not math.isfinite(hours) or not 0 < hours <= MAX_SLA_HOURS:
        p.add(
            f"{loc}.sla_hours",
            f"must be a number of hours above 0 and at most {MAX_SLA_HOURS}, got {hours!r}",
        )
    else:
        out["sla_hours"] = int(hours) if float(hours).is_integer() else hours
    out["reasons"] = (
        _reason_refs(data["reasons"], codes, loc, p)
        if data.get("reasons") not in (None, [])
        else []
    )
    exempt = data.get("except", [])
    if not isinstance(exempt, list) or not all(isinstance(r, str) and r for r in exempt):
        p.add(f"{loc}.except", "must be a list of rule ids")
        exempt = []
    else:
        ids = {r.get("id") for r in out_rules if isinstance(r, Mapping)}
        for r in exempt:
            if r not in ids:
                p.add(f"{loc}.except", f"names no rule of this policy: {r!r}")
    out["except"] = sorted(set(exempt))
    return out


def _unknown(data: Mapping, known: set[str], where: str, p: _Problems) -> None:
    for key in data:
        if key not in known:
            line = yamldoc.key_line(p.text, str(key))
            at = f" (line {line})" if line else ""
            p.add(where, f"unknown field {key!r}{at}{yamldoc.hint(str(key), known)}")


def _text(data: Mapping, key: str, where: str, p: _Problems, *, required=True, pattern=None) -> str:
    loc = f"{where}.{key}" if where else key
    value = data.get(key)
    if value is None:
        if required:
            p.add(loc, "is required")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        p.add(loc, "must be a non-empty string")
        return ""
    if pattern is not None and not pattern.match(value):
        p.add(loc, f"{value!r} must match {pattern.pattern}")
    return value


def _currency(value: object, p: _Problems) -> str:
    if not isinstance(value, str):
        p.add("currency", "is required (ISO 4217, e.g. CNY)")
        return ""
    try:
        exponent_of(value)
    except InvalidInput as exc:
        p.add("currency", exc.message)
    return value


def _rounding(value: object, p: _Problems) -> str:
    if value not in ROUNDING:
        p.add("rounding", f"{value!r} is not one of {', '.join(ROUNDING)}")
    return value if isinstance(value, str) else ""


def _reasons(data: object, p: _Problems) -> dict[str, dict[str, str]]:
    if not isinstance(data, Mapping) or not data:
        p.add("reasons", "is required: a mapping of reason code -> {buyer, merchant}")
        return {}
    out = {}
    for code, texts in data.items():
        loc = f"reasons.{code}"
        if not isinstance(code, str) or not _CODE.match(code):
            p.add(loc, f"reason code {code!r} must match {_CODE.pattern}")
            continue
        if not isinstance(texts, Mapping):
            p.add(loc, "must be a mapping with 'buyer' and 'merchant' texts")
            continue
        _unknown(texts, {"buyer", "merchant"}, loc, p)
        out[code] = {k: _text(texts, k, loc, p) for k in ("buyer", "merchant")}
    return out


def _rules(data: object, codes: set[str], p: _Problems) -> list[dict]:
    if not isinstance(data, list) or not data:
        p.add("rules", "is required: a non-empty list of rules")
        return []
    out, seen = [], set()
    for i, rule in enumerate(data):
        where = f"rules[{i}]"
        if not isinstance(rule, Mapping):
            p.add(where, "a rule is a mapping with id, priority, when and then")
            continue
        rid = _text(rule, "id", where, p, pattern=_CODE)
        where = f"rule {rid}" if rid else where
        if rid in seen:
            p.add(where, "duplicate rule id")
        seen.add(rid)
        _unknown(rule, _RULE_KEYS, where, p)
        out.append(
            {
                "id": rid,
                "priority": _priority(rule.get("priority", 0), where, p),
                "description": _text(rule, "description", where, p, required=False),
                "when": _when(rule.get("when", {}), where, p),
                "then": _then(rule.get("then"), codes, where, p),
            }
        )
    return out


def _priority(value: object, where: str, p: _Problems) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        p.add(f"{where}.priority", f"{value!r} must be an integer")
        return 0
    return value


def _when(data: object, where: str, p: _Problems) -> dict:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        p.add(f"{where}.when", "must be a mapping of input name -> condition")
        return {}
    out = {}
    for name, cond in data.items():
        loc = f"{where}.when.{name}"
        dim = _DIM.get(name)
        if dim is None:
            p.add(loc, f"unknown input {name!r} (inputs: {', '.join(DIMENSION_NAMES)})")
        elif dim.kind == "bool":
            if not isinstance(cond, bool):
                p.add(loc, f"{cond!r} must be true or false")
            out[name] = cond
        elif dim.kind == "category":
            out[name] = _categorical(cond, loc, p)
            if name == "reason" and any(
                not _REASON.match(v) for v in next(iter(out[name].values()), [])
            ):
                p.add(loc, "reasons are normalised: lower case letters, digits and underscores")
        else:
            out[name] = _numeric(cond, dim, loc, p)
    return out


def _categorical(cond: object, loc: str, p: _Problems) -> dict:
    if isinstance(cond, str):
        cond = {"in": [cond]}
    elif isinstance(cond, list):
        cond = {"in": cond}
    if not isinstance(cond, Mapping) or len(cond) != 1 or next(iter(cond)) not in ("in", "not_in"):
        p.add(loc, "must be a value, a list, {in: [...]} or {not_in: [...]}")
        return {}
    op, values = next(iter(cond.items()))
    if not isinstance(values, list) or not values:
        p.add(loc, f"{op} needs a non-empty list of values")
        return {}
    if not all(isinstance(v, str) and v for v in values):
        p.add(loc, f"{op} values must be non-empty strings")
        return {}
    return {op: sorted(set(values))}


def _numeric(cond: object, dim: Dimension, loc: str, p: _Problems) -> dict:
    if _is_number(cond):
        cond = {"gte": cond, "lte": cond}
    if not isinstance(cond, Mapping) or not cond or set(cond) - _BOUND_OPS:
        p.add(loc, "must be a number or a mapping of gt/gte/lt/lte bounds")
        return {}
    if {"gt", "gte"} <= set(cond) or {"lt", "lte"} <= set(cond):
        p.add(loc, "give at most one lower bound (gt or gte) and one upper bound (lt or lte)")
        return {}
    out = {}
    for op, bound in cond.items():
        if not _is_number(bound) or not math.isfinite(bound):
            p.add(loc, f"{op} bound {bound!r} must be a finite number")
        elif dim.kind == "int" and not isinstance(bound, int):
            unit = (
                " (money thresholds are integers in minor units)"
                if dim.name == "amount_minor"
                else ""
            )
            p.add(loc, f"{op} bound {bound!r} must be an integer{unit}")
        elif not dim.lo <= bound <= dim.hi:
            p.add(
                loc, f"{op} bound {bound} is outside the domain [{dim.lo}, {dim.hi}] of {dim.name}"
            )
        else:
            out[op] = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
    if len(out) == len(cond) and _interval(out, dim).intersect(dim.domain).empty:
        p.add(loc, f"{_describe_bounds(out, dim.name)} matches no value of {dim.name}")
    return out


def _then(data: object, codes: set[str], where: str, p: _Problems) -> dict:
    loc = f"{where}.then"
    if not isinstance(data, Mapping):
        p.add(loc, "is required: a mapping with action, payer, fraction and reasons")
        return {}
    _unknown(data, _THEN_KEYS, loc, p)
    action = data.get("action")
    if action not in ACTIONS:
        p.add(f"{loc}.action", f"{action!r} is not one of {', '.join(ACTIONS)}")
    return {
        "action": action,
        "payer": _payer(data.get("payer"), action, loc, p),
        "fraction": _fraction(data.get("fraction"), action, loc, p),
        "reasons": _reason_refs(data.get("reasons"), codes, loc, p),
    }


def _payer(payer: object, action: object, loc: str, p: _Problems) -> str | None:
    if action not in ACTIONS:
        return None
    if action in REFUNDING and payer not in PAYERS:
        p.add(f"{loc}.payer", f"{action} needs a payer: one of {', '.join(PAYERS)}")
    elif action not in REFUNDING and payer is not None:
        p.add(f"{loc}.payer", f"{action} moves no money, so it takes no payer")
        return None
    return payer if isinstance(payer, str) else None


def _fraction(value: object, action: object, loc: str, p: _Problems) -> str | None:
    if action != "partial_refund":
        if value is not None:
            p.add(f"{loc}.fraction", "only partial_refund takes a fraction")
        return None
    try:
        frac = Decimal(str(value)) if _is_number(value) or isinstance(value, str) else None
    except InvalidOperation:
        frac = None
    if frac is None or not frac.is_finite() or not 0 < frac < 1:
        p.add(
            f"{loc}.fraction",
            f"partial_refund needs a fraction strictly between 0 and 1, got {value!r}",
        )
        return None
    if -frac.as_tuple().exponent > FRACTION_PLACES:
        p.add(f"{loc}.fraction", f"{value} has more than {FRACTION_PLACES} decimal places")
        return None
    return format(frac.normalize(), "f")


def _reason_refs(value: object, codes: set[str], loc: str, p: _Problems) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        p.add(f"{loc}.reasons", "needs at least one reason code")
        return []
    for code in value:
        if code not in codes:
            p.add(f"{loc}.reasons", f"unknown reason code {code!r}")
    return [c for c in value if isinstance(c, str)]


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


# -- building and analysing ----------------------------------------------------------------


def _interval(bounds: Mapping[str, float], dim: Dimension, integer: bool | None = None) -> Interval:
    lo, lo_c = (bounds["gt"], False) if "gt" in bounds else (bounds.get("gte", -INF), True)
    hi, hi_c = (bounds["lt"], False) if "lt" in bounds else (bounds.get("lte", INF), True)
    return Interval.make(lo, lo_c, hi, hi_c, dim.kind == "int" if integer is None else integer)


def _describe_bounds(bounds: Mapping[str, float], name: str) -> str:
    return _interval(bounds, _DIM[name], integer=False).describe(name)


def _values(cond: Mapping[str, list], kind: str) -> Values:
    if kind == "bool":
        return Values(frozenset({cond}))
    op, values = next(iter(cond.items()))
    return Values(frozenset(values), negated=op == "not_in")


def _condition(name: str, cond: object) -> Condition:
    dim = _DIM[name]
    index = DIMENSION_NAMES.index(name)
    if dim.kind in ("int", "real"):
        cset = _interval(cond, dim).intersect(dim.domain)
        return Condition(name, index, cset, _describe_bounds(cond, name))
    cset = _values(cond, dim.kind)
    return Condition(name, index, cset, cset.describe(name))


def _build(content: dict, version: str, origin: str) -> Policy:
    rules = [
        Rule(
            id=r["id"],
            priority=r["priority"],
            conditions=tuple(
                _condition(n, c)
                for n, c in sorted(r["when"].items(), key=lambda kv: DIMENSION_NAMES.index(kv[0]))
            ),
            action=Action(
                r["then"]["action"],
                r["then"]["payer"],
                Fraction(r["then"]["fraction"]) if r["then"]["fraction"] else None,
                tuple(r["then"]["reasons"]),
            ),
            description=r["description"],
        )
        for r in content["rules"]
    ]
    ordered = tuple(
        sorted(rules, key=lambda r: -r.priority)
    )  # stable: file order within a priority
    scope = content["refund_only_categories"]
    problems = _Problems()
    warnings = _analyse(ordered, _values(scope, "category") if scope else None, problems)
    negotiation = _built_negotiation(content.get("negotiation"))
    if negotiation is not None and not problems.items:
        _check_negotiated_monotone(ordered, negotiation, problems)
    used = {c for r in ordered for c in r.action.reasons}
    used |= set((content.get("negotiation") or {}).get("reasons", ()))
    warnings += [f"reason code {c} is never used" for c in content["reasons"] if c not in used]
    problems.raise_if_any(origin)
    return Policy(
        name=content["name"],
        title=content["title"],
        source=content["source"],
        description=content["description"],
        currency=content["currency"],
        rounding=content["rounding"],
        refund_only_categories=_values(scope, "category") if scope else None,
        reasons={
            c: ReasonCode(c, t["buyer"], t["merchant"]) for c, t in content["reasons"].items()
        },
        rules=ordered,
        version=version,
        content=content,
        warnings=tuple(warnings),
        negotiation=negotiation,
    )


def _built_negotiation(data: Mapping | None) -> Negotiation | None:
    if data is None:
        return None
    return Negotiation(
        float(data["quality_bar"]),
        float(data["sla_hours"]),
        tuple(data["reasons"]),
        frozenset(data["except"]),
    )


def _analyse(rules: tuple[Rule, ...], scope: Values | None, p: _Problems) -> list[str]:
    _check_overlaps(rules, p)
    _check_gaps(rules, p)
    if scope is not None:
        _check_scope(rules, scope, p)
    if p.items:
        return []
    effective = _effective_regions(rules)
    _check_monotone(rules, effective, p)
    return [
        f"rule {r.id} can never fire: higher-priority rules cover all its inputs"
        for r, e in zip(rules, effective, strict=True)
        if not e
    ]


def _check_overlaps(rules: tuple[Rule, ...], p: _Problems) -> None:
    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            if a.priority != b.priority:
                continue
            common = space.intersect(a.box, b.box)
            if not space.is_empty(common):
                p.add(
                    f"rules {a.id} and {b.id}",
                    f"overlap at priority {a.priority} where "
                    f"{space.describe(common, DIMENSION_NAMES, DOMAIN)}; make them exclusive or "
                    "give one a higher priority",
                )


def _check_gaps(rules: tuple[Rule, ...], p: _Problems) -> None:
    # Broad rules first keeps the remainder small.
    cutters = sorted(
        (r.box for r in rules), key=lambda b: -sum(s == d for s, d in zip(b, DOMAIN, strict=True))
    )
    try:
        gaps = space.subtract_all([DOMAIN], cutters)
    except OverflowError as exc:
        p.add("rules", f"cannot check coverage: {exc}")
        return
    for box in gaps[:5]:
        p.add(
            "rules", f"no rule covers inputs where {space.describe(box, DIMENSION_NAMES, DOMAIN)}"
        )
    if len(gaps) > 5:
        p.add("rules", f"and {len(gaps) - 5} more uncovered regions")


def _check_scope(rules: tuple[Rule, ...], scope: Values, p: _Problems) -> None:
    outside = list(DOMAIN)
    outside[DIMENSION_NAMES.index("category")] = scope.complement()
    outside[DIMENSION_NAMES.index("delivered")] = Values(frozenset({True}))
    for r in rules:
        if r.action.action not in KEEPS_GOODS:
            continue
        bad = space.intersect(r.box, tuple(outside))
        if not space.is_empty(bad):
            p.add(
                f"rule {r.id}",
                f"{r.action.action} lets the buyer keep delivered goods outside "
                f"refund_only_categories (where {space.describe(bad, DIMENSION_NAMES, DOMAIN)}); "
                "restrict its category condition",
            )


def _effective_regions(rules: tuple[Rule, ...]) -> list[list[space.Box]]:
    """Where each rule actually fires: its box minus every higher-priority rule's box."""
    out = []
    for r in rules:
        higher = [h.box for h in rules if h.priority > r.priority]
        out.append(space.subtract_all([r.box], higher))
    return out


def _check_negotiated_monotone(rules: tuple[Rule, ...], n: Negotiation, p: _Problems) -> None:
    """Monotonicity with negotiation first applied: above the bar, a rule it covers acts as
    ``merchant_negotiation`` (an exempt rule refunding low scores while a covered one sends high
    scores to the merchant would give the better buyer the worse outcome)."""
    m = DIMENSION_NAMES.index("merchant_score")
    above = Interval.make(n.quality_bar, True, INF, True, False)
    below = Interval.make(-INF, True, n.quality_bar, False, False)
    virtual: list[Rule] = []
    regions: list[list[space.Box]] = []
    for r, boxes in zip(rules, _effective_regions(rules), strict=True):
        if not n.applies(5.0, r):
            virtual.append(r)
            regions.append(boxes)
            continue
        for part, rule in (
            (above, replace(r, id=f"{r.id} (negotiated first)",
                            action=replace(r.action, action="merchant_negotiation", payer=None,
                                           fraction=None))),
            (below, r),
        ):  # fmt: skip
            cut = [(*b[:m], b[m].intersect(part), *b[m + 1 :]) for b in boxes]
            virtual.append(rule)
            regions.append([b for b in cut if not space.is_empty(b)])
    _check_monotone(tuple(virtual), regions, p)


def _check_monotone(
    rules: tuple[Rule, ...], effective: list[list[space.Box]], p: _Problems
) -> None:
    b = DIMENSION_NAMES.index("buyer_score")
    found: set[tuple[str, str]] = set()
    for better, regions_hi in zip(rules, effective, strict=True):
        for worse, regions_lo in zip(rules, effective, strict=True):
            if (
                worse.action.outcome_key >= better.action.outcome_key
                or (better.id, worse.id) in found
            ):
                continue
            for x in regions_hi:
                for y in regions_lo:
                    if not space.exists_higher(x[b], y[b]):
                        continue
                    rest = space.intersect(x[:b] + x[b + 1 :], y[:b] + y[b + 1 :])
                    if space.is_empty(rest):
                        continue
                    found.add((better.id, worse.id))
                    where = space.describe(
                        rest,
                        DIMENSION_NAMES[:b] + DIMENSION_NAMES[b + 1 :],
                        DOMAIN[:b] + DOMAIN[b + 1 :],
                    )
                    p.add(
                        f"rules {better.id} and {worse.id}",
                        f"a higher buyer score gets a worse outcome ({better.action.action} at "
                        f"{_buyer_range(x[b])}, {worse.action.action} at {_buyer_range(y[b])}) "
                        f"where {where}",
                    )
                    break
                if (better.id, worse.id) in found:
                    break


def _buyer_range(s: Interval) -> str:
    b = DIMENSION_NAMES.index("buyer_score")
    return space.describe((s,), ("buyer_score",), (DOMAIN[b],)).replace(
        "every input", "any buyer_score"
    )


def rule_rows(policy: Policy) -> list[dict[str, object]]:
    """The policy's rules in evaluation order, one display row each (with a ``negotiation``
    column saying which rules a merchant above the bar negotiates first, when the policy has
    negotiation first)."""
    n = policy.negotiation
    rows: list[dict[str, object]] = []
    for r in policy.rules:
        row: dict[str, object] = {
            "priority": r.priority,
            "rule": r.id,
            "when": "; ".join(c.text for c in r.conditions) or "(any input)",
            "action": r.action.action,
            "fraction": _decimal_text(r.action.fraction),
            "payer": r.action.payer,
            "reasons": ", ".join(r.action.reasons),
        }
        if n is not None:
            row["negotiation"] = (
                f"first at merchant_score >= {n.quality_bar:g}" if n.applies(5.0, r) else ""
            )
        rows.append(row)
    return rows


def negotiation_text(policy: Policy) -> str | None:
    """One line on the policy's negotiation first, or None without one."""
    n = policy.negotiation
    if n is None:
        return None
    exempt = f"; rules {', '.join(sorted(n.exempt))} pay at once" if n.exempt else ""
    return (
        f"negotiation first: merchants scoring >= {n.quality_bar:g} settle what the rules would "
        f"refund; after {n.sla_hours:g} h without agreement the rules decide{exempt}"
    )


def _decimal_text(f: Fraction | None) -> str | None:
    if f is None:
        return None
    return format(Decimal(f.numerator) / Decimal(f.denominator), "f")
