//! The ticket index as the board reads it: filtered and sorted pages,
//! single tickets, id prefixes and colour counts.

use rusqlite::{params, OptionalExtension};
use tickets_core::index::{self, ListQuery, ListSql, SqlArg};

use super::{Conn, Ctx};
use crate::store::{StoreError, TicketRow};

impl Conn {
    /// The stored rows of the tickets matching a query, and the match
    /// count.
    pub fn ticket_rows(&self, q: &ListQuery, now: i64) -> Result<(Vec<TicketRow>, usize), StoreError> {
        let ListSql { filter, tail, args } = q.to_sql(now);
        let sql = format!("SELECT id FROM tickets{filter}{tail}");
        let count_sql = format!("SELECT count(*) FROM tickets{filter}");
        let values: Vec<(String, rusqlite::types::Value)> = args
            .into_iter()
            .map(|(n, a)| {
                let v = match a {
                    SqlArg::Int(i) => rusqlite::types::Value::Integer(i),
                    SqlArg::Text(t) => rusqlite::types::Value::Text(t),
                };
                (n, v)
            })
            .collect();
        let used = |sql: &str| -> Vec<(&str, &dyn rusqlite::ToSql)> {
            values
                .iter()
                .filter(|(n, _)| sql.contains(n.as_str()))
                .map(|(n, v)| (n.as_str(), v as &dyn rusqlite::ToSql))
                .collect()
        };
        let ids: Vec<String> = {
            let mut st = self.c.prepare(&sql).db(&self.path)?;
            let r = st.query_map(used(&sql).as_slice(), |r| r.get(0)).db(&self.path)?;
            r.collect::<Result<Vec<_>, _>>().db(&self.path)?
        };
        let mut view = self
            .c
            .prepare_cached(
                "SELECT v.view_json, s.input, v.notes_json FROM ticket_views v JOIN sla_inputs s ON s.id = v.id
                 WHERE v.id = ?1",
            )
            .db(&self.path)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = view
                .query_row([&id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?)))
                .optional()
                .db(&self.path)?;
            out.extend(row.map(|(view, sla_input, notes)| TicketRow { id, view, sla_input, notes }));
        }
        let total = if q.limit.is_some_and(|l| out.len() >= l) {
            let mut st = self.c.prepare(&count_sql).db(&self.path)?;
            let n: i64 = st.query_row(used(&count_sql).as_slice(), |r| r.get(0)).db(&self.path)?;
            n as usize
        } else {
            out.len()
        };
        Ok((out, total))
    }

    /// One ticket's stored row, by exact id.
    pub fn ticket_row(&self, id: &str) -> Result<Option<TicketRow>, StoreError> {
        let row = self
            .c
            .prepare_cached(
                "SELECT v.view_json, s.input, v.notes_json FROM ticket_views v JOIN sla_inputs s ON s.id = v.id
                 WHERE v.id = ?1",
            )
            .db(&self.path)?
            .query_row([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?)))
            .optional()
            .db(&self.path)?;
        Ok(row.map(|(view, sla_input, notes)| TicketRow { id: id.to_string(), view, sla_input, notes }))
    }

    /// Ids starting with a prefix (at most `max`).
    pub fn ids_with_prefix(&self, prefix: &str, max: usize) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .c
            .prepare_cached("SELECT id FROM tickets WHERE id >= ?1 AND id < ?1 || x'ff' ORDER BY id LIMIT ?2")
            .db(&self.path)?;
        let rows = st.query_map(params![prefix, max as i64], |r| r.get(0)).db(&self.path)?;
        rows.collect::<Result<Vec<String>, _>>().db(&self.path)
    }

    /// Counts of tickets per live SLA colour, by the one definition in
    /// core (`json::ticket_color`, as SQL in `index`): red, yellow, met and
    /// none through their indexes, green as the rest (the five split every
    /// ticket exactly once).
    pub fn color_counts(&self, now: i64) -> Result<index::SlaCounts, StoreError> {
        let count = |filter: &str| -> Result<u64, StoreError> {
            let sql = format!("SELECT count(*) FROM tickets WHERE {filter}");
            let mut st = self.c.prepare_cached(&sql).db(&self.path)?;
            let n: i64 = if filter.contains(":now") {
                st.query_row(rusqlite::named_params! {":now": now}, |r| r.get(0))
            } else {
                st.query_row([], |r| r.get(0))
            }
            .db(&self.path)?;
            Ok(n as u64)
        };
        let total: i64 = self.c.query_row("SELECT count(*) FROM tickets", [], |r| r.get(0)).db(&self.path)?;
        let red = count(index::SLA_RED_SQL)?;
        let yellow = count(index::SLA_YELLOW_SQL)?;
        let none = count(index::SLA_NONE_SQL)?;
        let met = count(index::SLA_MET_SQL)?;
        let green = (total as u64).saturating_sub(red + yellow + none + met);
        Ok(index::SlaCounts { green, yellow, red, met, none })
    }

    /// The earliest instant after `now` at which some ticket changes colour.
    pub fn next_color_change(&self, now: i64) -> Result<Option<i64>, StoreError> {
        let mut best: Option<i64> = None;
        for col in ["fr_warn", "fr_due", "res_warn", "res_due"] {
            let sql = format!("SELECT min({col}) FROM tickets WHERE {col} > ?1");
            let v: Option<i64> = self.c.query_row(&sql, [now], |r| r.get(0)).db(&self.path)?;
            if let Some(v) = v {
                best = Some(best.map_or(v, |b: i64| b.min(v)));
            }
        }
        Ok(best)
    }
}

