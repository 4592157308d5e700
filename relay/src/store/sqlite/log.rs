//! Documents and the change log: what a push reads before merging, the
//! commit of a push page, pull reads and the heads.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, OptionalExtension, Transaction};
use tickets_core::doc::DocKind;
use tickets_core::index::IndexEntry;

use super::admin::sla_settings_text;
use super::{Conn, Ctx};
use crate::store::{
    Commit, Heads, PageWrite, PullQuery, PullRow, PullSink, Snapshot, StoreError, StoredDoc, TicketSnapshot,
};

impl Conn {
    /// The heads of the change log (see [`Heads`]).
    pub fn heads(&self) -> Result<Heads, StoreError> {
        let tickets: Option<i64> =
            self.c.query_row("SELECT max(seq) FROM changes WHERE kind = 'ticket'", [], |r| r.get(0)).db(&self.path)?;
        Ok(Heads { all: self.max_seq()?, tickets: tickets.unwrap_or(0) as u64 })
    }

    pub fn max_seq(&self) -> Result<u64, StoreError> {
        let n: Option<i64> = self.c.query_row("SELECT max(seq) FROM changes", [], |r| r.get(0)).db(&self.path)?;
        Ok(n.unwrap_or(0) as u64)
    }

    /// The SLA settings and what is stored of `ids`, from one read
    /// transaction.
    pub fn snapshot(&mut self, ids: &[String]) -> Result<Snapshot, StoreError> {
        let path = self.path.clone();
        let read = self.c.transaction().db(&path)?;
        let mut snap = Snapshot { settings: sla_settings_text(&read, &path)?, tickets: HashMap::new() };
        for id in ids {
            if snap.tickets.contains_key(id) {
                continue;
            }
            let t = TicketSnapshot {
                ticket: stored_copy(&read, &path, id, DocKind::Ticket.as_str())?,
                notes: stored_copy(&read, &path, id, DocKind::Notes.as_str())?,
                times: event_times(&read, &path, id)?,
                sla_input: read
                    .prepare_cached("SELECT input FROM sla_inputs WHERE id = ?1")
                    .db(&path)?
                    .query_row([id], |r| r.get(0))
                    .optional()
                    .db(&path)?,
            };
            snap.tickets.insert(id.clone(), t);
        }
        read.commit().db(&path)?;
        Ok(snap)
    }

    /// Commits a push page under the write gate, in one transaction, if
    /// every ticket it read is as it read it.
    pub fn commit_page(&mut self, page: &PageWrite) -> Result<Commit, StoreError> {
        let path = self.path.clone();
        let gate = self.gate.clone();
        let _writing = gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tx = self.c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).db(&path)?;
        if sla_settings_text(&tx, &path)? != page.settings {
            return Ok(Commit::Conflict { ids: Vec::new(), settings: true });
        }
        let mut changed = Vec::new();
        for e in &page.expect {
            let seq = |kind: DocKind| -> Result<Option<i64>, StoreError> {
                tx.prepare_cached("SELECT seq FROM docs WHERE id = ?1 AND kind = ?2")
                    .db(&path)?
                    .query_row(params![e.id, kind.as_str()], |r| r.get(0))
                    .optional()
                    .db(&path)
            };
            if seq(DocKind::Ticket)? != e.ticket || seq(DocKind::Notes)? != e.notes {
                changed.push(e.id.clone());
            }
        }
        if !changed.is_empty() {
            return Ok(Commit::Conflict { ids: changed, settings: false });
        }
        for d in &page.docs {
            // The log keeps the pushed bytes as they came (a compact save or
            // concatenated changes): both load with load_incremental, and
            // data the device already had is ignored on arrival.
            tx.prepare_cached("INSERT INTO changes (id, kind, device, bytes) VALUES (?1, ?2, ?3, ?4)")
                .db(&path)?
                .execute(params![d.id, d.kind, page.device, d.log])
                .db(&path)?;
            let seq = tx.last_insert_rowid();
            tx.prepare_cached(
                "INSERT INTO docs (id, kind, bytes, seq) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id, kind) DO UPDATE SET bytes = excluded.bytes, seq = excluded.seq",
            )
            .db(&path)?
            .execute(params![d.id, d.kind, d.bytes, seq])
            .db(&path)?;
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO event_times (id, key, effective_ms, received_ms) VALUES (?1, ?2, ?3, ?4)",
                )
                .db(&path)?;
            for (key, effective) in &d.events {
                st.execute(params![d.id, key, effective, page.now]).db(&path)?;
            }
        }
        for (entry, notes_json) in &page.index {
            upsert_ticket(&tx, &path, entry, notes_json.as_deref())?;
        }
        tx.commit().db(&path)?;
        Ok(Commit::Done(self.heads()?))
    }

    /// One pull read, from one read transaction.
    pub fn read_pull(&mut self, q: &PullQuery, sink: &mut dyn PullSink) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.c.transaction().db(&path)?;
        let tickets: Option<i64> =
            tx.query_row("SELECT max(seq) FROM changes WHERE kind = 'ticket'", [], |r| r.get(0)).db(&path)?;
        let all: Option<i64> = tx.query_row("SELECT max(seq) FROM changes", [], |r| r.get(0)).db(&path)?;
        sink.heads(Heads { all: all.unwrap_or(0) as u64, tickets: tickets.unwrap_or(0) as u64 });
        match q {
            PullQuery::Docs { after_id, after_kind, notes, limit } => {
                let mut st = tx
                    .prepare_cached(
                        "SELECT id, kind, bytes FROM docs WHERE (id, kind) > (?1, ?2) AND (?3 OR kind = 'ticket')
                         ORDER BY id, kind LIMIT ?4",
                    )
                    .db(&path)?;
                let mut rows = st.query(params![after_id, after_kind, notes, *limit as i64]).db(&path)?;
                while let Some(r) = rows.next().db(&path)? {
                    let row = PullRow {
                        seq: 0,
                        id: r.get(0).db(&path)?,
                        kind: r.get(1).db(&path)?,
                        device: String::new(),
                        bytes: r.get(2).db(&path)?,
                    };
                    if !sink.row(row) {
                        break;
                    }
                }
            }
            PullQuery::Changes { after, notes, limit } => {
                let mut st = tx
                    .prepare_cached(if *notes {
                        "SELECT seq, id, kind, device, bytes FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2"
                    } else {
                        "SELECT seq, id, kind, device, bytes FROM changes WHERE seq > ?1 AND kind = 'ticket'
                         ORDER BY seq LIMIT ?2"
                    })
                    .db(&path)?;
                let mut rows = st.query(params![*after as i64, *limit as i64]).db(&path)?;
                while let Some(r) = rows.next().db(&path)? {
                    let row = PullRow {
                        seq: r.get::<_, i64>(0).db(&path)? as u64,
                        id: r.get(1).db(&path)?,
                        kind: r.get(2).db(&path)?,
                        device: r.get(3).db(&path)?,
                        bytes: r.get(4).db(&path)?,
                    };
                    if !sink.row(row) {
                        break;
                    }
                }
            }
        }
        let mut st = tx.prepare_cached("SELECT input FROM sla_inputs WHERE id = ?1").db(&path)?;
        for id in sink.sla_wanted() {
            let input: Option<String> = st.query_row([&id], |r| r.get(0)).optional().db(&path)?;
            if let Some(input) = input {
                sink.sla(id, input);
            }
        }
        drop(st);
        tx.commit().db(&path)
    }
}

