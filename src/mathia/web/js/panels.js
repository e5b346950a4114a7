// The context side: one tab per feature. Each tab probes its endpoint and stays hidden
// while the server answers 404, so features appear here as soon as the server has them.

import { api, probe } from "./api.js";
import { busy, dateTime, field, formData, h, mount, toast, uuid } from "./dom.js";

/** The list inside a response, whether it is a bare array or a page. */
function items(data) {
  if (Array.isArray(data)) return data;
  return data?.items ?? data?.lines ?? data?.data ?? [];
}

function isAdmin(workspace) {
  return workspace?.role === "owner" || workspace?.role === "admin";
}

/** A button that runs `work`, shows its error as a toast and then reloads the panel. */
function action(label, work, reload, cls = "") {
  return h(`button.small${cls}`, {
    type: "button",
    onclick: async (event) => {
      event.target.disabled = true;
      try {
        await work();
      } catch (err) {
        toast(err.message, "error");
      }
      reload();
    },
  }, label);
}

function list(rows, empty) {
  return rows.length ? h("ul.rows", {}, rows) : h("p.muted", {}, empty);
}

const PANELS = [
  {
    id: "brain",
    title: "Brain",
    scope: "room",
    async load({ room }) {
      if (!room) return null;
      const [notes, documents] = await Promise.all([probe(`/api/rooms/${room.id}/notes`), probe(`/api/rooms/${room.id}/documents`)]);
      return notes || documents ? { notes, documents } : null;
    },
    render({ notes, documents }, { room }, reload) {
      const noteForm = h(
        "form.inline",
        {
          onsubmit: (event) => {
            event.preventDefault();
            busy(noteForm, async () => {
              await api("POST", `/api/rooms/${room.id}/notes`, { body: formData(noteForm).body });
              reload();
            });
          },
        },
        field("New note", { name: "body", required: true, rows: 2 }),
        h("button.small", { type: "submit" }, "Add note"),
      );
      const upload = h(
        "form.inline",
        {
          onsubmit: (event) => {
            event.preventDefault();
            const form = new FormData(upload);
            busy(upload, async () => {
              await api("POST", `/api/rooms/${room.id}/documents`, undefined, { form });
              reload();
            });
          },
        },
        field("Add a document (text, Markdown or PDF)", { name: "file", type: "file", required: true, accept: ".txt,.md,.pdf,text/plain,text/markdown,application/pdf" }),
        h("button.small", { type: "submit" }, "Upload"),
      );
      return [
        h("p.muted", {}, `What @mathia remembers about #${room.name}.`),
        notes && [
          h("h3", {}, "Notes"),
          list(
            items(notes).map((n) =>
              h("li", {}, h("p", {}, n.body), h("p.meta", {}, n.by_assistant ? "noted by Mathia" : "", n.priority && n.priority !== "normal" ? ` · ${n.priority}` : "", " ",
                action("Delete", () => api("DELETE", `/api/notes/${n.id}`), reload, ".link"))),
            ),
            "No notes yet. Ask @mathia to remember something, or add one.",
          ),
          noteForm,
        ],
        documents && [
          h("h3", {}, "Documents"),
          list(
            items(documents).map((d) =>
              h("li", {}, h("p", {}, d.name), h("p.meta", {}, `${Math.ceil((d.size_bytes ?? 0) / 1024)} KB `, action("Delete", () => api("DELETE", `/api/documents/${d.id}`), reload, ".link"))),
            ),
            "No documents yet.",
          ),
          upload,
        ],
      ];
    },
  },
  {
    id: "connectors",
    title: "Connectors",
    async load({ workspace }) {
      const [connectors, plugins] = await Promise.all([probe(`/api/workspaces/${workspace.id}/connectors`), probe("/api/plugins")]);
      if (!connectors) return null;
      // What each connector asks for (credentials, settings) comes from the plugin list.
      const specs = new Map((plugins ?? []).flatMap((p) => p.connectors).map((c) => [c.name, c]));
      return { connectors, specs };
    },
    render({ connectors, specs }, { workspace }, reload) {
      return list(
        items(connectors).map((c) => {
          const status = h(`span.pill.${c.enabled ? "ok" : "off"}`, {}, c.enabled ? "Connected" : "Not connected");
          let control = null;
          if (isAdmin(workspace)) {
            control = c.enabled
              ? action("Disconnect", () => setConnector(workspace, c.name, { enabled: false }), reload, ".link")
              : connectForm(workspace, c, specs.get(c.name), reload);
          }
          // Calendly is per person: each member links their own calendar (OAuth) once the workspace enabled it.
          const personal = c.name === "calendly" && c.enabled ? action("Connect my calendar", () => connectCalendly(workspace), reload, ".primary") : null;
          return h("li", {}, h("p", {}, h("strong", {}, c.name), " ", status), h("p.meta", {}, c.description), control, personal);
        }),
        "No connectors are installed.",
      );
    },
  },
  {
    id: "approvals",
    title: "Approvals",
    admin: true,
    load: ({ workspace }) => probe(`/api/workspaces/${workspace.id}/approvals`),
    render(data, _ctx, reload) {
      const pending = items(data).filter((a) => (a.status ?? "pending") === "pending");
      return list(
        pending.map((a) =>
          h("li", {}, h("p", {}, a.summary ?? `${a.connector}: ${a.action}`), h("p.meta", {}, a.expires_at ? `expires ${dateTime(a.expires_at)}` : ""),
            h("div.actions", {},
              action("Approve", () => api("POST", `/api/approvals/${a.id}/approve`), reload, ".primary"),
              action("Reject", () => api("POST", `/api/approvals/${a.id}/reject`), reload))),
        ),
        "Nothing is waiting for approval.",
      );
    },
  },
  {
    id: "wallet",
    title: "Wallet",
    async load({ workspace }) {
      const wallet = await probe(`/api/workspaces/${workspace.id}/wallet`);
      if (!wallet) return null;
      const statement = await probe(`/api/workspaces/${workspace.id}/wallet/statement`);
      return { wallet, statement };
    },
    render({ wallet, statement }, { workspace }, reload) {
      const topUp = h(
        "form.inline",
        {
          onsubmit: (event) => {
            event.preventDefault();
            busy(topUp, async () => {
              const { amount, reason } = formData(topUp);
              await api("POST", `/api/workspaces/${workspace.id}/wallet/adjustments`, { amount: Number(amount), reason, idempotency_key: uuid() });
              reload();
            });
          },
        },
        field("Credits", { name: "amount", type: "number", min: "1", step: "1", required: true }),
        field("Reason", { name: "reason", required: true, value: "Top-up" }),
        h("button.small.primary", { type: "submit" }, "Top up"),
      );
      return [
        h("p.balance", {}, h("span.muted", {}, "Balance "), h("strong", {}, Number(wallet.balance).toLocaleString()), " credits"),
        workspace.role === "owner" ? topUp : null,
        h("h3", {}, "Statement"),
        list(
          items(statement).map((l) =>
            h("li.line", {}, h("span", {}, l.memo ?? l.kind ?? l.reason ?? ""), h(`span.amount.${l.amount < 0 ? "neg" : "pos"}`, {}, `${l.amount > 0 ? "+" : ""}${l.amount.toLocaleString()}`),
              h("span.meta", {}, dateTime(l.created_at)))),
          "No movements yet.",
        ),
      ];
    },
  },
  {
    id: "reminders",
    title: "Reminders",
    load: () => probe("/api/reminders"),
    render(data, _ctx, reload) {
      const active = items(data).filter((r) => r.status === "pending");
      return [
        h("p.muted", {}, "Ask @mathia to remind you of something, e.g. “@mathia remind me to call Sam tomorrow at 9”."),
        list(
          active.map((r) => h("li", {}, h("p", {}, r.message), h("p.meta", {}, `${dateTime(r.due_at)} · ${r.status} `, action("Cancel", () => api("DELETE", `/api/reminders/${r.id}`), reload, ".link")))),
          "No upcoming reminders.",
        ),
      ];
    },
  },
  {
    id: "moderation",
    title: "Moderation",
    admin: true,
    load: ({ workspace }) => probe(`/api/workspaces/${workspace.id}/moderation/flags`),
    render(data, { workspace, names }, reload) {
      return list(
        items(data).map((f) =>
          h("li", {}, h("p", {}, `${names(f.user_id)}: ${f.reason}`), h("p.meta", {}, `${f.state} · ${dateTime(f.created_at)} `,
            action("Unmute", () => api("POST", `/api/workspaces/${workspace.id}/moderation/users/${f.user_id}/unmute`), reload, ".link"))),
        ),
        "No flagged messages.",
      );
    },
  },
];

