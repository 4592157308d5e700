// The ticket list: filters, views, sortable columns, counts and paging.
// One page of tickets is fetched at a time, so a node or relay holding
// 100 000 tickets costs no more than one holding 50.

import { api, ApiError } from "./api.js";
import { $, h, setOptions, badge, timeEl, clock, label, human } from "./dom.js";
import { state, categories, assignees } from "./state.js";

const PAGE = 50;
const list = { sort: "sla", desc: false, offset: 0, total: 0, tickets: [], loading: 0, timer: null, nextChange: null };
let onSignedOut = () => {};

export function initList(signedOut) {
  onSignedOut = signedOut;
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("filters").addEventListener("input", (e) => {
    list.offset = 0;
    markView();
    clearTimeout(list.typing);
    // Typing in the search box waits for a pause; a select applies at once.
    list.typing = setTimeout(loadList, e.target.id === "f-search" ? 200 : 0);
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
      loadList();
    });
  }
  for (const b of document.querySelectorAll("[data-view]")) b.addEventListener("click", () => setView(b.dataset.view));
  $("prev").addEventListener("click", () => page(-1));
  $("next").addEventListener("click", () => page(1));
}

function page(dir) {
  list.offset = Math.max(0, list.offset + dir * PAGE);
  loadList().then(() => $("list-h").focus());
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
  loadList();
}

function ensureOption(select, value) {
  if (value && ![...select.options].some((o) => o.value === value)) select.append(new Option(value, value));
}

/// Marks the everyday view that the filters amount to, if any.
function markView() {
  const a = $("f-assignee").value, sla = $("f-sla").value;
  const others = $("f-search").value || $("f-status").value || $("f-priority").value || $("f-category").value;
  let view = "";
  if (!a && !sla && !others) view = "all";
  else if (state.me && a === state.me.agent && !sla) view = "mine";
  else if (a === "none" && !sla) view = "unassigned";
  else if (!a && sla === "yellow,red") view = "breach";
  for (const b of document.querySelectorAll("[data-view]")) b.setAttribute("aria-pressed", String(b.dataset.view === view));
}

function query() {
  const p = new URLSearchParams();
  const v = (id) => $(id).value.trim();
  for (const [key, id] of [["search", "f-search"], ["status", "f-status"], ["priority", "f-priority"],
    ["category", "f-category"], ["assignee", "f-assignee"], ["sla", "f-sla"]]) {
    if (v(id)) p.set(key, v(id));
  }
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
  // Keep the keyboard where it was: the same ticket's link, if still shown.
  const focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest("#rows tr")
    ? document.activeElement.closest("tr").dataset.id
    : null;
  const rows = list.tickets.map(row);
  $("rows").replaceChildren(...rows);
  if (!rows.length) {
    $("rows").append(h("tr", {}, h("td", { colspan: 6, class: "empty" },
      list.total ? "No tickets on this page." : "No tickets match. Clear the filters or choose All.")));
  }
  if (focusedId) {
    const link = document.querySelector(`#rows tr[data-id="${CSS.escape(focusedId)}"] a`);
    if (link) link.focus();
  }
  const first = list.total ? list.offset + 1 : 0;
  const last = list.offset + list.tickets.length;
  $("shown").textContent = `${first}–${last} of ${list.total} tickets`;
  $("prev").disabled = list.offset === 0;
  $("next").disabled = last >= list.total;
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.setAttribute("aria-sort", th.dataset.sort === list.sort ? (list.desc ? "descending" : "ascending") : "none");
  }
}

function row(t) {
  const waiting = t.status === "open" && !t.assignee;
  const assignee = t.assignee ? (t.assignee.startsWith("team:") ? `Team ${t.assignee.slice(5)}` : t.assignee) : "Unassigned";
  return h("tr", { "data-id": t.id, "data-color": (t.sla && t.sla.color) || "none" },
    h("td", { class: "subject" },
      h("a", { href: `#/tickets/${encodeURIComponent(t.id)}` }, t.subject || "(no subject)"),
      h("div", { class: "meta" },
        h("span", { class: "id" }, String(t.id).slice(0, 8)),
        h("span", { class: "narrow-only" }, ` · ${label(t.priority)} · ${assignee}`))),
    h("td", { class: "wide" }, label(t.priority)),
    h("td", {}, label(t.status),
      waiting ? h("div", { class: "waiting", "data-waiting-since": t.created_at },
        `waiting ${human((clock.now() - Date.parse(t.created_at)) / 1000)}`) : null),
    h("td", { class: "wide" }, assignee),
    h("td", { class: "wide" }, timeEl(t.created_at)),
    h("td", {}, badge(t.sla)));
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
