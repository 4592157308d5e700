// The detail view: one ticket's fields, SLA, description, comments,
// internal notes and timeline. Built once per ticket and then updated in
// place, so a live refresh never loses what the user is typing or where
// the focus is.

import { api, ApiError, readOnly } from "./api.js";
import { $, h, setOptions, badge, timeEl, label, when, confirmClose } from "./dom.js";
import { state, categories, assignees, titled } from "./state.js";

const STATUSES = ["open", "in-progress", "resolved", "closed"];
const PRIORITIES = ["low", "medium", "high", "urgent"];
const FIELDS = ["status", "assignee", "priority", "category"];
const CLOSED_REASON = "This ticket is closed. Closed is final: its status, priority, assignee, category and description can no longer be changed; comments are still welcome.";

const view = { id: null, ticket: null, tab: "comments", saving: new Set(), description: null, loading: 0, notApplied: [] };
let onSignedOut = () => {};

export function initDetail(signedOut) {
  onSignedOut = signedOut;
}

export function currentTicketId() {
  return view.id;
}

/// Opens ticket `id` (a full id or a prefix).
export async function showDetail(id) {
  if (view.id !== id) {
    view.id = id;
    view.ticket = null;
    view.description = null;
    view.notApplied = [];
    build();
  }
  await refreshDetail();
  const heading = $("d-subject");
  if (heading) heading.focus();
}

/// Fetches the open ticket again and updates the page in place.
export async function refreshDetail() {
  if (!view.id) return;
  const id = view.id, mine = ++view.loading;
  try {
    const t = await api(`/v1/tickets/${encodeURIComponent(id)}`);
    if (view.id === id && mine === view.loading) fill(t);
  } catch (e) {
    if (view.id !== id || mine !== view.loading) return;
    if (e instanceof ApiError && e.status === 401) return onSignedOut(e);
    if (e instanceof ApiError && e.status === 404 && !view.ticket) {
      $("d-subject").textContent = "No such ticket";
      $("d-body").hidden = true;
    }
    showError("d-error", view.ticket ? `Could not refresh this ticket: ${e.message}` : e.message);
  }
}

function showError(id, text) {
  const el = $(id);
  if (!el) return;
  el.textContent = text || "";
  el.hidden = !text;
}

/// A relay refusal ({kind, reason, at}) or any other message, in words.
function describe(x) {
  if (x === null || x === undefined) return "";
  if (typeof x !== "object") return String(x);
  if (x.reason) {
    const extra = [x.kind, x.at ? when(x.at) : ""].filter(Boolean).join(", ");
    return extra ? `${x.reason} (${extra})` : x.reason;
  }
  const what = [x.field, x.message || x.error || x.code].filter(Boolean).join(": ");
  return what || JSON.stringify(x);
}

/// One of the user's own edits that did not take effect (superseded by a
/// later edit, or ignored, e.g. out of closed).
function notAppliedText(x) {
  if (!x || typeof x !== "object") return describe(x);
  const to = `“${valueText(x.field, x.to)}”`;
  return `Your change of ${x.field} to ${to} was ${x.outcome || "not applied"}${x.note ? `: ${x.note}` : ""}.`;
}

function fieldControl(name) {
  const id = `d-${name}`;
  return h("div", { class: "field" },
    h("label", { for: id }, label(name)),
    h("select", { id, "aria-describedby": `d-closed ${id}-note ${id}-error`, onchange: () => save(name) }),
    h("p", { id: `${id}-note`, class: "muted small" }),
    h("p", { id: `${id}-error`, class: "field-error", role: "alert" }));
}

