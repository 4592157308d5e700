//! The backends the conformance suite runs against.

use tickets_relay::store::RelayStore;
use tickets_relay::Db;

/// A fresh database of one backend, and connections to it.
pub trait Backend {
    fn connect(&self) -> Box<dyn RelayStore + Send>;
}

/// A SQLite file in a temporary folder.
pub struct Sqlite {
    _dir: tempfile::TempDir,
    db: Db,
}

impl Sqlite {
    pub fn new() -> Sqlite {
        let dir = tempfile::tempdir().expect("temporary folder");
        let db = Db::open(&dir.path().join("relay.db"), true).expect("relay database");
        Sqlite { _dir: dir, db }
    }
}

impl Backend for Sqlite {
    fn connect(&self) -> Box<dyn RelayStore + Send> {
        Box::new(self.db.conn().expect("connection"))
    }
}

/// A fresh database in this test run's PostgreSQL cluster.
pub struct Postgres {
    db: tickets_relay::store::postgres::PgDb,
}

impl Postgres {
    pub fn new() -> Postgres {
        let url = crate::pg::fresh_database();
        Postgres { db: tickets_relay::store::postgres::PgDb::open(&url, true).expect("relay database on PostgreSQL") }
    }
}

impl Backend for Postgres {
    fn connect(&self) -> Box<dyn RelayStore + Send> {
        Box::new(self.db.conn().expect("connection"))
    }
}
