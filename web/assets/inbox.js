// The Inbox view (app host only): the node's recent conversations from
// chat tools, latest activity first, each with its customer, channel, last
// message, how long the customer has waited, the whole thread on demand,
// and either "Create ticket" (the new-ticket form, pre-filled) or a link to
// the ticket made from it. Conversation text only ever goes into the page
// as text.

import { api, ApiError } from "./api.js";
import { $, h, human, label, clock, timeEl } from "./dom.js";
import { fromInbox } from "./form.js";

const LAST_MESSAGE_CHARS = 240;
let onSignedOut = () => {};

export function initInbox(signedOut) {
  onSignedOut = signedOut;
}

function cut(text) {
  const one = String(text || "").split(/\s+/).filter(Boolean).join(" ");
  return one.length > LAST_MESSAGE_CHARS ? one.slice(0, LAST_MESSAGE_CHARS) + "…" : one;
}

/// How long the customer has waited: since the first of their messages
/// that no agent has answered yet, or since the conversation started
/// (`null` when an agent's reply is the latest word).
export function waitingSince(c) {
  const msgs = (Array.isArray(c.messages) ? c.messages : [])
    .map((m) => ({ role: m.role, at: Date.parse(m.at) }))
    .filter((m) => !Number.isNaN(m.at))
    .sort((a, b) => a.at - b.at);
  if (!msgs.length) {
    const at = Date.parse(c.last_activity_at);
    return Number.isNaN(at) ? null : at;
  }
  let since = null;
  for (const m of msgs) {
    if (m.role === "agent") since = null;
    else if (since === null) since = m.at;
  }
  return since;
}

function thread(c) {
  const msgs = Array.isArray(c.messages) ? c.messages : [];
  if (!msgs.length) return null;
  return h("details", { class: "thread" },
    h("summary", {}, `Show the whole conversation (${msgs.length} message${msgs.length === 1 ? "" : "s"})`),
    h("ol", { class: "messages" }, ...msgs.map((m) => h("li", { class: m.role === "agent" ? "agent" : "customer" },
      h("p", { class: "by" }, h("strong", {}, m.role === "agent" ? `${m.from || "Agent"} (agent)` : (m.from || c.customer || "Customer")),
        " · ", timeEl(m.at)),
      h("div", { class: "text" }, String(m.text || ""))))));
}

function item(c, i) {
  const head = `inbox-c-${i}`;
  const last = c.last_message;
  const who = last ? (last.role === "agent" ? (last.from ? `${last.from} (agent)` : "Agent") : (last.from || c.customer || "Customer")) : "";
  const action = c.ticket
    ? h("a", { href: `#/tickets/${encodeURIComponent(c.ticket)}`, "aria-describedby": head }, `Open ticket ${c.ticket.slice(0, 8)}`)
    : h("button", { type: "button", class: "primary", "aria-describedby": head, onclick: () => createFrom(c) }, "Create ticket");
  return h("li", { class: "conversation" },
    h("h2", { id: head },
      h("span", { class: "customer" }, c.customer || "Unknown customer"),
      h("span", { class: "muted channel" }, ` · ${c.channel || c.inbox || "chat"}`)),
    last
      ? h("p", { class: "last" }, h("span", { class: "by" }, `${who}: `), cut(last.text))
      : h("p", { class: "last muted" }, "No messages yet"),
    h("p", { class: "meta" },
      waitText(c),
      ` · ${c.messages_count ?? (c.messages || []).length} message${(c.messages_count ?? 0) === 1 ? "" : "s"}`,
      c.status ? ` · ${label(c.status)}` : "",
      " · ", h("span", { class: "id" }, c.id)),
    thread(c),
    h("div", { class: "buttons" }, action));
}

function waitText(c) {
  const since = waitingSince(c);
  if (since === null) {
    return h("time", { datetime: c.last_activity_at || "" }, `answered · last activity ${human(c.age_secs || 0)} ago`);
  }
  const iso = new Date(since).toISOString();
  return h("time", { datetime: iso, class: "waiting-customer" }, `customer waiting ${human((clock.now() - since) / 1000)}`);
}

/// Loads and shows the inbox; keeps the focused conversation's action
/// focused across a live refresh.
export async function loadInbox() {
  let data;
  try {
    data = await api("/v1/inbox");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return onSignedOut(e);
    $("inbox-error").textContent = `The inbox could not be read: ${e.message}`;
    $("inbox-error").hidden = false;
    return;
  }
  $("inbox-error").hidden = true;
  const list = data.conversations || [];
  const focused = document.activeElement && $("inbox-list").contains(document.activeElement)
    ? document.activeElement.closest("li")?.querySelector(".id")?.textContent : null;
  $("inbox-list").replaceChildren(...list.map(item));
  $("inbox-empty").hidden = list.length > 0;
  $("inbox-shown").textContent = `${list.length} conversation${list.length === 1 ? "" : "s"}`;
  if (focused) {
    for (const li of $("inbox-list").children) {
      if (li.querySelector(".id")?.textContent === focused) li.querySelector("a, button")?.focus();
    }
  }
}

async function createFrom(c) {
  let pre;
  try {
    pre = await api(`/v1/inbox/${encodeURIComponent(c.id)}/prefill`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return onSignedOut(e);
    $("inbox-error").textContent = `Cannot make a ticket from ${c.id}: ${e.message}`;
    $("inbox-error").hidden = false;
    return;
  }
  if (pre.existing) {
    location.hash = `#/tickets/${encodeURIComponent(pre.existing)}`;
    return;
  }
  fromInbox(c, pre);
}
