"""Approvals on both databases, and the top-up proof: "top up 500 credits" waits for an admin,
then the fake IntaSend's webhook raises the balance by exactly 500 credits, once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator

import pytest
from mathia_payments.fake import FakeIntaSend
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.actions import router
from mathia.actions.models import Approval, ApprovalStatus
from mathia.connectors.api import HookRequest
from mathia.connectors.services import ConnectorRuntime, WorkspaceFacade, cache_for, configure
from mathia.connectors.testing import serve
from mathia.errors import Conflict, Forbidden, NotFound
from mathia.wallet import services as wallet
from mathia.wallet.models import CREDIT_UNITS
from tests.actions.conftest import RecordingDelivery, Team
from tests.reminders.world import eventually, frames


@pytest.fixture(scope="module")
def intasend() -> Iterator[tuple[FakeIntaSend, str]]:
    fake = FakeIntaSend()
    with serve(fake.app()) as url:
        yield fake, url


async def enable_payments(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team, intasend: tuple[FakeIntaSend, str]
) -> None:
    fake, url = intasend
    await configure(
        connectors,
        session,
        team.workspace,
        "payments",
        enabled=True,
        credentials={
            "intasend_secret_key": fake.secret_key,
            "intasend_public_key": fake.public_key,
            "intasend_challenge": fake.challenge,
        },
        settings={"intasend_base_url": url},
    )
    await wallet.open_workspace_account(session, team.workspace, 0)


async def request_top_up(connectors: ConnectorRuntime, session: AsyncSession, team: Team) -> router.Outcome:
    rule_calls = [
        c
        for rule in router.offline_rules(connectors)
        if (c := rule("@mathia top up 500 credits from 254712345678")) is not None
    ]
    assert [(c.name, c.arguments) for c in rule_calls] == [
        ("payments__top_up", {"amount": "500", "phone": "254712345678"})
    ]
    return await router.run_action(
        connectors,
        session,
        tenant_id=team.workspace,
        user_id=team.member,
        room_id=None,
        tool=rule_calls[0].name,
        arguments=rule_calls[0].arguments,
    )


async def deliver(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team, path: str, body: bytes
) -> tuple[int, str]:
    """What the /hooks route does, without HTTP: the registered handler with this workspace's facade."""
    from mathia.connectors.services import get_config, secrets_and_settings

    config = await get_config(session, team.workspace, "payments")
    credentials, settings = secrets_and_settings(
        connectors, config, connectors.registry.connectors["payments"]
    )
    answer = await connectors.registry.routes[("payments", path)].handler(
        HookRequest(
            method="POST",
            path=path,
            query={},
            headers={"content-type": "application/json"},
            body=body,
            connector="payments",
            workspace=WorkspaceFacade(connectors, session, team.workspace, "payments"),
            credentials=credentials,
            settings=settings,
            http=connectors.http,
            cache=cache_for(connectors, "payments", team.workspace),
        )
    )
    return answer.status, str(answer.body)


async def test_top_up_500_credits_once(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team, intasend: tuple[FakeIntaSend, str]
) -> None:
    fake, _ = intasend
    delivery: RecordingDelivery = connectors.delivery  # type: ignore[assignment]
    await enable_payments(connectors, session, team, intasend)
    start = (await wallet.workspace_account(session, team.workspace)).balance
    outcome = await request_top_up(connectors, session, team)
    assert outcome.status == "pending_approval" and outcome.approval_id is not None
    assert {u for u, f in delivery.frames if f["kind"] == "approval"} == {team.owner, team.admin}
    assert fake.invoices == {} or all(
        i["api_ref"].split(":")[1] != str(team.workspace) for i in fake.invoices.values()
    )  # nothing asked of the payer yet
    with pytest.raises(Forbidden):
        await router.decide(connectors, session, outcome.approval_id, team.member, True)
    listed = await router.list_approvals(
        session, connectors.redis, team.workspace, team.admin, router.Role.ADMIN
    )
    assert [a.id for a in listed] == [outcome.approval_id]

    approval, ran = await router.decide(connectors, session, outcome.approval_id, team.admin, True)
    assert approval.status == ApprovalStatus.APPROVED and ran is not None and ran.status == "ok", ran
    invoice_id = ran.data["payment_id"]
    assert fake.invoices[invoice_id]["value"] == "500.00"
    with pytest.raises(Conflict, match="already approved"):
        await router.decide(connectors, session, outcome.approval_id, team.owner, True)
    assert (await wallet.workspace_account(session, team.workspace)).balance == start  # not paid yet

    body = json.dumps(fake.settle(invoice_id)).encode()
    assert await deliver(connectors, session, team, "/intasend", body) == (200, "credited")
    assert await deliver(connectors, session, team, "/intasend", body) == (200, "already credited")
    assert (await wallet.workspace_account(session, team.workspace)).balance == start + 500 * CREDIT_UNITS
    requester = [f for u, f in delivery.frames if u == team.member and f["kind"] == "approval"]
    assert requester[-1]["status"] == "approved"


