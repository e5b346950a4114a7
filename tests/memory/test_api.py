"""The memory HTTP API on both databases: onboarding, notes, documents, bad uploads, and an
adversarial pass where a second workspace (and a user in both) guesses ids."""

from __future__ import annotations

import httpx

from tests.client import Member, sign_up
from tests.memory.conftest import CORPUS
from tests.memory.pdf import make_pdf


async def upload(
    member: Member, path: str, name: str, data: bytes, content_type: str = "text/plain"
) -> httpx.Response:
    return await member.http.post(path, files={"file": (name, data, content_type)})


async def test_profile_and_goals_round_trip(memory_base_url: str) -> None:
    ada = await sign_up(memory_base_url, "Ada")
    assert (await ada.get("/api/me/profile")).json() == {
        "display_name": "Ada",
        "timezone": "UTC",
        "locale": "en",
        "role_title": "",
        "whatsapp": "",
    }
    put = await ada.http.put(
        "/api/me/profile",
        json={
            "display_name": "Ada L.",
            "timezone": "Africa/Nairobi",
            "locale": "sw-KE",
            "role_title": "Founder",
        },
    )
    assert put.status_code == 200, put.text
    assert (await ada.get("/api/me/profile")).json()["timezone"] == "Africa/Nairobi"
    assert (await ada.get("/api/me")).json()["display_name"] == "Ada L."
    partial = await ada.http.put("/api/me/profile", json={"role_title": "CEO"})
    assert partial.json() == {
        "display_name": "Ada L.",
        "timezone": "Africa/Nairobi",
        "locale": "sw-KE",
        "role_title": "CEO",
        "whatsapp": "",
    }

    bad_zone = await ada.http.put("/api/me/profile", json={"timezone": "Mars/Olympus"})
    assert bad_zone.status_code == 400 and "timezone" in bad_zone.json()["detail"]
    bad_field = await ada.http.put("/api/me/profile", json={"shoe_size": 9})
    assert bad_field.status_code == 400
    assert (await ada.get("/api/me/profile")).json()["timezone"] == "Africa/Nairobi"

    goals = {
        "summary": "Raise a seed round",
        "focus_areas": ["fundraising", "hiring"],
        "target_date": "2027-06-30",
        "answer_style": "concise",
    }
    assert (await ada.http.put("/api/me/goals", json=goals)).json() == goals
    assert (await ada.get("/api/me/goals")).json() == goals
    bad_style = await ada.http.put("/api/me/goals", json={**goals, "answer_style": "rambling"})
    assert bad_style.status_code == 400 and "answer_style" in bad_style.text
    assert (await ada.get("/api/me/goals")).json() == goals


async def test_notes_crud_and_permissions(memory_base_url: str) -> None:
    ada = await sign_up(memory_base_url, "Ada")
    bob = await sign_up(memory_base_url, "Bob")
    gus = await sign_up(memory_base_url, "Gus")
    workspace = await ada.workspace()
    await ada.invite(workspace, bob)
    await ada.invite(workspace, gus, role="guest")
    room = await ada.room(workspace)
    await bob.post(f"/api/rooms/{room}/join")
    await ada.post(f"/api/rooms/{room}/members", {"user_id": gus.user_id})

    created = await bob.post(
        f"/api/rooms/{room}/notes", {"body": "launch moved to May 3", "priority": "high"}
    )
    assert created.status_code == 201, created.text
    note = created.json()
    assert note["priority"] == "high" and note["author_id"] == bob.user_id and note["room_id"] == room
    assert [n["id"] for n in (await gus.get(f"/api/rooms/{room}/notes")).json()] == [note["id"]]

    assert (await gus.post(f"/api/rooms/{room}/notes", {"body": "guests only read"})).status_code == 403
    empty = await bob.post(f"/api/rooms/{room}/notes", {"body": "   "})
    assert empty.status_code == 400 and "body" in empty.text
    bad_priority = await bob.post(f"/api/rooms/{room}/notes", {"body": "x", "priority": "urgent"})
    assert bad_priority.status_code == 400 and "priority" in bad_priority.text

    # The author edits; another member may not; an admin (the owner) may.
    patched = await bob.http.patch(f"/api/notes/{note['id']}", json={"body": "launch moved to May 10"})
    assert patched.status_code == 200 and patched.json()["body"] == "launch moved to May 10"
    assert (await gus.http.patch(f"/api/notes/{note['id']}", json={"priority": "low"})).status_code == 403
    assert (await ada.http.patch(f"/api/notes/{note['id']}", json={"priority": "low"})).json()[
        "priority"
    ] == "low"
    assert (await gus.http.delete(f"/api/notes/{note['id']}")).status_code == 403
    assert (await bob.http.delete(f"/api/notes/{note['id']}")).status_code == 204
    assert (await bob.get(f"/api/rooms/{room}/notes")).json() == []
    assert (await bob.http.delete(f"/api/notes/{note['id']}")).status_code == 404


