//! Watch across instances: each relay instance keeps one connection of its
//! own (outside the pool) that LISTENs on the log's channel and the inbox's.
//! A NOTIFY is only a hint: on each one, after every (re)connect, and every
//! [`HEADS_REREAD_SECS`] anyway, the instance reads both head rows and moves
//! its watchers' heads forward (never back). A commit or a webhook delivery
//! on any instance thus wakes the watchers of every instance within about a
//! second.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use super::inbox::INBOX_CHANNEL;
use super::log::CHANNEL;
use super::PgDb;
use crate::store::Heads;

/// The safety re-read of the head, whatever the notifications say.
pub const HEADS_REREAD_SECS: u64 = 2;
/// The wait before connecting again after the connection was lost.
const RECONNECT_SECS: u64 = 1;

/// Follows the log's heads on `db` into `heads`, and the inbox's head into
/// `inbox`, until `stop` is set.
pub async fn follow_heads(
    db: PgDb,
    heads: std::sync::Arc<watch::Sender<Heads>>,
    inbox: std::sync::Arc<watch::Sender<u64>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = follow_once(&db, &heads, &inbox, &mut stop).await {
            tracing::warn!(error = %e, db = %db.url, "the watch connection to PostgreSQL was lost; connecting again");
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(RECONNECT_SECS)) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn follow_once(
    db: &PgDb,
    heads: &watch::Sender<Heads>,
    inbox: &watch::Sender<u64>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = db.config.connect(NoTls).await?;
    let (hint_tx, mut hints) = mpsc::unbounded_channel::<()>();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if hint_tx.send(()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    let result = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {INBOX_CHANNEL}")).await?;
        let mut tick = tokio::time::interval(Duration::from_secs(HEADS_REREAD_SECS));
        loop {
            let row =
                client.query_one("SELECT l.seq, l.tickets, i.seq FROM log_head l CROSS JOIN inbox_head i", &[]).await?;
            let read = Heads { all: row.get::<_, i64>(0) as u64, tickets: row.get::<_, i64>(1) as u64 };
            let inbox_read = row.get::<_, i64>(2) as u64;
            inbox.send_if_modified(|s| {
                let moved = inbox_read > *s;
                *s = (*s).max(inbox_read);
                moved
            });
            heads.send_if_modified(|h| {
                let next = Heads { all: h.all.max(read.all), tickets: h.tickets.max(read.tickets) };
                let changed = next != *h;
                *h = next;
                changed
            });
            tokio::select! {
                hint = hints.recv() => if hint.is_none() { return Ok(()) },
                _ = tick.tick() => {}
                _ = stop.changed() => return Ok(()),
            }
        }
    }
    .await;
    driver.abort();
    result
}
