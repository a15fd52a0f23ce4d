"""Group commit: the durable writes that arrive together share one transaction.

A commit with `synchronous = FULL` waits for the disk; one photo at a time, each
upload's catalog row waits for every commit queued before it. Instead, durable writes
queue here, and the catalog thread runs every write queued so far in one transaction
and commits once: eight photos acknowledged together cost one sync, not eight.

- Each write runs in a savepoint of its own: one that fails is rolled back to it and
  answered with its error, and the others of its group are committed all the same.
- A caller is answered only after the commit that holds its write: what is
  acknowledged is on disk, as before.
- A commit that fails (a full disk) fails every write of its group: none of them was
  answered yet, so none was acknowledged.
- Should a write's error end the whole transaction (SQLite rolls back on some I/O
  errors), the writes before it in the group are run again in a new one.

Nothing waits to gather a group: a write queued while the thread is idle runs at once,
alone; the group is whatever queued while the previous one was committing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GroupCommit"]


@dataclass
class _Write:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    answer: Future[Any] = field(default_factory=Future)


class GroupCommit:
    """Queued writes of one connection, each group run by `run_queued` on its thread."""

    def __init__(self, db: Callable[[], sqlite3.Connection]) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._queued: list[_Write] = []
        # Whether a `run_queued` has been handed to the thread and not yet taken the queue.
        self._scheduled = False

    def add(self, fn: Callable[..., Any], *args: Any) -> tuple[Future[Any], bool]:
        """Queue a write; its answer, and whether the caller must schedule `run_queued`."""
        write = _Write(fn, args)
        with self._lock:
            self._queued.append(write)
            schedule = not self._scheduled
            self._scheduled = True
        return write.answer, schedule

    def run_queued(self) -> int:
        """On the connection's thread: every write queued, one transaction; how many ran."""
        with self._lock:
            group, self._queued = self._queued, []
            self._scheduled = False
        pending = [w for w in group if w.answer.set_running_or_notify_cancel()]
        try:
            while pending:
                pending = self._run_group(pending)
        except BaseException as error:
            # Not a write's error but the connection's (a savepoint refused): no write
            # of the group may be left unanswered, nor the transaction open.
            for write in group:
                if not write.answer.done():
                    write.answer.set_exception(error)
            if self._db().in_transaction:
                self._db().execute("ROLLBACK")
            raise
        return len(group)

    def _run_group(self, group: list[_Write]) -> list[_Write]:
        """One transaction of `group`; the writes to run again when it was lost midway."""
        db = self._db()
        done: list[tuple[_Write, bool, Any]] = []  # (write, succeeded, result or error)
        try:
            db.execute("BEGIN IMMEDIATE")
        except BaseException as error:
            for write in group:
                write.answer.set_exception(error)
            return []
        for n, write in enumerate(group):
            try:
                db.execute("SAVEPOINT write")
                result = write.fn(*write.args)
                db.execute("RELEASE write")
                done.append((write, True, result))
            except BaseException as error:
                if not db.in_transaction:
                    # The whole transaction is gone: this write fails, those before it
                    # (nothing of them is committed) run again, and the rest after them.
                    write.answer.set_exception(error)
                    return [w for w, _, _ in done] + group[n + 1 :]
                db.execute("ROLLBACK TO write")
                db.execute("RELEASE write")
                done.append((write, False, error))
        try:
            db.execute("COMMIT")
        except BaseException as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            for write, _, _ in done:
                write.answer.set_exception(error)
            return []
        for write, succeeded, outcome in done:
            if succeeded:
                write.answer.set_result(outcome)
            else:
                write.answer.set_exception(outcome)
        return []
