//! Agents, devices and settings; the board and exports, on PostgreSQL.
//! The board's filters are core's SQL (shared with SQLite and the node),
//! with its named parameters numbered for PostgreSQL.

use std::collections::HashSet;

use automerge::ActorId;
use tickets_core::index::{self, ListQuery, ListSql, SqlArg};
use tickets_core::protocol::{DirectoryEntry, Settings};
use tickets_core::sla::SlaSettings;
use tokio_postgres::types::ToSql;

use super::log::SETTINGS_LOCK;
use super::PgConn;
use crate::store::{parse_sla_settings, AgentRow, Caller, ExportFilter, StoreError, TicketRow};

const AGENT_COLS: &str = "a.name, a.role, a.team, a.internal_notes, a.revoked,
    (SELECT count(*) FROM devices d WHERE d.agent = a.name)";

fn agent_row(r: &tokio_postgres::Row) -> AgentRow {
    AgentRow {
        name: r.get(0),
        role: r.get(1),
        team: r.get(2),
        internal_notes: r.get::<_, i64>(3) != 0,
        revoked: r.get::<_, i64>(4) != 0,
        devices: r.get::<_, i64>(5) as usize,
    }
}

/// Core's SQL for PostgreSQL: `:name` parameters become `$n` (in the order
/// of `args`, those the text uses), SQLite's many-argument `min` becomes
/// `least`, its `instr` `strpos` (same arguments).
pub(super) fn numbered(sql: &str, args: &[(String, SqlArg)]) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut out = sql.replace("min(coalesce(", "least(coalesce(").replace("instr(", "strpos(");
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    // Longest names first, so that `:now` never eats the start of `:nowx`.
    let mut names: Vec<&(String, SqlArg)> = args.iter().collect();
    names.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    for (name, arg) in names {
        if !out.contains(name.as_str()) {
            continue;
        }
        values.push(match arg {
            SqlArg::Int(i) => Box::new(*i),
            SqlArg::Text(t) => Box::new(t.clone()),
        });
        out = out.replace(name.as_str(), &format!("${}", values.len()));
    }
    (out, values)
}

fn refs(values: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect()
}

impl PgConn {
    // ---- agents and devices

    pub fn add_agent(
        &self,
        name: &str,
        role: &str,
        team: Option<&str>,
        notes: bool,
        token_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let added = self.run(async |c| {
            let n = c
                .execute(
                    "INSERT INTO agents (name, role, team, internal_notes, token_hash, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
                    &[&name, &role, &team, &(notes as i64), &token_hash, &now],
                )
                .await?;
            Ok(n == 1)
        })?;
        if !added {
            return Err(StoreError::AgentExists(name.to_string()));
        }
        Ok(())
    }

