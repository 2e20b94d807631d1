"""The audit log in the store (SQLite and PostgreSQL): append-only in the database, entries
queued by a transaction written at its commit (or dropped with its rollback), never forked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tianping.audit import log as audit
from tianping.store import make_sessionmaker

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _committed_entries(engine, n: int = 3) -> None:
    with make_sessionmaker(engine)() as s:
        for i in range(n):
            audit.record("test.changed", subject=f"thing:{i}", actor="ana", session=s, now=T0)
        s.commit()


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET actor = 'mallory' WHERE seq = 2", "DELETE FROM audit_log WHERE seq = 3",
     "DELETE FROM audit_log"],
)  # fmt: skip
def test_the_database_refuses_to_edit_or_delete_audit_rows(engine, statement):
    _committed_entries(engine)
    with pytest.raises(DBAPIError, match="audit_log is append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, actor FROM audit_log ORDER BY seq")).all()
    assert [tuple(r) for r in rows] == [(1, "ana"), (2, "ana"), (3, "ana")]
    with make_sessionmaker(engine)() as s:
        assert audit.verify(session=s).ok


def test_postgresql_refuses_truncate_too(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    _committed_entries(engine)
    with pytest.raises(DBAPIError, match="append-only: TRUNCATE"), engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_log"))


def test_queued_entries_are_written_at_commit_in_order_and_dropped_on_rollback(engine):
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        audit.acting_as(s, "ops", "k1")
        audit.later("thing.made", subject="thing:1", actor="buyer:B1", now=T0, session=s)
        audit.later("thing.changed", subject="thing:1", now=T0, session=s, detail={"n": 2})
        s.rollback()
        assert audit.entries(session=s) == []
        audit.later("thing.made", subject="thing:2", actor="buyer:B2", now=T0, session=s)
        audit.record("thing.voted", subject="thing:2", actor="ana", now=T0, session=s)
        audit.later("thing.changed", subject="thing:2", now=T0, session=s)
        s.commit()
    with sessions() as s:
        rows = [audit.entry_dict(e) for e in audit.entries(session=s)]
        assert audit.verify(session=s).ok
    assert [(r["seq"], r["action"], r["actor"], r["key_id"]) for r in rows] == [
        (1, "thing.made", "buyer:B2", "k1"),
        (2, "thing.voted", "ana", None),
        (3, "thing.changed", "ops", "k1"),
    ]
    assert rows[0]["detail"] == {"via": "ops"} and rows[2]["detail"] == {}


def test_concurrent_transactions_queueing_entries_never_fork_the_chain(engine):
    from concurrent.futures import ThreadPoolExecutor

    sessions = make_sessionmaker(engine)

    def work(i: int) -> None:
        for _attempt in range(20):
            try:
                with sessions() as s:
                    for k in range(3):
                        audit.later("thing.made", subject=f"thing:{i}.{k}", actor=f"w{i}",
                                    now=T0, session=s)  # fmt: skip
                    s.commit()
                return
            except DBAPIError:  # SQLite: "database is locked" past the busy timeout
                continue
        raise AssertionError("never committed")

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(work, range(12)))
    with sessions() as s:
        v = audit.verify(session=s)
        seqs = [e.seq for e in audit.entries(session=s, limit=1000)]
    assert v.ok and v.entries == 36 and seqs == list(range(1, 37))