function build() {
  const tabs = [["comments", "Comments"], ["notes", "Internal notes"], ["timeline", "Timeline"]];
  const tabButtons = tabs.map(([key, name]) => h("button", {
    type: "button", role: "tab", id: `tab-${key}`, "aria-controls": `panel-${key}`,
    "aria-selected": String(view.tab === key), tabindex: view.tab === key ? "0" : "-1",
    onclick: () => selectTab(key, false), onkeydown: tabKeys,
  }, name));
  const panel = (key, ...content) => h("div", {
    role: "tabpanel", id: `panel-${key}`, "aria-labelledby": `tab-${key}`, tabindex: "0",
    hidden: view.tab !== key,
  }, ...content);
  const composer = (key, name, button, path) => readOnly ? null : h("form", {
    class: "composer", novalidate: true,
    onsubmit: (e) => { e.preventDefault(); post(key, path); },
  },
  h("label", { for: `d-${key}-text` }, name),
  h("textarea", { id: `d-${key}-text`, rows: 3, "aria-describedby": `d-${key}-error` }),
  h("p", { id: `d-${key}-error`, class: "field-error", role: "alert" }),
  h("button", { type: "submit", class: "primary" }, button));

  $("screen-detail").replaceChildren(
    h("p", { class: "back" }, h("a", { href: "#/" }, "← All tickets")),
    h("h1", { id: "d-subject", tabindex: "-1" }, "Loading…"),
    h("p", { id: "d-error", class: "error", role: "alert", hidden: true }),
    h("div", { id: "d-body" },
      h("p", { id: "d-meta", class: "muted" }),
      h("div", { id: "d-refusals", class: "refusals", hidden: true }),
      h("div", { class: "detail-grid" },
        h("section", { "aria-labelledby": "d-fields-h", class: "panel" },
          h("h2", { id: "d-fields-h" }, "Fields"),
          h("p", { id: "d-closed", class: "closed-note", hidden: true }),
          readOnly ? h("dl", { id: "d-fields", class: "pairs" }) : h("div", { class: "fields" }, ...FIELDS.map(fieldControl)),
          h("ul", { id: "d-not-applied", class: "not-applied", hidden: true })),
        h("section", { "aria-labelledby": "d-sla-h", class: "panel" },
          h("h2", { id: "d-sla-h" }, "SLA"),
          h("dl", { class: "pairs" },
            h("dt", {}, "First response"), h("dd", { id: "d-sla-first" }),
            h("dt", {}, "Resolution"), h("dd", { id: "d-sla-resolution" })))),
      h("section", { "aria-labelledby": "d-desc-h", class: "panel" },
        h("h2", { id: "d-desc-h" }, "Description"),
        readOnly ? h("div", { id: "d-description-text", class: "text" }) : h("form", {
          novalidate: true, onsubmit: (e) => { e.preventDefault(); saveDescription(); },
        },
        h("label", { for: "d-description", class: "visually-hidden" }, "Description"),
        h("textarea", { id: "d-description", rows: 5, "aria-describedby": "d-closed d-description-error" }),
        h("p", { id: "d-description-error", class: "field-error", role: "alert" }),
        h("button", { type: "submit", id: "d-description-save" }, "Save description"))),
      h("div", { class: "tabs", role: "tablist", "aria-label": "Activity" }, ...tabButtons),
      panel("comments", h("ol", { id: "d-comments", class: "entries" }),
        composer("comment", "Add a comment", "Comment", "comments")),
      panel("notes", h("ol", { id: "d-notes", class: "entries" }),
        composer("note", "Add an internal note", "Add note", "notes")),
      panel("timeline", h("ol", { id: "d-timeline", class: "entries timeline" }))));
  showNotesTab();
}

function showNotesTab() {
  const allowed = !!(state.me && state.me.internal_notes);
  const tab = $("tab-notes");
  if (!tab) return;
  tab.hidden = !allowed;
  if (!allowed) {
    $("panel-notes").hidden = true;
    if (view.tab === "notes") selectTab("comments", false);
  }
}

function selectTab(key, focus) {
  view.tab = key;
  for (const tab of document.querySelectorAll('#screen-detail [role="tab"]')) {
    const on = tab.id === `tab-${key}`;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !on;
    if (on && focus) tab.focus();
  }
}

function tabKeys(e) {
  const tabs = [...document.querySelectorAll('#screen-detail [role="tab"]')].filter((t) => !t.hidden);
  const at = tabs.indexOf(e.currentTarget);
  let next = null;
  if (e.key === "ArrowRight") next = tabs[(at + 1) % tabs.length];
  else if (e.key === "ArrowLeft") next = tabs[(at - 1 + tabs.length) % tabs.length];
  else if (e.key === "Home") next = tabs[0];
  else if (e.key === "End") next = tabs[tabs.length - 1];
  if (next) {
    e.preventDefault();
    selectTab(next.id.slice(4), true);
  }
}