/** Starts Calendly's OAuth (PKCE) for the signed-in member; Calendly sends the browser back to Mathia. */
async function connectCalendly(workspace) {
  const started = await api("POST", `/api/workspaces/${workspace.id}/actions/calendly__connect`, {});
  const url = started?.data?.authorize_url;
  if (!url) throw new Error(started?.text ?? "Calendly could not be reached");
  window.location.assign(url);
}

function setConnector(workspace, name, body) {
  return api("PUT", `/api/workspaces/${workspace.id}/connectors/${name}`, body);
}

/** Connect: a form with the connector's credentials and settings, or one button when it needs none. */
function connectForm(workspace, connector, spec, reload) {
  const fields = [...(spec?.credentials ?? []).map((f) => ({ ...f, secret: true })), ...(spec?.settings ?? [])];
  if (!fields.length) return action("Connect", () => setConnector(workspace, connector.name, { enabled: true }), reload, ".primary");
  const form = h(
    "form.stack",
    {
      onsubmit: (event) => {
        event.preventDefault();
        busy(form, async () => {
          const values = formData(form);
          const pick = (group) => Object.fromEntries((spec?.[group] ?? []).filter((f) => values[f.name]).map((f) => [f.name, values[f.name]]));
          await setConnector(workspace, connector.name, { enabled: true, credentials: pick("credentials"), settings: pick("settings") });
          toast(`${connector.name} connected`);
          reload();
        });
      },
    },
    fields.map((f) =>
      field(`${f.name}${f.required ? "" : " (optional)"}`, {
        name: f.name,
        type: f.secret ? "password" : "text",
        required: f.required,
        value: f.default ?? "",
        autocomplete: "off",
        title: f.description,
      }),
    ),
    h("button.small.primary", { type: "submit" }, "Connect"),
  );
  return h("details", {}, h("summary", {}, "Connect…"), form);
}

