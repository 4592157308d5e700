//! Agents, devices and settings; integrity checks and backups.

use std::path::Path;

use automerge::ActorId;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tickets_core::index;
use tickets_core::protocol::{DirectoryEntry, Settings};
use tickets_core::sla::{SlaPolicy, SlaSettings};

use super::{agent_row, Conn, Ctx, AGENT_COLS};
use crate::store::{parse_sla_settings, AgentRow, Caller, StoreError};

impl Conn {
    // ---- agents -----------------------------------------------------------

    pub fn add_agent(
        &mut self,
        name: &str,
        role: &str,
        team: Option<&str>,
        notes: bool,
        token_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let exists: Option<String> =
            tx.query_row("SELECT name FROM agents WHERE name = ?1", [name], |r| r.get(0)).optional().db(&path)?;
        if exists.is_some() {
            return Err(StoreError::AgentExists(name.to_string()));
        }
        tx.execute(
            "INSERT INTO agents (name, role, team, internal_notes, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, role, team, notes as i64, token_hash, now],
        )
        .db(&path)?;
        tx.commit().db(&path)
    }

    pub fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        let mut st = self.c.prepare(&format!("SELECT {AGENT_COLS} FROM agents a ORDER BY a.name")).db(&self.path)?;
        let rows = st.query_map([], agent_row).db(&self.path)?;
        rows.collect::<Result<Vec<_>, _>>().db(&self.path)
    }

    /// Revokes an agent: its token stops working at once.
    pub fn revoke_agent(&mut self, name: &str) -> Result<(), StoreError> {
        let n = self.c.execute("UPDATE agents SET revoked = 1 WHERE name = ?1", [name]).db(&self.path)?;
        if n == 0 {
            return Err(StoreError::NoAgent(name.to_string()));
        }
        Ok(())
    }

    /// Grants or withdraws the internal-notes permission.
    pub fn set_notes_permission(&mut self, name: &str, allowed: bool) -> Result<(), StoreError> {
        let n = self
            .c
            .execute("UPDATE agents SET internal_notes = ?2 WHERE name = ?1", params![name, allowed as i64])
            .db(&self.path)?;
        if n == 0 {
            return Err(StoreError::NoAgent(name.to_string()));
        }
        Ok(())
    }

    /// The caller behind a token hash, if the token is valid and not revoked.
    pub fn caller(&self, token_hash: &str) -> Result<Option<Caller>, StoreError> {
        let agent = self
            .c
            .query_row(
                &format!("SELECT {AGENT_COLS} FROM agents a WHERE a.token_hash = ?1 AND a.revoked = 0"),
                [token_hash],
                agent_row,
            )
            .optional()
            .db(&self.path)?;
        let Some(agent) = agent else { return Ok(None) };
        let mut st = self.c.prepare_cached("SELECT actor FROM devices WHERE agent = ?1").db(&self.path)?;
        let actors = st
            .query_map([&agent.name], |r| r.get::<_, String>(0))
            .db(&self.path)?
            .filter_map(|a| a.ok().and_then(|h| ActorId::try_from(h.as_str()).ok()))
            .collect();
        Ok(Some(Caller { agent, actors }))
    }

    /// Registers a device actor to an agent (idempotent for the same agent).
    /// The actor is stored in its canonical form (lower-case hex), so any
    /// other spelling of a registered actor finds its owner.
    pub fn register_device(&mut self, actor: &str, agent: &str, now: i64) -> Result<(), StoreError> {
        let canonical = ActorId::try_from(actor).map(|a| a.to_hex_string()).unwrap_or_else(|_| actor.to_string());
        let actor = canonical.as_str();
        let path = self.path.clone();
        let tx = self.tx()?;
        let owner: Option<String> =
            tx.query_row("SELECT agent FROM devices WHERE actor = ?1", [actor], |r| r.get(0)).optional().db(&path)?;
        match owner {
            Some(o) if o != agent => return Err(StoreError::DeviceTaken(o)),
            Some(_) => {}
            None => {
                // Clock stamps name a device by its actor's first 8 bytes: an
                // actor sharing them with a registered one could stamp events
                // as that device (and take its stamp keys), so it is refused.
                let twin: Option<String> = tx
                    .query_row(
                        "SELECT agent FROM devices WHERE substr(actor, 1, 16) = substr(?1, 1, 16) LIMIT 1",
                        [actor],
                        |r| r.get(0),
                    )
                    .optional()
                    .db(&path)?;
                if let Some(o) = twin {
                    return Err(StoreError::DeviceTaken(o));
                }
                tx.execute(
                    "INSERT INTO devices (actor, agent, registered_at) VALUES (?1, ?2, ?3)",
                    params![actor, agent, now],
                )
                .db(&path)?;
            }
        }
        tx.commit().db(&path)
    }

    pub fn touch_device(&mut self, actor: &str, offset_ms: i64, now: i64) -> Result<(), StoreError> {
        let _writing = self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.c
            .execute(
                "UPDATE devices SET last_seen = ?2, offset_ms = ?3 WHERE actor = ?1",
                params![actor, now, offset_ms],
            )
            .db(&self.path)?;
        Ok(())
    }

    // ---- settings ---------------------------------------------------------

    pub(crate) fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional().db(&self.path)
    }

    pub(crate) fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.c
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .db(&self.path)?;
        Ok(())
    }

    /// The database's epoch: a random id that changes when a backup is
    /// restored, so devices know the relay's sequence numbers started over
    /// and resynchronize from scratch.
    pub fn epoch(&self) -> Result<String, StoreError> {
        Ok(self.setting("epoch")?.unwrap_or_default())
    }

    pub fn new_epoch(&self) -> Result<String, StoreError> {
        let e = uuid::Uuid::new_v4().simple().to_string();
        self.put_setting("epoch", &e)?;
        Ok(e)
    }

    pub fn settings(&self) -> Result<Settings, StoreError> {
        let categories = self.setting("categories")?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default();
        let sla = self.sla_settings()?;
        let mut st =
            self.c.prepare_cached("SELECT name, team FROM agents WHERE revoked = 0 ORDER BY name").db(&self.path)?;
        let directory = st
            .query_map([], |r| Ok(DirectoryEntry { name: r.get(0)?, team: r.get(1)? }))
            .db(&self.path)?
            .collect::<Result<Vec<DirectoryEntry>, _>>()
            .db(&self.path)?;
        let limits = crate::store::parse_limits(self.setting("limits")?.as_deref())?;
        Ok(crate::store::settings_of(categories, sla, directory, limits))
    }

    pub fn sla_settings(&self) -> Result<SlaSettings, StoreError> {
        parse_sla_settings(self.setting("sla")?.as_deref())
    }

    pub fn set_categories(&mut self, categories: &[String]) -> Result<(), StoreError> {
        self.put_setting("categories", &serde_json::to_string(categories).unwrap_or_else(|_| "[]".into()))
    }

    /// Adds a settings epoch starting `now` (earlier epochs keep applying to
    /// the past, so breaches already recorded stay), then recomputes every
    /// ticket's SLA instants from the index alone.
    pub fn update_sla(&mut self, now: i64, change: impl FnOnce(&mut SlaPolicy)) -> Result<SlaPolicy, StoreError> {
        let mut settings = self.sla_settings()?;
        let mut policy = settings.epochs.last().map(|(_, p)| p.clone()).unwrap_or_default();
        change(&mut policy);
        settings.epochs.retain(|(from, _)| *from < now);
        settings.epochs.push((now, policy.clone()));
        self.set_sla_settings(&settings, now)?;
        Ok(policy)
    }

    /// Stores the SLA settings and recomputes every ticket's SLA columns,
    /// in one transaction.
    pub fn set_sla_settings(&mut self, settings: &SlaSettings, now: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        tx.execute(
            "INSERT INTO settings (key, value) VALUES ('sla', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [serde_json::to_string(settings).unwrap_or_default()],
        )
        .db(&path)?;
        recompute_sla(&tx, &path, settings, now)?;
        tx.commit().db(&path)
    }

    /// Devices whose last sync was at or after `since` (a metrics gauge).
    pub fn devices_seen_since(&self, since: i64) -> Result<u64, StoreError> {
        let n: i64 = self
            .c
            .query_row("SELECT count(*) FROM devices WHERE last_seen >= ?1", [since], |r| r.get(0))
            .db(&self.path)?;
        Ok(n as u64)
    }

    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).db(&self.path)
    }

    /// Copies the database to `dest` with SQLite's online backup, page batch
    /// by page batch, while the relay keeps serving; `progress(done, total)`
    /// is called between batches. `dest` must not exist: a backup never
    /// overwrites anything.
    pub fn backup_to(&self, dest: &Path, progress: &mut dyn FnMut(i32, i32)) -> Result<(), StoreError> {
        // A backup holds what the database holds: private from its first
        // byte.
        super::files::create_private(dest)
            .map_err(|e| StoreError::Unavailable { what: dest.display().to_string(), why: e.to_string() })?;
        let mut out = Connection::open(dest).db(dest)?;
        {
            let b = rusqlite::backup::Backup::new(&self.c, &mut out).db(dest)?;
            loop {
                let r = b.step(BACKUP_PAGES_PER_STEP).db(dest)?;
                let p = b.progress();
                progress(p.pagecount - p.remaining, p.pagecount);
                match r {
                    rusqlite::backup::StepResult::Done => break,
                    // Other connections hold the database briefly: yield and
                    // carry on.
                    _ => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        }
        let ok: String = out.query_row("PRAGMA integrity_check", [], |r| r.get(0)).db(dest)?;
        if ok != "ok" {
            return Err(StoreError::Damaged(format!("backup failed its integrity check: {ok}")));
        }
        Ok(())
    }
}

/// Pages copied per backup step between which writers get the database.
pub const BACKUP_PAGES_PER_STEP: i32 = 1024;

/// The SLA settings as stored (JSON text), inside a transaction.
pub(super) fn sla_settings_text(tx: &Transaction<'_>, path: &Path) -> Result<Option<String>, StoreError> {
    tx.query_row("SELECT value FROM settings WHERE key = 'sla'", [], |r| r.get(0)).optional().db(path)
}

/// Recomputes every ticket's SLA columns from its stored input.
pub(super) fn recompute_sla(
    tx: &Transaction<'_>,
    path: &Path,
    settings: &SlaSettings,
    now: i64,
) -> Result<(), StoreError> {
    let rows: Vec<(String, String)> = {
        let mut st = tx.prepare("SELECT id, input FROM sla_inputs").db(path)?;
        let r = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).db(path)?;
        r.collect::<Result<Vec<_>, _>>().db(path)?
    };
    let mut st = tx
        .prepare(
            "UPDATE tickets SET sla_static = ?2, fr_warn = ?3, fr_due = ?4, res_warn = ?5, res_due = ?6,
                sla_late = ?7 WHERE id = ?1",
        )
        .db(path)?;
    for (id, input) in rows {
        let input: index::SlaInputJson =
            serde_json::from_str(&input).map_err(|e| StoreError::Damaged(format!("ticket {id}: {e}")))?;
        let c = index::sla_columns(&input.into(), settings, now);
        st.execute(params![id, c.fixed_rank, c.fr_warn, c.fr_due, c.res_warn, c.res_due, c.late_ms]).db(path)?;
    }
    Ok(())
}