function assigneeName(a) {
  if (!a) return "Unassigned";
  return a.startsWith("team:") ? `Team ${a.slice(5)}` : a;
}

function fill(t) {
  view.ticket = t;
  showError("d-error", "");
  $("d-body").hidden = false;
  $("d-subject").textContent = t.subject || "(no subject)";
  document.title = titled(`${t.subject || "Ticket"} · Tickets`);
  const meta = [`#${String(t.id).slice(0, 8)} · created by ${t.created_by} on `];
  $("d-meta").replaceChildren(...meta, timeEl(t.created_at),
    t.conversation_id ? ` · from conversation ${t.conversation_id}` : "",
    t.updated_at ? " · updated " : "", t.updated_at ? timeEl(t.updated_at) : "");
  if (t.category) state.seenCategories.add(t.category);
  if (t.assignee) state.seenAssignees.add(t.assignee);

  if (readOnly) {
    $("d-fields").replaceChildren(...FIELDS.flatMap((f) => [
      h("dt", {}, label(f)),
      h("dd", {}, f === "assignee" ? assigneeName(t.assignee) : f === "category" ? t.category : label(t[f])),
    ]));
  } else {
    fillSelects(t);
  }
  $("d-sla-first").replaceChildren(badge(t.sla, t.sla && t.sla.first_response));
  $("d-sla-resolution").replaceChildren(badge(t.sla, t.sla && t.sla.resolution));

  // The description: replaced only while the user has not started editing.
  const closed = t.status === "closed";
  $("d-closed").hidden = !closed;
  $("d-closed").textContent = closed ? CLOSED_REASON : "";
  if (readOnly) $("d-description-text").textContent = t.description || "No description.";
  else {
    // What the user typed and was refused stays in the field, even once the
    // ticket is closed and the field is disabled.
    const ta = $("d-description");
    if (view.description === null || ta.value === view.description) ta.value = t.description || "";
    view.description = t.description || "";
    ta.disabled = closed;
    $("d-description-save").disabled = closed;
  }

  const refusals = [...(t.refusals || []), ...(t.problems || [])].map(describe).filter(Boolean);
  const box = $("d-refusals");
  box.hidden = !refusals.length;
  box.replaceChildren(...(refusals.length
    ? [h("h2", {}, "Refused by the relay"), h("ul", {}, ...refusals.map((r) => h("li", {}, r)))]
    : []));
  // The ticket lists everyone's; the user is told of their own.
  const me = state.me ? state.me.agent : "";
  showNotApplied([...(t.not_applied || []).filter((x) => x && x.by === me), ...view.notApplied]);

  $("d-comments").replaceChildren(...entries(t.comments, "No comments yet."));
  $("d-notes").replaceChildren(...entries(t.internal_notes, "No internal notes yet."));
  $("d-timeline").replaceChildren(...(t.history || []).map(historyEntry));
  showNotesTab();
}

function fillSelects(t) {
  const closed = t.status === "closed";
  if (!view.saving.has("status")) {
    // Out of closed there is no way: it is the only choice offered.
    setOptions($("d-status"), (closed ? ["closed"] : STATUSES).map((s) => [s, label(s)]), t.status);
    $("d-status").disabled = closed;
  }
  for (const f of ["assignee", "priority", "category"]) $(`d-${f}`).disabled = closed;
  if (!view.saving.has("assignee")) {
    const pairs = [["", "Unassigned"], ...assignees()];
    if (t.assignee && !pairs.some(([v]) => v === t.assignee)) pairs.push([t.assignee, assigneeName(t.assignee)]);
    setOptions($("d-assignee"), pairs, t.assignee || "");
  }
  if (!view.saving.has("priority")) setOptions($("d-priority"), PRIORITIES.map((p) => [p, label(p)]), t.priority);
  if (!view.saving.has("category")) {
    const cats = categories();
    if (t.category && !cats.includes(t.category)) cats.push(t.category);
    setOptions($("d-category"), cats.map((c) => [c, c]), t.category);
  }
}

