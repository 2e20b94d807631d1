"""The server's own secret: what signs dashboard sessions and CSRF tokens.

It is never in the store, so a read of the store (a leaked backup, a world-readable SQLite
file) cannot mint a session. ``TIANPING_SECRET`` gives it (the same value on every host that
serves one store); otherwise it is generated on first start into ``<home>/secret``, created
with mode 0600 in a home of mode 0700, and read back by every later start and every worker.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from tianping.errors import UsageError
from tianping.settings import make_home

ENV = "TIANPING_SECRET"
FILE = "secret"
#: Shortest ``TIANPING_SECRET`` accepted: 32 characters (e.g. ``openssl rand -hex 32``).
MIN_LENGTH = 32


def server_secret(home: Path, environ: Mapping[str, str] | None = None) -> bytes:
    """The 32-byte key sessions are signed with.

    Raises:
        UsageError: ``TIANPING_SECRET`` is set but shorter than :data:`MIN_LENGTH`, or the
            secret file is unreadable or damaged.
    """
    environ = os.environ if environ is None else environ
    given = environ.get(ENV, "")
    if given:
        if len(given) < MIN_LENGTH:
            raise UsageError(
                f"{ENV} must have at least {MIN_LENGTH} characters (e.g. openssl rand -hex 32)",
                field=ENV,
            )
        return hashlib.sha256(given.encode()).digest()
    return _from_file(make_home(Path(home)) / FILE)


def _from_file(path: Path) -> bytes:
    if not path.exists():
        # Written whole to a private temporary file, then linked into place: a worker that
        # starts at the same moment finds either no file or the complete one, never half.
        tmp = path.with_name(f".{FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another worker was first: use its secret
        finally:
            tmp.unlink()
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"{path}: cannot read the server secret ({exc})", field=str(path)
        ) from None
    if len(key) != 32:
        raise UsageError(
            f"{path}: the server secret is damaged; delete the file to make a new one "
            "(every dashboard session ends)",
            field=str(path),
        )
    return key
