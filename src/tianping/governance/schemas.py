"""Request bodies of the governance API (the rules of :mod:`tianping.inputs`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from tianping.governance.rules import KINDS
from tianping.inputs import Document as AnyDocument
from tianping.inputs import Name, Text, Title

#: A decision's kind (docs/governance.md#kinds).
Kind = Literal[KINDS]  # type: ignore[valid-type]
#: A JSON object whose values obey the document rules (depth, size, finite numbers, text).
Fields = Annotated[dict[str, Any], AnyDocument]


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    data: AnyDocument


class ProposalIn(BaseModel):
    """A proposal; ``payload`` holds the kind's fields (docs/governance.md#kinds)."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    kind: Kind
    payload: Fields = Field(default_factory=dict)
    evidence: list[Title] = Field(default_factory=list, max_length=50)
    documents: list[Document] = Field(default_factory=list, max_length=50)
    override: StrictBool = False


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Text = ""


class RejectIn(VoteIn):
    veto: StrictBool = False


class RulesIn(BaseModel):
    """The rules document (same shape as the YAML file ``tianping decision rules set`` reads)."""

    model_config = ConfigDict(extra="forbid")

    rules: Fields
