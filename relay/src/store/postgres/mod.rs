//! The PostgreSQL backend: several relay instances over one database.
//!
//! tokio-postgres with a deadpool pool: the relay's store work already runs
//! on blocking threads (`spawn_blocking`), so each verb here is a blocking
//! call that runs its queries on a small runtime of the backend's own (the
//! synchronous `postgres` crate would panic inside the server's runtime).
//!
//! - [`schema`]: the tables, created or upgraded on start under an advisory
//!   lock (instances starting together are safe);
//! - [`log`]: documents and the change log, with commit-ordered sequence
//!   numbers (see there);
//! - [`queries`]: agents, devices, settings, the board and exports;
//! - [`inbox`]: the inbox's tables, with commit-ordered inbox sequence
//!   numbers (see there).

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::StoreError;

mod floor;
pub mod inbox;
mod log;
mod queries;
mod schema;
pub mod watch;

pub use schema::SCHEMA_VERSION;

/// Whether a `--db` value names a PostgreSQL database.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// Connections a relay instance keeps at most.
pub const POOL_SIZE_MAX: usize = 16;
/// How long a request waits for a connection (or to open one) before it
/// gives up with 503.
pub const CONNECT_TIMEOUT_SECS: u64 = 5;

/// The backend's runtime, shut down without waiting when the last handle
/// goes (dropping a runtime inside another one would panic).
struct Rt(Option<tokio::runtime::Runtime>);

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Rt {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.0 {
            Some(rt) => rt.block_on(f),
            None => unreachable!("the runtime lives as long as its handles"),
        }
    }
}

/// A relay database on PostgreSQL: its URL (password hidden) and a pool.
#[derive(Clone)]
pub struct PgDb {
    url: String,
    config: Arc<tokio_postgres::Config>,
    pool: Pool,
    rt: Arc<Rt>,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDb").field("url", &self.url).finish()
    }
}

/// The URL without its password, for messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((user_info, host)) = rest.split_once('@') else { return url.to_string() };
    match user_info.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

impl PgDb {
    /// Connects to the database at `url`, then creates the relay's tables
    /// when `create` is set and they are missing, or upgrades them.
    pub fn open(url: &str, create: bool) -> Result<PgDb, StoreError> {
        let shown = redacted(url);
        let config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Unavailable {
            what: shown.clone(),
            why: format!("not a PostgreSQL URL ({e}); write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"),
        })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("relay-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable { what: shown.clone(), why: e.to_string() })?;
        let mgr =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(mgr)
            .max_size(POOL_SIZE_MAX)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(CONNECT_TIMEOUT_SECS)))
            .create_timeout(Some(Duration::from_secs(CONNECT_TIMEOUT_SECS)))
            .recycle_timeout(Some(Duration::from_secs(CONNECT_TIMEOUT_SECS)))
            .build()
            .map_err(|e| StoreError::Unavailable { what: shown.clone(), why: e.to_string() })?;
        let db = PgDb { url: shown, config: Arc::new(config), pool, rt: Arc::new(Rt(Some(rt))) };
        db.conn()?.migrate(create)?;
        Ok(db)
    }

    /// The URL, password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pooled connection.
    pub fn conn(&self) -> Result<PgConn, StoreError> {
        let pool = self.pool.clone();
        let client = self
            .rt
            .block_on(async move { pool.get().await })
            .map_err(|e| StoreError::Unavailable { what: self.url.clone(), why: pool_error(&e) })?;
        Ok(PgConn {
            client: std::cell::RefCell::new(client),
            in_read: false,
            rt: self.rt.clone(),
            url: self.url.clone(),
        })
    }

    /// Runs `f` on a pooled connection.
    pub fn with<R, E: From<StoreError>>(&self, f: impl FnOnce(&mut PgConn) -> Result<R, E>) -> Result<R, E> {
        let mut c = self.conn()?;
        f(&mut c)
    }
}