async def test_webhooks_that_lie_credit_nothing(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team, intasend: tuple[FakeIntaSend, str]
) -> None:
    fake, _ = intasend
    await enable_payments(connectors, session, team, intasend)
    start = (await wallet.workspace_account(session, team.workspace)).balance
    outcome = await request_top_up(connectors, session, team)
    assert outcome.approval_id is not None
    _, ran = await router.decide(connectors, session, outcome.approval_id, team.owner, True)
    assert ran is not None
    invoice_id = ran.data["payment_id"]
    wrong_challenge = {**fake.settle(invoice_id, "PENDING"), "state": "COMPLETE", "challenge": "nope"}
    claims_complete = {**fake.settle(invoice_id, "PENDING"), "state": "COMPLETE"}  # IntaSend says pending
    for body, status in ((wrong_challenge, 401), (claims_complete, 400)):
        assert (await deliver(connectors, session, team, "/intasend", json.dumps(body).encode()))[0] == status
    assert (await wallet.workspace_account(session, team.workspace)).balance == start


async def test_reject_and_expire(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team, intasend: tuple[FakeIntaSend, str]
) -> None:
    await enable_payments(connectors, session, team, intasend)
    first = await request_top_up(connectors, session, team)
    second = await request_top_up(connectors, session, team)
    assert first.approval_id is not None and second.approval_id is not None
    approval, ran = await router.decide(connectors, session, first.approval_id, team.admin, False)
    assert (approval.status, ran, approval.result) == (ApprovalStatus.REJECTED, None, "rejected")
    await session.execute(
        update(Approval)
        .where(Approval.id == second.approval_id)
        .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    )
    with pytest.raises(Conflict, match="already expired"):
        await router.decide(connectors, session, second.approval_id, team.admin, True)
    redis = connectors.redis
    told = [f"user:{u}" for u in (team.member, team.owner, team.admin, team.guest)]
    async with frames(redis, *told) as seen:
        assert (
            await router.list_approvals(session, redis, team.workspace, team.owner, router.Role.OWNER) == []
        )

        async def three_told() -> bool:
            return len(seen) >= 3

        await eventually(three_told, within=5)
        # Listing again finds nothing newly expired and tells nobody again.
        await router.list_approvals(session, redis, team.workspace, team.admin, router.Role.ADMIN)
        await asyncio.sleep(0.2)
    # The requester and both approvers hear of it, once each; the guest does not.
    assert [(f["kind"], f["status"], f["approval_id"]) for f in seen] == [
        ("approval", "expired", str(second.approval_id))
    ] * 3
    # The requester sees their own requests in any state; another workspace's admin sees nothing.
    mine = await router.list_approvals(session, redis, team.workspace, team.member, router.Role.MEMBER, None)
    assert {a.status for a in mine} == {ApprovalStatus.REJECTED, ApprovalStatus.EXPIRED}
    with pytest.raises(NotFound):
        await router.decide(connectors, session, first.approval_id, uuid.uuid4(), True)


async def test_disabled_before_approval_does_not_run(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team, intasend: tuple[FakeIntaSend, str]
) -> None:
    await enable_payments(connectors, session, team, intasend)
    outcome = await request_top_up(connectors, session, team)
    assert outcome.approval_id is not None
    await configure(connectors, session, team.workspace, "payments", enabled=False)
    _, ran = await router.decide(connectors, session, outcome.approval_id, team.admin, True)
    assert ran is not None and ran.status == "not_enabled"
