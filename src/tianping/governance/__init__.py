"""Governance: decisions with frozen evidence, quorum approval, spend caps and a hash-chained
audit log (docs/governance.md).

Pure core: :mod:`~tianping.governance.rules` (quorum, veto, expiry, caps, the state machine),
:mod:`~tianping.audit.chain` (the audit hash chain) and
:mod:`~tianping.audit.canonical` (frozen evidence bytes). The store side is
:mod:`~tianping.governance.service` and :mod:`~tianping.audit.log`.
"""
