// Entry point: sign-in, onboarding, and the chat shell (workspaces, rooms, chat, panels).
// Routes live in the URL hash: #/w/<workspace>/<room>, and #/invite/<code> for invite links.

import { api, login, logout, onAuthChange, register, resume } from "./api.js";
import { Chat } from "./chat.js";
import { busy, field, formData, h, mount, toast } from "./dom.js";
import { acceptInvite, inviteForm, runWizard } from "./onboarding.js";
import { Panels } from "./panels.js";
import { Gateway } from "./socket.js";

const root = document.getElementById("app");
const INVITE_KEY = "mathia.pending_invite";
let session = null; // {user, gateway, chat, panels, workspaces, ...} while signed in

function route() {
  const [, kind, a, b] = location.hash.split("/");
  return { kind, a: a && decodeURIComponent(a), b: b && decodeURIComponent(b) };
}

function go(workspaceId, roomId) {
  const hash = `#/w/${workspaceId}${roomId ? `/${roomId}` : ""}`;
  if (location.hash !== hash) location.hash = hash;
  else show();
}

function rememberInvite() {
  const { kind, a } = route();
  if (kind === "invite" && a) sessionStorage.setItem(INVITE_KEY, a);
}

// ---- signed out ----

function showAuth(mode = "login") {
  stopSession();
  const registering = mode === "register";
  const invited = sessionStorage.getItem(INVITE_KEY);
  const form = h(
    "form.stack",
    {
      onsubmit: (event) => {
        event.preventDefault();
        busy(form, async () => {
          const values = formData(form);
          const user = registering ? await register(values) : await login(values);
          await enter(user, { fresh: registering });
        });
      },
    },
    registering ? field("Your name", { name: "display_name", required: true, maxlength: 100, autocomplete: "name" }) : null,
    field("Email", { name: "email", type: "email", required: true, autocomplete: "email" }),
    field(registering ? "Password (at least 8 characters)" : "Password", {
      name: "password",
      type: "password",
      required: true,
      minlength: registering ? 8 : null,
      autocomplete: registering ? "new-password" : "current-password",
    }),
    h("button.primary", { type: "submit" }, registering ? "Create account" : "Sign in"),
  );
  mount(
    root,
    h(
      "section.card.auth",
      { "aria-labelledby": "auth-title" },
      h("h1", { id: "auth-title" }, registering ? "Create your Mathia account" : "Sign in to Mathia"),
      invited ? h("p.notice", {}, "You have been invited to a workspace. Sign in or create an account to join it.") : null,
      form,
      h("p", {}, registering ? "Already have an account? " : "New here? ",
        h("button.link", { type: "button", onclick: () => showAuth(registering ? "login" : "register") }, registering ? "Sign in" : "Create an account")),
    ),
  );
  root.removeAttribute("aria-busy");
  form.querySelector("input").focus();
}

// ---- signed in ----

async function enter(user, { fresh = false } = {}) {
  let joined = null;
  const code = sessionStorage.getItem(INVITE_KEY);
  if (code) {
    sessionStorage.removeItem(INVITE_KEY);
    try {
      const m = await acceptInvite(code);
      joined = { id: m.workspace_id, name: m.workspace_name, role: m.role };
      toast(`You joined ${m.workspace_name}`);
    } catch (err) {
      toast(`The invite could not be used: ${err.message}`, "error", 10_000);
    }
  }
  let workspaces = await api("GET", "/api/workspaces");
  let open = joined?.id;
  if (fresh || !workspaces.length) {
    open = (await runWizard(root, user, { personal: fresh, joined })) ?? open;
    workspaces = await api("GET", "/api/workspaces");
  }
  await startSession(user, workspaces);
  const target = open ?? workspaces[0]?.id;
  if (target && (open || route().kind !== "w")) go(target);
  else show();
}

async function startSession(user, workspaces) {
  stopSession();
  const gateway = new Gateway();
  const shell = buildShell(user);
  session = { user, gateway, workspaces, ...shell };
  session.chat = new Chat({ el: shell.chatEl, gateway, me: user, onChange: drawNav });
  session.panels = new Panels({ tabs: shell.tabsEl, body: shell.panelEl, names: (id) => session.chat.name(id) });
  let connectedOnce = false;
  gateway.on("state", (state) => {
    shell.statusEl.dataset.state = state;
    shell.statusEl.textContent = { online: "Connected", connecting: connectedOnce ? "Reconnecting…" : "Connecting…", offline: "Offline" }[state];
    connectedOnce ||= state === "online";
  });
  gateway.on("notification", (frame) => session.panels.notify(frame.kind));
  gateway.start();
  await Promise.all(workspaces.map((w) => session.chat.loadWorkspace(w.id)));
}

