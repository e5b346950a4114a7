"""The wallet's HTTP surface, black-box against the running app on PostgreSQL. A new workspace
opens its wallet with the starting grant."""

from __future__ import annotations

import itertools
import uuid

from mathia.config import Settings
from tests.client import sign_up


async def test_owner_adjusts_and_members_read(base_url: str, app_settings: Settings) -> None:
    owner, member, outsider = (
        await sign_up(base_url, "Olga"),
        await sign_up(base_url, "Max"),
        await sign_up(base_url),
    )
    workspace_id = await owner.workspace("Wallet Co")
    await owner.invite(workspace_id, member, "member")
    wallet = f"/api/workspaces/{workspace_id}/wallet"
    start = (await owner.get(wallet)).json()["balance"]
    assert start == app_settings.wallet_starting_grant > 0

    body = {"amount": 500, "reason": "goodwill", "idempotency_key": "k1"}
    first = await owner.post(f"{wallet}/adjustments", body)
    again = await owner.post(f"{wallet}/adjustments", body)
    assert first.status_code == 201 and first.json()["balance"] == start + 500
    assert again.status_code == 200 and again.json() == {**first.json(), "replayed": True}
    conflict = await owner.post(f"{wallet}/adjustments", {**body, "amount": 501})
    assert conflict.status_code == 409 and "idempotency_key" in conflict.json()["detail"]

    shown = (await member.get(wallet)).json()
    assert shown["balance"] == start + 500
    assert (await member.post(f"{wallet}/adjustments", {**body, "idempotency_key": "k2"})).status_code == 403
    assert (await outsider.get(wallet)).status_code == 404
    assert (await outsider.get(f"{wallet}/statement")).status_code == 404
    assert (
        await outsider.post(f"{wallet}/adjustments", {**body, "idempotency_key": "k3"})
    ).status_code == 404
    assert (await owner.get(f"/api/workspaces/{uuid.uuid4()}/wallet")).status_code == 404
    assert (await member.get(wallet)).json()["balance"] == start + 500


async def test_adjustments_refuse_bad_input_and_overdrafts(base_url: str) -> None:
    owner = await sign_up(base_url, "Olga")
    workspace_id = await owner.workspace("Wallet Co")
    wallet = f"/api/workspaces/{workspace_id}/wallet"
    start = (await owner.get(wallet)).json()["balance"]
    bad = {
        "amount": [
            {"amount": 0, "reason": "x", "idempotency_key": "z"},
            {"amount": 10**16, "reason": "x", "idempotency_key": "z"},
        ],
        "reason": [
            {"amount": 5, "reason": "   ", "idempotency_key": "z"},
            {"amount": 5, "idempotency_key": "z"},
        ],
        "idempotency_key": [{"amount": 5, "reason": "x", "idempotency_key": ""}],
    }
    for field, bodies in bad.items():
        for body in bodies:
            response = await owner.post(f"{wallet}/adjustments", body)
            assert response.status_code == 400 and field in response.text, (body, response.text)
    overdraft = await owner.post(
        f"{wallet}/adjustments", {"amount": -(start + 1), "reason": "x", "idempotency_key": "o"}
    )
    assert overdraft.status_code == 402
    assert overdraft.json()["extra"]["code"] == "insufficient_credits"
    assert (await owner.get(wallet)).json()["balance"] == start
    assert (await owner.get(f"{wallet}/statement")).json()["items"][0]["kind"] == "grant"


async def test_statement_pages_with_running_balance(base_url: str) -> None:
    owner = await sign_up(base_url, "Olga")
    workspace_id = await owner.workspace("Wallet Co")
    wallet = f"/api/workspaces/{workspace_id}/wallet"
    for i, amount in enumerate([5, -3, 7]):
        response = await owner.post(
            f"{wallet}/adjustments", {"amount": amount, "reason": f"r{i}", "idempotency_key": f"s{i}"}
        )
        assert response.status_code == 201
    page = (await owner.get(f"{wallet}/statement", limit=2)).json()
    assert page["has_more"] and page["balance"] == (await owner.get(wallet)).json()["balance"]
    newest = page["items"][0]
    assert (
        newest["amount"],
        newest["memo"],
        newest["counterparty"]["kind"],
        newest["counterparty"]["name"],
    ) == (7, "r2", "system", "adjustments")
    rest = (await owner.get(f"{wallet}/statement", before_seq=page["items"][-1]["seq"], limit=200)).json()
    lines = page["items"] + rest["items"]
    assert not rest["has_more"]
    # Running balances chain: each line's balance is the previous one plus its amount.
    for newer, older in itertools.pairwise(lines):
        assert newer["balance_after"] == older["balance_after"] + newer["amount"]
        assert newer["seq"] == older["seq"] + 1
    assert (await owner.get(f"{wallet}/statement", limit=201)).status_code == 400
