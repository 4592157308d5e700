// The new-ticket form, also reached from a conversation file. Whatever was
// typed stays in the form when a request fails; errors are shown beside
// their field.

import { api, ApiError } from "./api.js";
import { $, setOptions } from "./dom.js";
import { state, categories, assignees } from "./state.js";

const FIELDS = ["subject", "description", "priority", "category", "assignee"];
let conversation = null;
/// An inbox conversation ({id, channel}) the form makes its ticket from.
let inboxConversation = null;
let onSignedOut = () => {};

export function initForm(signedOut) {
  onSignedOut = signedOut;
  $("new-form").addEventListener("submit", (e) => {
    e.preventDefault();
    create();
  });
  // An error goes once the user changes its field.
  $("new-form").addEventListener("input", (e) => {
    const field = e.target.id && e.target.id.startsWith("n-") ? e.target.id.slice(2) : "";
    if (FIELDS.includes(field)) setError(field, "");
  });
  $("new-cancel").addEventListener("click", () => {
    conversation = null;
    inboxConversation = null;
    history.back();
  });
}

/// The category and assignee choices: the relay's taxonomy and people as
/// the node last heard them; a node that never synced takes any category.
export function refreshFormChoices() {
  const cats = categories();
  const field = $("n-category-field");
  let cat = $("n-category");
  const wantSelect = cats.length > 0;
  if (wantSelect !== (cat.tagName === "SELECT")) {
    const next = document.createElement(wantSelect ? "select" : "input");
    next.id = "n-category";
    next.name = "category";
    next.setAttribute("aria-describedby", "e-category");
    if (!wantSelect) next.autocomplete = "off";
    cat.replaceWith(next);
    cat = next;
  }
  if (wantSelect) setOptions(cat, [["", "Choose a category"], ...cats.map((c) => [c, c])]);
  setOptions($("n-assignee"), [["", "Unassigned"], ...assignees()]);
  field.hidden = false;
}

/// Opens the form, empty (or as the user left it).
export function openForm() {
  refreshFormChoices();
  const from = conversation || inboxConversation;
  $("new-from").hidden = !from;
  if (from) $("new-from").textContent = `From conversation ${from.id} (${from.channel || "chat"})`;
}

function setError(field, text) {
  const input = $(`n-${field}`);
  const err = $(`e-${field}`);
  if (err) err.textContent = text;
  if (input) {
    if (text) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}

function clearErrors() {
  for (const f of FIELDS) setError(f, "");
  $("new-error").textContent = "";
}

async function create() {
  clearErrors();
  const subject = $("n-subject").value.trim();
  if (!subject) {
    setError("subject", "Enter a subject: a few words saying what is wrong.");
    $("n-subject").focus();
    return;
  }
  if (!$("n-category").value.trim()) {
    setError("category", $("n-category").tagName === "SELECT"
      ? "Choose a category."
      : "Enter a category (this node has not synced a taxonomy yet, so any name will do).");
    $("n-category").focus();
    return;
  }
  const body = {
    subject,
    description: $("n-description").value,
    priority: $("n-priority").value,
    category: $("n-category").value.trim(),
    assignee: $("n-assignee").value || null,
  };
  if (conversation) body.conversation = conversation;
  else if (inboxConversation) body.conversation_id = inboxConversation.id;
  $("create").disabled = true;
  try {
    const r = await api("/v1/tickets", { method: "POST", body });
    $("new-form").reset();
    conversation = null;
    inboxConversation = null;
    location.hash = `#/tickets/${encodeURIComponent(r.id)}`;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return onSignedOut(e);
    if (e instanceof ApiError && e.code === "conversation_has_ticket" && e.body.id) {
      conversation = null;
      inboxConversation = null;
      $("new-form").reset();
      location.hash = `#/tickets/${encodeURIComponent(e.body.id)}`;
      return;
    }
    if (e instanceof ApiError && FIELDS.includes(e.field)) {
      setError(e.field, e.message);
      $(`n-${e.field}`).focus();
    } else {
      $("new-error").textContent = `Not created: ${e.message}`;
    }
  } finally {
    $("create").disabled = false;
  }
}

/// A conversation file (SPEC §1.2): shows its existing ticket, or opens
/// the form pre-filled. A file that cannot be read says why; nothing is
/// created.
export async function fromConversation(file) {
  let conv;
  try {
    conv = JSON.parse(await file.text());
  } catch (e) {
    return conversationError(`${file.name} is not valid JSON (${e.message}). Choose a conversation exported from your inbox.`);
  }
  if (!conv || typeof conv !== "object" || Array.isArray(conv) || typeof conv.id !== "string" || !Array.isArray(conv.messages)) {
    return conversationError(`${file.name} is not a conversation: it needs an "id" and a list of "messages".`);
  }
  let pre;
  try {
    pre = await api("/v1/conversations/prefill", { method: "POST", body: conv });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return onSignedOut(e);
    return conversationError(`${file.name} cannot be used: ${e.message}`);
  }
  if (pre.existing) {
    location.hash = `#/tickets/${encodeURIComponent(pre.existing)}`;
    return;
  }
  conversation = conv;
  inboxConversation = null;
  location.hash = "#/new";
  openForm();
  clearErrors();
  $("n-subject").value = pre.subject || "";
  $("n-description").value = pre.description || "";
}

function conversationError(text) {
  conversation = null;
  inboxConversation = null;
  if (location.hash !== "#/new") location.hash = "#/new";
  openForm();
  $("new-error").textContent = text;
}

/// An inbox conversation (`GET /v1/inbox`) and its pre-fill (`GET
/// /v1/inbox/{id}/prefill`): opens the form pre-filled; Create makes the
/// ticket linked to it, as `tickets create --conversation ID`.
export function fromInbox(c, pre) {
  conversation = null;
  inboxConversation = { id: c.id, channel: c.channel };
  location.hash = "#/new";
  openForm();
  clearErrors();
  $("n-subject").value = pre.subject || "";
  $("n-description").value = pre.description || "";
}
