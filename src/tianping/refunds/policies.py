"""Which refund policy decides, and every version that ever did (for replay).

The active policy is the latest row of ``refund_policy_activations``; its content is kept in
``refund_policies`` under its version (the SHA-256 of its canonical content), so a decision
can always be replayed with the exact policy that made it. A store with no activation yet
activates :data:`DEFAULT_POLICY` (or ``TIANPING_REFUND_POLICY``) on first use.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime

from sqlalchemy.orm import Session

from tianping.aftersales.policy import Policy, parse_policy, resolve_policy
from tianping.errors import NotFound
from tianping.refunds import repository as repo
from tianping.refunds.models import PolicyActivation, StoredPolicy

DEFAULT_POLICY = "taobao-2024-08"

_cache: dict[str, Policy] = {}
_lock = threading.Lock()


def store(policy: Policy, *, session: Session, now: datetime) -> None:
    """Keep a policy's content under its version (no-op when already kept)."""
    if repo.get_policy(session, policy.version) is None:
        content = json.dumps(policy.content, sort_keys=True, ensure_ascii=False)
        session.add(
            StoredPolicy(version=policy.version, name=policy.name, content=content, stored_at=now)
        )
        session.flush()


def activate(ref: str, *, session: Session, now: datetime, by: str = "operator") -> Policy:
    """Make a policy (a built-in name or a file path) decide new requests from now on."""
    return activate_policy(resolve_policy(ref), session=session, now=now, by=by)


def activate_policy(
    policy: Policy, *, session: Session, now: datetime, by: str = "operator"
) -> Policy:
    """Make an already loaded policy decide new requests from now on."""
    from tianping.audit import log as audit

    store(policy, session=session, now=now)
    session.info.pop(_MEMO, None)
    session.add(PolicyActivation(version=policy.version, activated_at=now, activated_by=by))
    session.flush()
    audit.later("refund_policy.activated", subject=f"refund_policy:{policy.name}", now=now,
                detail={"version": policy.version, "by": by}, session=session)  # fmt: skip
    return policy


#: ``session.info`` key: the active policy as read in the session's current transaction.
_MEMO = "tianping.active_policy"


def active(*, session: Session, now: datetime, default: str = "") -> Policy:
    """The policy deciding new requests (activating the default on a new store).

    Read once per transaction: the API's batched writer decides many requests in one.
    """
    txn = session.get_transaction()
    memo = session.info.get(_MEMO)
    if memo is not None and memo[0] is txn:
        return memo[1]
    version = repo.active_policy_version(session)
    if version is None:
        policy = activate(default or DEFAULT_POLICY, session=session, now=now, by="default")
    else:
        policy = by_version(version, session=session)
    session.info[_MEMO] = (txn, policy)
    return policy


def by_version(version: str, *, session: Session) -> Policy:
    """The stored policy with this version.

    Raises:
        NotFound: the store has no policy with this version.
    """
    policy = _cache.get(version)
    if policy is not None:
        return policy
    stored = repo.get_policy(session, version)
    if stored is None:
        raise NotFound(f"no stored refund policy with version {version}", field="policy_version")
    policy = parse_policy(json.loads(stored.content), origin=stored.name)
    with _lock:
        _cache[version] = policy
    return policy
