//! Documents and the change log on PostgreSQL.
//!
//! Exact cursors with several writers: a sequence value from a sequence
//! object can become visible after a higher one (its transaction commits
//! later), and a device whose cursor passed it would skip that change for
//! ever. So the log takes its numbers from one row, `log_head`, with
//! `UPDATE log_head SET seq = seq + n RETURNING seq` as the last step of
//! the push transaction: the row lock is held until commit, so the next
//! writer gets its numbers only after this one committed. Sequence order is
//! commit order, and a rolled-back transaction gives its numbers back: no
//! gaps. A reader's snapshot that holds sequence `s` holds every number
//! below it.
//!
//! Two pushes of one ticket are serialized by a transaction advisory lock
//! per ticket id (taken in id order, so no deadlock), under which a commit
//! checks the sequence numbers the push read.

use std::collections::HashMap;

use tokio_postgres::types::ToSql;
use tokio_postgres::IsolationLevel;

use super::PgConn;
use crate::store::{
    Commit, Heads, PageWrite, PullQuery, PullRow, PullSink, Snapshot, StoreError, StoredDoc, TicketSnapshot,
};

/// The lock key space of ticket ids (`pg_advisory_xact_lock(ns, hash)`).
const TICKET_LOCK_NS: i32 = 0x7469_636b;
/// The advisory lock key of the SLA settings: shared by commits, exclusive
/// while the settings change.
pub(super) const SETTINGS_LOCK: i64 = 0x736c_6173_6574;

/// The NOTIFY channel a commit signals (the payload is the new head).
pub const CHANNEL: &str = "tickets_log";

fn heads_of(row: &tokio_postgres::Row) -> Heads {
    Heads { all: row.get::<_, i64>(0) as u64, tickets: row.get::<_, i64>(1) as u64 }
}

impl PgConn {
    pub fn heads(&self) -> Result<Heads, StoreError> {
        self.run(async |c| Ok(heads_of(&c.query_one("SELECT seq, tickets FROM log_head", &[]).await?)))
    }

    /// The SLA settings and what is stored of `ids`, from one snapshot.
    pub fn snapshot(&self, ids: &[String]) -> Result<Snapshot, StoreError> {
        self.run(async |c| {
            let tx =
                c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
            let settings: Option<String> =
                tx.query_opt("SELECT value FROM settings WHERE key = 'sla'", &[]).await?.map(|r| r.get(0));
            let mut tickets: HashMap<String, TicketSnapshot> =
                ids.iter().map(|id| (id.clone(), TicketSnapshot::default())).collect();
            for r in tx.query("SELECT id, kind, bytes, seq FROM docs WHERE id = ANY($1)", &[&ids]).await? {
                let id: String = r.get(0);
                let kind: String = r.get(1);
                let doc = StoredDoc { bytes: r.get(2), seq: r.get(3) };
                if let Some(t) = tickets.get_mut(&id) {
                    match kind.as_str() {
                        "ticket" => t.ticket = Some(doc),
                        _ => t.notes = Some(doc),
                    }
                }
            }
            for r in tx.query("SELECT id, key, effective_ms FROM event_times WHERE id = ANY($1)", &[&ids]).await? {
                if let Some(t) = tickets.get_mut(&r.get::<_, String>(0)) {
                    t.times.insert(r.get(1), r.get(2));
                }
            }
            for r in tx.query("SELECT id, input FROM sla_inputs WHERE id = ANY($1)", &[&ids]).await? {
                if let Some(t) = tickets.get_mut(&r.get::<_, String>(0)) {
                    t.sla_input = Some(r.get(1));
                }
            }
            tx.commit().await?;
            Ok(Snapshot { settings, tickets })
        })
    }

