"""Workspaces, invites, rooms and the walls between tenants (HTTP)."""

from __future__ import annotations

import uuid

from tests.client import sign_up


async def test_invites_members_and_roles(base_url: str) -> None:
    owner, bob, guest = (
        await sign_up(base_url, "Owner"),
        await sign_up(base_url, "Bob"),
        await sign_up(base_url, "Gus"),
    )
    workspace = await owner.workspace()
    await owner.invite(workspace, bob, "member")
    await owner.invite(workspace, guest, "guest")
    members = (await owner.get(f"/api/workspaces/{workspace}/members")).json()
    assert sorted((m["display_name"], m["role"]) for m in members) == [
        ("Bob", "member"),
        ("Gus", "guest"),
        ("Owner", "owner"),
    ]
    # Members cannot invite; owners cannot hand out ownership through an invite.
    assert (await bob.post(f"/api/workspaces/{workspace}/invites", {"role": "member"})).status_code == 403
    assert (await owner.post(f"/api/workspaces/{workspace}/invites", {"role": "owner"})).status_code == 400
    assert (await bob.get("/api/workspaces")).json()[0]["role"] == "member"


async def test_unknown_or_expired_invite(base_url: str, app_settings: object) -> None:
    bob = await sign_up(base_url)
    response = await bob.post("/api/invites/not-a-real-code/accept")
    assert response.status_code == 404
    assert "invite" in response.json()["detail"]


async def test_guests_see_only_rooms_they_were_added_to(base_url: str) -> None:
    owner, guest = await sign_up(base_url, "Owner"), await sign_up(base_url, "Gus")
    workspace = await owner.workspace()
    await owner.invite(workspace, guest, "guest")
    public, private = (
        await owner.room(workspace, "public"),
        await owner.room(workspace, "secret", private=True),
    )
    assert (await guest.get(f"/api/workspaces/{workspace}/rooms")).json() == []
    assert (await guest.post(f"/api/rooms/{public}/join")).status_code == 404
    assert (await guest.get(f"/api/rooms/{public}/messages")).status_code == 404
    assert (await guest.post(f"/api/workspaces/{workspace}/rooms", {"name": "mine"})).status_code == 403
    assert (await owner.post(f"/api/rooms/{private}/members", {"user_id": guest.user_id})).status_code == 201
    assert [r["id"] for r in (await guest.get(f"/api/workspaces/{workspace}/rooms")).json()] == [private]


async def test_private_rooms_and_joining(base_url: str) -> None:
    owner, bob = await sign_up(base_url, "Owner"), await sign_up(base_url, "Bob")
    workspace = await owner.workspace()
    await owner.invite(workspace, bob)
    public, private = (
        await owner.room(workspace, "public"),
        await owner.room(workspace, "secret", private=True),
    )
    listed = {r["id"]: r["member"] for r in (await bob.get(f"/api/workspaces/{workspace}/rooms")).json()}
    assert listed == {public: False}
    assert (await bob.post(f"/api/rooms/{private}/join")).status_code == 404
    assert (await bob.post(f"/api/rooms/{public}/join")).status_code == 200
    assert (await bob.post(f"/api/rooms/{private}/members", {"user_id": bob.user_id})).status_code == 404


async def test_another_workspaces_ids_answer_404(base_url: str) -> None:
    alice, mallory = await sign_up(base_url, "Alice"), await sign_up(base_url, "Mallory")
    theirs = await alice.workspace("Alice Inc")
    room = await alice.room(theirs)
    assert (await alice.post(f"/api/rooms/{room}/messages", {"body": "secret plans"})).status_code == 201
    own = await mallory.workspace("Mallory Ltd")
    attacks = [
        await mallory.get(f"/api/workspaces/{theirs}/members"),
        await mallory.get(f"/api/workspaces/{theirs}/rooms"),
        await mallory.post(f"/api/workspaces/{theirs}/rooms", {"name": "mine now"}),
        await mallory.post(f"/api/workspaces/{theirs}/invites", {"role": "admin"}),
        await mallory.get(f"/api/rooms/{room}/messages"),
        await mallory.post(f"/api/rooms/{room}/messages", {"body": "hi"}),
        await mallory.post(f"/api/rooms/{room}/join"),
        await mallory.post(f"/api/rooms/{room}/members", {"user_id": mallory.user_id}),
        await mallory.get(f"/api/workspaces/{uuid.uuid4()}/rooms"),
    ]
    assert [a.status_code for a in attacks] == [404] * len(attacks)
    assert all("secret plans" not in a.text for a in attacks)
    # Adding a member of another workspace to one's own room is refused too.
    my_room = await mallory.room(own)
    assert (
        await mallory.post(f"/api/rooms/{my_room}/members", {"user_id": alice.user_id})
    ).status_code == 404
    assert len((await alice.get(f"/api/rooms/{room}/messages")).json()["items"]) == 1


async def test_messages_pagination_and_limits(base_url: str, app_settings: object) -> None:
    owner = await sign_up(base_url)
    room = await owner.room(await owner.workspace())
    for i in range(5):
        assert (await owner.post(f"/api/rooms/{room}/messages", {"body": f"m{i}"})).status_code == 201
    newest = (await owner.get(f"/api/rooms/{room}/messages", limit=2)).json()
    assert [m["body"] for m in newest["items"]] == ["m3", "m4"]
    assert newest["has_more"] is True
    older = (await owner.get(f"/api/rooms/{room}/messages", limit=2, before=newest["items"][0]["seq"])).json()
    assert [m["seq"] for m in older["items"]] == [2, 3]
    after = (await owner.get(f"/api/rooms/{room}/messages", after=3)).json()
    assert [m["seq"] for m in after["items"]] == [4, 5]
    assert after["has_more"] is False
    assert (await owner.get(f"/api/rooms/{room}/messages", limit=201)).status_code == 400
    too_big = await owner.post(f"/api/rooms/{room}/messages", {"body": "x" * 8193})
    empty = await owner.post(f"/api/rooms/{room}/messages", {"body": "   "})
    assert too_big.status_code == 413
    assert empty.status_code == 400
    assert (await owner.get(f"/api/rooms/{room}/messages")).json()["items"][-1]["seq"] == 5


async def test_client_id_makes_sends_idempotent(base_url: str) -> None:
    owner = await sign_up(base_url)
    room = await owner.room(await owner.workspace())
    first = (await owner.post(f"/api/rooms/{room}/messages", {"body": "once", "client_id": "c-1"})).json()
    again = (await owner.post(f"/api/rooms/{room}/messages", {"body": "once", "client_id": "c-1"})).json()
    assert first == again
    assert len((await owner.get(f"/api/rooms/{room}/messages")).json()["items"]) == 1
