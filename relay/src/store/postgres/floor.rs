//! Each device's floor on PostgreSQL (see
//! [`crate::store::RelayStore::sync_floor`]): a table of its own, created
//! when missing at start (under the schema lock), so a database of any
//! schema version gains it without a migration.

use super::PgConn;
use crate::store::{StoreError, SyncFloor};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS device_floors (
    actor text COLLATE \"C\" PRIMARY KEY,
    floor_ms bigint,
    floor_device_ms bigint,
    start_ms bigint,
    start_device_ms bigint
);
";

impl PgConn {
    pub fn sync_floor(&self, actor: &str, now: i64, device_ms: i64) -> Result<Option<SyncFloor>, StoreError> {
        let row = self.run(async |c| {
            let row = c
                .query_one(
                    "INSERT INTO device_floors (actor, start_ms, start_device_ms)
                     VALUES ($1, least($2, $3 - coalesce((SELECT offset_ms FROM devices WHERE actor = $1), 0)), $3)
                     ON CONFLICT (actor) DO UPDATE SET
                       start_device_ms = CASE WHEN device_floors.start_ms IS NULL
                         THEN excluded.start_device_ms ELSE device_floors.start_device_ms END,
                       start_ms = coalesce(device_floors.start_ms, excluded.start_ms)
                     RETURNING floor_ms, floor_device_ms",
                    &[&actor, &now, &device_ms],
                )
                .await?;
            Ok((row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)))
        })?;
        Ok(match row {
            (Some(relay_ms), Some(device_ms)) => Some(SyncFloor { relay_ms, device_ms }),
            _ => None,
        })
    }

    pub fn complete_sync(&self, actor: &str) -> Result<(), StoreError> {
        self.run(async |c| {
            c.execute(
                "UPDATE device_floors SET floor_ms = start_ms, floor_device_ms = start_device_ms,
                 start_ms = NULL, start_device_ms = NULL WHERE actor = $1 AND start_ms IS NOT NULL",
                &[&actor],
            )
            .await
        })?;
        Ok(())
    }

    /// Creates the floors table when missing.
    pub(super) fn floor_schema(&self) -> Result<(), StoreError> {
        self.run(async |c| c.batch_execute(SCHEMA).await)
    }
}
