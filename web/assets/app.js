// The page's entry point: sign-in (relay) or session check (app), the
// header's sync status, hash routing (`#/`, `#/new`, `#/tickets/ID`, so the
// browser's back and forward work; `#/inbox` the app's Inbox), live updates, the Export dialog and the
// keyboard shortcuts.

import { api, ApiError, readOnly, hasToken, setToken, follow, download } from "./api.js";
import { $, tickBadges, time, setOptions } from "./dom.js";
import { state, mayExport, online, categories, titled } from "./state.js";
import { initList, loadList, refreshChoices, moveInList, readUrl, listFilters, toggleFocusedRow } from "./list.js";
import { initDetail, showDetail, refreshDetail } from "./detail.js";
import { initForm, openForm, refreshFormChoices, fromConversation } from "./form.js";
import { initInbox, loadInbox } from "./inbox.js";

const SCREENS = ["signin", "list", "new", "detail", "inbox"];
let stopFollowing = null;
let linkUp = true;
let lastLive = null;

function screen(name) {
  for (const s of SCREENS) $(`screen-${s}`).hidden = s !== name;
}

function visible(name) {
  return !$(`screen-${name}`).hidden;
}

function banner(text) {
  $("banner").textContent = text || "";
  $("banner").hidden = !text;
}

function route() {
  if (!state.me) return;
  const hash = location.hash || "#/";
  const m = hash.match(/^#\/tickets\/([^/?#]+)$/);
  if (m) {
    screen("detail");
    // Opening a ticket clears its "New for you" mark: the header's and the
    // title's counts follow at once, not at the next change event.
    Promise.resolve(showDetail(decodeURIComponent(m[1]))).then(() => {
      if (!readOnly) refreshSyncStatus();
    });
  } else if (hash === "#/inbox" && !readOnly) {
    const fromElsewhere = !visible("inbox");
    screen("inbox");
    document.title = titled("Inbox · Tickets");
    loadInbox();
    if (fromElsewhere) $("inbox-h").focus();
  } else if (hash === "#/new" && !readOnly) {
    screen("new");
    document.title = titled("New ticket · Tickets");
    openForm();
    $("new-h").focus();
  } else {
    const fromElsewhere = !visible("list");
    screen("list");
    document.title = titled("Tickets");
    readUrl();
    loadList();
    if (!readOnly) refreshSyncStatus();
    if (fromElsewhere) $("list-h").focus();
  }
}

// ---- live updates -------------------------------------------------------

let refreshing = false, again = false;
/// Re-fetches what is on screen; changes arriving meanwhile cause one more.
async function refreshVisible() {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    do {
      again = false;
      // A local change moves the count of changes not yet pushed.
      const status = readOnly ? null : refreshSyncStatus();
      if (visible("detail")) await refreshDetail();
      else if (visible("list")) await loadList();
      else if (visible("inbox")) await loadInbox();
      await status;
    } while (again);
  } finally {
    refreshing = false;
  }
  lastLive = new Date().toISOString();
  if (readOnly) renderSync();
}

// Status answers can cross on the way back (a fetch after a change, another
// after a route): an answer older than one already shown is dropped, so a
// count the node has moved past (a ticket just opened, no longer new) never
// comes back on screen.
let statusAsked = 0, statusShown = 0;
async function refreshSyncStatus() {
  const mine = ++statusAsked;
  try {
    const s = await api("/v1/sync/status");
    if (mine < statusShown) return;
    statusShown = mine;
    onSync(s);
  } catch {
    /* the event stream reports a lost link */
  }
}

function onSync(s) {
  const before = state.sync && state.sync.state;
  state.sync = s;
  renderSync();
  if (before !== s.state) {
    // A sync may bring a new taxonomy, people and access; offline changes
    // what Export can do.
    reloadNodeState();
    refreshVisible();
  }
}

function onLink(up, why) {
  if (why === "signed-out") return signedOut();
  if (linkUp !== up) {
    linkUp = up;
    renderSync();
  }
}

