"""Evidence a buyer attaches to a claim or a merchant to an appeal: photo or document
references with their SHA-256, kept in the request's events, and the policy inputs they give.

The platform keeps the reference and the hash, not the file: the hash lets anyone holding the
file show it is the one attached (docs/refunds.md#negotiation-first-and-evidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tianping.inputs import Title

#: Most evidence references one claim or appeal carries.
MAX_EVIDENCE = 20
KINDS = ("photo", "document")


class EvidenceIn(BaseModel):
    """One piece of evidence: a photo or a document, where it is kept and its SHA-256."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["photo", "document"]
    ref: Title
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="64 lower-case hex digits")


def stored(evidence: Sequence[EvidenceIn]) -> list[dict[str, str]]:
    """The references as the request's event keeps them."""
    return [{"kind": e.kind, "ref": e.ref, "sha256": e.sha256} for e in evidence]


def policy_inputs(evidence: Sequence[EvidenceIn]) -> dict[str, Any]:
    """The policy inputs the claim's evidence gives: how many references, and whether a photo."""
    return {
        "evidence_count": len(evidence),
        "has_photo": any(e.kind == "photo" for e in evidence),
    }
