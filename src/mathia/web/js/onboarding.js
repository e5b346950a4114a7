// The onboarding wizard: profile, goals, first workspace, invite colleagues.
// Profile and goals are edited generically from what the server returns, so the wizard
// follows their schema as it grows; a step whose endpoint does not exist yet is skipped.

import { api, probe } from "./api.js";
import { busy, field, formData, h, mount, toast } from "./dom.js";

const HIDDEN_KEYS = new Set(["id", "user_id", "tenant_id", "created_at", "updated_at"]);
const LONG_TEXT = /about|bio|description|goal|summary|notes?$/i;

function label(key) {
  const words = key.replaceAll("_", " ");
  return words[0].toUpperCase() + words.slice(1);
}

/** Inputs for the editable (flat) fields of a JSON object. */
function objectFields(data) {
  const fields = [];
  for (const [key, value] of Object.entries(data)) {
    if (HIDDEN_KEYS.has(key)) continue;
    if (Array.isArray(value) && value.every((v) => typeof v === "string")) {
      fields.push(field(`${label(key)} (comma-separated)`, { name: key, value: value.join(", ") }));
    } else if (typeof value === "boolean") {
      fields.push(h("div.field.check", {}, h("label", {}, h("input", { type: "checkbox", name: key, checked: value }), " ", label(key))));
    } else if (typeof value === "number") {
      fields.push(field(label(key), { name: key, type: "number", value: String(value) }));
    } else if (value === null || typeof value === "string") {
      const long = LONG_TEXT.test(key) || (value ?? "").length > 80;
      const type = key.endsWith("_date") ? "date" : null;
      fields.push(field(label(key), { name: key, type, value: value ?? "", rows: long ? 3 : null }));
    }
  }
  return fields;
}