function showNotApplied(items) {
  const list = $("d-not-applied");
  const texts = [...new Set(items.map(notAppliedText).filter(Boolean))];
  list.hidden = !texts.length;
  list.replaceChildren(...texts.map((x) => h("li", {}, x)));
}

function entries(items, empty) {
  if (!items || !items.length) return [h("li", { class: "muted" }, empty)];
  return items.map((c) => h("li", {},
    h("p", { class: "by" }, h("strong", {}, c.author || "?"), " · ", timeEl(c.at)),
    h("div", { class: "text" }, c.body || "")));
}

/// A history value in words: statuses and priorities as the controls name
/// them, teams as "Team X", nothing as “nothing”.
function valueText(field, v) {
  if (v === null || v === undefined || v === "") return "nothing";
  if (field === "status" || field === "priority") return label(String(v));
  if (field === "assignee") return assigneeName(String(v));
  return String(v);
}

function historyEntry(e) {
  const who = h("strong", {}, e.by || "?");
  let what;
  if (e.field === "created") what = ["created the ticket"];
  else if (e.field === "description") what = ["edited the description"];
  else if (e.from === null || e.from === undefined || e.from === "") {
    what = ["set ", e.field, " to ", h("q", {}, valueText(e.field, e.to))];
  } else {
    what = ["changed ", e.field, " from ", h("q", {}, valueText(e.field, e.from)),
      " to ", h("q", {}, valueText(e.field, e.to))];
  }
  const outcome = e.outcome && e.outcome !== "applied"
    ? h("span", { class: `mark ${e.outcome}` }, e.outcome) : null;
  return h("li", { class: e.outcome && e.outcome !== "applied" ? "not-applied-entry" : "" },
    h("p", { class: "by" }, timeEl(e.at), " ", outcome),
    h("p", {}, who, " ", ...what, e.note ? h("span", { class: "muted" }, ` (${e.note})`) : ""));
}

async function patch(body, field) {
  const id = view.id;
  const errorId = field === "description" ? "d-description-error" : `d-${field}-error`;
  showErrorInline(errorId, "");
  try {
    const r = await api(`/v1/tickets/${encodeURIComponent(id)}`, { method: "PATCH", body });
    if (view.id !== id) return true;
    view.notApplied = r.not_applied || [];
    if (r.ticket) fill(r.ticket);
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      onSignedOut(e);
      return false;
    }
    const target = e.field && $(`d-${e.field}-error`) ? `d-${e.field}-error` : errorId;
    showErrorInline(target, `Not saved: ${e.message}`);
    return false;
  }
}

function showErrorInline(id, text) {
  const el = $(id);
  if (el) el.textContent = text;
}

async function save(field) {
  const select = $(`d-${field}`);
  let value = select.value;
  if (field === "assignee" && value === "") value = null;
  if (field === "status" && value === "closed" && !(await confirmClose(1))) {
    if (view.ticket) fillSelects(view.ticket);
    select.focus();
    return;
  }
  view.saving.add(field);
  const ok = await patch({ [field]: value }, field);
  view.saving.delete(field);
  // A refused change puts the control back to what the ticket says.
  if (!ok && view.ticket) fillSelects(view.ticket);
}

async function saveDescription() {
  const text = $("d-description").value;
  const ok = await patch({ description: text }, "description");
  if (ok) view.description = text;
}

async function post(key, path) {
  const ta = $(`d-${key}-text`);
  const text = ta.value;
  if (!text.trim()) {
    showErrorInline(`d-${key}-error`, key === "comment" ? "Write a comment first." : "Write a note first.");
    ta.focus();
    return;
  }
  showErrorInline(`d-${key}-error`, "");
  const id = view.id;
  try {
    const r = await api(`/v1/tickets/${encodeURIComponent(id)}/${path}`, { method: "POST", body: { text } });
    if (ta.value === text) ta.value = "";
    if (view.id === id && r.ticket) fill(r.ticket);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return onSignedOut(e);
    showErrorInline(`d-${key}-error`, `Not saved: ${e.message}`);
  }
}
