//! Each device's floor on SQLite: when its previous completed sync started
//! (see [`crate::store::RelayStore::sync_floor`]). A table of its own,
//! created when missing, so a database of any schema version gains it on
//! open without a migration.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{Conn, Ctx, StoreError};
use crate::store::SyncFloor;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS device_floors (
    actor TEXT PRIMARY KEY,
    -- When the device's previous completed sync started: relay ms, and the
    -- device's own clock then (NULL: it has completed none).
    floor_ms INTEGER,
    floor_device_ms INTEGER,
    -- When the sync under way started (NULL: none).
    start_ms INTEGER,
    start_device_ms INTEGER
) WITHOUT ROWID;
";

pub(super) fn schema(c: &Connection, path: &Path) -> Result<(), StoreError> {
    c.execute_batch(SCHEMA).db(path)
}

impl Conn {
    pub fn sync_floor(&mut self, actor: &str, now: i64, device_ms: i64) -> Result<Option<SyncFloor>, StoreError> {
        let _writing = self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let row = self
            .c
            .query_row(
                "INSERT INTO device_floors (actor, start_ms, start_device_ms)
                 VALUES (?1, min(?2, ?3 - coalesce((SELECT offset_ms FROM devices WHERE actor = ?1), 0)), ?3)
                 ON CONFLICT (actor) DO UPDATE SET
                   start_device_ms = CASE WHEN start_ms IS NULL THEN excluded.start_device_ms ELSE start_device_ms END,
                   start_ms = coalesce(start_ms, excluded.start_ms)
                 RETURNING floor_ms, floor_device_ms",
                params![actor, now, device_ms],
                |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
            )
            .optional()
            .db(&self.path)?;
        Ok(match row {
            Some((Some(relay_ms), Some(device_ms))) => Some(SyncFloor { relay_ms, device_ms }),
            _ => None,
        })
    }

    pub fn complete_sync(&mut self, actor: &str) -> Result<(), StoreError> {
        let _writing = self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.c
            .execute(
                "UPDATE device_floors SET floor_ms = start_ms, floor_device_ms = start_device_ms,
                 start_ms = NULL, start_device_ms = NULL WHERE actor = ?1 AND start_ms IS NOT NULL",
                [actor],
            )
            .db(&self.path)?;
        Ok(())
    }
}
