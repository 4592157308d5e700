//! A ticket's Automerge documents and every way they may be edited.
//!
//! Each ticket has two documents with the same id: the **ticket** document
//! (description Text, events, conversation link) and the **notes** document
//! (internal notes only), so that the relay can send notes to permitted
//! devices alone.
//!
//! Both start from a deterministic **genesis** change (actor derived from the
//! ticket id and kind, time 0, fixed operations): two devices that create the
//! same ticket offline share their root objects instead of conflicting on
//! every root key. A conversation's prefill is a second deterministic change
//! for the same reason.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValueRef, ValueRef, ROOT};
use uuid::Uuid;

use crate::error::DocError;
use crate::event::StoredEvent;
use crate::hlc::Hlc;
use crate::ids;

/// Schema version stored in every genesis.
pub const SCHEMA_VERSION: i64 = 1;

/// The two kinds of document a ticket has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocKind {
    Ticket,
    Notes,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Ticket => "ticket",
            DocKind::Notes => "notes",
        }
    }

    pub fn parse(s: &str) -> Option<DocKind> {
        match s {
            "ticket" => Some(DocKind::Ticket),
            "notes" => Some(DocKind::Notes),
            _ => None,
        }
    }
}

/// What the relay needs to know of a change to authorize it.
#[derive(Debug, Clone)]
pub struct ChangeMeta {
    pub actor: ActorId,
    pub seq: u64,
    pub deps: Vec<ChangeHash>,
    pub hash: ChangeHash,
}

/// Automerge chunk types (see the binary format): a document, a change, a
/// deflated change, a bundle.
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED: u8 = 2;
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// One chunk of Automerge data: its type, the checksum its header claims
/// (the first bytes of the change hash) and its bytes, header included.
struct Chunk<'a> {
    kind: u8,
    checksum: [u8; 4],
    bytes: &'a [u8],
}

/// Splits Automerge data into its chunks by their headers (magic bytes,
/// checksum, type, LEB128 length). `None` when the framing is broken.
fn change_chunks(mut data: &[u8]) -> Option<Vec<Chunk<'_>>> {
    let mut chunks = Vec::new();
    while !data.is_empty() {
        if data.get(..4)? != CHUNK_MAGIC {
            return None;
        }
        let checksum: [u8; 4] = data.get(4..8)?.try_into().ok()?;
        let kind = *data.get(8)?;
        let (mut len, mut shift, mut at) = (0u64, 0u32, 9usize);
        loop {
            let b = *data.get(at)?;
            at += 1;
            len |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
        let end = at.checked_add(usize::try_from(len).ok()?)?;
        let (bytes, rest) = (data.get(..end)?, data.get(end..)?);
        chunks.push(Chunk { kind, checksum, bytes });
        data = rest;
    }
    Some(chunks)
}

/// One Automerge document of a ticket.
#[derive(Debug)]
pub struct TicketDoc {
    id: Uuid,
    kind: DocKind,
    doc: AutoCommit,
    events: ObjId,
    description: Option<ObjId>,
}

impl TicketDoc {
    /// The genesis document of a ticket: identical on every replica.
    pub fn genesis(id: Uuid, kind: DocKind) -> TicketDoc {
        let mut doc = AutoCommit::new();
        doc.set_actor(ids::genesis_actor(id, kind.as_str()));
        // These operations on a fresh document cannot fail; the results are
        // still checked and mapped so that no panic is reachable.
        let built = (|| -> Result<(), automerge::AutomergeError> {
            doc.put(ROOT, "schema", SCHEMA_VERSION)?;
            doc.put(ROOT, "id", id.to_string())?;
            doc.put(ROOT, "kind", kind.as_str())?;
            doc.put_object(ROOT, "events", ObjType::Map)?;
            if kind == DocKind::Ticket {
                doc.put_object(ROOT, "description", ObjType::Text)?;
            }
            Ok(())
        })();
        debug_assert!(built.is_ok());
        doc.commit_with(CommitOptions::default().with_time(0));
        // Roots exist after the genesis above.
        let events = match doc.get(ROOT, "events") {
            Ok(Some((_, o))) => o,
            _ => ROOT,
        };
        let description = match doc.get(ROOT, "description") {
            Ok(Some((_, o))) if kind == DocKind::Ticket => Some(o),
            _ => None,
        };
        TicketDoc { id, kind, doc, events, description }
    }

