"""Group commit for transfers: many concurrent callers, one transaction per batch."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mathia import errors
from mathia.wallet.services import Outcome, Posted, TransferRequest, post

Waiting = tuple[TransferRequest, asyncio.Future[Outcome]]


class Poster:
    """Posts transfers for callers that need no other write in the same transaction
    (AI charges, top-ups, bulk jobs).

    While one batch commits, the requests that arrive meanwhile wait together and go in the
    next one. A hot account then pays one lock wait, a handful of round trips and one WAL
    flush per batch instead of per transfer. Every transfer is committed before its caller
    hears back, and a refused one refuses only itself.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_batch: int = 256) -> None:
        self._sessions = sessions
        self._max_batch = max_batch
        self._waiting: list[Waiting] = []
        self._drainer: asyncio.Task[None] | None = None

    async def transfer(self, request: TransferRequest) -> Posted:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        outcome = await future
        if isinstance(outcome, errors.MathiaError):
            raise outcome
        return outcome

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            await self._post(batch)

    async def _post(self, batch: list[Waiting]) -> None:
        try:
            async with self._sessions() as session, session.begin():
                outcomes = await post(session, [request for request, _ in batch])
        except Exception as exc:
            if len(batch) > 1:
                # One bad request (an unknown account, say) fails its batch: retry each alone,
                # so that only it fails.
                for waiting in batch:
                    await self._post([waiting])
            elif not batch[0][1].done():
                batch[0][1].set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():  # its caller may have given up; the transfer stands
                future.set_result(outcome)
