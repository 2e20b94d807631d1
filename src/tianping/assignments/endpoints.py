"""Thin routes of the assignment API: a unit's variants and batched exposure logging."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from tianping.api.deps import Store, store_of, text_check
from tianping.assignments import schemas as S
from tianping.assignments import service
from tianping.auth.deps import guard, principal_of
from tianping.auth.keys import ADMIN, OPERATOR, SERVICE
from tianping.inputs import MAX_NAME, SINGLE_LINE_PATTERN

router = APIRouter(prefix="/v1", tags=["assignments"])
StoreDep = Annotated[Store, Depends(store_of)]
#: The unit asked about: 1-200 characters, one line.
UnitQuery = Annotated[
    str,
    Query(min_length=1, max_length=MAX_NAME, json_schema_extra={"pattern": SINGLE_LINE_PATTERN}),
    text_check(MAX_NAME, min_length=1),
]


@router.get("/assignments", response_model=S.AssignmentsOut, **guard(ADMIN, OPERATOR, SERVICE))
def get_assignments(store: StoreDep, unit_id: UnitQuery):
    """Every running experiment's variant for ``unit_id``, by experiment name."""
    pairs = store.read(lambda s: service.assignments(unit_id, session=s))
    return {"unit_id": unit_id, "assignments": [{"experiment": e, "variant": v} for e, v in pairs]}


@router.post("/exposures", response_model=S.ExposuresOut, **guard(ADMIN, SERVICE))
def log_exposures(body: S.ExposuresIn, request: Request, store: StoreDep):
    """Queue a batch of exposures (up to 1000); only a unit's first exposure is kept."""
    key_id = principal_of(request).key_id
    accepted, duplicates = store.transact(lambda s: service.queue_exposures(
        body.exposures, session=s, now=store.env.clock.now(), key_id=key_id))  # fmt: skip
    return {"accepted": accepted, "duplicates": duplicates}
