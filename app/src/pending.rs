//! How many local edits wait to be pushed: the header's "3 changes saved on
//! this device". The node counts documents with local changes (a ticket and
//! its notes are two, and three edits of one ticket are one); a person
//! counts edits. Each waiting document's own changes since the relay last
//! confirmed it are what the next push sends, so those are counted.
//!
//! The node has no verb for this yet, so it is read here through the
//! node's store API (`Store::dirty_docs`), the queue a push reads.

use std::path::Path;

use tickets_core::doc::{DocKind, TicketDoc};
use tickets_node::store::Store;
use tickets_node::NodeError;
use uuid::Uuid;

/// Waiting documents whose edits are counted one by one; past this many
/// (a large import, a long day offline) each further document counts as
/// one edit, so the header's count stays cheap. A lower bound, never more
/// than what waits.
pub const PENDING_DOCS_COUNTED_MAX: usize = 200;

/// The local edits (Automerge changes by this device's actor) not yet
/// confirmed by the relay.
pub fn pending_edits(db: &Path, actor: &automerge::ActorId, waiting_docs: usize) -> Result<usize, NodeError> {
    if waiting_docs == 0 {
        return Ok(0);
    }
    let mut store = Store::open(db)?;
    let tx = store.tx()?;
    let docs = tx.dirty_docs(None, PENDING_DOCS_COUNTED_MAX)?;
    let mut edits = 0;
    for (id, kind, bytes, synced, _rev) in &docs {
        let (Ok(uuid), Some(kind)) = (Uuid::parse_str(id), DocKind::parse(kind)) else {
            edits += 1;
            continue;
        };
        let Ok(mut doc) = TicketDoc::load_stored(uuid, kind, bytes) else {
            edits += 1;
            continue;
        };
        let heads: Vec<automerge::ChangeHash> =
            synced.as_deref().unwrap_or("").split(',').filter_map(|h| h.parse().ok()).collect();
        let mine = doc.changes_meta_since(&heads).iter().filter(|m| &m.actor == actor).count();
        // A document waits because something in it changed here.
        edits += mine.max(1);
    }
    Ok(edits + waiting_docs.saturating_sub(docs.len()))
}