/// Columns added to `tickets` within a schema version: added when missing.
pub(super) fn add_columns(c: &rusqlite::Connection, path: &std::path::Path) -> Result<(), StoreError> {
    let has: bool = c
        .query_row("SELECT count(*) FROM pragma_table_info('tickets') WHERE name = 'sla_late'", [], |r| r.get(0))
        .db(path)?;
    if !has {
        c.execute_batch("ALTER TABLE tickets ADD COLUMN sla_late INTEGER").db(path)?;
    }
    Ok(())
}

/// Re-indexes every ticket from its stored JSON and SLA input when the rows
/// were indexed by an older [`index::INDEX_FORMAT`] (`settings` key
/// `index_format`): SLA columns and search text, in one write transaction,
/// checked again inside it (another process may have done it meanwhile).
/// A row that cannot be read keeps what it had.
pub(super) fn reindex_if_stale(c: &mut Conn) -> Result<(), StoreError> {
    let path = c.path.clone();
    let format = |tx: &rusqlite::Connection| -> Result<i64, StoreError> {
        let v: Option<String> = tx
            .query_row("SELECT value FROM settings WHERE key = 'index_format'", [], |r| r.get(0))
            .optional()
            .db(&path)?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(1))
    };
    if format(&c.c)? >= index::INDEX_FORMAT {
        return Ok(());
    }
    let tx = c.c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).db(&path)?;
    if format(&tx)? >= index::INDEX_FORMAT {
        return Ok(());
    }
    let settings: tickets_core::sla::SlaSettings =
        super::admin::sla_settings_text(&tx, &path)?.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    super::admin::recompute_sla(&tx, &path, &settings, now)?;
    let rows: Vec<(String, String)> = {
        let mut st = tx.prepare("SELECT id, view_json FROM ticket_views").db(&path)?;
        let r = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).db(&path)?;
        r.collect::<Result<Vec<_>, _>>().db(&path)?
    };
    {
        let mut st = tx.prepare("INSERT OR REPLACE INTO ticket_search (id, text) VALUES (?1, ?2)").db(&path)?;
        for (id, view) in rows {
            if let Ok(text) = tickets_core::search::search_text_of_json(&view) {
                st.execute(params![id, text]).db(&path)?;
            }
        }
    }
    tx.execute(
        "INSERT INTO settings (key, value) VALUES ('index_format', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [index::INDEX_FORMAT.to_string()],
    )
    .db(&path)?;
    tx.commit().db(&path)
}
