//! Each device's floor on PostgreSQL (see
//! [`crate::store::RelayStore::sync_floor`]): a table of its own, created
//! when missing at start, so a database of any schema version gains it
//! without a migration.

use super::PgConn;
use crate::store::StoreError;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS device_floors (
    actor text COLLATE \"C\" PRIMARY KEY,
    floor_ms bigint,
    sync_start_ms bigint
);
";

impl PgConn {
    pub fn sync_floor(&self, actor: &str, now: i64) -> Result<Option<i64>, StoreError> {
        self.run(async |c| {
            let row = c
                .query_one(
                    "INSERT INTO device_floors (actor, floor_ms, sync_start_ms) VALUES ($1, NULL, $2)
                     ON CONFLICT (actor) DO UPDATE
                     SET sync_start_ms = coalesce(device_floors.sync_start_ms, excluded.sync_start_ms)
                     RETURNING floor_ms",
                    &[&actor, &now],
                )
                .await?;
            Ok(row.get::<_, Option<i64>>(0))
        })
    }

    pub fn complete_sync(&self, actor: &str) -> Result<(), StoreError> {
        self.run(async |c| {
            c.execute(
                "UPDATE device_floors SET floor_ms = greatest(coalesce(floor_ms, sync_start_ms), sync_start_ms),
                 sync_start_ms = NULL WHERE actor = $1 AND sync_start_ms IS NOT NULL",
                &[&actor],
            )
            .await
        })?;
        Ok(())
    }

    /// Creates the floors table when missing (every start, after the
    /// schema check).
    pub(super) fn floor_schema(&self) -> Result<(), StoreError> {
        self.run(async |c| c.batch_execute(SCHEMA).await)
    }
}
