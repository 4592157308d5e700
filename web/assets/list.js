// The ticket list: filters, views, sortable columns, counts and paging.
// One page of tickets is fetched at a time, so a node or relay holding
// 100 000 tickets costs no more than one holding 50. The filters, sort,
// search and page live in the address (`#/?status=open&sort=-created`, the
// list API's own parameters), so reload, bookmarks and back/forward restore
// them. On the app, rows can be selected for bulk edits.

import { api, ApiError, readOnly } from "./api.js";
import { $, h, setOptions, badge, timeEl, clock, label, human, confirmClose } from "./dom.js";
import { state, categories, assignees } from "./state.js";

const PAGE = 50;
const DEFAULT_SORT = "sla";
/// The filters as the list API names them, and the control of each.
const FILTERS = [["search", "f-search"], ["status", "f-status"], ["priority", "f-priority"],
  ["category", "f-category"], ["assignee", "f-assignee"], ["sla", "f-sla"]];
const list = { sort: DEFAULT_SORT, desc: false, offset: 0, total: 0, tickets: [], loading: 0, timer: null, nextChange: null,
  selected: new Set(), lastClicked: null, views: [] };
let onSignedOut = () => {};

export function initList(signedOut) {
  onSignedOut = signedOut;
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("filters").addEventListener("input", (e) => {
    list.offset = 0;
    markView();
    clearTimeout(list.typing);
    // Typing in the search box waits for a pause (and replaces the address
    // rather than adding a history entry per key); a select applies at once.
    const typing = e.target.id === "f-search";
    list.typing = setTimeout(() => {
      writeUrl(!typing);
      loadList();
    }, typing ? 200 : 0);
  });
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.sort;
      if (list.sort === key) list.desc = !list.desc;
      else {
        list.sort = key;
        list.desc = key === "created" || key === "priority";
      }
      list.offset = 0;
      writeUrl(true);
      loadList();
    });
  }
  for (const b of document.querySelectorAll("[data-view]")) b.addEventListener("click", () => setView(b.dataset.view));
  $("prev").addEventListener("click", () => page(-1));
  $("next").addEventListener("click", () => page(1));
  initViews();
  if (!readOnly) initBulk();
}

function page(dir) {
  list.offset = Math.max(0, list.offset + dir * PAGE);
  writeUrl(true);
  loadList().then(() => $("list-h").focus());
}

// ---- the address ----------------------------------------------------------

/// The list's state as the list API's query (without limit): filters, then
/// sort and offset when not the defaults.
function stateQuery() {
  const p = new URLSearchParams();
  for (const [key, id] of FILTERS) {
    const v = $(id).value.trim();
    if (v) p.set(key, v);
  }
  if (list.sort !== DEFAULT_SORT || list.desc) p.set("sort", (list.desc ? "-" : "") + list.sort);
  if (list.offset) p.set("offset", String(list.offset));
  return p;
}

/// Puts the list's state in the address: a new history entry (`push`) for
/// a deliberate change, or in place while typing.
function writeUrl(push) {
  const qs = stateQuery().toString();
  const hash = qs ? `#/?${qs}` : "#/";
  if (location.hash === hash || (!qs && !location.hash)) return;
  if (push) history.pushState(null, "", hash);
  else history.replaceState(null, "", hash);
}

/// Sets the controls from the address (reload, bookmark, back/forward).
export function readUrl() {
  const hash = location.hash || "#/";
  const at = hash.indexOf("?");
  const p = new URLSearchParams(at < 0 ? "" : hash.slice(at + 1));
  applyQuery(p);
}

function applyQuery(p) {
  for (const [key, id] of FILTERS) {
    const v = p.get(key) || "";
    const el = $(id);
    if (el.tagName === "SELECT") ensureOption(el, v);
    el.value = v;
  }
  const sort = p.get("sort") || DEFAULT_SORT;
  list.desc = sort.startsWith("-");
  const key = list.desc ? sort.slice(1) : sort;
  list.sort = document.querySelector(`th[data-sort="${CSS.escape(key)}"]`) ? key : DEFAULT_SORT;
  const offset = Number(p.get("offset"));
  list.offset = Number.isInteger(offset) && offset > 0 ? offset : 0;
  markView();
}

/// The list's filters in words, for the Export dialog: status and category.
export function listFilters() {
  return { status: $("f-status").value, category: $("f-category").value };
}

function setView(view) {
  const me = state.me ? state.me.agent : "";
  $("f-assignee").value = "";
  $("f-sla").value = "";
  if (view === "mine") {
    ensureOption($("f-assignee"), me);
    $("f-assignee").value = me;
  } else if (view === "unassigned") $("f-assignee").value = "none";
  else if (view === "breach") $("f-sla").value = "yellow,red";
  else {
    $("f-search").value = "";
    $("f-status").value = "";
    $("f-priority").value = "";
    $("f-category").value = "";
  }
  list.offset = 0;
  markView();
  writeUrl(true);
  loadList();
}

