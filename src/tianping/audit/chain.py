"""The audit log's hash chain, as pure functions.

Each entry's hash is the SHA-256 of the previous entry's hash and the entry's own canonical
fields, so editing, deleting or reordering any row breaks every hash after it. The head hash
printed by ``tianping audit --verify`` can be written down elsewhere to detect a cut tail too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tianping.audit.canonical import dumps, sha256

GENESIS = "0" * 64
#: The fields an entry's hash covers, in the order documented in docs/governance.md.
FIELDS = ("seq", "at", "actor", "key_id", "action", "subject", "detail")


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The hash of an entry whose predecessor's hash is ``prev_hash``.

    >>> len(entry_hash(GENESIS, {"seq": 1}))
    64
    """
    body = {k: fields.get(k) for k in FIELDS}
    return sha256(f"{prev_hash}\n{dumps(body)}")


@dataclass(frozen=True)
class ChainEntry:
    """One stored audit row as the verifier reads it."""

    seq: int
    fields: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Problem:
    """One entry that breaks the chain: its sequence number and what is wrong with it."""

    seq: int
    reason: str


@dataclass(frozen=True)
class Verification:
    """What verifying a chain found: ``ok`` when nothing, and the head to anchor elsewhere."""

    entries: int
    head: str
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """Whether the chain verified with no problem."""
        return not self.problems


def verify(entries: Iterable[ChainEntry]) -> Verification:
    """Check every link and hash, oldest first.

    Reports a row whose content no longer matches its hash (edited), whose ``prev_hash`` is not
    its predecessor's hash (inserted, deleted or reordered) and gaps in the sequence numbers.
    """
    problems: list[Problem] = []
    prev_hash, prev_seq, count = GENESIS, 0, 0
    for e in entries:
        count += 1
        if e.seq != prev_seq + 1:
            problems.append(Problem(e.seq, f"sequence jumps from {prev_seq} to {e.seq}"))
        if e.prev_hash != prev_hash:
            problems.append(Problem(e.seq, "does not link to the entry before it"))
        if entry_hash(e.prev_hash, e.fields) != e.hash:
            problems.append(Problem(e.seq, "content does not match its hash (edited)"))
        prev_hash, prev_seq = e.hash, e.seq
    return Verification(count, prev_hash, tuple(problems))
