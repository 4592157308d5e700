// DOM building and formatting. Text from tickets only ever goes into the
// page through text nodes (`textContent`, `new Text`), never as markup.

export const $ = (id) => document.getElementById(id);

/// h("p", {class: "x", onclick: f}, "text", child) builds an element.
/// Attribute values are set with setAttribute; children are nodes or
/// strings (made into text nodes).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/// Replaces a select's options with [value, label] pairs, keeping the
/// chosen value when it is still offered.
export function setOptions(select, pairs, keep = select.value) {
  const same = select.options.length === pairs.length &&
    pairs.every(([v, l], i) => select.options[i].value === v && select.options[i].text === l);
  if (!same) select.replaceChildren(...pairs.map(([v, l]) => new Option(l, v)));
  if (pairs.some(([v]) => v === keep)) select.value = keep;
}

/// "3d 4h", "2h 5m", "4m 10s", "12s".
export function human(secs) {
  secs = Math.max(0, Math.floor(secs));
  const d = Math.floor(secs / 86400), hr = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60), s = secs % 60;
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

export function when(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso || "";
  return new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function time(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? "" : new Date(t).toLocaleTimeString();
}

/// A `<time>` element for an instant.
export function timeEl(iso) {
  return h("time", { datetime: iso || "" }, when(iso));
}

/// The server's clock minus ours, so countdowns agree with the server.
export const clock = { skew: 0, now: () => Date.now() + clock.skew };

/// The text of one SLA metric (first response or resolution).
export function metricText(m) {
  if (!m || m.state === "none") return "no target for this priority";
  if (m.state === "met") return "met";
  if (m.state === "breached") return m.overrun_secs ? `breached by ${human(m.overrun_secs)}` : "breached";
  const due = Date.parse(m.due_at);
  if (Number.isNaN(due)) return m.state;
  const left = (due - clock.now()) / 1000;
  return left >= 0 ? `${m.state} · ${human(left)} left` : `${m.state} · ${human(-left)} overdue`;
}

const CLOCK_NAMES = { first_response: "First response", resolution: "Resolution" };

/// The ticket's one-line SLA, naming the clock that decides its colour
/// ("First response 23m overdue", "Resolution 3h 5m left"): the server's
/// `label`, kept counting down from that clock's due time; from the
/// clocks themselves when the server sends no label.
export function slaText(sla) {
  sla = sla || {};
  const provisional = sla.provisional ? " · provisional" : "";
  const decisive = sla.clock && sla[sla.clock];
  if (decisive && !decisive.stopped_at && decisive.due_at && CLOCK_NAMES[sla.clock]) {
    const left = (Date.parse(decisive.due_at) - clock.now()) / 1000;
    if (!Number.isNaN(left)) {
      return `${CLOCK_NAMES[sla.clock]} ${left >= 0 ? `${human(left)} left` : `${human(-left)} overdue`}${provisional}`;
    }
  }
  if (typeof sla.label === "string" && sla.label) return sla.label + provisional;
  const color = sla.color || "none";
  const running = ["first_response", "resolution"]
    .map((k) => [k, sla[k]])
    .filter(([, m]) => m && !m.stopped_at && m.due_at)
    .sort((a, b) => Date.parse(a[1].due_at) - Date.parse(b[1].due_at));
  let text = color === "none" ? "No SLA" : color;
  if (running.length) {
    const [k, m] = running[0];
    const left = (Date.parse(m.due_at) - clock.now()) / 1000;
    text = `${CLOCK_NAMES[k]} ${left >= 0 ? `${human(left)} left` : `${human(-left)} overdue`}`;
  } else if (sla.resolution && sla.resolution.state === "met") {
    text = "Met";
  } else if (sla.resolution && sla.resolution.state === "breached") {
    text = "Resolution breached";
  }
  return text + provisional;
}

/// A badge that keeps counting down (see `tickBadges`).
export function badge(sla, metric) {
  const color = metric ? (metric.state === "breached" ? "red" : metric.state || "none") : (sla && sla.color) || "none";
  const el = h("span", { class: `badge ${color}`, "data-color": color });
  el.ticketSla = sla;
  el.metric = metric;
  el.textContent = metric ? metricText(metric) + (sla && sla.provisional ? " · provisional" : "") : slaText(sla);
  return el;
}

/// Refreshes the countdown of every badge on the page.
export function tickBadges() {
  for (const el of document.querySelectorAll(".badge")) {
    if (!el.ticketSla && !el.metric) continue;
    const text = el.metric
      ? metricText(el.metric) + (el.ticketSla && el.ticketSla.provisional ? " · provisional" : "")
      : slaText(el.ticketSla);
    if (el.textContent !== text) el.textContent = text;
  }
  for (const el of document.querySelectorAll("[data-waiting-since]")) {
    const text = `waiting ${human((clock.now() - Date.parse(el.dataset.waitingSince)) / 1000)}`;
    if (el.textContent !== text) el.textContent = text;
  }
}

export function label(s) {
  return s ? s.charAt(0).toUpperCase() + s.slice(1).replace("-", " ") : s;
}

/// Asks before closing `count` tickets (closed is final); resolves to
/// whether the user chose `Close ticket`.
export function confirmClose(count = 1) {
  const d = $("close-dialog");
  $("close-h").textContent = count > 1 ? `Close ${count} tickets?` : "Close ticket?";
  return new Promise((resolve) => {
    const done = (yes) => {
      d.removeEventListener("close", onClose);
      $("close-confirm").onclick = null;
      $("close-cancel").onclick = null;
      if (d.open) d.close();
      resolve(yes);
    };
    const onClose = () => done(false);
    d.addEventListener("close", onClose);
    $("close-confirm").onclick = () => done(true);
    $("close-cancel").onclick = () => done(false);
    d.showModal();
    $("close-cancel").focus();
  });
}