/** Which panel a notification concerns. */
const NOTIFIES = { reminder: "reminders", approval: "approvals", moderation: "moderation", connector: "connectors", wallet: "wallet" };

export class Panels {
  constructor({ tabs, body, names }) {
    this.tabs = tabs;
    this.body = body;
    this.names = names;
    this.ctx = {};
    this.data = new Map(); // panel id -> loaded data (null = not available)
    this.selected = "brain";
  }

  /** Reload the panels that depend on what changed (the workspace, or only the room). */
  async update(ctx) {
    const workspaceChanged = ctx.workspace?.id !== this.ctx.workspace?.id;
    this.ctx = { ...ctx, names: this.names };
    const stale = PANELS.filter((p) => workspaceChanged || p.scope === "room");
    await Promise.all(stale.map((p) => this.load(p)));
    this.draw();
  }

  async load(panel) {
    if (!this.ctx.workspace || (panel.admin && !isAdmin(this.ctx.workspace))) {
      this.data.set(panel.id, null);
      return;
    }
    try {
      this.data.set(panel.id, await panel.load(this.ctx));
    } catch (err) {
      this.data.set(panel.id, { error: err.message });
    }
  }

  async reload(id) {
    const panel = PANELS.find((p) => p.id === id);
    await this.load(panel);
    this.draw();
  }

  notify(kind) {
    const key = Object.keys(NOTIFIES).find((k) => String(kind).includes(k));
    if (key) this.reload(NOTIFIES[key]);
  }

  draw() {
    const available = PANELS.filter((p) => this.data.get(p.id));
    if (!available.some((p) => p.id === this.selected)) this.selected = available[0]?.id;
    mount(
      this.tabs,
      available.map((p) =>
        h("button.tab", {
          type: "button",
          role: "tab",
          id: `tab-${p.id}`,
          "aria-selected": String(p.id === this.selected),
          "aria-controls": "panel-body",
          onclick: () => {
            this.selected = p.id;
            this.draw();
          },
        }, p.title),
      ),
    );
    const panel = available.find((p) => p.id === this.selected);
    if (!panel) {
      mount(this.body, h("p.muted", {}, "Nothing to show here yet."));
      return;
    }
    const data = this.data.get(panel.id);
    this.body.setAttribute("aria-labelledby", `tab-${panel.id}`);
    mount(this.body, data.error ? h("p.form-error", { role: "alert" }, data.error) : panel.render(data, this.ctx, () => this.reload(panel.id)));
  }
}
