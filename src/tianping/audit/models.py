"""The audit log's table: one row per state change, chained by hash and append-only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DDL, BigInteger, Index, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from tianping.store import Base
from tianping.store.types import UTCDateTime


class AuditEntry(Base):
    """One state change, appended under a lock; ``hash`` chains it to the entry before it.

    ``detail`` is canonical JSON text (not a JSON column) so the bytes hashed are the bytes kept.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_subject", "subject"),
        Index("ix_audit_log_actor", "actor"),
        Index("ix_audit_log_action", "action"),
        Index("ix_audit_log_at", "at"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


#: What makes ``audit_log`` append-only in the database (migration 0005 creates the same);
#: attached here too so a store built with ``create_all`` refuses edits as well.
APPEND_ONLY = {
    "sqlite": (
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END",
    ),
    "postgresql": (
        "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', "
        "MESSAGE = 'audit_log is append-only: ' || TG_OP || ' refused'; END $$",
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    ),
}
for _dialect, _statements in APPEND_ONLY.items():
    for _statement in _statements:
        event.listen(
            AuditEntry.__table__, "after_create", DDL(_statement).execute_if(dialect=_dialect)
        )
