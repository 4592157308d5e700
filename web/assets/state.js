// What every screen shares: who is signed in, the node's directory and its
// sync status.

export const state = {
  /// `GET /v1/me`: agent, role, team, internal_notes (and on the app:
  /// export, relay, offline).
  me: null,
  /// `GET /v1/directory` on the app: categories, agents, teams,
  /// priorities, statuses. The relay has none; its lists come from the
  /// tickets seen.
  directory: { categories: [], agents: [], teams: [], priorities: [], statuses: [] },
  /// `GET /v1/sync/status` on the app.
  sync: null,
  /// Categories and assignees seen on tickets (the relay's only source).
  seenCategories: new Set(),
  seenAssignees: new Set(),
};

export function mayExport() {
  const me = state.me;
  if (!me) return false;
  if (typeof me.export === "boolean") return me.export;
  return me.role === "lead" || me.role === "admin";
}

/// Whether the relay can be reached from here (always on the relay host).
export function online() {
  const s = state.sync;
  return !s || s.state === "synced" || s.state === "syncing";
}

export function categories() {
  const set = new Set(state.directory.categories || []);
  for (const c of state.seenCategories) set.add(c);
  return [...set].sort();
}

/// [value, label] pairs of the people and teams a ticket may be assigned to.
export function assignees() {
  const out = new Map();
  for (const a of state.directory.agents || []) out.set(a.name, a.team ? `${a.name} (${a.team})` : a.name);
  for (const t of state.directory.teams || []) out.set(`team:${t}`, `Team ${t}`);
  for (const a of state.seenAssignees) if (!out.has(a)) out.set(a, a.startsWith("team:") ? `Team ${a.slice(5)}` : a);
  if (state.me && !out.has(state.me.agent)) out.set(state.me.agent, state.me.agent);
  return [...out.entries()].sort((x, y) => x[1].localeCompare(y[1]));
}

/// A page title with the count of tickets new for this agent (someone
/// else assigned them, not opened since): "(2) Tickets".
export function titled(text) {
  const base = String(text).replace(/^\(\d+\) /, "");
  const n = state.sync ? Number(state.sync.new_for_you) || 0 : 0;
  return n > 0 ? `(${n}) ${base}` : base;
}
