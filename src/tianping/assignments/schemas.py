"""What the assignment API takes and returns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tianping.inputs import Id, Instant, UnitId

#: Most exposures one batch may carry.
MAX_BATCH = 1000


class AssignmentOut(BaseModel):
    """One experiment a unit is in and the variant it gets."""

    experiment: str
    variant: str


class AssignmentsOut(BaseModel):
    """``GET /v1/assignments``: a unit's variants in every running experiment that takes it."""

    unit_id: str
    assignments: list[AssignmentOut] = Field(
        description="One entry per running experiment the unit is in; experiments it is "
        "held out of or outside the traffic of are absent."
    )


class ExposureIn(BaseModel):
    """One exposure a client reports: a unit saw a variant of an experiment at ``exposed_at``."""

    model_config = ConfigDict(extra="forbid")

    experiment: Id
    variant: Id
    unit_id: UnitId
    exposed_at: Instant = Field(
        description="When the unit saw the variant (ISO 8601, with zone; not in the future)."
    )


class ExposuresIn(BaseModel):
    """``POST /v1/exposures``: 1 to 1,000 exposures in one body."""

    model_config = ConfigDict(extra="forbid")

    exposures: list[ExposureIn] = Field(min_length=1, max_length=MAX_BATCH)


class ExposuresOut(BaseModel):
    """What an exposure batch did: new first exposures queued, and repeats kept as first seen."""

    accepted: int = Field(description="New first exposures queued.")
    duplicates: int = Field(description="Units already exposed to that experiment (kept first).")
