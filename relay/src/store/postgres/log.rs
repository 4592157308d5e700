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
            // proceed in parallel; one statement per table and page
            // (arrays through unnest), not one per row.
            let (mut t_id, mut t_key, mut t_eff) = (Vec::new(), Vec::new(), Vec::new());
            for d in &page.docs {
                for (key, effective) in &d.events {
                    t_id.push(d.id.as_str());
                    t_key.push(key.as_str());
                    t_eff.push(*effective);
                }
            }
            if !t_id.is_empty() {
                tx.execute(
                    "INSERT INTO event_times (id, key, effective_ms, received_ms)
                     SELECT i, k, e, $4 FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u (i, k, e)
                     ON CONFLICT DO NOTHING",
                    &[&t_id, &t_key, &t_eff, &page.now],
                )
                .await?;
            }
            if !page.index.is_empty() {
                let e = |f: fn(&tickets_core::index::IndexEntry) -> i64| -> Vec<i64> {
                    page.index.iter().map(|(x, _)| f(x)).collect()
                };
                let o = |f: fn(&tickets_core::index::IndexEntry) -> Option<i64>| -> Vec<Option<i64>> {
                    page.index.iter().map(|(x, _)| f(x)).collect()
                };
                let ids: Vec<&str> = page.index.iter().map(|(x, _)| x.id.as_str()).collect();
                let subjects: Vec<String> = page.index.iter().map(|(x, _)| x.subject.to_lowercase()).collect();
                let priorities: Vec<&str> = page.index.iter().map(|(x, _)| x.priority.as_str()).collect();
                let categories: Vec<&str> = page.index.iter().map(|(x, _)| x.category.as_str()).collect();
                let statuses: Vec<&str> = page.index.iter().map(|(x, _)| x.status.as_str()).collect();
                let assignees: Vec<Option<&str>> = page.index.iter().map(|(x, _)| x.assignee.as_deref()).collect();
                let conversations: Vec<Option<&str>> =
                    page.index.iter().map(|(x, _)| x.conversation_id.as_deref()).collect();
                let (priority_rank, status_rank) = (e(|x| x.priority_rank), e(|x| x.status_rank));
                let (created, updated, fixed) = (e(|x| x.created_at), e(|x| x.updated_at), e(|x| x.sla.fixed_rank));
                let (fr_warn, fr_due) = (o(|x| x.sla.fr_warn), o(|x| x.sla.fr_due));
                let (res_warn, res_due) = (o(|x| x.sla.res_warn), o(|x| x.sla.res_due));
                let late = o(|x| x.sla.late_ms);
                let args: [&(dyn ToSql + Sync); 17] = [
                    &ids,
                    &subjects,
                    &priorities,
                    &priority_rank,
                    &categories,
                    &statuses,
                    &status_rank,
                    &assignees,
                    &created,
                    &updated,
                    &conversations,
                    &fixed,
                    &fr_warn,
                    &fr_due,
                    &res_warn,
                    &res_due,
                    &late,
                ];
                tx.execute(
                    "INSERT INTO tickets (id, subject_lc, priority, priority_rank, category, status, status_rank,
                        assignee, created_at, updated_at, conversation_id, sla_static, fr_warn, fr_due, res_warn,
                        res_due, sla_late)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
                        $7::bigint[], $8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::bigint[],
                        $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[])
                     ON CONFLICT (id) DO UPDATE SET subject_lc = excluded.subject_lc, priority = excluded.priority,
                        priority_rank = excluded.priority_rank, category = excluded.category,
                        status = excluded.status, status_rank = excluded.status_rank,
                        assignee = excluded.assignee, created_at = excluded.created_at,
                        updated_at = excluded.updated_at, conversation_id = excluded.conversation_id,
                        sla_static = excluded.sla_static, fr_warn = excluded.fr_warn, fr_due = excluded.fr_due,
                        res_warn = excluded.res_warn, res_due = excluded.res_due, sla_late = excluded.sla_late",
                    &args,
                )
                .await?;
                let search: Vec<&str> = page.index.iter().map(|(x, _)| x.search_text.as_str()).collect();
                tx.execute(
                    "INSERT INTO ticket_search (id, text) SELECT * FROM unnest($1::text[], $2::text[])
                     ON CONFLICT (id) DO UPDATE SET text = excluded.text",
                    &[&ids, &search],
                )
                .await?;
                let views: Vec<&str> = page.index.iter().map(|(x, _)| x.view_json.as_str()).collect();
                let notes: Vec<Option<&str>> = page.index.iter().map(|(_, n)| n.as_deref()).collect();
                tx.execute(
                    "INSERT INTO ticket_views (id, view_json, notes_json)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
                     ON CONFLICT (id) DO UPDATE SET view_json = excluded.view_json, notes_json = excluded.notes_json",
                    &[&ids, &views, &notes],
                )
                .await?;
                let inputs: Vec<&str> = page.index.iter().map(|(x, _)| x.sla_input.as_str()).collect();
                tx.execute(
                    "INSERT INTO sla_inputs (id, input) SELECT * FROM unnest($1::text[], $2::text[])
                     ON CONFLICT (id) DO UPDATE SET input = excluded.input",
                    &[&ids, &inputs],
                )
                .await?;
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
            let seqs: Vec<i64> = (0..n).map(|i| first + i).collect();
            let ids: Vec<&str> = page.docs.iter().map(|d| d.id.as_str()).collect();
            let kinds: Vec<&str> = page.docs.iter().map(|d| d.kind.as_str()).collect();
            let logs: Vec<&[u8]> = page.docs.iter().map(|d| d.log.as_slice()).collect();
            let bytes: Vec<&[u8]> = page.docs.iter().map(|d| d.bytes.as_slice()).collect();
            tx.execute(
                "INSERT INTO changes (seq, id, kind, device, bytes)
                 SELECT s, i, k, $4, b FROM unnest($1::bigint[], $2::text[], $3::text[], $5::bytea[]) AS u (s, i, k, b)",
                &[&seqs, &ids, &kinds, &page.device, &logs],
            )
            .await?;
            tx.execute(
                "INSERT INTO docs (id, kind, bytes, seq) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[])
                 ON CONFLICT (id, kind) DO UPDATE SET bytes = excluded.bytes, seq = excluded.seq",
                &[&ids, &kinds, &bytes, &seqs],
            )
            .await?;
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
