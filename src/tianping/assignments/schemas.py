"""What the assignment API takes and returns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tianping.inputs import Id, Instant, UnitId

#: Most exposures one batch may carry.
MAX_BATCH = 1000


class AssignmentOut(BaseModel):
    experiment: str
    variant: str


class AssignmentsOut(BaseModel):
    unit_id: str
    assignments: list[AssignmentOut] = Field(
        description="One entry per running experiment the unit is in; experiments it is "
        "held out of or outside the traffic of are absent."
    )


class ExposureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment: Id
    variant: Id
    unit_id: UnitId
    exposed_at: Instant = Field(
        description="When the unit saw the variant (ISO 8601, with zone; not in the future)."
    )


class ExposuresIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exposures: list[ExposureIn] = Field(min_length=1, max_length=MAX_BATCH)


class ExposuresOut(BaseModel):
    accepted: int = Field(description="New first exposures queued.")
    duplicates: int = Field(description="Units already exposed to that experiment (kept first).")