function ensureOption(select, value) {
  if (value && ![...select.options].some((o) => o.value === value)) select.append(new Option(value, value));
}

/// Marks the everyday view that the filters amount to, if any, and the
/// saved view whose query is the current one.
function markView() {
  const a = $("f-assignee").value, sla = $("f-sla").value;
  const others = $("f-search").value || $("f-status").value || $("f-priority").value || $("f-category").value;
  let view = "";
  if (!a && !sla && !others) view = "all";
  else if (state.me && a === state.me.agent && !sla) view = "mine";
  else if (a === "none" && !sla) view = "unassigned";
  else if (!a && sla === "yellow,red") view = "breach";
  for (const b of document.querySelectorAll("[data-view]")) b.setAttribute("aria-pressed", String(b.dataset.view === view));
  const p = stateQuery();
  p.delete("offset");
  const now = p.toString();
  for (const b of document.querySelectorAll("[data-saved-view]")) {
    b.setAttribute("aria-pressed", String(b.dataset.query === now));
  }
}

function query() {
  const p = stateQuery();
  p.set("sort", (list.desc ? "-" : "") + list.sort);
  p.set("limit", String(PAGE));
  p.set("offset", String(list.offset));
  return p.toString();
}

/// Fetches the visible page again (filters, sort and paging as they are).
export async function loadList() {
  const mine = ++list.loading;
  let body;
  try {
    body = await api("/v1/tickets?" + query());
  } catch (e) {
    if (mine !== list.loading) return;
    if (e instanceof ApiError && e.status === 401) return onSignedOut(e);
    $("list-error").textContent = `The list could not be loaded: ${e.message}`;
    $("list-error").hidden = false;
    return;
  }
  if (mine !== list.loading) return; // a later request overtook this one
  $("list-error").hidden = true;
  list.tickets = Array.isArray(body.tickets) ? body.tickets : [];
  list.total = Number(body.total) || 0;
  const now = Date.parse(body.now);
  if (!Number.isNaN(now)) clock.skew = now - Date.now();
  list.nextChange = body.next_change_at ? Date.parse(body.next_change_at) : null;
  const c = body.counts || {};
  for (const k of ["red", "yellow", "green", "met", "none"]) $("n-" + k).textContent = String(c[k] || 0);
  for (const t of list.tickets) {
    if (t.category) state.seenCategories.add(t.category);
    if (t.assignee) state.seenAssignees.add(t.assignee);
  }
  refreshChoices();
  render();
  noTargets();
  scheduleColourChange();
}

/// The filters' category and assignee choices.
export function refreshChoices() {
  setOptions($("f-category"), [["", "Any"], ...categories().map((c) => [c, c])]);
  setOptions($("f-assignee"), [["", "Anyone"], ["none", "Unassigned"], ...assignees()]);
  markView();
}

function render() {
  // Keep the keyboard where it was: the same ticket's link or checkbox, if
  // still shown.
  const active = document.activeElement;
  const focusedRow = active && active.closest ? active.closest("#rows tr") : null;
  const focusedId = focusedRow ? focusedRow.dataset.id : null;
  const focusedBox = !!(active && active.type === "checkbox");
  const shown = new Set(list.tickets.map((t) => t.id));
  for (const id of [...list.selected]) if (!shown.has(id)) list.selected.delete(id);
  const rows = list.tickets.map(row);
  $("rows").replaceChildren(...rows);
  if (!rows.length) {
    $("rows").append(h("tr", {}, h("td", { colspan: readOnly ? 6 : 7, class: "empty" },
      list.total ? "No tickets on this page." : "No tickets match. Clear the filters or choose All.")));
  }
  if (focusedId) {
    const el = document.querySelector(`#rows tr[data-id="${CSS.escape(focusedId)}"] ${focusedBox ? "input" : "a"}`);
    if (el) el.focus();
  }
  const first = list.total ? list.offset + 1 : 0;
  const last = list.offset + list.tickets.length;
  $("shown").textContent = `${first}–${last} of ${list.total} tickets`;
  $("prev").disabled = list.offset === 0;
  $("next").disabled = last >= list.total;
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.setAttribute("aria-sort", th.dataset.sort === list.sort ? (list.desc ? "descending" : "ascending") : "none");
  }
  if (!readOnly) showBulk();
}

function assigneeText(a) {
  return a ? (a.startsWith("team:") ? `Team ${a.slice(5)}` : a) : "Unassigned";
}

