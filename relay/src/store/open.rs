//! Opening the relay's database by what `--db` says: a file path
//! (SQLite) or a `postgres://` URL (PostgreSQL).

use std::ops::{Deref, DerefMut};
use std::path::Path;

use tickets_core::sla::SlaPolicy;

use super::postgres::{self, PgConn, PgDb};
use super::{Conn, Db, RelayStore, StoreError};

/// The relay's database, whichever backend holds it.
#[derive(Debug, Clone)]
pub enum RelayDb {
    Sqlite(Db),
    Postgres(PgDb),
}

impl From<Db> for RelayDb {
    fn from(db: Db) -> RelayDb {
        RelayDb::Sqlite(db)
    }
}

impl From<PgDb> for RelayDb {
    fn from(db: PgDb) -> RelayDb {
        RelayDb::Postgres(db)
    }
}

/// One connection of either backend: the storage verbs through
/// [`RelayStore`], and the few operations that differ.
pub enum RelayConn {
    Sqlite(Conn),
    Postgres(PgConn),
}

impl RelayDb {
    /// Opens `db`: a `postgres://` URL, or else a SQLite file path.
    pub fn open(db: &Path, create: bool) -> Result<RelayDb, StoreError> {
        match db.to_str().filter(|s| postgres::is_url(s)) {
            Some(url) => Ok(RelayDb::Postgres(PgDb::open(url, create)?)),
            None => Ok(RelayDb::Sqlite(Db::open(db, create)?)),
        }
    }

    /// The database as shown to people (a URL without its password).
    pub fn describe(&self) -> String {
        match self {
            RelayDb::Sqlite(db) => db.path().display().to_string(),
            RelayDb::Postgres(db) => db.url().to_string(),
        }
    }

    /// A connection of its own (commands, long reads such as exports).
    pub fn conn(&self) -> Result<RelayConn, StoreError> {
        Ok(match self {
            RelayDb::Sqlite(db) => RelayConn::Sqlite(db.conn()?),
            RelayDb::Postgres(db) => RelayConn::Postgres(db.conn()?),
        })
    }

    /// Runs `f` on a pooled connection.
    pub fn with<R, E: From<StoreError>>(&self, f: impl FnOnce(&mut dyn RelayStore) -> Result<R, E>) -> Result<R, E> {
        match self {
            RelayDb::Sqlite(db) => db.with(|c| f(c)),
            RelayDb::Postgres(db) => db.with(|c| f(c)),
        }
    }

    /// SQLite: copies the write-ahead log into the file; PostgreSQL
    /// checkpoints on its own.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        match self {
            RelayDb::Sqlite(db) => db.checkpoint(),
            RelayDb::Postgres(_) => Ok(()),
        }
    }
}

impl Deref for RelayConn {
    type Target = dyn RelayStore;
    fn deref(&self) -> &(dyn RelayStore + 'static) {
        match self {
            RelayConn::Sqlite(c) => c,
            RelayConn::Postgres(c) => c,
        }
    }
}

impl DerefMut for RelayConn {
    fn deref_mut(&mut self) -> &mut (dyn RelayStore + 'static) {
        match self {
            RelayConn::Sqlite(c) => c,
            RelayConn::Postgres(c) => c,
        }
    }
}

/// What `backup` and `restore` say on PostgreSQL.
pub const PG_BACKUP_HINT: &str = "on PostgreSQL, back up with `pg_dump --format=custom URL` and restore with \
     `pg_restore` into an empty database; then give the restored database a new epoch, so that devices \
     resynchronize: psql URL -c \"UPDATE settings SET value = md5(random()::text) WHERE key = 'epoch'\"";

impl RelayConn {
    /// Adds a settings epoch starting `now` with the policy `change`
    /// makes of the current one, and recomputes every ticket's SLA.
    pub fn update_sla(&mut self, now: i64, change: impl FnOnce(&mut SlaPolicy)) -> Result<SlaPolicy, StoreError> {
        let mut settings = self.sla_settings()?;
        let mut policy = settings.epochs.last().map(|(_, p)| p.clone()).unwrap_or_default();
        change(&mut policy);
        settings.epochs.retain(|(from, _)| *from < now);
        settings.epochs.push((now, policy.clone()));
        self.set_sla_settings(&settings, now)?;
        Ok(policy)
    }

    /// A new epoch: devices resynchronize from scratch.
    pub fn new_epoch(&mut self) -> Result<String, StoreError> {
        match self {
            RelayConn::Sqlite(c) => c.new_epoch(),
            RelayConn::Postgres(c) => c.new_epoch(),
        }
    }

    /// SQLite's integrity check; PostgreSQL checks its own pages.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        match self {
            RelayConn::Sqlite(c) => c.integrity_check(),
            RelayConn::Postgres(_) => Ok("ok".into()),
        }
    }

    /// An online backup of a SQLite database; refused on PostgreSQL.
    pub fn backup_to(&self, dest: &Path, progress: &mut dyn FnMut(i32, i32)) -> Result<(), StoreError> {
        match self {
            RelayConn::Sqlite(c) => c.backup_to(dest, progress),
            RelayConn::Postgres(c) => Err(StoreError::Unsupported(format!("backup of {}", c.url()))),
        }
    }

    /// The SQLite connection, for what only SQLite does.
    pub fn sqlite(&self) -> Option<&Conn> {
        match self {
            RelayConn::Sqlite(c) => Some(c),
            RelayConn::Postgres(_) => None,
        }
    }
}