    /// Loads a saved document from elsewhere, verifying its hashes and
    /// checking it is a tickets document of the expected id and kind.
    pub fn load(id: Uuid, kind: DocKind, bytes: &[u8]) -> Result<TicketDoc, DocError> {
        if bytes.is_empty() {
            return Err(DocError::Empty);
        }
        let doc = AutoCommit::load(bytes).map_err(|e| DocError::Corrupt(e.to_string()))?;
        // Automerge loads a document chunk followed by changes whose
        // dependencies it lacks, keeps those queued and saves them again
        // with the document: kept, they would make every later merge of
        // this document report missing dependencies. Refuse them here.
        if !doc.get_missing_deps(&[]).is_empty() {
            return Err(DocError::MissingDeps);
        }
        Self::from_automerge(id, kind, doc)
    }

    /// Loads a document this process's own store saved (and checked when it
    /// arrived): skips re-verifying the change hashes, which is most of the
    /// cost of a load. Never use it for bytes from the network.
    pub fn load_stored(id: Uuid, kind: DocKind, bytes: &[u8]) -> Result<TicketDoc, DocError> {
        if bytes.is_empty() {
            return Err(DocError::Empty);
        }
        let mut doc = AutoCommit::load_unverified_heads(bytes).map_err(|e| DocError::Corrupt(e.to_string()))?;
        // Bytes saved before `load` refused queued changes may still hold
        // some: drop them (they never applied), or every later merge of
        // this document would report missing dependencies.
        if !doc.get_missing_deps(&[]).is_empty() {
            let options = automerge::SaveOptions { retain_orphans: false, ..Default::default() };
            let clean = doc.save_with_options(options);
            doc = AutoCommit::load_unverified_heads(&clean).map_err(|e| DocError::Corrupt(e.to_string()))?;
        }
        Self::from_automerge(id, kind, doc)
    }

    /// The objects the genesis created (the events map, and the
    /// description Text of a ticket document): their ids are the same in
    /// every replica (genesis actor, operations 4 and 5). `None` when this
    /// document does not hold them (it is not this ticket's document).
    fn genesis_objects(id: Uuid, kind: DocKind, doc: &AutoCommit) -> Option<(ObjId, Option<ObjId>)> {
        let actor = ids::genesis_actor(id, kind.as_str());
        let events = ObjId::Id(4, actor.clone(), 0);
        if doc.object_type(&events).ok() != Some(ObjType::Map) {
            return None;
        }
        let description = match kind {
            DocKind::Ticket => {
                let d = ObjId::Id(5, actor, 0);
                if doc.object_type(&d).ok() != Some(ObjType::Text) {
                    return None;
                }
                Some(d)
            }
            DocKind::Notes => None,
        };
        Some((events, description))
    }

