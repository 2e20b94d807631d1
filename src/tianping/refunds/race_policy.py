"""Which refund policy decides for a buyer: the active one, or their arm's in a policy race.

The refund lifecycle does not know races; it asks a :class:`PolicyArms` reader, given to it in
its environment (``Env.arms``), for the buyer's arm. The horse races answer
(:func:`tianping.races.refund_arms.arm_for`: a running ``refund_policy`` race assigns buyers to
arms with the experiment engine's hash, each arm's policy stored by content version); with no
reader, or no arm, the active policy decides. The decision's stored inputs then carry
``race: {name, experiment, arm}``; :func:`policy_inputs` strips it again for replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from tianping.aftersales.policy import Policy
from tianping.refunds import policies

#: Key of the race assignment in a decision's stored inputs.
RACE_KEY = "race"


@dataclass(frozen=True, slots=True)
class RaceArm:
    """The race arm whose policy decided a request."""

    race: str
    experiment: str
    arm: str

    def to_dict(self) -> dict[str, str]:
        """The arm as stored in the decision's inputs."""
        return {"name": self.race, "experiment": self.experiment, "arm": self.arm}


class PolicyArms(Protocol):
    """Who assigns buyers to policies under test: the policy version and arm for a buyer's new
    request now, or None when the active policy decides."""

    def __call__(
        self, buyer_id: str, *, session: Session, now: datetime
    ) -> tuple[str, RaceArm] | None:
        """The policy version and race arm deciding ``buyer_id``'s new request now, or None."""


def deciding_policy(
    buyer_id: str, *, session: Session, now: datetime, default: str = "",
    arms: PolicyArms | None = None,
) -> tuple[Policy, RaceArm | None]:  # fmt: skip
    """The policy that decides a new request of ``buyer_id`` now, and the race arm if any."""
    found = None if arms is None else arms(buyer_id, session=session, now=now)
    if found is not None:
        version, arm = found
        return policies.by_version(version, session=session), arm
    return policies.active(session=session, now=now, default=default), None


def with_race(inputs: dict[str, Any], arm: RaceArm | None) -> dict[str, Any]:
    """The decision's inputs to store: the policy inputs, plus the race arm when one decided."""
    return inputs if arm is None else {**inputs, RACE_KEY: arm.to_dict()}


def policy_inputs(stored: dict[str, Any]) -> dict[str, Any]:
    """The policy inputs of a stored decision (without the race arm)."""
    return {k: v for k, v in stored.items() if k != RACE_KEY}
