"""``tianping serve`` as a real process for end-to-end tests: a free port, wait until it answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

TIANPING = str(Path(sys.executable).parent / "tianping")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(*args: str, tries: int = 300) -> Iterator[str]:
    """Run ``tianping ARGS serve --port P`` (timers off) until the block ends; yields its base
    URL once ``/openapi.json`` answers, or raises with the tail of its stderr."""
    port = free_port()
    proc = subprocess.Popen(
        [TIANPING, *args, "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "TIANPING_TICK_SECONDS": "0"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(tries):
            try:
                if httpx.get(f"{base}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"server did not start: {proc.stderr.read().decode()[-2000:]}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