function stopSession() {
  if (!session) return;
  session.gateway.stop();
  session = null;
}

function buildShell(user) {
  const statusEl = h("span.status", { role: "status", "data-state": "connecting" }, "Connecting…");
  const nav = { workspaces: h("ul.list"), rooms: h("ul.list"), roomTools: h("div"), workspaceId: undefined };
  const navEl = h(
    "nav.sidebar",
    { id: "sidebar", "aria-label": "Workspaces and rooms" },
    h("h2", {}, "Workspaces"),
    nav.workspaces,
    h("button.link", { type: "button", onclick: () => newWorkspace() }, "+ New workspace"),
    nav.roomTools,
  );
  const chatEl = h("main.chat", { id: "chat" });
  const tabsEl = h("div.tabs", { role: "tablist", "aria-label": "Context" });
  const panelEl = h("div.panel-body", { id: "panel-body", role: "tabpanel" });
  const panelsEl = h("aside.panels", { id: "panels", "aria-label": "Context panel" }, tabsEl, panelEl);
  const toggle = (name) => (event) => {
    const open = shellEl.dataset.drawer === name ? "" : name;
    shellEl.dataset.drawer = open;
    event.currentTarget.setAttribute("aria-expanded", String(!!open));
  };
  const shellEl = h(
    "div.shell",
    { dataset: { drawer: "" } },
    h(
      "header.topbar",
      {},
      h("button.icon.nav-toggle", { type: "button", "aria-controls": "sidebar", "aria-expanded": "false", "aria-label": "Rooms", onclick: toggle("nav") }, "☰"),
      h("span.brand", {}, "Mathia"),
      statusEl,
      h("span.spacer"),
      h("button.icon.panel-toggle", { type: "button", "aria-controls": "panels", "aria-expanded": "false", onclick: toggle("panels") }, "Context"),
      h("span.me", {}, user.display_name),
      h("button.link", { type: "button", onclick: () => logout() }, "Sign out"),
    ),
    navEl,
    chatEl,
    panelsEl,
  );
  mount(root, shellEl);
  root.removeAttribute("aria-busy");
  return { shellEl, statusEl, nav, navEl, chatEl, tabsEl, panelEl };
}

function activeWorkspace() {
  return session?.workspaces.find((w) => w.id === route().a) ?? null;
}

/** Draw the workspace and room lists with their unread counts. */
function drawNav() {
  if (!session) return;
  const { chat, nav } = session;
  const workspace = activeWorkspace();
  const badge = (n) => (n && n !== "0" ? h("span.badge", { "aria-label": `${n} unread` }, String(n)) : null);
  const unreadIn = (w) => chat.roomsOf(w.id).reduce((sum, r) => sum + (parseInt(r.unread(), 10) || 0), 0);
  mount(nav.workspaces, session.workspaces.map((w) =>
    h("li", {}, h("a", { href: `#/w/${w.id}`, "aria-current": w.id === workspace?.id ? "page" : null }, h("span", {}, w.name), badge(w.id === workspace?.id ? 0 : unreadIn(w))))));
  const rooms = workspace ? chat.roomsOf(workspace.id).sort((x, y) => x.room.name.localeCompare(y.room.name)) : [];
  mount(nav.rooms, rooms.map((r) =>
    h("li", {}, h(`a.room-link${r.joined ? "" : ".unjoined"}`, { href: `#/w/${workspace.id}/${r.id}`, "aria-current": r.id === chat.active?.id ? "page" : null },
      h("span", {}, r.room.private ? "🔒 " : "# ", r.room.name), r.joined ? badge(r.unread()) : h("span.muted", {}, "join")))));
  // The forms below keep what is typed in them, so they are rebuilt only for another workspace.
  if (nav.workspaceId === workspace?.id) return;
  nav.workspaceId = workspace?.id;
  mount(nav.roomTools, workspace ? roomTools(workspace) : null);
}

