//! Export pages: the tickets an export selects, in id order, a page at a
//! time from one read snapshot.

use super::{Conn, Ctx};
use crate::store::{ExportFilter, StoreError, TicketRow};

impl Conn {
    /// The stored rows of one export page, in id order after `after`.
    pub fn export_rows(&self, f: &ExportFilter, after: &str, limit: usize) -> Result<Vec<TicketRow>, StoreError> {
        let (sql, args) = export_sql(f, after, limit);
        let mut st = self.c.prepare_cached(&sql).db(&self.path)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok(TicketRow { view: r.get(0)?, sla_input: r.get(1)?, notes: r.get(2)?, id: r.get(3)? })
            })
            .db(&self.path)?;
        rows.collect::<Result<Vec<_>, _>>().db(&self.path)
    }

    /// How many tickets an export will carry.
    pub fn export_count(&self, f: &ExportFilter) -> Result<u64, StoreError> {
        let mut args = Vec::new();
        let sql = format!("SELECT count(*) FROM tickets t WHERE {}", export_filter(f, &mut args));
        let n: i64 = self.c.query_row(&sql, rusqlite::params_from_iter(args.iter()), |r| r.get(0)).db(&self.path)?;
        Ok(n as u64)
    }

    /// Gives this connection SQLite's default 2 MiB page cache (for reads
    /// that touch every page once, such as exports).
    pub fn use_small_cache(&self) -> Result<(), StoreError> {
        self.c.pragma_update(None, "cache_size", -2048).db(&self.path)
    }

    /// Starts a read transaction: every query until [`Conn::end_read`] sees
    /// one snapshot of the database (an export is one consistent picture).
    pub fn begin_read(&self) -> Result<(), StoreError> {
        self.c.execute_batch("BEGIN DEFERRED").db(&self.path)?;
        // A deferred transaction takes its snapshot at its first read.
        self.c.query_row("SELECT count(*) FROM settings", [], |r| r.get::<_, i64>(0)).db(&self.path)?;
        Ok(())
    }

    pub fn end_read(&self) -> Result<(), StoreError> {
        self.c.execute_batch("COMMIT").db(&self.path)
    }
}

/// The SQL of one export page: (view_json, sla_input, notes_json, id) of
/// the tickets after `after` in id order.
fn export_sql(f: &ExportFilter, after: &str, limit: usize) -> (String, Vec<rusqlite::types::Value>) {
    let mut args: Vec<rusqlite::types::Value> = vec![after.to_string().into()];
    // Pages walk the id index (keyset pagination); the filter's `+` terms
    // keep SQLite from walking the created_at index instead, which would
    // re-read and sort every matching row for every page.
    let filter = export_filter(f, &mut args);
    args.push((limit as i64).into());
    let sql = format!(
        "SELECT v.view_json, s.input, v.notes_json, t.id FROM tickets t JOIN ticket_views v ON v.id = t.id
         JOIN sla_inputs s ON s.id = t.id
         WHERE t.id > ?1 AND {filter} ORDER BY t.id LIMIT ?{}",
        args.len()
    );
    (sql, args)
}

/// The WHERE terms of an export's filter over `tickets t`, binding numbered
/// parameters after those already in `args`.
fn export_filter(f: &ExportFilter, args: &mut Vec<rusqlite::types::Value>) -> String {
    args.push(f.from_ms.into());
    let from = args.len();
    args.push(f.to_ms.into());
    let mut sql = format!("+t.created_at >= ?{from} AND +t.created_at < ?{}", from + 1);
    for (col, values) in [("status", &f.statuses), ("category", &f.categories)] {
        if values.is_empty() {
            continue;
        }
        let marks: Vec<String> = values
            .iter()
            .map(|v| {
                args.push(v.clone().into());
                format!("?{}", args.len())
            })
            .collect();
        sql.push_str(&format!(" AND +t.{col} IN ({})", marks.join(", ")));
    }
    sql
}