    /// Commits a push page if every ticket it read is as it read it.
    pub fn commit_page(&self, page: &PageWrite) -> Result<Commit, StoreError> {
        self.run(async |c| {
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&SETTINGS_LOCK]).await?;
            let mut ids: Vec<&str> = page.expect.iter().map(|e| e.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            for id in &ids {
                tx.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&TICKET_LOCK_NS, id]).await?;
            }
            let settings: Option<String> =
                tx.query_opt("SELECT value FROM settings WHERE key = 'sla'", &[]).await?.map(|r| r.get(0));
            if settings != page.settings {
                tx.rollback().await?;
                return Ok(Commit::Conflict { ids: Vec::new(), settings: true });
            }
            let mut seqs: HashMap<(String, String), i64> = HashMap::new();
            for r in tx.query("SELECT id, kind, seq FROM docs WHERE id = ANY($1)", &[&ids]).await? {
                seqs.insert((r.get(0), r.get(1)), r.get(2));
            }
            let changed: Vec<String> = page
                .expect
                .iter()
                .filter(|e| {
                    seqs.get(&(e.id.clone(), "ticket".to_string())).copied() != e.ticket
                        || seqs.get(&(e.id.clone(), "notes".to_string())).copied() != e.notes
                })
                .map(|e| e.id.clone())
                .collect();
            if !changed.is_empty() {
                tx.rollback().await?;
                return Ok(Commit::Conflict { ids: changed, settings: false });
            }
            // Everything but the log first, while other tickets' pushes
            // proceed in parallel.
            let times = tx
                .prepare(
                    "INSERT INTO event_times (id, key, effective_ms, received_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                )
                .await?;
            for d in &page.docs {
                for (key, effective) in &d.events {
                    tx.execute(&times, &[&d.id, key, effective, &page.now]).await?;
                }
            }
            let upsert = tx
                .prepare(
                    "INSERT INTO tickets (id, subject_lc, priority, priority_rank, category, status, status_rank,
                        assignee, created_at, updated_at, conversation_id, sla_static, fr_warn, fr_due, res_warn,
                        res_due)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                     ON CONFLICT (id) DO UPDATE SET subject_lc = excluded.subject_lc, priority = excluded.priority,
                        priority_rank = excluded.priority_rank, category = excluded.category,
                        status = excluded.status, status_rank = excluded.status_rank,
                        assignee = excluded.assignee, created_at = excluded.created_at,
                        updated_at = excluded.updated_at, conversation_id = excluded.conversation_id,
                        sla_static = excluded.sla_static, fr_warn = excluded.fr_warn, fr_due = excluded.fr_due,
                        res_warn = excluded.res_warn, res_due = excluded.res_due",
                )
                .await?;
            let view = tx
                .prepare(
                    "INSERT INTO ticket_views (id, view_json, notes_json) VALUES ($1, $2, $3)
                     ON CONFLICT (id) DO UPDATE SET view_json = excluded.view_json, notes_json = excluded.notes_json",
                )
                .await?;
            let sla = tx
                .prepare(
                    "INSERT INTO sla_inputs (id, input) VALUES ($1, $2)
                     ON CONFLICT (id) DO UPDATE SET input = excluded.input",
                )
                .await?;
            for (e, notes) in &page.index {
                let subject_lc = e.subject.to_lowercase();
                let args: [&(dyn ToSql + Sync); 16] = [
                    &e.id,
                    &subject_lc,
                    &e.priority,
                    &e.priority_rank,
                    &e.category,
                    &e.status,
                    &e.status_rank,
                    &e.assignee,
                    &e.created_at,
                    &e.updated_at,
                    &e.conversation_id,
                    &e.sla.fixed_rank,
                    &e.sla.fr_warn,
                    &e.sla.fr_due,
                    &e.sla.res_warn,
                    &e.sla.res_due,
                ];
                tx.execute(&upsert, &args).await?;
                tx.execute(&view, &[&e.id, &e.view_json, notes]).await?;
                tx.execute(&sla, &[&e.id, &e.sla_input]).await?;
            }
            if page.docs.is_empty() {
                let heads = heads_of(&tx.query_one("SELECT seq, tickets FROM log_head", &[]).await?);
                tx.commit().await?;
                return Ok(Commit::Done(heads));
            }
            // Last: the log's numbers, under the head row's lock until commit.
            let n = page.docs.len() as i64;
            let last_ticket = page.docs.iter().rposition(|d| d.kind == "ticket").map(|i| i as i64 + 1);
            let row = tx
                .query_one(
                    "UPDATE log_head SET seq = seq + $1,
                        tickets = CASE WHEN $2::bigint IS NULL THEN tickets ELSE seq + $2::bigint END
                     RETURNING seq, tickets",
                    &[&n, &last_ticket],
                )
                .await?;
            let heads = heads_of(&row);
            let first = heads.all as i64 - n + 1;
            let log =
                tx.prepare("INSERT INTO changes (seq, id, kind, device, bytes) VALUES ($1, $2, $3, $4, $5)").await?;
            let doc = tx
                .prepare(
                    "INSERT INTO docs (id, kind, bytes, seq) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id, kind) DO UPDATE SET bytes = excluded.bytes, seq = excluded.seq",
                )
                .await?;
            for (i, d) in page.docs.iter().enumerate() {
                let seq = first + i as i64;
                tx.execute(&log, &[&seq, &d.id, &d.kind, &page.device, &d.log]).await?;
                tx.execute(&doc, &[&d.id, &d.kind, &d.bytes, &seq]).await?;
            }
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &heads.all.to_string()]).await?;
            tx.commit().await?;
            Ok(Commit::Done(heads))
        })
    }

    /// One pull read, from one snapshot.
    pub fn read_pull(&self, q: &PullQuery, sink: &mut dyn PullSink) -> Result<(), StoreError> {
        self.run(async |c| {
            let tx =
                c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
            sink.heads(heads_of(&tx.query_one("SELECT seq, tickets FROM log_head", &[]).await?));
            match q {
                PullQuery::Docs { after_id, after_kind, notes, limit } => {
                    let rows = tx
                        .query(
                            "SELECT id, kind, bytes FROM docs WHERE (id, kind) > ($1, $2) AND ($3 OR kind = 'ticket')
                             ORDER BY id, kind LIMIT $4",
                            &[after_id, after_kind, notes, &(*limit as i64)],
                        )
                        .await?;
                    for r in rows {
                        let row =
                            PullRow { seq: 0, id: r.get(0), kind: r.get(1), device: String::new(), bytes: r.get(2) };
                        if !sink.row(row) {
                            break;
                        }
                    }
                }
                PullQuery::Changes { after, notes, limit } => {
                    let sql = if *notes {
                        "SELECT seq, id, kind, device, bytes FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2"
                    } else {
                        "SELECT seq, id, kind, device, bytes FROM changes WHERE seq > $1 AND kind = 'ticket'
                         ORDER BY seq LIMIT $2"
                    };
                    // A portal: rows arrive in batches, and the read stops
                    // where the page is full.
                    let portal = tx.bind(sql, &[&(*after as i64), &(*limit as i64)]).await?;
                    'read: loop {
                        let rows = tx.query_portal(&portal, 500).await?;
                        if rows.is_empty() {
                            break;
                        }
                        for r in rows {
                            let row = PullRow {
                                seq: r.get::<_, i64>(0) as u64,
                                id: r.get(1),
                                kind: r.get(2),
                                device: r.get(3),
                                bytes: r.get(4),
                            };
                            if !sink.row(row) {
                                break 'read;
                            }
                        }
                    }
                }
            }
            let wanted = sink.sla_wanted();
            if !wanted.is_empty() {
                let mut found: HashMap<String, String> = HashMap::new();
                for r in tx.query("SELECT id, input FROM sla_inputs WHERE id = ANY($1)", &[&wanted]).await? {
                    found.insert(r.get(0), r.get(1));
                }
                for id in wanted {
                    if let Some(input) = found.remove(&id) {
                        sink.sla(id, input);
                    }
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
