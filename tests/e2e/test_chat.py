"""Two people in two browsers: sign up, onboard, chat live, ask @mathia, reload, lose the socket.

One scenario, in order, because each step builds on the last (as it does for a real team).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from tests.e2e.conftest import ACCESS_TOKEN_TTL, App, Model
from tests.fakes.anthropic import Reply

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def email(name: str) -> str:
    return f"{name.lower()}-{secrets.token_hex(3)}@example.com"


def route_exists(app: App, path: str) -> bool:
    """An unauthenticated GET answers 401 on a route that exists, 404 on one that does not."""
    return httpx.get(app.url + path, timeout=5).status_code != 404


# Uncaught script errors per page: any at all fails the test.
page_errors: dict[Page, list[str]] = {}


async def new_page(
    browser: Browser, app: App, viewport: dict[str, int] = DESKTOP
) -> tuple[BrowserContext, Page]:
    # Reduced motion: drawers open at once, so screenshots never catch them half-way.
    context = await browser.new_context(viewport=viewport, base_url=app.url, reduced_motion="reduce")
    page = await context.new_page()
    errors = page_errors[page] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page


@dataclass
class Owner:
    """A user registered through the API, owning a workspace with one room, "general"."""

    address: str
    auth: dict[str, str]
    workspace: str
    room: str


async def owner_with_room(http: httpx.AsyncClient, name: str, workspace_name: str) -> Owner:
    address = email(name)
    answer = await http.post(
        "/api/auth/register", json={"email": address, "password": PASSWORD, "display_name": name}
    )
    auth = {"Authorization": f"Bearer {answer.raise_for_status().json()['access_token']}"}
    workspace = (await http.post("/api/workspaces", json={"name": workspace_name}, headers=auth)).json()["id"]
    room = await http.post(f"/api/workspaces/{workspace}/rooms", json={"name": "general"}, headers=auth)
    return Owner(address, auth, workspace, room.json()["id"])


async def signed_in(browser: Browser, app: App, address: str) -> tuple[BrowserContext, Page]:
    """A page signed in through the form, showing the user's "general" room."""
    ctx, page = await new_page(browser, app)
    await page.goto("/")
    await page.get_by_label("Email").fill(address)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="# general")).to_be_visible()
    return ctx, page


async def sign_up(page: Page, name: str, address: str) -> None:
    if await page.get_by_role("heading", name="Sign in to Mathia").is_visible():
        await page.get_by_role("button", name="Create an account").click()
    await expect(page.get_by_role("heading", name="Create your Mathia account")).to_be_visible()
    await page.get_by_label("Your name").fill(name)
    await page.get_by_label("Email").fill(address)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()


async def personal_steps(page: Page, app: App, role_title: str, screenshot: Path | None = None) -> None:
    """The profile and goals steps, when the server has them."""
    if route_exists(app, "/api/me/profile"):
        await expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
        await page.get_by_label("Role title").fill(role_title)
        if screenshot:
            await page.screenshot(path=screenshot)
        await page.get_by_role("button", name="Continue").click()
    if route_exists(app, "/api/me/goals"):
        await expect(page.get_by_role("heading", name="Your goals")).to_be_visible()
        await page.get_by_label("Summary").fill("Ship the launch on time")
        await page.get_by_role("button", name="Continue").click()