async def test_documents_upload_list_delete(memory_base_url: str) -> None:
    ada = await sign_up(memory_base_url, "Ada")
    bob = await sign_up(memory_base_url, "Bob")
    workspace = await ada.workspace()
    await ada.invite(workspace, bob)
    room = await ada.room(workspace)
    await bob.post(f"/api/rooms/{room}/join")

    faq = (CORPUS / "lakeside-apartments-faq.md").read_bytes()
    stored = await upload(bob, f"/api/rooms/{room}/documents", "faq.md", faq, "text/markdown")
    assert stored.status_code == 201, stored.text
    document = stored.json()
    assert document["content_type"] == "text/markdown" and document["chunk_count"] >= 6
    assert document["size_bytes"] == len(faq) and document["room_id"] == room
    again = await upload(bob, f"/api/rooms/{room}/documents", "copy.md", faq, "text/markdown")
    assert again.status_code == 409

    pdf = await upload(
        bob,
        f"/api/rooms/{room}/documents",
        "policy.pdf",
        make_pdf(["Refunds within 30 days", "Shipping takes a week"]),
        "application/pdf",
    )
    assert pdf.status_code == 201 and pdf.json()["chunk_count"] == 2
    listed = (await ada.get(f"/api/rooms/{room}/documents")).json()
    assert {d["name"] for d in listed} == {"faq.md", "policy.pdf"}

    # Workspace-wide documents: admins upload, members list.
    assert (await upload(bob, f"/api/workspaces/{workspace}/documents", "a.txt", b"hello")).status_code == 403
    wide = await upload(ada, f"/api/workspaces/{workspace}/documents", "handbook.txt", b"Holidays: 25 days.")
    assert wide.status_code == 201 and wide.json()["room_id"] is None
    assert [d["name"] for d in (await bob.get(f"/api/workspaces/{workspace}/documents")).json()] == [
        "handbook.txt"
    ]
    assert (await bob.http.delete(f"/api/documents/{wide.json()['id']}")).status_code == 403

    assert (await bob.http.delete(f"/api/documents/{document['id']}")).status_code == 204
    assert {d["name"] for d in (await ada.get(f"/api/rooms/{room}/documents")).json()} == {"policy.pdf"}
    assert (await ada.http.delete(f"/api/documents/{wide.json()['id']}")).status_code == 204


async def test_bad_uploads_get_clear_errors_and_store_nothing(memory_base_url: str) -> None:
    ada = await sign_up(memory_base_url, "Ada")
    workspace = await ada.workspace()
    room = await ada.room(workspace)
    path = f"/api/rooms/{room}/documents"
    cases = {
        "too large": (await upload(ada, path, "big.txt", b"word " * 20_000), 413, "limit"),
        "empty": (await upload(ada, path, "empty.txt", b""), 400, "empty"),
        "blank": (await upload(ada, path, "blank.md", b"\n\n   \n"), 400, "empty"),
        "binary junk": (await upload(ada, path, "junk.txt", bytes(range(256)) * 8), 400, "UTF-8"),
        "NUL-laden": (await upload(ada, path, "nul.txt", b"a\x00b\x00c" * 100), 400, "binary"),
        "malformed PDF": (await upload(ada, path, "broken.pdf", make_pdf(["cut short"])[:120]), 400, "PDF"),
        "PDF without text": (
            await upload(ada, path, "blank.pdf", make_pdf([""])),
            400,
            "no extractable text",
        ),
        "unknown type": (
            await upload(ada, path, "image.png", b"\x89PNG\r\n", "image/png"),
            400,
            "unsupported",
        ),
        "no file part": (await ada.http.post(path, files={"other": ("a.txt", b"x")}), 400, "missing"),
        "not multipart": (await ada.http.post(path, json={"file": "hello"}), 400, "multipart"),
    }
    for name, (response, status, words) in cases.items():
        assert response.status_code == status, (name, response.text)
        assert words in response.json()["detail"], (name, response.text)
        assert response.json()["detail"].startswith("file"), name
    assert (await ada.get(path)).json() == []


async def test_another_workspace_cannot_reach_notes_or_documents(memory_base_url: str) -> None:
    """Guessed ids from workspace A, tried by a stranger in B and by a user who is in both
    workspaces but not in A's private room: every answer is 404 and nothing changes."""
    ada = await sign_up(memory_base_url, "Ada")
    eve = await sign_up(memory_base_url, "Eve")
    sam = await sign_up(memory_base_url, "Sam")
    a = await ada.workspace("A")
    b = await eve.workspace("B")
    await ada.invite(a, sam)
    await eve.invite(b, sam)
    private = await ada.room(a, "board", private=True)
    public = await ada.room(a, "public")
    note = (await ada.post(f"/api/rooms/{private}/notes", {"body": "acquisition target is Initech"})).json()
    document = (await upload(ada, f"/api/rooms/{private}/documents", "deal.txt", b"Initech price: 4M")).json()
    wide = (await upload(ada, f"/api/workspaces/{a}/documents", "handbook.txt", b"A's handbook")).json()

    for intruder in (eve, sam):
        for method, path, body in [
            ("GET", f"/api/rooms/{private}/notes", None),
            ("POST", f"/api/rooms/{private}/notes", {"body": "planted"}),
            ("PATCH", f"/api/notes/{note['id']}", {"body": "tampered"}),
            ("DELETE", f"/api/notes/{note['id']}", None),
            ("GET", f"/api/rooms/{private}/documents", None),
            ("DELETE", f"/api/documents/{document['id']}", None),
        ]:
            response = await intruder.http.request(method, path, json=body)
            assert response.status_code == 404, (intruder.email, method, path, response.text)
        upload_try = await upload(intruder, f"/api/rooms/{private}/documents", "x.txt", b"planted")
        assert upload_try.status_code == 404
    # Eve is no member of A at all: its workspace documents are as absent as its rooms.
    assert (await eve.get(f"/api/workspaces/{a}/documents")).status_code == 404
    assert (await eve.http.delete(f"/api/documents/{wide['id']}")).status_code == 404
    assert (await eve.get(f"/api/rooms/{public}/notes")).status_code == 404
    # Sam may use A's public room, which shows none of the private room's notes.
    assert (await sam.get(f"/api/rooms/{public}/notes")).json() == []

    assert [n["body"] for n in (await ada.get(f"/api/rooms/{private}/notes")).json()] == [note["body"]]
    assert [d["id"] for d in (await ada.get(f"/api/rooms/{private}/documents")).json()] == [document["id"]]
