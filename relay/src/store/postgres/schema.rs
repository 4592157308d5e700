//! The PostgreSQL schema, created or upgraded on start under an advisory
//! lock, so that instances starting together do it once.

use super::PgConn;
use crate::store::StoreError;

/// The schema version this build writes (kept in `meta`). 2 added the
/// inbox's tables ([`super::inbox::SCHEMA`]).
pub const SCHEMA_VERSION: i64 = 2;

/// The advisory lock key held while the schema is created or upgraded.
const SCHEMA_LOCK: i64 = 0x0074_6963_6b65_7473; // "tickets"

/// Ids and kinds compare bytewise (`COLLATE "C"`), as on SQLite, whatever
/// the database's locale.
const SCHEMA: &str = r#"
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE agents (
    name text PRIMARY KEY,
    role text NOT NULL,
    team text,
    internal_notes bigint NOT NULL DEFAULT 0,
    token_hash text NOT NULL UNIQUE,
    revoked bigint NOT NULL DEFAULT 0,
    created_at bigint NOT NULL
);
CREATE TABLE devices (
    actor text PRIMARY KEY,
    agent text NOT NULL REFERENCES agents (name),
    registered_at bigint NOT NULL,
    last_seen bigint,
    offset_ms bigint NOT NULL DEFAULT 0
);
CREATE INDEX devices_agent ON devices (agent);
CREATE TABLE docs (
    id text COLLATE "C" NOT NULL,
    kind text COLLATE "C" NOT NULL,
    bytes bytea NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (id, kind)
);
-- The log. Sequence numbers come from log_head, taken as the last step of
-- the committing transaction: seq order is commit order, without gaps.
CREATE TABLE changes (
    seq bigint PRIMARY KEY,
    id text COLLATE "C" NOT NULL,
    kind text NOT NULL,
    device text NOT NULL,
    bytes bytea NOT NULL
);
CREATE INDEX changes_ticket_seq ON changes (seq) WHERE kind = 'ticket';
CREATE TABLE log_head (
    one integer PRIMARY KEY CHECK (one = 1),
    seq bigint NOT NULL,
    tickets bigint NOT NULL
);
INSERT INTO log_head VALUES (1, 0, 0);
CREATE TABLE event_times (
    id text COLLATE "C" NOT NULL,
    key text NOT NULL,
    effective_ms bigint NOT NULL,
    received_ms bigint NOT NULL,
    PRIMARY KEY (id, key)
);
CREATE TABLE tickets (
    id text COLLATE "C" NOT NULL UNIQUE,
    subject_lc text NOT NULL,
    priority text NOT NULL,
    priority_rank bigint NOT NULL,
    category text NOT NULL,
    status text NOT NULL,
    status_rank bigint NOT NULL,
    assignee text,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    conversation_id text,
    sla_static bigint NOT NULL DEFAULT 0,
    fr_warn bigint, fr_due bigint, res_warn bigint, res_due bigint,
    -- By how much (ms) a stopped clock was breached, for the SLA order.
    sla_late bigint
);
CREATE TABLE ticket_views (id text COLLATE "C" PRIMARY KEY, view_json text NOT NULL, notes_json text);
CREATE TABLE sla_inputs (id text COLLATE "C" PRIMARY KEY, input text NOT NULL);
CREATE INDEX tickets_created ON tickets (created_at);
CREATE INDEX tickets_status ON tickets (status, created_at);
CREATE INDEX tickets_fr_due ON tickets (fr_due) WHERE fr_due IS NOT NULL;
CREATE INDEX tickets_res_due ON tickets (res_due) WHERE res_due IS NOT NULL;
CREATE INDEX tickets_fr_warn ON tickets (fr_warn) WHERE fr_warn IS NOT NULL;
CREATE INDEX tickets_res_warn ON tickets (res_warn) WHERE res_warn IS NOT NULL;
CREATE INDEX tickets_sla_static ON tickets (sla_static);
CREATE TABLE settings (key text PRIMARY KEY, value text NOT NULL);
"#;

impl PgConn {
    /// Creates the schema (when `create` is set and the database has no
    /// relay tables) or checks its version, holding the schema lock.
    pub(super) fn migrate(&self, create: bool) -> Result<(), StoreError> {
        let url = self.url.clone();
        let version: Option<String> = self.run(async |c| {
            c.execute("SELECT pg_advisory_lock($1)", &[&SCHEMA_LOCK]).await?;
            let exists: bool = c.query_one("SELECT to_regclass('meta') IS NOT NULL", &[]).await?.get(0);
            if !exists {
                return Ok(None);
            }
            let row = c.query_opt("SELECT value FROM meta WHERE key = 'schema'", &[]).await?;
            Ok(Some(row.map(|r| r.get::<_, String>(0)).unwrap_or_default()))
        })?;
        let result = match version {
            None if !create => Err(StoreError::Unavailable {
                what: url.clone(),
                why: "it holds no relay tables yet (start the relay once with `tickets relay serve --db URL`)".into(),
            }),
            None => self
                .run(async |c| {
                    let tables: i64 = c
                        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()", &[])
                        .await?
                        .get(0);
                    if tables != 0 {
                        return Ok(false);
                    }
                    let tx = c.transaction().await?;
                    tx.batch_execute(SCHEMA).await?;
                    tx.batch_execute(super::inbox::SCHEMA).await?;
                    tx.execute("INSERT INTO meta (key, value) VALUES ('schema', $1)", &[&SCHEMA_VERSION.to_string()])
                        .await?;
                    let epoch = uuid::Uuid::new_v4().simple().to_string();
                    tx.execute("INSERT INTO settings (key, value) VALUES ('epoch', $1)", &[&epoch]).await?;
                    tx.commit().await?;
                    Ok(true)
                })
                .and_then(|made| {
                    if made {
                        Ok(())
                    } else {
                        Err(StoreError::Postgres {
                            what: url.clone(),
                            why: "the database holds other tables: give the relay a database of its own".into(),
                        })
                    }
                }),
            Some(v) if v == SCHEMA_VERSION.to_string() => Ok(()),
            // Still under the schema lock: one instance upgrades, the others
            // then find version 2.
            Some(v) if v == "1" => self.run(async |c| {
                let tx = c.transaction().await?;
                tx.batch_execute(super::inbox::SCHEMA).await?;
                tx.execute("UPDATE meta SET value = $1 WHERE key = 'schema'", &[&SCHEMA_VERSION.to_string()]).await?;
                tx.commit().await
            }),
            Some(v) => Err(StoreError::Postgres {
                what: url.clone(),
                why: format!("relay schema version {v:?}, this relay knows {SCHEMA_VERSION}: upgrade `tickets`"),
            }),
        };
        // Still under the schema lock: columns and tables added within a
        // schema version, and one re-index of rows of an older format.
        let result = result.and_then(|()| self.upgrade_index());
        // Devices' floors: a table created when missing, still under the lock.
        let result = result.and_then(|()| self.floor_schema());
        let unlocked = self.run(async |c| c.execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK]).await);
        result.and(unlocked.map(|_| ()))
    }
}