function renderSync() {
  const el = $("sync-status");
  let text;
  let why = "";
  if (readOnly) {
    text = linkUp ? `Live · updated ${time(lastLive || new Date().toISOString())}` : "Offline: the relay cannot be reached";
  } else if (!linkUp) {
    text = "Disconnected from the app";
    why = "The page cannot reach `tickets app`: is it still running? Start it again and open the URL it prints.";
  } else {
    const s = state.sync;
    if (!s) text = "Sync status unknown";
    else {
      // Offline is an ordinary state for a field device: one calm line,
      // with the relay's error only on demand (Details).
      const n = Number(s.pending) || 0;
      const changes = `${n} change${n === 1 ? "" : "s"}`;
      const parts = [];
      if (s.state === "offline") {
        parts.push("Offline");
        parts.push(n ? `${changes} saved on this device` : "nothing waiting to be sent");
      } else {
        if (s.state === "syncing") parts.push("Syncing");
        else if (s.state === "synced") parts.push(`Synced ${s.last_sync_at ? time(s.last_sync_at) : ""}`.trim());
        else parts.push("Local only: not registered with a relay");
        if (n) parts.push(`${changes} not yet pushed`);
        else if (s.state !== "local") parts.push("nothing to push");
      }
      if (s.refused) parts.push(`${s.refused} refused by the relay`);
      if (s.damaged) parts.push(`${s.damaged} damaged`);
      text = parts.join(" · ");
      if (s.state === "offline") {
        why = `The relay cannot be reached now, so changes wait on this device and are sent once it can${
          s.error ? ` (last attempt: ${s.error})` : ""}.`;
      }
    }
    const btn = $("sync-now");
    btn.hidden = !s || s.state === "local";
    btn.disabled = !!s && s.state === "syncing";
  }
  if (el.textContent !== text) el.textContent = text;
  // Tickets someone else assigned to this agent and not opened yet.
  const fresh = !readOnly && state.sync ? Number(state.sync.new_for_you) || 0 : 0;
  const link = $("new-count");
  link.hidden = fresh === 0;
  link.textContent = fresh ? `${fresh} new for you` : "";
  if (state.me) link.href = `#/?assignee=${encodeURIComponent(state.me.agent)}`;
  if (document.title !== titled(document.title)) document.title = titled(document.title);
  const details = $("sync-details");
  details.hidden = !why;
  if ($("sync-why").textContent !== why) $("sync-why").textContent = why;
  el.dataset.state = readOnly ? (linkUp ? "synced" : "offline") : linkUp && state.sync ? state.sync.state : "offline";
  if ($("export-dialog").open) exportAvailability();
}

async function reloadNodeState() {
  if (readOnly) return;
  try {
    state.me = await api("/v1/me");
  } catch {
    /* keep what we had */
  }
  try {
    state.directory = { ...state.directory, ...(await api("/v1/directory")) };
  } catch {
    /* a node without a directory accepts any category and assignee */
  }
  showActions();
  refreshChoices();
  if (visible("new")) refreshFormChoices();
}

function showActions() {
  const me = state.me;
  $("new-ticket").hidden = readOnly || !me;
  $("inbox-link").hidden = readOnly || !me;
  $("from-conversation").hidden = readOnly || !me;
  $("export-open").hidden = !mayExport();
  $("sign-out").hidden = !readOnly || !me;
  $("who").textContent = me ? `${me.agent} (${me.role}${me.team ? `, ${me.team}` : ""})` : "";
}

// ---- sessions -----------------------------------------------------------

function signedOut() {
  if (stopFollowing) stopFollowing();
  stopFollowing = null;
  if (readOnly) {
    const had = hasToken();
    setToken("");
    state.me = null;
    showActions();
    showSignIn(had ? "That token is not valid any more; sign in again." : "");
  } else {
    banner("This session has ended: open the URL that `tickets app` printed (start it again if it stopped).");
  }
}

function showSignIn(message) {
  screen("signin");
  $("signin-error").textContent = message || "";
  $("sync-status").textContent = "Signed out";
  $("token").focus();
}

async function signIn(tokenText) {
  if (tokenText !== null) setToken(tokenText.trim());
  let me;
  try {
    me = await api("/v1/me");
  } catch (e) {
    setToken("");
    showSignIn(e instanceof ApiError && e.status === 401
      ? "Unknown or revoked token. Use a lead's or admin's token from `tickets relay agent add`."
      : `Sign-in failed: ${e.message}`);
    return;
  }
  if (me.role !== "lead" && me.role !== "admin") {
    setToken("");
    showSignIn(`The dashboard is for leads and admins only; ${me.agent} is an ${me.role}. Agents work in \`tickets app\` on their own node.`);
    return;
  }
  state.me = me;
  $("token").value = "";
  $("signin-error").textContent = "";
  showActions();
  linkUp = true;
  lastLive = new Date().toISOString();
  renderSync();
  stopFollowing = follow(Number(me.seq) || 0, refreshVisible, () => {}, onLink);
  screen("list");
  route();
}

async function startApp() {
  try {
    state.me = await api("/v1/me");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      banner("This page needs the session of `tickets app`: open the URL it printed (http://127.0.0.1:PORT/?session=…).");
    } else {
      banner(`The app could not start: ${e.message}`);
    }
    $("sync-status").textContent = "Not connected";
    return;
  }
  try {
    state.sync = await api("/v1/sync/status");
  } catch {
    state.sync = null;
  }
  await reloadNodeState();
  renderSync();
  // A sync event says the sync state moved; its counts were read when the
  // server noticed, so the page asks for the status afresh rather than
  // showing an answer that may be older than one it already has.
  stopFollowing = follow(0, refreshVisible, (s) => (readOnly ? onSync(s) : refreshSyncStatus()), onLink);
  route();
}

// ---- export -------------------------------------------------------------