function row(t) {
  const waiting = t.status === "open" && !t.assignee;
  const assignee = assigneeText(t.assignee);
  const subject = t.subject || "(no subject)";
  const prio = h("span", { class: `prio ${t.priority || ""}` }, label(t.priority));
  const select = readOnly ? null : h("td", { class: "pick" }, h("input", {
    type: "checkbox", "aria-label": `Select ${subject}`, checked: list.selected.has(t.id),
    onclick: (e) => pick(t.id, e.currentTarget.checked, e.shiftKey),
  }));
  return h("tr", { "data-id": t.id, "data-color": (t.sla && t.sla.color) || "none", class: t.new_for_you ? "fresh" : null },
    select,
    h("td", { class: "subject" },
      h("div", { class: "line" },
        h("a", { href: `#/tickets/${encodeURIComponent(t.id)}` }, subject),
        t.new_for_you ? h("span", { class: "new" }, "New for you") : null,
        h("span", { class: "meta" },
          h("span", { class: "id" }, String(t.id).slice(0, 8)),
          h("span", { class: "narrow-only" }, " · ", prio.cloneNode(true), ` · ${assignee}`)))),
    h("td", { class: "wide" }, prio),
    h("td", { class: "status" }, label(t.status),
      waiting ? h("span", { class: "waiting", "data-waiting-since": t.created_at },
        `waiting ${human((clock.now() - Date.parse(t.created_at)) / 1000)}`) : null),
    h("td", { class: "wide" }, assignee),
    h("td", { class: "wide date" }, timeEl(t.created_at)),
    h("td", { class: "sla" }, badge(t.sla)));
}

// Colours move with time and no edit at all: reload when the next one is due.
function scheduleColourChange() {
  clearTimeout(list.timer);
  if (list.nextChange) {
    const wait = Math.max(250, list.nextChange - clock.now() + 150);
    list.timer = setTimeout(loadList, Math.min(wait, 2147483000));
  }
}

/// `j` / `k`: moves the focus to the next or previous ticket's link.
export function moveInList(dir) {
  const links = [...document.querySelectorAll("#rows a")];
  if (!links.length) return;
  const at = links.indexOf(document.activeElement);
  const next = at < 0 ? (dir > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, at + dir));
  links[next].focus();
  links[next].scrollIntoView({ block: "nearest" });
}

// Without targets the colours mean nothing: say plainly which priorities
// (among the tickets shown) have none.
function noTargets() {
  const none = new Set(list.tickets
    .filter((t) => t.sla && t.sla.first_response && t.sla.first_response.state === "none" &&
      t.sla.resolution && t.sla.resolution.state === "none")
    .map((t) => t.priority));
  const el = $("no-targets");
  el.hidden = none.size === 0;
  el.textContent = none.size
    ? `No SLA targets for priority ${[...none].sort().join(", ")}: those tickets have no colour. An admin sets targets with \`tickets relay sla set\`.`
    : "";
}

// ---- saved views (the app) -------------------------------------------------

function initViews() {
  if (readOnly) return;
  $("save-view").hidden = false;
  $("save-view").addEventListener("click", () => {
    $("view-name").value = "";
    $("view-error").textContent = "";
    $("view-dialog").showModal();
  });
  $("view-cancel").addEventListener("click", () => $("view-dialog").close());
  $("view-form").addEventListener("submit", (e) => {
    e.preventDefault();
    saveView();
  });
  loadViews();
}

async function saveView() {
  const name = $("view-name").value.trim();
  if (!name) {
    $("view-error").textContent = "Give the view a name.";
    $("view-name").focus();
    return;
  }
  const q = stateQuery();
  q.delete("offset");
  try {
    await api("/v1/views", { method: "POST", body: { name, query: q.toString() } });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return onSignedOut(e);
    $("view-error").textContent = `Not saved: ${e.message}`;
    return;
  }
  $("view-dialog").close();
  await loadViews();
}

/// The saved views, beside the four fixed ones; each can be deleted.
export async function loadViews() {
  if (readOnly) return;
  let body;
  try {
    body = await api("/v1/views");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return onSignedOut(e);
    return; // the fixed views still work
  }
  list.views = Array.isArray(body.views) ? body.views : [];
  $("saved-views").replaceChildren(...list.views.map((v) => h("span", { class: "saved" },
    h("button", { type: "button", "data-saved-view": v.name, "data-query": v.query || "", "aria-pressed": "false",
      onclick: () => openView(v) }, v.name),
    h("button", { type: "button", class: "delete", "aria-label": `Delete view ${v.name}`, onclick: () => deleteView(v) }, "×"))));
  markView();
}

function openView(v) {
  applyQuery(new URLSearchParams(v.query || ""));
  list.offset = 0;
  writeUrl(true);
  loadList();
}

async function deleteView(v) {
  try {
    // Every write carries a JSON body: the app takes no other (no CSRF).
    await api(`/v1/views/${encodeURIComponent(v.name)}`, { method: "DELETE", body: {} });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return onSignedOut(e);
    $("list-error").textContent = `The view ${v.name} was not deleted: ${e.message}`;
    $("list-error").hidden = false;
    return;
  }
  await loadViews();
}