def room_link(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator("a.room-link", has_text=name)


def messages(page: Page):  # type: ignore[no-untyped-def]
    return page.locator(".messages article.msg")


async def eventually(check: Callable[[], bool], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.25)


async def send(page: Page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    await box.fill(text)
    await box.press("Enter")


async def test_two_people_chat_with_mathia(
    browser: Browser, app: App, model: Model, screenshots: Path
) -> None:
    ada_email, bob_email = email("Ada"), email("Bob")

    # --- Ada signs up and goes through the onboarding wizard ------------------------------
    ctx_a, ada = await new_page(browser, app)
    refreshes: list[int] = []
    # Every tab of Ada's browser: they share the stored refresh token.
    ctx_a.on(
        "response", lambda r: refreshes.append(r.status) if r.url.endswith("/api/auth/refresh") else None
    )
    await ada.goto("/")
    await expect(ada.get_by_role("heading", name="Sign in to Mathia")).to_be_visible()
    await ada.screenshot(path=screenshots / "sign-in.png")

    # A wrong password is answered in words, next to the form.
    await ada.get_by_label("Email").fill(ada_email)
    await ada.get_by_label("Password").fill("wrong password")
    await ada.get_by_role("button", name="Sign in").click()
    await expect(ada.get_by_role("alert")).to_contain_text(re.compile(r"\w+ \w+"))

    await sign_up(ada, "Ada", ada_email)
    await personal_steps(ada, app, "Engineering lead", screenshots / "onboarding-profile.png")
    await expect(ada.get_by_role("heading", name="Your first workspace")).to_be_visible()
    await ada.get_by_label("Workspace name").fill("Acme")
    await ada.get_by_role("button", name="Create workspace").click()
    await expect(ada.get_by_role("heading", name="Invite colleagues")).to_be_visible()
    await ada.get_by_role("button", name="Create invite link").click()
    invite_link = await ada.locator("input.invite-link").input_value()
    assert re.fullmatch(rf"{re.escape(app.url)}/#/invite/\S+", invite_link)
    await ada.screenshot(path=screenshots / "onboarding-invite.png")
    await ada.get_by_role("button", name="Go to the workspace").click()

    # A new workspace has no rooms yet: Ada makes one.
    await ada.get_by_label("New room").fill("general")
    await ada.get_by_role("button", name="Create", exact=True).click()
    await expect(ada.get_by_role("heading", name="# general")).to_be_visible()
    await expect(ada.locator(".status")).to_have_text("Connected")

    # --- Bob follows the invite link, signs up and lands in Acme ---------------------------
    ctx_b, bob = await new_page(browser, app)
    # Bob's socket goes through this route, so the test can cut it later like a network would.
    cut = asyncio.Event()
    routes: list[WebSocketRoute] = []

    async def through(ws: WebSocketRoute) -> None:
        if cut.is_set():
            await ws.close(code=1011, reason="network down")
            return
        routes.append(ws)
        ws.connect_to_server()

    await ctx_b.route_web_socket(re.compile(r"/ws\?"), through)
    await bob.goto(invite_link)
    await expect(bob.get_by_text("You have been invited to a workspace")).to_be_visible()
    await sign_up(bob, "Bob", bob_email)
    await personal_steps(bob, app, "Designer")
    await expect(bob.locator("a[aria-current=page]", has_text="Acme")).to_be_visible()
    # general is public: Bob sees it and joins.
    await room_link(bob, "general").click()
    await bob.get_by_role("button", name="Join room").click()
    await expect(bob.get_by_label("Message", exact=True)).to_be_visible()

    # --- live chat: messages both ways, typing, presence -----------------------------------
    await expect(ada.locator(".presence")).to_contain_text("Bob")
    await bob.get_by_label("Message", exact=True).press_sequentially("Hi Ada", delay=30)
    await expect(ada.locator(".typing")).to_have_text("Bob is typing…")
    await bob.get_by_label("Message", exact=True).press("Enter")
    await expect(messages(ada).last).to_contain_text("Hi Ada")
    await expect(ada.locator(".typing")).to_have_text("")  # his message ends his typing
    await send(ada, "Hello Bob, welcome to Acme. The handbook: https://acme.example.com/handbook?v=2.")
    await expect(messages(bob).last).to_contain_text("Hello Bob, welcome to Acme")
    # An address in a message is a link that opens in a new tab; the full stop after it is text.
    link = messages(bob).last.locator("a")
    await expect(link).to_have_attribute("href", "https://acme.example.com/handbook?v=2")
    await expect(link).to_have_attribute("target", "_blank")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    # The sender's pending copy is replaced by the echo, not doubled.
    await expect(messages(ada).filter(has_text="Hello Bob")).to_have_count(1)
    await expect(messages(ada).filter(has_text="Hello Bob").locator(".note")).to_have_count(0)
    await expect(messages(bob).filter(has_text="Hello Bob")).to_have_count(1)

    # --- unread counts, and switching rooms without a round trip ---------------------------
    await ada.get_by_label("New room").fill("random")
    await ada.get_by_role("button", name="Create", exact=True).click()
    await expect(ada.get_by_role("heading", name="# random")).to_be_visible()
    await send(bob, "Ada, did you see the launch plan?")
    await expect(room_link(ada, "general").locator(".badge")).to_have_text("1")
    history_calls: list[str] = []
    ada.on("request", lambda r: history_calls.append(r.url) if "/messages" in r.url else None)
    await room_link(ada, "general").click()
    await expect(messages(ada).last).to_contain_text("did you see the launch plan?")
    await expect(room_link(ada, "general").locator(".badge")).to_have_count(0)
    assert history_calls == [], "switching rooms should use what the socket already delivered"

    # --- a reload keeps the session and the room -------------------------------------------
    await ada.reload()
    await expect(ada.get_by_role("heading", name="# general")).to_be_visible()
    # A second tab resumes the session from the same stored refresh token (and rotates it).
    ada_tab = await ctx_a.new_page()
    await ada_tab.goto("/")
    await expect(ada_tab.get_by_role("heading", name="# general")).to_be_visible()
    refreshes_with_two_tabs = refreshes.count(200)
    await expect(ada.get_by_role("heading", name="# general")).to_be_visible()
    await expect(messages(ada).filter(has_text="Hello Bob, welcome to Acme")).to_have_count(1)
    await expect(ada.locator(".status")).to_have_text("Connected")

    # --- Bob's socket drops; what Ada sends meanwhile appears once he is back --------------
    cut.set()
    for ws in routes:
        await ws.close(code=1011, reason="network down")
    await expect(bob.locator(".status")).to_have_text("Reconnecting…")
    await send(ada, "Sent while Bob was offline (1)")
    await send(ada, "Sent while Bob was offline (2)")
    await expect(messages(ada).last).to_contain_text("offline (2)")
    cut.clear()
    await expect(bob.locator(".status")).to_have_text("Connected", timeout=20_000)
    bobs_sockets, reconnected_at = len(routes), asyncio.get_running_loop().time()
    await expect(messages(bob).filter(has_text="Sent while Bob was offline")).to_have_count(2)
    await expect(messages(bob).last).to_contain_text("offline (2)")

    # --- access tokens expire during the run and are refreshed, unnoticed -----------------
    # Each tab's timer refreshes before expiry, one tab at a time: presenting a refresh token
    # the other tab already spent would revoke the session (401) and sign Ada out.
    before = refreshes_with_two_tabs
    await eventually(lambda: refreshes.count(200) >= before + 2, ACCESS_TOKEN_TTL + 10)
    assert 401 not in refreshes
    # The server closes a socket when the token it opened with expires, unless the client
    # sends the refreshed one over it: Bob's socket outlives its first token.
    await asyncio.sleep(max(0, reconnected_at + ACCESS_TOKEN_TTL + 3 - asyncio.get_running_loop().time()))
    assert len(routes) == bobs_sockets
    await expect(bob.locator(".status")).to_have_text("Connected")
    await send(ada, "Still here after a token refresh")
    await expect(messages(bob).last).to_contain_text("Still here after a token refresh")
    await expect(messages(ada_tab).last).to_contain_text("Still here after a token refresh")
    await ada_tab.close()

    # --- @mathia streams its answer, with a stop button while it writes --------------------
    await send(bob, "@mathia what is two plus two?")
    streaming = ada.locator("article.msg.streaming")
    await expect(streaming).to_be_visible()
    await expect(streaming.get_by_role("button", name="Stop")).to_be_visible()
    await expect(ada.locator("article.msg.assistant:not(.streaming)").last).to_have_text(
        re.compile(r"Four, since two plus two is four\."), timeout=15_000
    )
    await expect(streaming).to_have_count(0)
    await expect(messages(bob).last).to_contain_text("Four, since two plus two is four.")
    assert any("two plus two" in str(body) for body in model.fake.requests), "the question reached the model"
    await ada.screenshot(path=screenshots / "chat.png")

    # Stop: a long, slow answer is cut short from the browser.
    # As the default answer, not a scripted one: the moderation worker's batch calls to the same
    # model would take a scripted answer first whenever they happen to come in between.
    quick = model.fake.default
    model.fake.default = Reply.long(words=200, pace=0.1)
    await send(ada, "@mathia tell me a long story")
    await expect(bob.locator("article.msg.streaming .body")).to_contain_text("word")  # it has begun
    await bob.locator("article.msg.streaming").get_by_role("button", name="Stop").click()
    await expect(bob.locator("article.msg.streaming")).to_have_count(0, timeout=10_000)
    # What was written is kept, marked incomplete, and the model's stream was hung up on.
    stopped = bob.locator("article.msg.assistant").last
    await expect(stopped).to_contain_text("[incomplete]")
    assert len((await stopped.locator(".body").inner_text()).split()) < 200
    story = next(e for e in reversed(model.fake.exchanges) if "long story" in str(e.body["messages"]))
    await eventually(lambda: story.disconnected, 10)
    model.fake.default = quick
    await expect(bob.locator(".toast.error")).to_have_count(0)  # a stop is not an error

    # --- the context panel: the room's notes (the brain) and the wallet ---------------------
    if route_exists(app, f"/api/rooms/{uuid.uuid4()}/notes"):
        await ada.get_by_role("tab", name="Brain").click()
        await ada.get_by_label("New note").fill("The launch is on Friday")
        await ada.get_by_role("button", name="Add note").click()
        await expect(ada.locator("#panel-body")).to_contain_text("The launch is on Friday")
    if route_exists(app, f"/api/workspaces/{uuid.uuid4()}/wallet"):
        await ada.get_by_role("tab", name="Wallet").click()
        await expect(ada.locator(".balance")).to_contain_text("credits")
    await ada.get_by_role("tab", name="Brain").click()
    await ada.screenshot(path=screenshots / "context-panel.png")

    assert page_errors[ada] == [] and page_errors[bob] == []
    await ctx_a.close()
    await ctx_b.close()


async def test_phone_width_and_keyboard(browser: Browser, app: App, screenshots: Path) -> None:
    async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
        cleo = await owner_with_room(http, "Cleo", "Studio")
        extra = await http.post(
            f"/api/workspaces/{cleo.workspace}/rooms", json={"name": "random"}, headers=cleo.auth
        )
        extra.raise_for_status()
    address = cleo.address

    ctx, phone = await new_page(browser, app, PHONE)
    await phone.goto("/")
    # Keyboard only: type, Tab to the next field, Enter submits.
    await phone.get_by_label("Email").focus()
    await phone.keyboard.type(address)
    await phone.keyboard.press("Tab")
    await phone.keyboard.type(PASSWORD)
    await phone.keyboard.press("Enter")
    await expect(phone.get_by_role("heading", name="# general")).to_be_visible()
    await expect(phone.locator("#sidebar")).to_be_hidden()
    await phone.get_by_role("button", name="Rooms").click()
    await expect(phone.locator("#sidebar")).to_be_visible()
    await phone.screenshot(path=screenshots / "phone-rooms.png")
    await phone.keyboard.press("Escape")
    await expect(phone.locator("#sidebar")).to_be_hidden()
    await phone.get_by_label("Message", exact=True).focus()
    await phone.keyboard.press("Alt+ArrowDown")  # the next room
    await expect(phone.get_by_role("heading", name="# random")).to_be_visible()
    await phone.keyboard.type("Typed on a phone")
    await phone.keyboard.press("Enter")
    await expect(messages(phone).last).to_contain_text("Typed on a phone")
    await expect(messages(phone).last).not_to_have_class(re.compile("pending"))
    await phone.screenshot(path=screenshots / "phone-chat.png")
    await phone.keyboard.press("Alt+ArrowUp")
    await expect(phone.get_by_role("heading", name="# general")).to_be_visible()
    # Nothing is wider than the phone.
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Signing out forgets the session, also across a reload.
    await phone.get_by_role("button", name="Sign out").click()
    await expect(phone.get_by_role("heading", name="Sign in to Mathia")).to_be_visible()
    await phone.reload()
    await expect(phone.get_by_role("heading", name="Sign in to Mathia")).to_be_visible()
    assert await phone.evaluate("Object.keys(localStorage).filter((k) => k.includes('token'))") == []
    assert page_errors[phone] == []
    await ctx.close()


async def test_side_panels(browser: Browser, app: App, screenshots: Path) -> None:
    """Wallet top-up, reminders and connectors, through the browser, for a workspace owner."""
    async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
        dana = await owner_with_room(http, "Dana", "Ops")
        reminder = await http.post(
            "/api/reminders", json={"text": "call Sam tomorrow at 9am"}, headers=dana.auth
        )
        assert reminder.status_code == 201, reminder.text

    ctx, page = await signed_in(browser, app, dana.address)
    body = page.locator("#panel-body")

    # The owner tops up the wallet; the balance and the statement follow.
    await page.get_by_role("tab", name="Wallet").click()
    before = int(re.sub(r"\D", "", await page.locator(".balance strong").inner_text()))
    await page.get_by_label("Credits").fill("250")
    await page.get_by_label("Reason").fill("Welcome credits")
    await page.get_by_role("button", name="Top up").click()
    await expect(page.locator(".balance strong")).to_have_text(f"{before + 250:,}")
    await expect(body.locator("li", has_text="Welcome credits")).to_contain_text("+250")
    await page.screenshot(path=screenshots / "wallet.png")

    # A bad amount is refused in words, and changes nothing.
    await page.get_by_label("Credits").fill("0")
    await page.get_by_label("Credits").evaluate("(el) => el.removeAttribute('min')")
    await page.get_by_role("button", name="Top up").click()
    await expect(body.locator(".form-error")).not_to_be_empty()
    await expect(page.locator(".balance strong")).to_have_text(f"{before + 250:,}")

    # A document added to the room's brain is listed there.
    await page.get_by_role("tab", name="Brain").click()
    await page.get_by_label("Add a document").set_input_files(
        files=[
            {
                "name": "runbook.md",
                "mimeType": "text/markdown",
                "buffer": b"# Runbook\n\nRestart the queue first.",
            }
        ]
    )
    await page.get_by_role("button", name="Upload").click()
    await expect(body.locator("li", has_text="runbook.md")).to_be_visible()

    # The reminder made over the API is listed, and cancelled from here.
    await page.get_by_role("tab", name="Reminders").click()
    await expect(body).to_contain_text("call Sam")
    await body.get_by_role("button", name="Cancel").click()
    await expect(body).to_contain_text("No upcoming reminders.")

    # Installed connectors are listed with their state; the owner can connect one.
    await page.get_by_role("tab", name="Connectors").click()
    connectors = body.locator("li")
    await expect(connectors.first).to_be_visible()
    off = connectors.filter(has_text="Not connected").first
    name = await off.locator("strong").inner_text()
    connect = off.get_by_text(re.compile(r"^Connect"))
    await connect.first.click()
    # Connectors that need credentials ask for them first.
    for secret in await off.locator("input").all():
        await secret.fill("e2e-test-value")
    if await off.locator("form").count():
        await off.locator("form").get_by_role("button", name="Connect").click()
    await expect(connectors.filter(has_text=name)).to_contain_text("Connected")
    await expect(page.get_by_role("tab", name="Approvals")).to_be_visible()
    assert page_errors[page] == []
    await ctx.close()


async def test_a_member_connects_their_calendly(browser: Browser, app: App) -> None:
    """The Connectors panel's "Connect my calendar" runs Calendly's OAuth (PKCE) for the member."""
    from mathia_calendly.fake import FakeCalendly

    from mathia.connectors.testing import serve

    fake = FakeCalendly()
    with serve(fake.app()) as calendly_url:
        async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
            cal = await owner_with_room(http, "Cal", "Sales")
            auth, workspace = cal.auth, cal.workspace
            settings = {
                "client_id": fake.client_id,
                "public_url": app.url,
                "auth_base": calendly_url,
                "api_base": calendly_url,
            }
            enabled = await http.put(
                f"/api/workspaces/{workspace}/connectors/calendly",
                headers=auth,
                json={
                    "enabled": True,
                    "credentials": {"client_secret": fake.client_secret},
                    "settings": settings,
                },
            )
            assert enabled.status_code == 200, enabled.text

            ctx, page = await signed_in(browser, app, cal.address)
            await page.get_by_role("tab", name="Connectors").click()
            await page.get_by_role("button", name="Connect my calendar").click()
            # The browser goes to Calendly's consent page; the fake stands in for the member's consent.
            await page.wait_for_url(re.compile(re.escape(calendly_url) + r"/oauth/authorize\?"))
            query = dict(httpx.URL(page.url).params)
            code = fake.authorize(query["redirect_uri"], query["code_challenge"])
            await page.goto(
                str(httpx.URL(query["redirect_uri"], params={"code": code, "state": query["state"]}))
            )
            free = await http.post(
                f"/api/workspaces/{workspace}/actions/calendly__free_times", json={}, headers=auth
            )
            assert free.json()["text"].startswith("Free for"), free.text
            assert page_errors[page] == []
            await ctx.close()


async def test_a_muted_member_sees_until_when(browser: Browser, app: App) -> None:
    """Abuse flagged by the in-process moderation worker mutes the sender, who is told in the page."""
    async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
        max_ = await owner_with_room(http, "Max", "Forum")
        auth, room = max_.auth, max_.room
        ctx, page = await signed_in(browser, app, max_.address)
        for insult in ("you are a fucking idiot", "shut up you stupid bitch", "fuck off you worthless shit"):
            sent = await http.post(f"/api/rooms/{room}/messages", json={"body": insult}, headers=auth)
            assert sent.status_code == 201, sent.text
        # The default policy mutes after three flags; the worker judges a batch every few seconds.
        banner = page.locator(".banner").filter(has_text="muted in this workspace until")
        await expect(banner).to_be_visible(timeout=60_000)
        await expect(page.get_by_text("You was muted")).to_have_count(0)
        refused = await http.post(f"/api/rooms/{room}/messages", json={"body": "sorry"}, headers=auth)
        assert refused.status_code == 403
        assert refused.json()["extra"]["code"] == "muted"
        assert page_errors[page] == []
        await ctx.close()


async def test_an_admin_approves_a_pending_top_up(browser: Browser, app: App) -> None:
    """A member's "top up" waits in the admin's Approvals panel; approving it asks the payer."""
    from mathia_payments.fake import FakeIntaSend

    from mathia.connectors.testing import serve

    fake = FakeIntaSend()
    with serve(fake.app()) as intasend_url:
        async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
            ann = await owner_with_room(http, "Ann", "Shop")
            owner, workspace = ann.auth, ann.workspace
            credentials = {
                "intasend_secret_key": fake.secret_key,
                "intasend_public_key": fake.public_key,
                "intasend_challenge": fake.challenge,
            }
            enabled = await http.put(
                f"/api/workspaces/{workspace}/connectors/payments",
                headers=owner,
                json={
                    "enabled": True,
                    "credentials": credentials,
                    "settings": {"intasend_base_url": intasend_url},
                },
            )
            assert enabled.status_code == 200, enabled.text
            asked = await http.post(
                f"/api/workspaces/{workspace}/actions/payments__top_up",
                headers=owner,
                json={"arguments": {"amount": 300, "phone": "254712345678"}},
            )
            assert asked.json()["status"] == "pending_approval", asked.text

            ctx, page = await signed_in(browser, app, ann.address)
            await page.get_by_role("tab", name="Approvals").click()
            body = page.locator("#panel-body")
            await expect(body).to_contain_text("amount=300")
            await body.get_by_role("button", name="Approve").click()
            await expect(body).to_contain_text("Nothing is waiting for approval.")
            assert [i["value"] for i in fake.invoices.values()] == ["300.00"]
            assert page_errors[page] == []
            await ctx.close()