function exportAvailability() {
  const off = !readOnly && !online();
  const why = $("export-why");
  why.hidden = !off;
  why.textContent = off
    ? "Export is not available offline: it downloads the relay's authoritative data, and the relay cannot be reached now. Try again once the header says Synced."
    : "";
  $("x-download").disabled = off;
}

function openExport() {
  setOptions($("x-category"), [["", "Any"], ...categories().map((c) => [c, c])]);
  // The list's own filters, where the export can take them.
  const f = listFilters();
  $("x-status").value = [...$("x-status").options].some((o) => o.value === f.status) ? f.status : "";
  $("x-category").value = [...$("x-category").options].some((o) => o.value === f.category) ? f.category : "";
  $("export-error").textContent = "";
  exportAvailability();
  $("export-dialog").showModal();
}

async function runExport() {
  const p = new URLSearchParams();
  const format = $("x-format").value;
  p.set("format", format);
  for (const [k, id] of [["from", "x-from"], ["to", "x-to"], ["status", "x-status"], ["category", "x-category"]]) {
    if ($(id).value) p.set(k, $(id).value);
  }
  if ($("x-from").value && $("x-to").value && $("x-from").value > $("x-to").value) {
    $("export-error").textContent = "From is after To: choose a From date on or before the To date.";
    return;
  }
  $("export-error").textContent = "Downloading…";
  $("x-download").disabled = true;
  try {
    await download(`/v1/export?${p}`, `tickets.${format}`);
    $("export-error").textContent = "";
    $("export-dialog").close();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      $("export-dialog").close();
      return signedOut();
    }
    $("export-error").textContent = e.code === "offline"
      ? "Not exported: the relay cannot be reached now, and exports come from the relay. Try again once the header says Synced."
      : `Not exported: ${e.message}`;
  } finally {
    exportAvailability();
  }
}

// ---- keyboard -----------------------------------------------------------

function onKey(e) {
  if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
  if (!state.me || document.querySelector("dialog[open]")) return;
  const t = e.target;
  if (t instanceof Element && t.closest("input, textarea, select, [contenteditable]")) return;
  if (e.key === "/") {
    e.preventDefault();
    if (!visible("list")) location.hash = "#/";
    screen("list");
    $("f-search").focus();
  } else if ((e.key === "j" || e.key === "k") && visible("list")) {
    e.preventDefault();
    moveInList(e.key === "j" ? 1 : -1);
  } else if (e.key === "x" && visible("list") && !readOnly) {
    e.preventDefault();
    toggleFocusedRow();
  } else if (e.key === "c" && !readOnly) {
    e.preventDefault();
    location.hash = "#/new";
  } else if (e.key === "i" && !readOnly) {
    e.preventDefault();
    location.hash = "#/inbox";
  } else if (e.key === "?") {
    e.preventDefault();
    $("keys-dialog").showModal();
  }
}

// ---- start --------------------------------------------------------------

function start() {
  initList(signedOut);
  initDetail(signedOut);
  initForm(signedOut);
  initInbox(signedOut);
  // Back and forward between list states are pushState entries (popstate);
  // a followed link is a hashchange. Both fire for some moves: route once.
  let navPending = false;
  const onNav = () => {
    if (navPending) return;
    navPending = true;
    setTimeout(() => {
      navPending = false;
      route();
    }, 0);
  };
  window.addEventListener("hashchange", onNav);
  window.addEventListener("popstate", onNav);
  // At phone width the filters other than Search fold away behind a button.
  $("filters-toggle").addEventListener("click", () => {
    const open = $("filters-toggle").getAttribute("aria-expanded") !== "true";
    $("filters-toggle").setAttribute("aria-expanded", String(open));
  });
  document.addEventListener("keydown", onKey);
  setInterval(tickBadges, 1000);

  $("new-ticket").addEventListener("click", () => { location.hash = "#/new"; });
  $("from-conversation").addEventListener("click", () => $("conversation-file").click());
  $("conversation-file").addEventListener("change", (e) => {
    const f = e.target.files && e.target.files[0];
    e.target.value = "";
    if (f) fromConversation(f);
  });
  $("sync-now").addEventListener("click", async () => {
    $("sync-now").disabled = true;
    try {
      await api("/v1/sync/now", { method: "POST", body: {} });
    } catch (err) {
      banner(`Sync now failed: ${err.message}`);
    } finally {
      renderSync();
    }
  });
  $("export-open").addEventListener("click", openExport);
  $("x-download").addEventListener("click", runExport);
  $("x-close").addEventListener("click", () => $("export-dialog").close());
  $("keys-open").addEventListener("click", () => $("keys-dialog").showModal());
  $("sign-out").addEventListener("click", () => {
    setToken("");
    signedOut();
  });
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("token").value);
  });

  if (readOnly) {
    if (hasToken()) signIn(null);
    else showSignIn("");
  } else {
    startApp();
  }
}

start();