function roomTools(workspace) {
  const form = h(
    "form.inline.new-room",
    {
      onsubmit: (event) => {
        event.preventDefault();
        busy(form, async () => {
          const state = await session.chat.createRoom(workspace.id, formData(form).name, form.elements.private.checked);
          form.reset();
          go(workspace.id, state.id);
        });
      },
    },
    field("New room", { name: "name", required: true, maxlength: 100, placeholder: "general" }),
    h("label.check", {}, h("input", { type: "checkbox", name: "private" }), " private"),
    h("button.small", { type: "submit" }, "Create"),
  );
  return [
    h("h2", {}, `Rooms in ${workspace.name}`),
    session.nav.rooms,
    form,
    workspace.role === "owner" || workspace.role === "admin"
      ? h("details.invite-box", {}, h("summary", {}, "Invite people"), inviteForm(workspace))
      : null,
  ];
}

function newWorkspace() {
  const form = h(
    "form.stack",
    {
      onsubmit: (event) => {
        event.preventDefault();
        busy(form, async () => {
          const w = await api("POST", "/api/workspaces", { name: formData(form).name });
          session.workspaces.push(w);
          await session.chat.loadWorkspace(w.id);
          go(w.id);
        });
      },
    },
    field("Workspace name", { name: "name", required: true, maxlength: 100 }),
    h("div.actions", {}, h("button.link", { type: "button", onclick: () => session.chat.render() }, "Cancel"), h("button.primary", { type: "submit" }, "Create workspace")),
  );
  mount(session.chatEl, h("section.card", {}, h("h2", {}, "New workspace"), form));
  form.querySelector("input").focus();
}

/** Show what the hash points at. */
async function show() {
  if (!session) return;
  const { kind, a, b } = route();
  if (kind === "invite" && a) {
    try {
      const m = await acceptInvite(a);
      if (!session.workspaces.some((w) => w.id === m.workspace_id)) {
        session.workspaces.push({ id: m.workspace_id, name: m.workspace_name, role: m.role });
        await session.chat.loadWorkspace(m.workspace_id);
      }
      toast(`You joined ${m.workspace_name}`);
      return go(m.workspace_id);
    } catch (err) {
      toast(`The invite could not be used: ${err.message}`, "error", 10_000);
    }
  }
  const workspace = activeWorkspace() ?? session.workspaces[0];
  if (!workspace) return;
  if (workspace.id !== a) return go(workspace.id);
  // Rooms made by others since the last look appear when the workspace is opened again.
  if (session.shownWorkspace !== workspace.id) {
    session.shownWorkspace = workspace.id;
    await session.chat.loadWorkspace(workspace.id).catch((err) => toast(err.message, "error"));
  }
  const rooms = session.chat.roomsOf(workspace.id);
  const room = rooms.find((r) => r.id === b) ?? null;
  if (!room && rooms.length) return go(workspace.id, (rooms.find((r) => r.joined) ?? rooms[0]).id);
  session.shellEl.dataset.drawer = "";
  session.chat.open(room?.id);
  drawNav();
  session.panels.update({ workspace, room: room?.room ?? null });
}

function keyboard(event) {
  if (!session) return;
  if (event.key === "Escape" && session.shellEl.dataset.drawer) {
    session.shellEl.dataset.drawer = "";
    return;
  }
  // Alt+↑ / Alt+↓ move between the rooms of the workspace.
  if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
    const links = [...session.navEl.querySelectorAll("a.room-link")];
    const index = links.findIndex((a) => a.getAttribute("aria-current") === "page");
    const next = links[index + (event.key === "ArrowDown" ? 1 : -1)];
    if (next) {
      event.preventDefault();
      location.hash = next.getAttribute("href");
    }
  }
}

onAuthChange((user) => {
  if (!user && session) {
    toast("You have been signed out.");
    showAuth();
  }
});
window.addEventListener("hashchange", () => (session ? show() : rememberInvite()));
document.addEventListener("keydown", keyboard);

async function boot() {
  rememberInvite();
  try {
    const user = await resume();
    if (user) await enter(user);
    else showAuth(sessionStorage.getItem(INVITE_KEY) ? "register" : "login");
  } catch (err) {
    mount(root, h("section.card", { role: "alert" }, h("h1", {}, "Mathia could not start"), h("p", {}, err.message), h("button.primary", { type: "button", onclick: boot }, "Try again")));
  }
}

boot();
