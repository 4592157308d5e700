//! Each device's floor on SQLite: the start of its previous completed sync
//! (see [`crate::store::RelayStore::sync_floor`]). A table of its own,
//! created when missing, so a database of any schema version gains it on
//! open without a migration.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{Conn, Ctx, StoreError};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS device_floors (
    actor TEXT PRIMARY KEY,
    -- Relay ms at which the device's previous completed sync started.
    floor_ms INTEGER,
    -- Relay ms at which the sync under way started (NULL: none).
    sync_start_ms INTEGER
) WITHOUT ROWID;
";

pub(super) fn schema(c: &Connection, path: &Path) -> Result<(), StoreError> {
    c.execute_batch(SCHEMA).db(path)
}

impl Conn {
    pub fn sync_floor(&mut self, actor: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let _writing = self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.c
            .query_row(
                "INSERT INTO device_floors (actor, floor_ms, sync_start_ms) VALUES (?1, NULL, ?2)
                 ON CONFLICT (actor) DO UPDATE SET sync_start_ms = coalesce(sync_start_ms, excluded.sync_start_ms)
                 RETURNING floor_ms",
                params![actor, now],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .db(&self.path)
            .map(Option::flatten)
    }

    pub fn complete_sync(&mut self, actor: &str) -> Result<(), StoreError> {
        let _writing = self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.c
            .execute(
                "UPDATE device_floors SET floor_ms = max(coalesce(floor_ms, sync_start_ms), sync_start_ms),
                 sync_start_ms = NULL WHERE actor = ?1 AND sync_start_ms IS NOT NULL",
                [actor],
            )
            .db(&self.path)?;
        Ok(())
    }
}
