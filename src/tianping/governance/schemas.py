"""Request bodies of the governance API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    data: Any


class ProposalIn(BaseModel):
    """A proposal; ``payload`` holds the kind's fields (docs/governance.md#kinds)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    kind: str = Field(max_length=30)
    payload: dict[str, Any] = Field(default_factory=dict)
    evidence: list[str] = Field(default_factory=list, max_length=50)
    documents: list[Document] = Field(default_factory=list, max_length=50)
    override: bool = False


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field("", max_length=2000)


class RejectIn(VoteIn):
    veto: bool = False


class RulesIn(BaseModel):
    """The rules document (same shape as the YAML file ``tianping decision rules set`` reads)."""

    model_config = ConfigDict(extra="forbid")

    rules: dict[str, Any]