/** The form's values, typed like the original object. */
function objectValues(form, original) {
  const values = formData(form);
  const out = {};
  for (const [key, value] of Object.entries(original)) {
    if (HIDDEN_KEYS.has(key)) continue;
    if (Array.isArray(value)) out[key] = (values[key] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    else if (typeof value === "boolean") out[key] = form.elements[key].checked;
    else if (typeof value === "number") out[key] = Number(values[key]);
    else if (value === null || typeof value === "string") out[key] = values[key] === "" && value === null ? null : values[key];
  }
  return out;
}

/** An invite form for `workspace`: makes a code and shows a link to share. */
export function inviteForm(workspace) {
  const result = h("div.invite-result", { "aria-live": "polite" });
  const form = h(
    "form.stack",
    {
      onsubmit: (event) => {
        event.preventDefault();
        busy(form, async () => {
          const invite = await api("POST", `/api/workspaces/${workspace.id}/invites`, { role: formData(form).role });
          const link = `${location.origin}/#/invite/${invite.code}`;
          const copy = () => navigator.clipboard?.writeText(link).then(() => toast("Invite link copied"), () => {});
          result.prepend(
            h(
              "div.invite",
              {},
              h("p", {}, `Invite (${invite.role}), valid until ${new Date(invite.expires_at).toLocaleString()}:`),
              h("input.invite-link", { readonly: true, value: link, "aria-label": "Invite link", onfocus: (e) => e.target.select() }),
              h("p", {}, "Code: ", h("code.invite-code", {}, invite.code), " ", h("button.link", { type: "button", onclick: copy }, "Copy link")),
            ),
          );
        });
      },
    },
    h(
      "div.field",
      {},
      h("label", { for: "invite-role" }, "Role"),
      h("select", { id: "invite-role", name: "role" }, ["member", "guest", "admin"].map((r) => h("option", { value: r }, r))),
    ),
    h("button.primary", { type: "submit" }, "Create invite link"),
  );
  return h("div", {}, form, result);
}

/** The code from an invite link or a bare code. */
function inviteCode(text) {
  const match = /#\/invite\/([^/?#\s]+)/.exec(text);
  return (match ? match[1] : text).trim();
}

export async function acceptInvite(code) {
  return api("POST", `/api/invites/${encodeURIComponent(code)}/accept`);
}

/**
 * Run the wizard in `el`. `personal: false` skips profile and goals (a returning user with no
 * workspace); `joined` is a workspace already joined through an invite link, which replaces the
 * workspace step. Resolves to the workspace id to open, if one was made or joined.
 */
export async function runWizard(el, user, { personal = true, joined = null } = {}) {
  const [profile, goals] = personal ? await Promise.all([probe("/api/me/profile"), probe("/api/me/goals")]) : [null, null];
  const steps = [];
  let workspace = joined;
  if (profile) steps.push({ title: "Your profile", intro: "Tell your colleagues and @mathia who you are.", kind: "object", path: "/api/me/profile", data: profile });
  if (goals) steps.push({ title: "Your goals", intro: "What should @mathia help you with? It uses this to tailor its answers.", kind: "object", path: "/api/me/goals", data: goals });
  if (!joined) steps.push({ title: "Your first workspace", kind: "workspace" });
  steps.push({ title: "Invite colleagues", kind: "invite" });

  return new Promise((resolve) => {
    const show = (i) => {
      if (i >= steps.length) return resolve(workspace?.id ?? null);
      const step = steps[i];
      const next = () => show(i + 1);
      const progress = h("p.step", {}, `Step ${i + 1} of ${steps.length}`);
      const heading = h("h1", { tabindex: "-1" }, step.title);
      let body;
      if (step.kind === "object") body = objectStep(step, next);
      else if (step.kind === "workspace") body = workspaceStep((w) => ((workspace = w), next()));
      else body = workspace ? inviteStep(workspace, next) : (next(), null);
      if (!body) return;
      mount(el, h("section.card.wizard", { "aria-labelledby": "wizard-title" }, progress, heading, step.intro ? h("p", {}, step.intro) : null, body));
      heading.id = "wizard-title";
      heading.focus();
    };
    show(0);
  });
}

function objectStep(step, next) {
  const form = h(
    "form.stack",
    {
      onsubmit: (event) => {
        event.preventDefault();
        busy(form, async () => {
          await api("PUT", step.path, objectValues(form, step.data));
          next();
        });
      },
    },
    objectFields(step.data),
    h("div.actions", {}, h("button.link", { type: "button", onclick: next }, "Skip"), h("button.primary", { type: "submit" }, "Continue")),
  );
  return form;
}

function workspaceStep(done) {
  const create = h(
    "form.stack",
    {
      onsubmit: (event) => {
        event.preventDefault();
        busy(create, async () => done(await api("POST", "/api/workspaces", { name: formData(create).name })));
      },
    },
    field("Workspace name", { name: "name", required: true, maxlength: 100, placeholder: "Acme team" }),
    h("button.primary", { type: "submit" }, "Create workspace"),
  );
  const join = h(
    "form.stack",
    {
      onsubmit: (event) => {
        event.preventDefault();
        busy(join, async () => {
          const membership = await acceptInvite(inviteCode(formData(join).code));
          done({ id: membership.workspace_id, name: membership.workspace_name, role: membership.role });
        });
      },
    },
    field("Invite link or code", { name: "code", required: true }),
    h("button", { type: "submit" }, "Join workspace"),
  );
  return h("div.split", {}, h("div", {}, h("h2", {}, "Create one"), create), h("div", {}, h("h2", {}, "…or join with an invite"), join));
}

function inviteStep(workspace, next) {
  if (workspace.role !== "owner" && workspace.role !== "admin") {
    queueMicrotask(next);
    return h("p", {}, "Opening your workspace…");
  }
  return h(
    "div.stack",
    {},
    h("p", {}, `Invite people to ${workspace.name}. Share the link; they sign up and land in the workspace.`),
    inviteForm(workspace),
    h("div.actions", {}, h("button.primary", { type: "button", onclick: next }, "Go to the workspace")),
  );
}
