"""Group commit of sends: sends that arrive together share one statement and one commit.

PostgreSQL serialises the commits of transactions that NOTIFY (one cluster-wide lock held through
the WAL flush), so one commit per message caps the whole node at a few thousand messages/s. Here a
few writers each take whatever sends piled up while the previous statement ran (no artificial
delay) and store them with one ``unnest ... CROSS JOIN LATERAL ccs_send(...)`` statement: one
commit, one notification flush, every promise of a single ``ccs_send`` kept per item:

- an item's ack is resolved only after the statement (and so its commit) returned (P1);
- ``ccs_send`` runs once per item, in order, inside one transaction: the same key twice in one
  batch sees its own first insert and answers duplicate / idempotency_conflict (P2);
- seq comes from the conversation row lock, as for a single send; items of one conversation keep
  their arrival order (stable sort) and one connection has at most one command in flight (P3);
- a writer takes only sends of conversations no statement in flight is writing: the others stay
  queued and go together into the next batch, instead of waiting inside PostgreSQL on a row
  lock held until another transaction's COMMIT (with many senders per conversation that convoy
  halved the throughput);
- every statement runs in its own transaction (pg_write.py): a failure before COMMIT was sent
  stored nothing and answers every item ``unavailable`` (P12); a failure while COMMIT was in
  flight answers ``outcome_unknown`` (the client retries with the same key and learns which); any
  other error (deadlock, one item's bad data) rolled back and re-runs the items one by one, so one
  bad item cannot fail the others;
- a send has ``deadline_s`` from its arrival, queueing behind busy writers included. Still queued
  at the deadline: it never reached the database, ``unavailable``. Taken by a writer: the
  statement runs under the earliest deadline of its items (at least half a deadline), and the
  sender waits for its verdict, because only the writer knows whether COMMIT was sent. So
  ``unavailable`` is never followed by a late commit, and every reply comes within 1.5 deadlines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from .errors import WireError
from .pg_errors import outcome_unknown, unavailable
from .pg_write import TxState
from .ports import WriteResult

log = logging.getLogger("ccs.store")

SendArgs = tuple[str, str, str | None, str, str]  # conversation, user, device, client_msg_id, body
# (sql, args, deadline_s, state) -> rows after COMMIT; raises unavailable / outcome_unknown
Write = Callable[[str, Sequence[Any], float, TxState], Awaitable[list[asyncpg.Record]]]
SendOne = Callable[[SendArgs, float], Awaitable[WriteResult]]  # one send within a deadline
_LONG_S = 3600.0  # statement bound when sends have no deadline

GROUP_SEND_SQL = (
    "SELECT t.i, s.outcome, s.id, s.conversation_id, s.seq, s.sender_user_id, s.sender_device_id,"
    " s.client_msg_id, s.body::text AS body, s.version, s.deleted, s.created_at, s.edited_at"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])"
    " WITH ORDINALITY AS t(c, u, d, m, b, i)"
    " CROSS JOIN LATERAL ccs_send(t.c, t.u, t.d, t.m, t.b::json) s ORDER BY t.i"
)


@dataclass(eq=False)  # identity: an item is looked up in the queue by ``is``
class _Item:
    args: SendArgs
    fut: asyncio.Future[WriteResult]
    deadline: float  # loop time; inf without a deadline


@dataclass
class _Batch:
    items: list[_Item]
    convs: set[str] = field(default_factory=set)
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupSender:
    """Queue of sends drained by at most ``writers`` concurrent group statements."""

    def __init__(
        self,
        write: Write,
        send_one: SendOne,
        writers: int,
        max_batch: int,
        deadline_s: float | None = None,
    ) -> None:
        self._write_rows = write
        self._send_one = send_one
        self.writers = max(1, writers)
        self.max_batch = max(1, max_batch)
        self.deadline_s = deadline_s
        self._queue: list[_Item] = []
        self._active = 0
        self._inflight: list[_Batch] = []
        self._tasks: set[asyncio.Task[None]] = set()  # strong references to running writers

    async def send(self, args: SendArgs) -> WriteResult:
        """Queue one send; resolves after the statement holding it has committed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[WriteResult] = loop.create_future()
        wait = self.deadline_s
        item = _Item(args, fut, loop.time() + wait if wait is not None else float("inf"))
        self._queue.append(item)
        if self._active < self.writers:
            self._active += 1
            task = asyncio.create_task(self._write_loop(), name="group-writer")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            try:
                async with asyncio.timeout(wait):
                    return await asyncio.shield(fut)
            except TimeoutError:
                if self._unqueue(item):
                    raise unavailable() from None  # never handed to the database
            # a writer holds it under this item's deadline: its verdict says what was stored
            try:
                async with asyncio.timeout(wait):
                    return await asyncio.shield(fut)
            except TimeoutError:
                raise outcome_unknown() from None
        except asyncio.CancelledError:
            # the sender went away: unacknowledged (it may still be stored; a retry is duplicate)
            self._unqueue(item)
            fut.cancel()
            raise

    def _unqueue(self, item: _Item) -> bool:
        """Take ``item`` out of the queue; False if a writer has it already."""
        for index, queued in enumerate(self._queue):
            if queued is item:
                del self._queue[index]
                return True
        return False

    def writing(self, convs: Iterable[str]) -> list[asyncio.Future[None]]:
        """Completion of the batches now being written that touch any of ``convs``.

        Done only after the senders of the batch have run their continuation (see ``_write``).
        """
        wanted = set(convs)
        return [b.done for b in self._inflight if not b.convs.isdisjoint(wanted)]

    def _take(self) -> list[_Item]:
        """Up to ``max_batch`` queued items, in arrival order, of conversations no statement in
        flight is writing.

        A batch that touched a conversation being written would wait inside PostgreSQL on that
        conversation's row lock until the other transaction's COMMIT, holding its connection
        and the locks it already took, so batches queue behind each other inside the database.
        Left queued here instead, those items go together into the next batch of the writer
        that frees the conversation. What is left keeps its order and a conversation's items
        are taken from its oldest on, so one conversation's sends still go in arrival order.
        """
        busy: set[str] = set()
        for batch in self._inflight:
            busy |= batch.convs
        taken: list[_Item] = []
        left: list[_Item] = []
        for it in self._queue:
            if len(taken) < self.max_batch and it.args[0] not in busy:
                taken.append(it)
            else:
                left.append(it)
        self._queue = left
        return taken

    async def _write_loop(self) -> None:
        try:
            while items := self._take():
                now = asyncio.get_running_loop().time()
                live = []
                for it in items:
                    if it.deadline <= now:
                        _settle(it.fut, exc=unavailable())  # expired unsent: nothing stored
                    elif not it.fut.done():
                        live.append(it)
                if live:
                    await self._write(live)
        finally:
            self._active -= 1

    async def _write(self, items: list[_Item]) -> None:
        # one lock order (conversation rows) for every batch, so two batches cannot deadlock;
        # the sort is stable: one conversation's sends keep their arrival order
        items.sort(key=lambda it: it.args[0])
        batch = _Batch(items, {it.args[0] for it in items})
        state = TxState()
        self._inflight.append(batch)
        try:
            await self._store(items, state)
            # let the senders run first (they remember their rows for the fan-out), so whoever
            # waits on ``done`` finds the rows there
            await asyncio.sleep(0)
        finally:
            for it in items:
                if not it.fut.done():  # only when this writer was cancelled (shutdown)
                    it.fut.set_exception(outcome_unknown() if state.commit_sent else unavailable())
            self._inflight.remove(batch)
            batch.done.set_result(None)

    async def _store(self, items: list[_Item], state: TxState) -> None:
        cols: list[list[Any]] = [list(col) for col in zip(*(it.args for it in items), strict=True)]
        left = min(it.deadline for it in items) - asyncio.get_running_loop().time()
        try:
            recs = await self._write_rows(GROUP_SEND_SQL, cols, self._bound(left), state)
        except WireError as exc:
            # unavailable (nothing stored) or outcome_unknown (COMMIT was in flight): every item
            # of the statement shares its fate
            for it in items:
                _settle(it.fut, exc=WireError(exc.code, exc.message))
            return
        except Exception:
            log.warning("group send failed; storing its items one by one", exc_info=True)
            await self._store_each(items)
            return
        by_index = {rec["i"]: rec for rec in recs}
        for index, it in enumerate(items, start=1):
            rec = by_index.get(index)
            if rec is None:  # ccs_send returns exactly one row per call; never acked blindly
                _settle(it.fut, exc=RuntimeError("group send returned no row for an item"))
                continue
            row = dict(rec)
            del row["i"]
            _settle(it.fut, WriteResult(row["outcome"], row))

    def _bound(self, left: float) -> float:
        """Deadline of a statement whose most urgent item has ``left`` seconds.

        Never below half a deadline: one item that queued long must not make a statement fail
        for the fresh items beside it. That item's sender then waits past its own deadline, for
        at most that half, because only the statement's verdict says whether it was stored.
        """
        if self.deadline_s is None:
            return _LONG_S
        return max(left, self.deadline_s / 2)

    async def _store_each(self, items: list[_Item]) -> None:
        unreachable = False
        loop = asyncio.get_running_loop()
        for it in items:
            if it.fut.done():
                continue
            left = it.deadline - loop.time()
            if unreachable or left <= 0:  # do not spend a deadline per item on a dead link
                _settle(it.fut, exc=unavailable())
                continue
            try:
                _settle(it.fut, await self._send_one(it.args, self._bound(left)))
            except WireError as exc:
                unreachable = exc.code in ("unavailable", "outcome_unknown")
                _settle(it.fut, exc=exc)
            except Exception as exc:
                _settle(it.fut, exc=exc)


def _settle(
    fut: asyncio.Future[WriteResult],
    result: WriteResult | None = None,
    exc: BaseException | None = None,
) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)  # type: ignore[arg-type]