/// The effective times of a ticket's events, by event key.
fn event_times(tx: &Transaction<'_>, path: &Path, id: &str) -> Result<HashMap<String, i64>, StoreError> {
    let mut times = HashMap::new();
    let mut st = tx.prepare_cached("SELECT key, effective_ms FROM event_times WHERE id = ?1").db(path)?;
    let rows = st.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).db(path)?;
    for r in rows {
        let (k, t) = r.db(path)?;
        times.insert(k, t);
    }
    Ok(times)
}

/// A document's stored bytes and the sequence number of its last change.
fn stored_copy(tx: &Transaction<'_>, path: &Path, id: &str, kind: &str) -> Result<Option<StoredDoc>, StoreError> {
    tx.prepare_cached("SELECT bytes, seq FROM docs WHERE id = ?1 AND kind = ?2")
        .db(path)?
        .query_row(params![id, kind], |r| Ok(StoredDoc { bytes: r.get(0)?, seq: r.get(1)? }))
        .optional()
        .db(path)
}

/// Writes a ticket's index row (its narrow columns, its view and notes
/// JSON, its SLA input).
fn upsert_ticket(
    tx: &Transaction<'_>,
    path: &Path,
    e: &IndexEntry,
    notes_json: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO tickets (id, subject_lc, priority, priority_rank, category, status, status_rank, assignee,
            created_at, updated_at, conversation_id, sla_static, fr_warn, fr_due, res_warn, res_due, sla_late)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         ON CONFLICT (id) DO UPDATE SET subject_lc = excluded.subject_lc, priority = excluded.priority,
            priority_rank = excluded.priority_rank, category = excluded.category, status = excluded.status,
            status_rank = excluded.status_rank, assignee = excluded.assignee, created_at = excluded.created_at,
            updated_at = excluded.updated_at, conversation_id = excluded.conversation_id,
            sla_static = excluded.sla_static, fr_warn = excluded.fr_warn, fr_due = excluded.fr_due,
            res_warn = excluded.res_warn, res_due = excluded.res_due, sla_late = excluded.sla_late",
    )
    .db(path)?
    .execute(params![
        e.id,
        e.subject.to_lowercase(),
        e.priority,
        e.priority_rank,
        e.category,
        e.status,
        e.status_rank,
        e.assignee,
        e.created_at,
        e.updated_at,
        e.conversation_id,
        e.sla.fixed_rank,
        e.sla.fr_warn,
        e.sla.fr_due,
        e.sla.res_warn,
        e.sla.res_due,
        e.sla.late_ms,
    ])
    .db(path)?;
    tx.prepare_cached("INSERT OR REPLACE INTO ticket_search (id, text) VALUES (?1, ?2)")
        .db(path)?
        .execute(params![e.id, e.search_text])
        .db(path)?;
    tx.prepare_cached("INSERT OR REPLACE INTO ticket_views (id, view_json, notes_json) VALUES (?1, ?2, ?3)")
        .db(path)?
        .execute(params![e.id, e.view_json, notes_json])
        .db(path)?;
    tx.prepare_cached("INSERT OR REPLACE INTO sla_inputs (id, input) VALUES (?1, ?2)")
        .db(path)?
        .execute(params![e.id, e.sla_input])
        .db(path)?;
    Ok(())
}
