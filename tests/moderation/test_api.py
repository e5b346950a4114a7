"""The moderation API over HTTP and the mute on the WebSocket send path, on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from uuid import UUID

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.config import Settings
from mathia.moderation.classifier import Verdict
from mathia.moderation.services import Buffered, record_verdicts, set_mute
from tests.client import Member, sign_up
from tests.reminders.world import session_on


@pytest.fixture
async def pg(app_settings: Settings) -> AsyncIterator[AsyncSession]:
    async with session_on(app_settings) as session:
        yield session


class Team:
    def __init__(self, owner: Member, admin: Member, member: Member, workspace: str, room: str) -> None:
        self.owner, self.admin, self.member, self.workspace, self.room = owner, admin, member, workspace, room

    def path(self, rest: str) -> str:
        return f"/api/workspaces/{self.workspace}/moderation{rest}"


async def team(base_url: str) -> Team:
    owner, admin, member = [await sign_up(base_url, name) for name in ("Olga", "Ade", "Mo")]
    workspace = await owner.workspace("Moderated")
    await owner.invite(workspace, admin, role="admin")
    await owner.invite(workspace, member)
    room = await owner.room(workspace)
    assert (await member.post(f"/api/rooms/{room}/join")).status_code == 200
    return Team(owner, admin, member, workspace, room)


async def flag(pg: AsyncSession, settings: Settings, t: Team, author: Member, body: str) -> str:
    """Post a message over HTTP and record an abusive verdict for it, as the moderation job does."""
    response = await author.post(f"/api/rooms/{t.room}/messages", {"body": body})
    assert response.status_code == 201, response.text
    message = response.json()
    item = Buffered("0-1", UUID(message["id"]), UUID(t.workspace), UUID(t.room), UUID(author.user_id), body)
    await record_verdicts(pg, settings, [item], [Verdict(abusive=True, score=0.97, reason="test verdict")])
    await pg.commit()
    return str(message["id"])


async def test_admins_list_flags_and_members_may_not(
    base_url: str, app_settings: Settings, pg: AsyncSession
) -> None:
    t = await team(base_url)
    flagged = await flag(pg, app_settings, t, t.member, "you idiot")
    for admin in (t.owner, t.admin):
        response = await admin.get(t.path("/flags"))
        assert response.status_code == 200, response.text
        [row] = response.json()
        assert (
            row["message_id"] == flagged and row["user_id"] == t.member.user_id and row["state"] == "active"
        )
    assert (await t.owner.get(t.path("/flags"), user_id=t.owner.user_id)).json() == []
    assert len((await t.owner.get(t.path("/flags"), state="active")).json()) == 1
    assert (await t.owner.get(t.path("/flags"), state="pardoned")).json() == []
    assert (await t.member.get(t.path("/flags"))).status_code == 403
    bad = await t.owner.get(t.path("/flags"), state="forgotten")
    assert bad.status_code == 400 and "state" in bad.text


async def test_another_workspace_answers_404(base_url: str, app_settings: Settings, pg: AsyncSession) -> None:
    t = await team(base_url)
    await flag(pg, app_settings, t, t.member, "you idiot")
    stranger = await sign_up(base_url, "Eve")
    await stranger.workspace("Elsewhere")
    # A stranger asking about this workspace, under every route, is told it does not exist.
    for path in ("/flags", "/policy", f"/users/{t.member.user_id}"):
        assert (await stranger.get(t.path(path))).status_code == 404, path
    for path in (f"/users/{t.member.user_id}/unmute", f"/users/{t.member.user_id}/pardon"):
        assert (await stranger.post(t.path(path))).status_code == 404, path
    assert (
        await stranger.http.put(t.path("/policy"), json={"flag_limit": 1, "mute_seconds": 60})
    ).status_code == 404
    # An admin here cannot reach someone outside the workspace either.
    assert (await t.owner.post(t.path(f"/users/{stranger.user_id}/unmute"))).status_code == 404
    assert (await t.owner.get(t.path(f"/users/{stranger.user_id}"))).status_code == 404
    # The flag is untouched.
    assert [f["state"] for f in (await t.owner.get(t.path("/flags"))).json()] == ["active"]


async def test_mute_state_unmute_and_pardon(base_url: str, app_settings: Settings, pg: AsyncSession) -> None:
    t = await team(base_url)
    await flag(pg, app_settings, t, t.member, "you idiot")
    await flag(pg, app_settings, t, t.member, "shut up")
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    await set_mute(pg, UUID(t.workspace), UUID(t.member.user_id), until)
    await pg.commit()
    # Members may ask about themselves, not about others; admins about anyone.
    mine = await t.member.get(t.path(f"/users/{t.member.user_id}"))
    assert dt.datetime.fromisoformat(mine.json()["muted_until"]) == until
    assert (await t.member.get(t.path(f"/users/{t.admin.user_id}"))).status_code == 403
    assert (await t.admin.get(t.path(f"/users/{t.member.user_id}"))).json() == mine.json()
    # Members cannot unmute or pardon, themselves included.
    assert (await t.member.post(t.path(f"/users/{t.member.user_id}/unmute"))).status_code == 403
    assert (await t.member.post(t.path(f"/users/{t.member.user_id}/pardon"))).status_code == 403
    assert (await t.member.get(t.path(f"/users/{t.member.user_id}"))).json()["muted_until"] is not None

    unmuted = await t.admin.post(t.path(f"/users/{t.member.user_id}/unmute"))
    assert unmuted.status_code == 200
    assert unmuted.json() == {"user_id": t.member.user_id, "muted_until": None}
    assert [f["state"] for f in (await t.owner.get(t.path("/flags"))).json()] == ["active", "active"]
    pardoned = await t.owner.post(t.path(f"/users/{t.member.user_id}/pardon"))
    assert pardoned.json() == {"user_id": t.member.user_id, "muted_until": None, "pardoned_flags": 2}
    assert {f["state"] for f in (await t.owner.get(t.path("/flags"))).json()} == {"pardoned"}


async def test_policy_read_by_members_set_by_admins_validated(base_url: str) -> None:
    t = await team(base_url)
    default = (await t.member.get(t.path("/policy"))).json()
    assert default == {"flag_limit": 3, "mute_seconds": 900}
    denied = await t.member.http.put(t.path("/policy"), json={"flag_limit": 5, "mute_seconds": 600})
    assert denied.status_code == 403
    for body, field in (
        ({"flag_limit": 0, "mute_seconds": 600}, "flag_limit"),
        ({"flag_limit": 2, "mute_seconds": 5}, "mute_seconds"),
        ({"flag_limit": 2}, "mute_seconds"),
        ({"flag_limit": 2, "mute_seconds": 600, "extra": 1}, "extra"),
    ):
        response = await t.admin.http.put(t.path("/policy"), json=body)
        assert response.status_code == 400 and field in response.text, (body, response.text)
    assert (await t.member.get(t.path("/policy"))).json() == default
    updated = await t.admin.http.put(t.path("/policy"), json={"flag_limit": 5, "mute_seconds": 600})
    assert updated.status_code == 200
    assert (await t.member.get(t.path("/policy"))).json() == {"flag_limit": 5, "mute_seconds": 600}


async def test_a_muted_member_cannot_send_and_nothing_is_stored(base_url: str, pg: AsyncSession) -> None:
    t = await team(base_url)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    await set_mute(pg, UUID(t.workspace), UUID(t.member.user_id), until)
    await pg.commit()
    async with t.member.socket(base_url) as socket:
        await socket.subscribe(t.room)
        await socket.send({"type": "message.send", "room_id": t.room, "body": "hello?", "client_id": "c1"})
        error = await socket.expect("error")
    assert error["code"] == "muted"
    assert error["detail"] == f"you are muted in this workspace until {until.isoformat()}"
    assert not any(f["type"] == "message.new" for f in socket.frames)
    assert (await t.owner.get(f"/api/rooms/{t.room}/messages")).json()["items"] == []
    http = await t.member.post(f"/api/rooms/{t.room}/messages", {"body": "hello?"})
    assert http.status_code == 403 and http.json()["extra"]["code"] == "muted"
    # Others still speak, and once unmuted so does the member.
    assert (await t.owner.post(f"/api/rooms/{t.room}/messages", {"body": "hi"})).status_code == 201
    assert (await t.admin.post(t.path(f"/users/{t.member.user_id}/unmute"))).status_code == 200
    assert (await t.member.post(f"/api/rooms/{t.room}/messages", {"body": "back"})).status_code == 201
    bodies = [m["body"] for m in (await t.owner.get(f"/api/rooms/{t.room}/messages")).json()["items"]]
    assert bodies == ["hi", "back"]