impl crate::store::RelayStore for PgConn {
    fn snapshot(&mut self, ids: &[String]) -> Result<crate::store::Snapshot, StoreError> {
        PgConn::snapshot(self, ids)
    }
    fn commit_page(&mut self, page: &crate::store::PageWrite) -> Result<crate::store::Commit, StoreError> {
        PgConn::commit_page(self, page)
    }
    fn heads(&self) -> Result<crate::store::Heads, StoreError> {
        PgConn::heads(self)
    }
    fn read_pull(
        &mut self,
        q: &crate::store::PullQuery,
        sink: &mut dyn crate::store::PullSink,
    ) -> Result<(), StoreError> {
        PgConn::read_pull(self, q, sink)
    }
    fn caller(&self, token_hash: &str) -> Result<Option<crate::store::Caller>, StoreError> {
        PgConn::caller(self, token_hash)
    }
    fn add_agent(
        &mut self,
        name: &str,
        role: &str,
        team: Option<&str>,
        notes: bool,
        token_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        PgConn::add_agent(self, name, role, team, notes, token_hash, now)
    }
    fn agents(&self) -> Result<Vec<crate::store::AgentRow>, StoreError> {
        PgConn::agents(self)
    }
    fn revoke_agent(&mut self, name: &str) -> Result<(), StoreError> {
        PgConn::revoke_agent(self, name)
    }
    fn set_notes_permission(&mut self, name: &str, allowed: bool) -> Result<(), StoreError> {
        PgConn::set_notes_permission(self, name, allowed)
    }
    fn register_device(&mut self, actor: &str, agent: &str, now: i64) -> Result<(), StoreError> {
        PgConn::register_device(self, actor, agent, now)
    }
    fn touch_device(&mut self, actor: &str, offset_ms: i64, now: i64) -> Result<(), StoreError> {
        PgConn::touch_device(self, actor, offset_ms, now)
    }
    fn sync_floor(&mut self, actor: &str, now: i64, device_ms: i64) -> Result<Option<super::SyncFloor>, StoreError> {
        PgConn::sync_floor(self, actor, now, device_ms)
    }
    fn complete_sync(&mut self, actor: &str) -> Result<(), StoreError> {
        PgConn::complete_sync(self, actor)
    }
    fn devices_seen_since(&self, since: i64) -> Result<u64, StoreError> {
        PgConn::devices_seen_since(self, since)
    }
    fn epoch(&self) -> Result<String, StoreError> {
        PgConn::epoch(self)
    }
    fn settings(&self) -> Result<tickets_core::protocol::Settings, StoreError> {
        PgConn::settings(self)
    }
    fn sla_settings(&self) -> Result<tickets_core::sla::SlaSettings, StoreError> {
        PgConn::sla_settings(self)
    }
    fn set_categories(&mut self, categories: &[String]) -> Result<(), StoreError> {
        PgConn::set_categories(self, categories)
    }
    fn limits(&self) -> Result<tickets_core::limits::Limits, StoreError> {
        crate::store::parse_limits(self.setting("limits")?.as_deref())
    }
    fn set_limits(&mut self, limits: &tickets_core::limits::Limits) -> Result<(), StoreError> {
        self.put_setting("limits", &serde_json::to_string(limits).map_err(|e| StoreError::Damaged(e.to_string()))?)
    }
    fn set_sla_settings(&mut self, settings: &tickets_core::sla::SlaSettings, now: i64) -> Result<(), StoreError> {
        PgConn::set_sla_settings(self, settings, now)
    }
    fn ticket_rows(
        &self,
        q: &tickets_core::index::ListQuery,
        now: i64,
    ) -> Result<(Vec<crate::store::TicketRow>, usize), StoreError> {
        PgConn::ticket_rows(self, q, now)
    }
    fn ticket_row(&self, id: &str) -> Result<Option<crate::store::TicketRow>, StoreError> {
        PgConn::ticket_row(self, id)
    }
    fn ids_with_prefix(&self, prefix: &str, max: usize) -> Result<Vec<String>, StoreError> {
        PgConn::ids_with_prefix(self, prefix, max)
    }
    fn color_counts(&self, now: i64) -> Result<tickets_core::index::SlaCounts, StoreError> {
        PgConn::color_counts(self, now)
    }
    fn next_color_change(&self, now: i64) -> Result<Option<i64>, StoreError> {
        PgConn::next_color_change(self, now)
    }
    fn begin_read(&mut self) -> Result<(), StoreError> {
        self.run(async |c| c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await)?;
        self.in_read = true;
        Ok(())
    }
    fn end_read(&mut self) -> Result<(), StoreError> {
        self.in_read = false;
        self.run(async |c| c.batch_execute("COMMIT").await)
    }
    fn export_count(&self, f: &crate::store::ExportFilter) -> Result<u64, StoreError> {
        PgConn::export_count(self, f)
    }
    fn export_rows(
        &self,
        f: &crate::store::ExportFilter,
        after: &str,
        limit: usize,
    ) -> Result<Vec<crate::store::TicketRow>, StoreError> {
        PgConn::export_rows(self, f, after, limit)
    }
}

/// What went wrong getting a connection, in one line.
fn pool_error(e: &deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => db_error_text(e),
        PoolError::Timeout(_) => "no connection within the time limit (is PostgreSQL up and reachable?)".into(),
        other => other.to_string(),
    }
}

/// A tokio-postgres error with its server message when there is one.
pub(super) fn db_error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(&format!(": {inner}"));
                src = inner.source();
            }
            s
        }
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        if self.in_read {
            let _ = self.run(async |c| c.batch_execute("ROLLBACK").await);
        }
    }
}

impl PgConn {
    /// The database's URL, password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// One pooled connection to the relay's PostgreSQL database.
pub struct PgConn {
    client: std::cell::RefCell<deadpool_postgres::Object>,
    /// Inside [`crate::store::RelayStore::begin_read`]'s transaction (rolled
    /// back if the connection goes back to the pool still in it).
    in_read: bool,
    rt: Arc<Rt>,
    url: String,
}

impl PgConn {
    /// Runs async queries on the backend's runtime.
    fn run<T>(
        &self,
        f: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        let Ok(mut client) = self.client.try_borrow_mut() else {
            return Err(StoreError::Damaged("a PostgreSQL connection used by two verbs at once".into()));
        };
        self.rt.block_on(f(&mut client)).map_err(|e| pg_error(&self.url, e))
    }
}

/// A PostgreSQL error as the relay's: a lost or refused connection is
/// [`StoreError::Unavailable`] (503, retry), anything else a database
/// error (500).
pub(super) fn pg_error(url: &str, e: tokio_postgres::Error) -> StoreError {
    let text = db_error_text(&e);
    let lost = e.is_closed()
        || e.as_db_error().is_none()
            && std::error::Error::source(&e).is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
        || e.code().is_some_and(|c| {
            let c = c.code();
            c.starts_with("08") || c.starts_with("57P") || c == "53300"
        });
    if lost {
        StoreError::Unavailable { what: url.to_string(), why: text }
    } else {
        StoreError::Postgres { what: url.to_string(), why: text }
    }
}
