"""Request bodies of the governance API (the rules of :mod:`tianping.inputs`).

A proposal's ``payload`` has one shape per ``kind`` (docs/governance.md#kinds), so the OpenAPI
document says exactly what each kind takes. The rules body has the shape of the YAML file
``tianping decision rules set`` reads; :func:`tianping.governance.rules.parse_rules` still
checks what a schema cannot say (a quorum no larger than its approvers).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from tianping.governance.rules import KINDS
from tianping.governance.sources import KINDS as SOURCE_KINDS
from tianping.inputs import (
    MAX_SPEND_MINOR,
    MAX_TITLE,
    Currency,
    Finite,
    Id,
    IsoDate,
    Name,
    Said,
    SpendMoney,
    Text,
    Title,
    reference_pattern,
    whole_number,
)
from tianping.inputs import Document as AnyDocument
from tianping.metrics.names import METRICS
from tianping.metrics.periods import GRAINS

STRICT = ConfigDict(extra="forbid")
#: A decision's kind (docs/governance.md#kinds).
Kind = Literal[KINDS]  # type: ignore[valid-type]
Approvers = Annotated[list[Name], Field(max_length=50, json_schema_extra={"uniqueItems": True})]


class Document(BaseModel):
    """A JSON document attached to a decision as it is (an exported report, a plan)."""

    model_config = STRICT

    name: Name
    data: AnyDocument


class SpendPayload(BaseModel):
    """A ``spend`` decision: an amount in minor units (at most the spend bound), its currency and purpose."""

    model_config = STRICT

    amount_minor: SpendMoney
    currency: Currency = "CNY"
    purpose: Said
    fund: Literal["protection_fund"] | None = Field(
        None, description="A reserve the spend fills when approved (the merchant protection fund)."
    )


class PolicyPayload(BaseModel):
    """A ``refund_policy`` decision: the policy to put in force."""

    model_config = STRICT

    policy: Id = Field(description="A built-in policy's name (tianping policy list).")


class GoalPayload(BaseModel):
    """A ``goal_change`` decision: the goal's new metric, target (finite) and deadline, and why."""

    model_config = STRICT

    goal: Id
    metric: Literal[METRICS]  # type: ignore[valid-type]
    target: Finite
    deadline: IsoDate
    grain: Literal[GRAINS] = "month"  # type: ignore[valid-type]
    reason: Said


class ExperimentPayload(BaseModel):
    """A ``ship_experiment`` decision: the experiment and the variant to serve everyone."""

    model_config = STRICT

    experiment: Id
    variant: Id


class RacePayload(BaseModel):
    """A ``ship_race_winner`` decision: the race and the strategy to ship."""

    model_config = STRICT

    race: Id
    variant: Id | None = Field(None, description="Default: the race's winner.")


#: Evidence by reference, frozen when the decision is proposed: ``KIND:NAME`` with KIND one of
#: the evidence sources (``experiment:checkout``, ``policy-replay:taobao-2024-08@…``).
EvidenceRef = Annotated[
    Title,
    Field(
        json_schema_extra={"pattern": reference_pattern(SOURCE_KINDS)},
        max_length=MAX_TITLE,
        description=f"KIND:NAME, KIND one of {', '.join(SOURCE_KINDS)}.",
    ),
]


class _Proposal(BaseModel):
    model_config = STRICT

    title: Title
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=50)
    documents: list[Document] = Field(default_factory=list, max_length=50)


class SpendProposal(_Proposal):
    """``POST /v1/decisions`` for a ``spend``; above the cap only with ``override``."""

    kind: Literal["spend"]
    payload: SpendPayload
    override: StrictBool = Field(
        False, description="Above the cap: ask the override role to decide it."
    )


class PolicyProposal(_Proposal):
    """``POST /v1/decisions`` to put a refund policy in force."""

    kind: Literal["refund_policy"]
    payload: PolicyPayload


class GoalProposal(_Proposal):
    """``POST /v1/decisions`` to change a goal."""

    kind: Literal["goal_change"]
    payload: GoalPayload


class ExperimentProposal(_Proposal):
    """``POST /v1/decisions`` to ship an experiment's variant."""

    kind: Literal["ship_experiment"]
    payload: ExperimentPayload


class RaceProposal(_Proposal):
    """``POST /v1/decisions`` to ship a race's strategy."""

    kind: Literal["ship_race_winner"]
    payload: RacePayload


#: A proposal; ``kind`` says which payload it carries.
ProposalIn = Annotated[
    SpendProposal | PolicyProposal | GoalProposal | ExperimentProposal | RaceProposal,
    Field(discriminator="kind"),
]


def payload_of(body: _Proposal) -> dict[str, Any]:
    """The proposal's payload as the governance service takes it (JSON values, unset omitted)."""
    return body.payload.model_dump(mode="json", exclude_none=True)  # type: ignore[attr-defined]


class VoteIn(BaseModel):
    """An approval: the voter is the key's holder, the comment optional."""

    model_config = STRICT

    comment: Text = ""


class RejectIn(VoteIn):
    """A rejection; ``veto`` ends the decision at once where the rules allow vetoes."""

    veto: StrictBool = False


class KindRuleIn(BaseModel):
    """Who decides one kind and how; an omitted field takes the default rule's."""

    model_config = STRICT

    approvers: Approvers | None = None
    required: whole_number(1, 50) | None = None  # type: ignore[valid-type]
    veto: StrictBool | None = None
    expiry_days: float | None = Field(None, strict=True, gt=0, le=3660)


class SpendCapIn(BaseModel):
    """The spend cap: above ``cap_minor`` a spend needs the override approvers' quorum."""

    model_config = STRICT

    cap_minor: whole_number(0, MAX_SPEND_MINOR) | None = None  # type: ignore[valid-type]
    currency: Currency | None = None
    override_approvers: Approvers | None = None
    override_required: whole_number(1, 50) | None = None  # type: ignore[valid-type]


class RulesDoc(BaseModel):
    """The rules: a default rule, rules per kind, the spend cap (every part optional)."""

    model_config = STRICT

    default: KindRuleIn | None = None
    kinds: dict[Kind, KindRuleIn] | None = None
    spend_cap: SpendCapIn | None = None


class RulesIn(BaseModel):
    """The rules document (same shape as the YAML file ``tianping decision rules set`` reads)."""

    model_config = STRICT

    rules: RulesDoc

    def document(self) -> dict[str, Any]:
        """The rules as :func:`~tianping.governance.rules.parse_rules` reads them."""
        return self.rules.model_dump(mode="json", exclude_none=True)
