// Small DOM helpers. Text always goes in through textContent, never innerHTML, so message
// bodies and names from other users cannot inject markup.

/**
 * h("button.primary", {onclick, type: "submit"}, "Send") builds an element.
 * Attribute keys starting with "on" become listeners; `null`/`false` attributes are skipped.
 */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && (typeof value !== "string" || key === "value")) el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

/** Text with its web addresses as links that open in a new tab (a trailing full stop or
 * bracket stays text). */
export function linked(text) {
  return String(text)
    .split(/(https?:\/\/[^\s<>"]*[^\s<>".,;:!?)\]'])/)
    .map((part, i) => (i % 2 ? h("a", { href: part, target: "_blank", rel: "noopener noreferrer" }, part) : part));
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace all children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function toast(text, kind = "info", ms = 6000) {
  const box = document.getElementById("toasts");
  const item = h(`div.toast.${kind}`, { role: kind === "error" ? "alert" : null }, text);
  const close = () => item.remove();
  item.append(h("button.link", { type: "button", onclick: close, "aria-label": "Dismiss" }, "×"));
  box.append(item);
  setTimeout(close, ms);
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function time(iso) {
  return iso ? timeFormat.format(new Date(iso)) : "";
}

export function dateTime(iso) {
  return iso ? dateTimeFormat.format(new Date(iso)) : "";
}

/** A labelled form field; `attrs` go to the input. */
export function field(label, attrs) {
  const id = attrs.id ?? `f-${attrs.name}-${Math.random().toString(36).slice(2, 7)}`;
  const input = attrs.rows ? h("textarea", { ...attrs, id }) : h("input", { ...attrs, id });
  return h("div.field", {}, h("label", { for: id }, label), input);
}

/** Form values as an object of trimmed strings. */
export function formData(form) {
  return Object.fromEntries([...new FormData(form)].map(([k, v]) => [k, typeof v === "string" ? v.trim() : v]));
}

/**
 * Run `work` for a form submit: disables the form's buttons meanwhile and shows an error
 * (the server's `detail`) in the form's alert line instead of throwing.
 */
export async function busy(form, work) {
  const buttons = form.querySelectorAll("button");
  const alert = form.querySelector(".form-error") ?? form.appendChild(h("p.form-error", { role: "alert" }));
  alert.textContent = "";
  buttons.forEach((b) => (b.disabled = true));
  try {
    return await work();
  } catch (err) {
    alert.textContent = err.message;
    return undefined;
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

/** A random UUID; randomUUID exists only in secure contexts, and self-hosted setups may serve plain http. */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