    fn from_automerge(id: Uuid, kind: DocKind, doc: AutoCommit) -> Result<TicketDoc, DocError> {
        // A document reads its genesis objects, never whatever the root
        // keys point to now: a change that overwrote a root key (which the
        // relay refuses; older data may hold one) must not hide the
        // ticket, nor make a reloaded copy differ from one merged in
        // memory (which still holds the objects it found at load). The
        // genesis actor is derived from the ticket id and kind, so finding
        // its objects also proves whose document this is. `check_shape`
        // reports the overwrite.
        if let Some((events, description)) = Self::genesis_objects(id, kind, &doc) {
            return Ok(TicketDoc { id, kind, doc, events, description });
        }
        let get_str = |key: &str| -> Option<String> {
            match doc.get(ROOT, key) {
                Ok(Some((v, _))) => v.as_str().map(str::to_string),
                _ => None,
            }
        };
        if get_str("id").as_deref() != Some(id.to_string().as_str()) {
            return Err(DocError::Schema(format!("document does not belong to ticket {id}")));
        }
        if get_str("kind").as_deref() != Some(kind.as_str()) {
            return Err(DocError::Schema(format!("document is not a {} document", kind.as_str())));
        }
        let events = match doc.get(ROOT, "events") {
            Ok(Some((automerge::Value::Object(ObjType::Map), o))) => o,
            _ => return Err(DocError::Schema("missing events map".into())),
        };
        let description = match (kind, doc.get(ROOT, "description")) {
            (DocKind::Ticket, Ok(Some((automerge::Value::Object(ObjType::Text), o)))) => Some(o),
            (DocKind::Ticket, _) => return Err(DocError::Schema("missing description text".into())),
            (DocKind::Notes, _) => None,
        };
        Ok(TicketDoc { id, kind, doc, events, description })
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn kind(&self) -> DocKind {
        self.kind
    }

    /// Sets the actor for the following edits. Call before editing a
    /// loaded document: edits must be signed by the device's own actor.
    pub fn set_actor(&mut self, actor: &ActorId) {
        self.doc.set_actor(actor.clone());
    }

    /// Writes a conversation's prefill as a deterministic change: the same
    /// conversation content yields the same change on every device.
    pub fn apply_prefill(&mut self, prefill: &str, link_json: &str) -> Result<(), DocError> {
        let Some(text) = self.description.clone() else {
            return Err(DocError::Schema("notes documents have no description".into()));
        };
        let own = self.doc.get_actor().clone();
        let mut content = String::from(prefill);
        content.push('\u{0}');
        content.push_str(link_json);
        self.doc.set_actor(ids::prefill_actor(self.id, &content));
        self.doc.splice_text(&text, 0, 0, prefill)?;
        self.doc.put(ROOT, "conversation", link_json)?;
        self.doc.commit_with(CommitOptions::default().with_time(0));
        self.doc.set_actor(own);
        Ok(())
    }

    /// Appends one event under its clock stamp.
    pub fn put_event(&mut self, at: &Hlc, event: &StoredEvent) -> Result<(), DocError> {
        self.doc.put(&self.events, at.encode(), event.encode())?;
        Ok(())
    }

    /// Replaces the description text with the smallest splice, so that
    /// concurrent typing elsewhere in the text survives the merge.
    pub fn update_description(&mut self, text: &str) -> Result<(), DocError> {
        let Some(obj) = self.description.clone() else {
            return Err(DocError::Schema("notes documents have no description".into()));
        };
        self.doc.update_text(&obj, text)?;
        Ok(())
    }

    /// Inserts text at the start of the description (the creator's own
    /// description goes before a conversation prefill).
    pub fn prepend_description(&mut self, text: &str) -> Result<(), DocError> {
        let Some(obj) = self.description.clone() else {
            return Err(DocError::Schema("notes documents have no description".into()));
        };
        self.doc.splice_text(&obj, 0, 0, text)?;
        Ok(())
    }

    /// Commits pending edits as one change, timed in seconds.
    pub fn commit(&mut self, now_ms: i64) -> Option<ChangeHash> {
        self.doc.commit_with(CommitOptions::default().with_time(now_ms.div_euclid(1000)))
    }

    pub fn description(&self) -> String {
        match &self.description {
            Some(o) => self.doc.text(o).unwrap_or_default(),
            None => String::new(),
        }
    }

    /// The conversation link JSON written by the prefill, if any.
    pub fn conversation_json(&self) -> Option<String> {
        match self.doc.get(ROOT, "conversation") {
            Ok(Some((v, _))) => v.as_str().map(str::to_string),
            _ => None,
        }
    }

    /// Every event entry as (key, raw value). Values that are not strings
    /// come back as `None` so the view can flag them.
    pub fn raw_events(&self) -> Vec<(String, Option<String>)> {
        self.doc
            .map_range(&self.events, ..)
            .map(|item| {
                let value = match &item.value {
                    ValueRef::Scalar(ScalarValueRef::Str(s)) => Some(s.to_string()),
                    _ => None,
                };
                (item.key.to_string(), value)
            })
            .collect()
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Heads of a freshly made document (genesis), consuming it.
    pub fn heads_owned(mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Merges saved bytes or concatenated changes from elsewhere. Data whose
    /// dependencies are missing is refused rather than silently queued; as
    /// with [`TicketDoc::apply_changes`], discard the document after an error.
    pub fn load_incremental(&mut self, data: &[u8]) -> Result<(), DocError> {
        if data.is_empty() {
            return Err(DocError::Empty);
        }
        // Automerge's incremental load skips what it cannot parse, so data
        // from elsewhere is checked strictly first, and damaged bytes are
        // refused instead of being mistaken for a harmless re-send.
        // Concatenated changes (what a device pushes once the relay holds
        // the document) are parsed one by one, each checked against its
        // checksum: far cheaper than loading the whole document again.
        match change_chunks(data) {
            Some(chunks) if chunks.iter().all(|c| c.kind == CHUNK_CHANGE || c.kind == CHUNK_COMPRESSED) => {
                let mut changes = Vec::with_capacity(chunks.len());
                for chunk in chunks {
                    let change =
                        Change::try_from(chunk.bytes).map_err(|e| DocError::Corrupt(format!("bad change: {e}")))?;
                    if change.hash().0[..4] != chunk.checksum {
                        return Err(DocError::Corrupt("a change does not match its checksum".into()));
                    }
                    changes.push(change);
                }
                return self.apply_changes(changes);
            }
            Some(_) => {}
            None => return Err(DocError::Corrupt("not Automerge data".into())),
        }
        // A whole document (or a bundle): loaded strictly on top of this
        // document's own bytes, so that changes whose dependencies only this
        // document holds load.
        let mut probe = self.doc.save_nocompress();
        probe.extend_from_slice(data);
        let options = automerge::LoadOptions::new()
            .on_partial_load(automerge::OnPartialLoad::Error)
            .verification_mode(automerge::VerificationMode::DontCheck);
        AutoCommit::load_with_options(&probe, options).map_err(|e| DocError::Corrupt(e.to_string()))?;
        self.doc.load_incremental(data)?;
        let heads = self.doc.get_heads();
        if !self.doc.get_missing_deps(&heads).is_empty() {
            return Err(DocError::MissingDeps);
        }
        Ok(())
    }

    /// Checks that the root still has exactly the genesis shape: one value
    /// per root key (no concurrent overwrite), of the right type.
    pub fn check_shape(&self) -> Result<(), DocError> {
        let mut keys = vec!["schema", "id", "kind", "events"];
        if self.kind == DocKind::Ticket {
            keys.push("description");
        }
        for key in keys {
            let n = self.doc.get_all(ROOT, key).map(|v| v.len()).unwrap_or(0);
            if n != 1 {
                return Err(DocError::Schema(format!("root key '{key}' has {n} values")));
            }
        }
        let allowed = ["schema", "id", "kind", "events", "description", "conversation"];
        if let Some(k) = self.doc.keys(ROOT).find(|k| !allowed.contains(&k.as_str())) {
            return Err(DocError::Schema(format!("unexpected root key '{k}'")));
        }
        // The root must still point at the objects this document reads.
        let points_at = |key: &str, obj: &ObjId| matches!(self.doc.get(ROOT, key), Ok(Some((_, o))) if &o == obj);
        if !points_at("events", &self.events) {
            return Err(DocError::Schema("root key 'events' was overwritten".into()));
        }
        if let Some(d) = &self.description {
            if !points_at("description", d) {
                return Err(DocError::Schema("root key 'description' was overwritten".into()));
            }
        }
        Self::from_automerge_ref(self.id, self.kind, &self.doc)
    }

    /// Checks that no other document's data was merged in: the root `id`
    /// and `kind` hold one value each (another ticket's genesis merged in
    /// would make them conflict). A change that overwrites them is the
    /// allow-list's to refuse.
    pub fn check_identity(&self) -> Result<(), DocError> {
        for key in ["id", "kind"] {
            if self.doc.get_all(ROOT, key).map(|v| v.len()).unwrap_or(0) != 1 {
                return Err(DocError::Schema(format!("the data belongs to another document (root key '{key}')")));
            }
        }
        Ok(())
    }

    fn from_automerge_ref(id: Uuid, kind: DocKind, doc: &AutoCommit) -> Result<(), DocError> {
        let s = |key: &str| match doc.get(ROOT, key) {
            Ok(Some((v, _))) => v.as_str().map(str::to_string),
            _ => None,
        };
        if s("id").as_deref() != Some(id.to_string().as_str()) || s("kind").as_deref() != Some(kind.as_str()) {
            return Err(DocError::Schema("root id or kind changed".into()));
        }
        Ok(())
    }

    /// What a document new to the relay holds, for the allow-list's check
    /// of a whole document (see [`crate::change_policy::check_new_document`]).
    pub fn state_for_policy(&self) -> crate::change_policy::DocState {
        let actor_of = |id: &ObjId| match id {
            ObjId::Id(_, a, _) => Some(a.clone()),
            ObjId::Root => None,
        };
        let mut root_writers = Vec::new();
        for key in self.doc.keys(ROOT) {
            if let Ok(all) = self.doc.get_all(ROOT, key.as_str()) {
                root_writers.extend(all.iter().filter_map(|(_, id)| actor_of(id)));
            }
        }
        let events = self
            .doc
            .map_range(&self.events, ..)
            .map(|item| {
                let value = match &item.value {
                    ValueRef::Scalar(ScalarValueRef::Str(s)) => Some(s.to_string()),
                    _ => None,
                };
                let values = self.doc.get_all(&self.events, item.key.as_ref()).map(|v| v.len()).unwrap_or(0);
                (item.key.to_string(), value, actor_of(&item.id()), values)
            })
            .collect();
        let text = self.description.as_ref().map(|t| {
            let (mut bytes, mut objects, mut marks) = (0usize, 0usize, 0usize);
            match self.doc.spans(t) {
                Ok(spans) => {
                    for span in spans {
                        match span {
                            automerge::iter::Span::Text { text, marks: m } => {
                                bytes += text.len();
                                marks += usize::from(m.is_some_and(|m| m.iter().next().is_some()));
                            }
                            automerge::iter::Span::Block(_) => objects += 1,
                        }
                    }
                }
                Err(_) => objects += 1,
            }
            crate::change_policy::TextState { bytes, objects, marks }
        });
        crate::change_policy::DocState { root_writers, events, text }
    }

    /// The objects an agent's change may write to, as the operation ids
    /// that made them (see [`crate::change_policy`]).
    pub fn policy_objects(&self) -> crate::change_policy::Objects {
        let op = |o: &ObjId| match o {
            ObjId::Id(counter, actor, _) => Some(automerge::legacy::OpId::new(*counter, actor)),
            ObjId::Root => None,
        };
        crate::change_policy::Objects { events: op(&self.events), description: self.description.as_ref().and_then(op) }
    }

    /// Every event entry with the id of the operation that wrote it (whose
    /// actor is the change's author).
    pub fn raw_events_with_ops(&self) -> Vec<(String, Option<String>, automerge::ObjId)> {
        self.doc
            .map_range(&self.events, ..)
            .map(|item| {
                let value = match &item.value {
                    ValueRef::Scalar(ScalarValueRef::Str(s)) => Some(s.to_string()),
                    _ => None,
                };
                (item.key.to_string(), value, item.id())
            })
            .collect()
    }

    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Who made each change a peer with `heads` lacks (cheaper than the
    /// changes themselves).
    pub fn changes_meta_since(&mut self, heads: &[ChangeHash]) -> Vec<ChangeMeta> {
        self.doc
            .get_changes_meta(heads)
            .into_iter()
            .map(|m| ChangeMeta { actor: m.actor.into_owned(), seq: m.seq, deps: m.deps, hash: m.hash })
            .collect()
    }

    pub fn change_by_hash(&mut self, hash: &ChangeHash) -> Option<Change> {
        self.doc.get_change_by_hash(hash)
    }

    /// Changes this document has that a peer with `heads` lacks.
    pub fn changes_since(&mut self, heads: &[ChangeHash]) -> Vec<Change> {
        self.doc.get_changes(heads)
    }

    /// Applies changes from elsewhere. A batch with a change whose
    /// dependencies are neither in the batch nor in the document is refused
    /// whole, and nothing of it is applied or queued.
    ///
    /// The batch is checked before Automerge sees it: Automerge queues such
    /// a change, keeps it queued and counts it in every later
    /// `get_missing_deps`, so checking the document afterwards blamed every
    /// later batch for one incomplete delivery
    /// (`core/tests/automerge_queue.rs`).
    pub fn apply_changes(&mut self, changes: Vec<Change>) -> Result<(), DocError> {
        let in_batch: std::collections::HashSet<ChangeHash> = changes.iter().map(Change::hash).collect();
        for change in &changes {
            for dep in change.deps() {
                if !in_batch.contains(dep) && self.doc.get_change_meta_by_hash(dep).is_none() {
                    return Err(DocError::MissingDeps);
                }
            }
        }
        self.doc.apply_changes(changes)?;
        Ok(())
    }

    /// Merges another replica of the same document into this one.
    pub fn merge(&mut self, other: &mut TicketDoc) -> Result<(), DocError> {
        if other.id != self.id || other.kind != self.kind {
            return Err(DocError::Schema("cannot merge documents of different tickets".into()));
        }
        self.doc.merge(&mut other.doc)?;
        Ok(())
    }

    /// A copy with a fresh actor, for tests and simulations.
    pub fn fork_with(&mut self, actor: &ActorId) -> TicketDoc {
        let doc = self.doc.fork().with_actor(actor.clone());
        TicketDoc {
            id: self.id,
            kind: self.kind,
            doc,
            events: self.events.clone(),
            description: self.description.clone(),
        }
    }

    /// Direct access for the relay's checks (change authorship).
    pub fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_deterministic_and_loads_back() {
        let id = Uuid::from_u128(42);
        let mut a = TicketDoc::genesis(id, DocKind::Ticket);
        let mut b = TicketDoc::genesis(id, DocKind::Ticket);
        assert_eq!(a.heads(), b.heads());
        let bytes = a.save();
        assert!(TicketDoc::load(id, DocKind::Ticket, &bytes).is_ok());
        assert!(TicketDoc::load(Uuid::from_u128(43), DocKind::Ticket, &bytes).is_err());
        assert!(TicketDoc::load(id, DocKind::Notes, &bytes).is_err());
        assert!(TicketDoc::load(id, DocKind::Ticket, &[]).is_err());
        assert!(TicketDoc::load(id, DocKind::Ticket, &bytes[..bytes.len() / 2]).is_err());
    }

    #[test]
    fn incremental_loads_refuse_damaged_bytes_but_take_changes_with_earlier_deps() {
        let id = Uuid::from_u128(7);
        let mut a = TicketDoc::genesis(id, DocKind::Ticket);
        let actor = ActorId::from(&[1u8; 16][..]);
        a.set_actor(&actor);
        let base = a.heads();
        a.update_description("hello").ok();
        a.commit(1000);
        let save = a.save();
        let changes: Vec<u8> = a.changes_since(&base).iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
        let mut b = TicketDoc::genesis(id, DocKind::Ticket);
        assert!(b.load_incremental(b"not automerge at all").is_err());
        assert!(b.load_incremental(&save[..save.len() - 7]).is_err());
        let mut flipped = save.clone();
        let mid = flipped.len() / 2;
        for byte in &mut flipped[mid..mid + 8] {
            *byte ^= 0xff;
        }
        assert!(b.load_incremental(&flipped).is_err());
        // Concatenated changes: damaged, cut or followed by junk, refused.
        let mut bad = changes.clone();
        let last = bad.len() - 3;
        bad[last] ^= 0x55;
        assert!(b.load_incremental(&bad).is_err(), "a flipped byte inside a change");
        assert!(b.load_incremental(&changes[..changes.len() - 1]).is_err(), "a cut change");
        let mut junk = changes.clone();
        junk.extend_from_slice(b"junk");
        assert!(b.load_incremental(&junk).is_err(), "junk after the changes");
        assert_eq!(b.description(), "", "nothing of the refused data was applied");
        let mut b = TicketDoc::genesis(id, DocKind::Ticket);
        assert!(b.load_incremental(&changes).is_ok(), "changes whose deps the document has");
        assert_eq!(b.description(), "hello");
        assert!(b.load_incremental(&changes).is_ok(), "a re-send is harmless");
        assert_eq!(b.description(), "hello");
    }

    #[test]
    fn changes_whose_dependencies_are_missing_are_refused() {
        let id = Uuid::from_u128(8);
        let mut a = TicketDoc::genesis(id, DocKind::Ticket);
        a.set_actor(&ActorId::from(&[2u8; 16][..]));
        let base = a.heads();
        a.update_description("one").ok();
        a.commit(1000);
        let mid = a.heads();
        a.update_description("two").ok();
        a.commit(2000);
        let second: Vec<u8> = a.changes_since(&mid).iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
        let mut b = TicketDoc::genesis(id, DocKind::Ticket);
        assert!(matches!(b.load_incremental(&second), Err(DocError::MissingDeps)));
        let all: Vec<u8> = a.changes_since(&base).iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
        let mut c = TicketDoc::genesis(id, DocKind::Ticket);
        assert!(c.load_incremental(&all).is_ok());
        assert_eq!(c.description(), "two");
    }
}
