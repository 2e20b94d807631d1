"""Group commit: requests that arrive together are written in one transaction.

A write costs a transaction — on SQLite a ``BEGIN IMMEDIATE`` under the process's write lock,
a commit, a session — and, in a threaded server, a hand-off to a worker thread and back.
Under load most of that is overhead, so the hot writes (new refund requests) are handed to a
:class:`Batcher`: the event loop queues them, one writer thread takes everything queued so
far, runs each job in turn inside **one** transaction, commits once and only then answers
every job. Nothing is answered before it is committed.

A job is split in two (:class:`Job`):

- ``prepare(session)`` only reads (the API key, the order under its row lock, the idempotency
  record, the policy's verdict). When it raises, that job is answered with its error and the
  others go on — nothing of it was written.
- ``execute(session, prepared)`` writes. When it raises, the whole batch is rolled back and
  every job of it is run again **on its own**, in its own transaction with the store's usual
  retries (:meth:`tianping.api.deps.Store.transact`), so each gets exactly the answer it would
  have had alone, and one bad job cannot take the others down.

Jobs of a batch run one after another in arrival order, in one session: a later job sees
everything an earlier one wrote (two requests on one order, or with one idempotency key,
behave as they would in two consecutive transactions).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tianping.api.deps import Store
from tianping.errors import TianpingError

log = logging.getLogger(__name__)
P = TypeVar("P")
R = TypeVar("R")

#: Most jobs in one transaction: bounds the time a batch holds the write lock (~1 ms a job).
MAX_BATCH = 64


class Done(Generic[R]):
    """What ``prepare`` returns when the answer is known without writing (a replay)."""

    __slots__ = ("value",)

    def __init__(self, value: R):
        self.value = value


@dataclass(frozen=True)
class Job(Generic[P, R]):
    """One unit of work: ``prepare`` reads and may answer at once; ``execute`` writes.

    ``prefetch(session, jobs)``, when given, runs once at the start of a batch with every job
    of the batch that names the same function, so their reads can be made in a few set-based
    queries; it leaves what it read in ``session.info`` for those jobs' ``prepare``, which must
    also work without it (a job run alone is not prefetched). It may return a function that
    runs after the last job, before the commit (to write what the jobs buffered). ``args`` is
    what it needs of the job.
    """

    prepare: Callable[[Any], P | Done[R]]
    execute: Callable[[Any, P], R]
    prefetch: Callable[[Any, list[Job]], Callable[[Any], None] | None] | None = None
    args: Any = None

    def run(self, session) -> R:
        """Both halves in the caller's transaction (the path a job takes on its own)."""
        prepared = self.prepare(session)
        if isinstance(prepared, Done):
            return prepared.value
        return self.execute(session, prepared)


@dataclass
class _Outcome:
    value: Any = None
    error: BaseException | None = None


class Batcher:
    """Queues jobs from the event loop and runs them in shared transactions on one thread."""

    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH, inline: bool | None = None):
        self.store = store
        self.max_batch = max_batch
        #: Run batches on the event loop itself rather than the writer thread. The default on
        #: SQLite: its statements are calls into a local file, a batch holds the process's only
        #: write lock anyway, and no thread means no hand-offs or GIL ping-pong with the loop
        #: (requests read while a batch runs form the next one). PostgreSQL waits on the
        #: network, so its batches run on the thread and the loop goes on reading meanwhile.
        self.inline = store.is_sqlite if inline is None else inline
        self._pending: list[tuple[Job, asyncio.Future]] = []
        self._draining = False
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="tianping-writer")
        #: Batches run and jobs in them, for the benchmark's report.
        self.batches = 0
        self.jobs = 0

    async def submit(self, job: Job[Any, R]) -> R:
        """Run ``job`` in the next batch; its answer once the batch is committed."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((job, future))
        if not self._draining:
            self._draining = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(0)  # let the requests already read submit too
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                try:
                    jobs = [job for job, _ in batch]
                    if self.inline:
                        outcomes = self.run_batch(jobs)
                    else:
                        outcomes = await loop.run_in_executor(self._thread, self.run_batch, jobs)
                except BaseException as exc:  # the writer itself failed: every job hears it
                    outcomes = [_Outcome(error=exc) for _ in batch]
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # the client went away
                        continue
                    if outcome.error is not None:
                        future.set_exception(outcome.error)
                    else:
                        future.set_result(outcome.value)
        finally:
            self._draining = False

    def run_batch(self, jobs: list[Job]) -> list[_Outcome]:
        """Run ``jobs`` in one transaction (or, when one fails while writing, each alone)."""
        self.batches += 1
        self.jobs += len(jobs)
        store = self.store
        outcomes: list[_Outcome] = []
        with store.write_lock(), store.sessions() as session:
            try:
                groups: dict[Callable, list[Job]] = {}
                for job in jobs:
                    if job.prefetch is not None:
                        groups.setdefault(job.prefetch, []).append(job)
                finish = [prefetch(session, group) for prefetch, group in groups.items()]
                for job in jobs:
                    try:
                        prepared = job.prepare(session)
                    except TianpingError as exc:  # read-only so far: answer it, go on
                        outcomes.append(_Outcome(error=exc))
                        continue
                    if isinstance(prepared, Done):
                        outcomes.append(_Outcome(prepared.value))
                    else:
                        outcomes.append(_Outcome(job.execute(session, prepared)))
                for fn in finish:
                    if fn is not None:
                        fn(session)
                session.commit()
                return outcomes
            except BaseException:
                session.rollback()
                log.debug("batch of %d rolled back; running its jobs one by one", len(jobs))
        return [self._alone(job) for job in jobs]

    def _alone(self, job: Job) -> _Outcome:
        try:
            return _Outcome(self.store.transact(job.run))
        except BaseException as exc:
            return _Outcome(error=exc)

    def close(self) -> None:
        """Finish the queued batches and stop the writer thread (at the app's shutdown)."""
        self._thread.shutdown(wait=True)
        log.info("batched writer: %d jobs in %d batches", self.jobs, self.batches)