// ---- bulk edits (the app) ---------------------------------------------------

function initBulk() {
  const head = document.querySelector("#tickets thead tr");
  head.prepend(h("th", { scope: "col", class: "pick" }, h("input", {
    type: "checkbox", id: "select-all", "aria-label": "Select all",
    onclick: (e) => {
      for (const t of list.tickets) {
        if (e.currentTarget.checked) list.selected.add(t.id);
        else list.selected.delete(t.id);
      }
      for (const box of document.querySelectorAll("#rows td.pick input")) box.checked = e.currentTarget.checked;
      showBulk();
    },
  })));
  $("bulk-apply").addEventListener("click", applyBulk);
  $("bulk-clear").addEventListener("click", () => {
    list.selected.clear();
    for (const box of document.querySelectorAll("#rows td.pick input")) box.checked = false;
    showBulk();
  });
}

/// A click on a row's checkbox; with Shift, every row between it and the
/// last one clicked takes its state.
function pick(id, on, range) {
  const ids = list.tickets.map((t) => t.id);
  const at = ids.indexOf(id);
  const from = range && list.lastClicked ? ids.indexOf(list.lastClicked) : -1;
  const span = from >= 0 ? ids.slice(Math.min(from, at), Math.max(from, at) + 1) : [id];
  for (const x of span) {
    if (on) list.selected.add(x);
    else list.selected.delete(x);
  }
  list.lastClicked = id;
  for (const tr of document.querySelectorAll("#rows tr[data-id]")) {
    const box = tr.querySelector("td.pick input");
    if (box) box.checked = list.selected.has(tr.dataset.id);
  }
  showBulk();
}

/// `x`: toggles the selection of the row that holds the focus.
export function toggleFocusedRow() {
  if (readOnly) return;
  const tr = document.activeElement && document.activeElement.closest && document.activeElement.closest("#rows tr[data-id]");
  if (!tr) return;
  pick(tr.dataset.id, !list.selected.has(tr.dataset.id), false);
}

function showBulk() {
  const n = list.selected.size;
  const bar = $("bulk");
  if (bar.hidden !== (n === 0)) bar.hidden = n === 0;
  $("bulk-count").textContent = `${n} selected`;
  const all = $("select-all");
  if (all) {
    all.checked = n > 0 && list.tickets.every((t) => list.selected.has(t.id));
    all.indeterminate = n > 0 && !all.checked;
  }
  if (n) {
    const keep = [["", "Keep"]];
    setOptions($("bulk-assignee"), [...keep, ["-", "Unassigned"], ...assignees()]);
    setOptions($("bulk-category"), [...keep, ...categories().map((c) => [c, c])]);
  }
}

async function applyBulk() {
  const ids = list.tickets.map((t) => t.id).filter((id) => list.selected.has(id));
  const body = { ids };
  const a = $("bulk-assignee").value;
  if (a) body.assignee = a === "-" ? null : a;
  for (const f of ["priority", "status", "category"]) if ($(`bulk-${f}`).value) body[f] = $(`bulk-${f}`).value;
  const result = $("bulk-result");
  if (Object.keys(body).length === 1) {
    result.replaceChildren(h("p", { class: "error" }, "Choose what to change first: an assignee, a priority, a status or a category."));
    return;
  }
  if (body.status === "closed" && !(await confirmClose(ids.length))) return;
  $("bulk-apply").disabled = true;
  let r;
  try {
    r = await api("/v1/tickets/bulk", { method: "POST", body });
  } catch (e) {
    $("bulk-apply").disabled = false;
    if (e instanceof ApiError && e.status === 401) return onSignedOut(e);
    result.replaceChildren(h("p", { class: "error" }, `Nothing was changed: ${e.message}`));
    return;
  }
  $("bulk-apply").disabled = false;
  const subjects = new Map(list.tickets.map((t) => [t.id, t.subject || "(no subject)"]));
  const refused = Array.isArray(r.refused) ? r.refused : [];
  const applied = Array.isArray(r.applied) ? r.applied : [];
  for (const x of applied) list.selected.delete(typeof x === "string" ? x : x.id);
  result.replaceChildren(
    h("p", {}, `Changed ${applied.length} ticket${applied.length === 1 ? "" : "s"}` +
      (refused.length ? `; ${refused.length} refused:` : ".")),
    refused.length ? h("ul", { class: "refused" }, ...refused.map((x) =>
      h("li", {}, h("strong", {}, x.subject || subjects.get(x.id) || x.id), `: ${x.reason || x.error || "refused"}`))) : null);
  for (const f of ["assignee", "priority", "status", "category"]) $(`bulk-${f}`).value = "";
  await loadList();
}
