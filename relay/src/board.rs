//! Authoritative ticket objects for the board and exports, once for every
//! backend: each stored row with live SLA figures, and its internal notes
//! only for agents permitted to read them.

use tickets_core::index::{self, ListQuery};
use tickets_core::sla::SlaSettings;

use crate::store::{ExportFilter, RelayStore, StoreError, TicketRow};

/// The notes a reader gets of a row: `[]` when permitted but none were
/// written, nothing when not permitted.
fn notes_for(row: &TicketRow, notes_ok: bool) -> Option<String> {
    notes_ok.then(|| row.notes.clone().unwrap_or_else(|| "[]".into()))
}

fn live(row: &TicketRow, notes_ok: bool, settings: &SlaSettings, now: i64) -> Result<serde_json::Value, StoreError> {
    index::live_object(&row.view, &row.sla_input, notes_for(row, notes_ok).as_deref(), settings, now, false)
        .map_err(StoreError::Damaged)
}

/// Authoritative ticket objects matching a query, and the match count.
pub fn tickets<S: RelayStore + ?Sized>(
    store: &S,
    q: &ListQuery,
    now: i64,
    notes_ok: bool,
) -> Result<(Vec<serde_json::Value>, usize), StoreError> {
    let settings = store.sla_settings()?;
    let (rows, total) = store.ticket_rows(q, now)?;
    let out = rows.iter().map(|r| live(r, notes_ok, &settings, now)).collect::<Result<Vec<_>, _>>()?;
    Ok((out, total))
}

/// One ticket's authoritative object, by exact id.
pub fn ticket<S: RelayStore + ?Sized>(
    store: &S,
    id: &str,
    now: i64,
    notes_ok: bool,
) -> Result<Option<serde_json::Value>, StoreError> {
    let Some(row) = store.ticket_row(id)? else { return Ok(None) };
    let settings = store.sla_settings()?;
    live(&row, notes_ok, &settings, now).map(Some)
}

/// One page of an export, in id order after `after`: each ticket's object
/// with live SLA figures (and notes when the filter asks and the exporter
/// may read them: [`ExportFilter::notes`]).
pub fn export_page<S: RelayStore + ?Sized>(
    store: &S,
    f: &ExportFilter,
    after: &str,
    limit: usize,
    now: i64,
    settings: &SlaSettings,
) -> Result<Vec<serde_json::Value>, StoreError> {
    store.export_rows(f, after, limit)?.iter().map(|r| live(r, f.notes, settings, now)).collect()
}

/// Like [`export_page`], as JSON text per ticket (no parsing).
pub fn export_page_text<S: RelayStore + ?Sized>(
    store: &S,
    f: &ExportFilter,
    after: &str,
    limit: usize,
    now: i64,
    settings: &SlaSettings,
) -> Result<Vec<(String, String)>, StoreError> {
    store
        .export_rows(f, after, limit)?
        .into_iter()
        .map(|r| {
            index::live_text(&r.view, &r.sla_input, notes_for(&r, f.notes).as_deref(), settings, now, false)
                .map(|t| (r.id, t))
                .map_err(StoreError::Damaged)
        })
        .collect()
}
