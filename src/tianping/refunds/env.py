"""What the refund lifecycle needs besides the session."""

from __future__ import annotations

from dataclasses import dataclass, field

from tianping.clock import Clock, SystemClock
from tianping.refunds import lifecycle as L
from tianping.refunds import race_policy, signals


@dataclass
class Env:
    """What the lifecycle needs besides the session: the clock, the SLA config, the norms and
    who assigns buyers to policies under test (``arms``: the horse races'
    :func:`tianping.races.refund_arms.arm_for`, given by the app; None: the active policy
    decides every request)."""

    clock: Clock = field(default_factory=SystemClock)
    config: L.RefundConfig = field(default_factory=L.RefundConfig)
    norms: signals.Norms = field(default_factory=signals.Norms)
    arms: race_policy.PolicyArms | None = None