    pub fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        let sql = format!("SELECT {AGENT_COLS} FROM agents a ORDER BY a.name");
        self.run(async |c| Ok(c.query(&sql, &[]).await?.iter().map(agent_row).collect()))
    }

    pub fn revoke_agent(&self, name: &str) -> Result<(), StoreError> {
        let n = self.run(async |c| c.execute("UPDATE agents SET revoked = 1 WHERE name = $1", &[&name]).await)?;
        if n == 0 {
            return Err(StoreError::NoAgent(name.to_string()));
        }
        Ok(())
    }

    pub fn set_notes_permission(&self, name: &str, allowed: bool) -> Result<(), StoreError> {
        let n = self.run(async |c| {
            c.execute("UPDATE agents SET internal_notes = $2 WHERE name = $1", &[&name, &(allowed as i64)]).await
        })?;
        if n == 0 {
            return Err(StoreError::NoAgent(name.to_string()));
        }
        Ok(())
    }

    pub fn caller(&self, token_hash: &str) -> Result<Option<Caller>, StoreError> {
        let sql = format!("SELECT {AGENT_COLS} FROM agents a WHERE a.token_hash = $1 AND a.revoked = 0");
        self.run(async |c| {
            let Some(row) = c.query_opt(&sql, &[&token_hash]).await? else { return Ok(None) };
            let agent = agent_row(&row);
            let actors: HashSet<ActorId> = c
                .query("SELECT actor FROM devices WHERE agent = $1", &[&agent.name])
                .await?
                .iter()
                .filter_map(|r| ActorId::try_from(r.get::<_, &str>(0)).ok())
                .collect();
            Ok(Some(Caller { agent, actors }))
        })
    }

    /// Registers a device actor to an agent (see the SQLite backend).
    pub fn register_device(&self, actor: &str, agent: &str, now: i64) -> Result<(), StoreError> {
        let canonical = ActorId::try_from(actor).map(|a| a.to_hex_string()).unwrap_or_else(|_| actor.to_string());
        let actor = canonical.as_str();
        let owner = self.run(async |c| {
            let tx = c.transaction().await?;
            // One registration at a time: the twin check below reads rows
            // another registration may be adding.
            tx.execute("LOCK TABLE devices IN SHARE ROW EXCLUSIVE MODE", &[]).await?;
            if let Some(r) = tx.query_opt("SELECT agent FROM devices WHERE actor = $1", &[&actor]).await? {
                let o: String = r.get(0);
                return Ok(if o == agent { None } else { Some(o) });
            }
            let twin = tx
                .query_opt(
                    "SELECT agent FROM devices WHERE substr(actor, 1, 16) = substr($1, 1, 16) LIMIT 1",
                    &[&actor],
                )
                .await?;
            if let Some(r) = twin {
                return Ok(Some(r.get::<_, String>(0)));
            }
            tx.execute(
                "INSERT INTO devices (actor, agent, registered_at) VALUES ($1, $2, $3)",
                &[&actor, &agent, &now],
            )
            .await?;
            tx.commit().await?;
            Ok(None)
        })?;
        match owner {
            Some(o) => Err(StoreError::DeviceTaken(o)),
            None => Ok(()),
        }
    }

    pub fn touch_device(&self, actor: &str, offset_ms: i64, now: i64) -> Result<(), StoreError> {
        self.run(async |c| {
            c.execute("UPDATE devices SET last_seen = $2, offset_ms = $3 WHERE actor = $1", &[&actor, &now, &offset_ms])
                .await
        })?;
        Ok(())
    }

    pub fn devices_seen_since(&self, since: i64) -> Result<u64, StoreError> {
        self.run(async |c| {
            let n: i64 = c.query_one("SELECT count(*) FROM devices WHERE last_seen >= $1", &[&since]).await?.get(0);
            Ok(n as u64)
        })
    }

    // ---- settings

    pub(crate) fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.run(async |c| {
            Ok(c.query_opt("SELECT value FROM settings WHERE key = $1", &[&key]).await?.map(|r| r.get(0)))
        })
    }

    pub(crate) fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.run(async |c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .await
        })?;
        Ok(())
    }

    pub fn epoch(&self) -> Result<String, StoreError> {
        Ok(self.setting("epoch")?.unwrap_or_default())
    }

    /// A new epoch (a restored database: devices resynchronize).
    pub fn new_epoch(&self) -> Result<String, StoreError> {
        let e = uuid::Uuid::new_v4().simple().to_string();
        self.put_setting("epoch", &e)?;
        Ok(e)
    }

    pub fn settings(&self) -> Result<Settings, StoreError> {
        let categories = self.setting("categories")?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default();
        let sla = self.sla_settings()?;
        let directory = self.run(async |c| {
            Ok(c.query("SELECT name, team FROM agents WHERE revoked = 0 ORDER BY name", &[])
                .await?
                .iter()
                .map(|r| DirectoryEntry { name: r.get(0), team: r.get(1) })
                .collect::<Vec<DirectoryEntry>>())
        })?;
        let limits = crate::store::parse_limits(self.setting("limits")?.as_deref())?;
        Ok(crate::store::settings_of(categories, sla, directory, limits))
    }

    pub fn sla_settings(&self) -> Result<SlaSettings, StoreError> {
        parse_sla_settings(self.setting("sla")?.as_deref())
    }

    pub fn set_categories(&self, categories: &[String]) -> Result<(), StoreError> {
        self.put_setting("categories", &serde_json::to_string(categories).unwrap_or_else(|_| "[]".into()))
    }

    /// Stores the SLA settings and recomputes every ticket's SLA columns,
    /// in one transaction that commits wait for.
    pub fn set_sla_settings(&self, settings: &SlaSettings, now: i64) -> Result<(), StoreError> {
        let text = serde_json::to_string(settings).unwrap_or_default();
        let damaged = self.run(async |c| {
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SETTINGS_LOCK]).await?;
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('sla', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&text],
            )
            .await?;
            let update = tx
                .prepare(
                    "UPDATE tickets SET sla_static = $2, fr_warn = $3, fr_due = $4, res_warn = $5, res_due = $6,
                        sla_late = $7 WHERE id = $1",
                )
                .await?;
            for r in tx.query("SELECT id, input FROM sla_inputs", &[]).await? {
                let id: String = r.get(0);
                let input: index::SlaInputJson = match serde_json::from_str(r.get::<_, &str>(1)) {
                    Ok(i) => i,
                    Err(e) => return Ok(Some(format!("ticket {id}: {e}"))),
                };
                let s = index::sla_columns(&input.into(), settings, now);
                tx.execute(&update, &[&id, &s.fixed_rank, &s.fr_warn, &s.fr_due, &s.res_warn, &s.res_due, &s.late_ms])
                    .await?;
            }
            tx.commit().await?;
            Ok(None)
        })?;
        match damaged {
            Some(d) => Err(StoreError::Damaged(d)),
            None => Ok(()),
        }
    }

    // ---- the board

    /// Adds what the index gained within a schema version (the `sla_late`
    /// column, the `ticket_search` table) and, when the rows were indexed
    /// by an older [`index::INDEX_FORMAT`] (meta `index_format`),
    /// re-indexes them from their stored JSON and SLA input in one
    /// transaction. Run under the schema lock. A row that cannot be read
    /// keeps what it had.
    pub(super) fn upgrade_index(&self) -> Result<(), StoreError> {
        self.run(async |c| {
            c.batch_execute(
                "ALTER TABLE tickets ADD COLUMN IF NOT EXISTS sla_late bigint;
                 CREATE TABLE IF NOT EXISTS ticket_search (id text COLLATE \"C\" PRIMARY KEY, text text NOT NULL);",
            )
            .await
        })?;
        let format: i64 = self
            .run(async |c| c.query_opt("SELECT value FROM meta WHERE key = 'index_format'", &[]).await)?
            .and_then(|r| r.get::<_, String>(0).parse().ok())
            .unwrap_or(1);
        if format >= index::INDEX_FORMAT {
            return Ok(());
        }
        let settings = self.sla_settings()?;
        let now = crate::http::now_ms();
        self.run(async |c| {
            let tx = c.transaction().await?;
            let update = tx
                .prepare(
                    "UPDATE tickets SET sla_static = $2, fr_warn = $3, fr_due = $4, res_warn = $5, res_due = $6,
                        sla_late = $7 WHERE id = $1",
                )
                .await?;
            for r in tx.query("SELECT id, input FROM sla_inputs", &[]).await? {
                let id: String = r.get(0);
                if let Ok(input) = serde_json::from_str::<index::SlaInputJson>(r.get::<_, &str>(1)) {
                    let s = index::sla_columns(&input.into(), &settings, now);
                    tx.execute(
                        &update,
                        &[&id, &s.fixed_rank, &s.fr_warn, &s.fr_due, &s.res_warn, &s.res_due, &s.late_ms],
                    )
                    .await?;
                }
            }
            let search = tx
                .prepare(
                    "INSERT INTO ticket_search (id, text) VALUES ($1, $2)
                     ON CONFLICT (id) DO UPDATE SET text = excluded.text",
                )
                .await?;
            for r in tx.query("SELECT id, view_json FROM ticket_views", &[]).await? {
                let id: String = r.get(0);
                if let Ok(text) = tickets_core::search::search_text_of_json(r.get::<_, &str>(1)) {
                    tx.execute(&search, &[&id, &text]).await?;
                }
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('index_format', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&index::INDEX_FORMAT.to_string()],
            )
            .await?;
            tx.commit().await
        })
    }

    pub fn ticket_rows(&self, q: &ListQuery, now: i64) -> Result<(Vec<TicketRow>, usize), StoreError> {
        let ListSql { filter, tail, args } = q.to_sql(now);
        let (ids_sql, id_values) = numbered(&format!("SELECT id FROM tickets{filter}{tail}"), &args);
        let (count_sql, count_values) = numbered(&format!("SELECT count(*) FROM tickets{filter}"), &args);
        let limit = q.limit;
        self.run(async |c| {
            let ids: Vec<String> = c.query(&ids_sql, &refs(&id_values)).await?.iter().map(|r| r.get(0)).collect();
            let mut by_id: std::collections::HashMap<String, TicketRow> = c
                .query(
                    "SELECT v.id, v.view_json, s.input, v.notes_json FROM ticket_views v
                     JOIN sla_inputs s ON s.id = v.id WHERE v.id = ANY($1)",
                    &[&ids],
                )
                .await?
                .iter()
                .map(|r| {
                    let row = TicketRow { id: r.get(0), view: r.get(1), sla_input: r.get(2), notes: r.get(3) };
                    (row.id.clone(), row)
                })
                .collect();
            let out: Vec<TicketRow> = ids.iter().filter_map(|id| by_id.remove(id)).collect();
            let total = if limit.is_some_and(|l| out.len() >= l) {
                let n: i64 = c.query_one(&count_sql, &refs(&count_values)).await?.get(0);
                n as usize
            } else {
                out.len()
            };
            Ok((out, total))
        })
    }

    pub fn ticket_row(&self, id: &str) -> Result<Option<TicketRow>, StoreError> {
        self.run(async |c| {
            let row = c
                .query_opt(
                    "SELECT v.view_json, s.input, v.notes_json FROM ticket_views v JOIN sla_inputs s ON s.id = v.id
                     WHERE v.id = $1",
                    &[&id],
                )
                .await?;
            Ok(row.map(|r| TicketRow { id: id.to_string(), view: r.get(0), sla_input: r.get(1), notes: r.get(2) }))
        })
    }

    pub fn ids_with_prefix(&self, prefix: &str, max: usize) -> Result<Vec<String>, StoreError> {
        self.run(async |c| {
            let rows = c
                .query(
                    "SELECT id FROM tickets WHERE starts_with(id, $1) ORDER BY id LIMIT $2",
                    &[&prefix, &(max as i64)],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    pub fn color_counts(&self, now: i64) -> Result<index::SlaCounts, StoreError> {
        let args = vec![(":now".to_string(), SqlArg::Int(now))];
        let count_sql = |filter: &str| numbered(&format!("SELECT count(*) FROM tickets WHERE {filter}"), &args);
        let queries = [
            count_sql(index::SLA_RED_SQL),
            count_sql(index::SLA_YELLOW_SQL),
            count_sql(index::SLA_NONE_SQL),
            count_sql(index::SLA_MET_SQL),
        ];
        let counts = self.run(async |c| {
            let total: i64 = c.query_one("SELECT count(*) FROM tickets", &[]).await?.get(0);
            let mut n = Vec::new();
            for (sql, values) in &queries {
                n.push(c.query_one(sql, &refs(values)).await?.get::<_, i64>(0) as u64);
            }
            Ok((total as u64, n))
        })?;
        let (total, n) = counts;
        let (red, yellow, none, met) = (n[0], n[1], n[2], n[3]);
        let green = total.saturating_sub(red + yellow + none + met);
        Ok(index::SlaCounts { green, yellow, red, met, none })
    }

    pub fn next_color_change(&self, now: i64) -> Result<Option<i64>, StoreError> {
        self.run(async |c| {
            let r = c
                .query_one(
                    "SELECT least((SELECT min(fr_warn) FROM tickets WHERE fr_warn > $1),
                        (SELECT min(fr_due) FROM tickets WHERE fr_due > $1),
                        (SELECT min(res_warn) FROM tickets WHERE res_warn > $1),
                        (SELECT min(res_due) FROM tickets WHERE res_due > $1))",
                    &[&now],
                )
                .await?;
            Ok(r.get(0))
        })
    }

    // ---- exports

    fn export_filter(f: &ExportFilter, values: &mut Vec<Box<dyn ToSql + Sync + Send>>) -> String {
        values.push(Box::new(f.from_ms));
        values.push(Box::new(f.to_ms));
        let mut sql = format!("t.created_at >= ${} AND t.created_at < ${}", values.len() - 1, values.len());
        for (col, list) in [("status", &f.statuses), ("category", &f.categories)] {
            if list.is_empty() {
                continue;
            }
            values.push(Box::new(list.clone()));
            sql.push_str(&format!(" AND t.{col} = ANY(${})", values.len()));
        }
        sql
    }

    pub fn export_count(&self, f: &ExportFilter) -> Result<u64, StoreError> {
        let mut values = Vec::new();
        let sql = format!("SELECT count(*) FROM tickets t WHERE {}", Self::export_filter(f, &mut values));
        self.run(async |c| Ok(c.query_one(&sql, &refs(&values)).await?.get::<_, i64>(0) as u64))
    }

    pub fn export_rows(&self, f: &ExportFilter, after: &str, limit: usize) -> Result<Vec<TicketRow>, StoreError> {
        let mut values: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(after.to_string())];
        let filter = Self::export_filter(f, &mut values);
        values.push(Box::new(limit as i64));
        let sql = format!(
            "SELECT t.id, v.view_json, s.input, v.notes_json FROM tickets t JOIN ticket_views v ON v.id = t.id
             JOIN sla_inputs s ON s.id = t.id WHERE t.id > $1 AND {filter} ORDER BY t.id LIMIT ${}",
            values.len()
        );
        self.run(async |c| {
            Ok(c.query(&sql, &refs(&values))
                .await?
                .iter()
                .map(|r| TicketRow { id: r.get(0), view: r.get(1), sla_input: r.get(2), notes: r.get(3) })
                .collect())
        })
    }
}
