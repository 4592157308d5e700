//! Pull pages, once for every backend, and the rule that internal notes
//! reach only agents permitted to read them: a backend is asked for ticket
//! documents only when the agent may not read notes, and a notes document
//! it returns anyway is dropped here.

use std::collections::{HashMap, HashSet};

use tickets_core::protocol::{
    encode_data, BootstrapPos, DocData, PullPage, PullRequest, RawSlaInput, PULL_PAGE_BYTES_MAX, PULL_PAGE_DOCS_MAX,
};

use crate::store::{Caller, Heads, PullQuery, PullRow, PullSink, RelayStore, StoreError};

/// Log entries a catch-up page reads at most.
pub const CHANGES_PER_READ_MAX: usize = 20_000;

/// What a page collects from a backend's read.
#[derive(Default)]
struct Page {
    notes_ok: bool,
    device: String,
    heads: Heads,
    docs: Vec<DocData>,
    bytes_total: usize,
    /// Ticket ids in page order (each once).
    ticket_ids: Vec<String>,
    /// Bootstrap: the last document taken, and whether more were left.
    last: Option<(String, String)>,
    full: bool,
    /// Catch-up: changes grouped per document, in order of first change.
    grouped: Vec<((String, String), Vec<u8>)>,
    group_of: HashMap<(String, String), usize>,
    cursor: u64,
    rows: usize,
    bootstrap: bool,
    sla: Vec<(String, RawSlaInput)>,
}

impl PullSink for Page {
    fn heads(&mut self, heads: Heads) {
        self.heads = heads;
    }

    fn row(&mut self, row: PullRow) -> bool {
        if self.bootstrap {
            if self.docs.len() >= PULL_PAGE_DOCS_MAX || self.bytes_total >= PULL_PAGE_BYTES_MAX {
                self.full = true;
                return false;
            }
            self.last = Some((row.id.clone(), row.kind.clone()));
            if row.kind == "notes" && !self.notes_ok {
                return true;
            }
            self.bytes_total += row.bytes.len();
            // Ids sorted: a ticket's notes come just before its ticket.
            if self.ticket_ids.last() != Some(&row.id) {
                self.ticket_ids.push(row.id.clone());
            }
            self.docs.push(DocData { id: row.id, kind: row.kind, data: encode_data(&row.bytes) });
            return true;
        }
        if self.bytes_total >= PULL_PAGE_BYTES_MAX || self.grouped.len() >= PULL_PAGE_DOCS_MAX {
            self.full = true;
            return false;
        }
        self.rows += 1;
        self.cursor = row.seq;
        // A device gets its own changes back only for notes: it may have
        // purged them (revocation) after sending them, in a request that
        // landed late.
        if (row.device == self.device && row.kind != "notes") || (row.kind == "notes" && !self.notes_ok) {
            return true;
        }
        self.bytes_total += row.bytes.len();
        let key = (row.id, row.kind);
        match self.group_of.get(&key) {
            Some(&i) => self.grouped[i].1.extend_from_slice(&row.bytes),
            None => {
                self.group_of.insert(key.clone(), self.grouped.len());
                self.grouped.push((key, row.bytes));
            }
        }
        true
    }

    fn sla_wanted(&self) -> Vec<String> {
        if self.bootstrap {
            return self.ticket_ids.clone();
        }
        let mut seen = HashSet::new();
        self.grouped.iter().filter(|((id, _), _)| seen.insert(id.clone())).map(|((id, _), _)| id.clone()).collect()
    }

    fn sla(&mut self, id: String, input: String) {
        if let Some(v) = RawSlaInput::from_text(input) {
            self.sla.push((id, v));
        }
    }
}

/// One pull page for `device` of `caller`: documents in id order while it
/// bootstraps, else the changes after its cursor grouped per document,
/// with the SLA input of every ticket in the page (a pulled note reindexes
/// its ticket on the device, which then shows the relay's figures again).
pub fn pull<S: RelayStore + ?Sized>(
    store: &mut S,
    caller: &Caller,
    device: &str,
    req: &PullRequest,
) -> Result<PullPage, StoreError> {
    let notes_ok = caller.agent.may_read_notes();
    let bootstrap = !req.bootstrapped || req.bootstrap.is_some();
    let mut page = Page { notes_ok, device: device.to_string(), bootstrap, cursor: req.cursor, ..Page::default() };
    let q = if bootstrap {
        let (after_id, after_kind) = match &req.bootstrap {
            Some(b) => (b.after_id.clone(), b.after_kind.clone()),
            None => (String::new(), String::new()),
        };
        PullQuery::Docs { after_id, after_kind, notes: notes_ok, limit: PULL_PAGE_DOCS_MAX + 1 }
    } else {
        PullQuery::Changes { after: req.cursor, notes: notes_ok, limit: CHANGES_PER_READ_MAX }
    };
    store.read_pull(&q, &mut page)?;
    // An agent without the notes permission follows ticket changes only:
    // its cursor never moves because of a note.
    let head = page.heads.for_reader(notes_ok);
    let sla = std::mem::take(&mut page.sla);
    if bootstrap {
        let target = req.bootstrap.as_ref().map_or(head, |b| b.target);
        return Ok(match (page.full, page.last) {
            (true, Some((after_id, after_kind))) => PullPage {
                docs: page.docs,
                cursor: 0,
                bootstrap: Some(BootstrapPos { after_id, after_kind, target }),
                more: true,
                sla,
            },
            _ => PullPage { docs: page.docs, cursor: target, bootstrap: None, more: head > target, sla },
        });
    }
    let more = page.full || page.rows >= CHANGES_PER_READ_MAX;
    let docs = page.grouped.into_iter().map(|((id, kind), b)| DocData { id, kind, data: encode_data(&b) }).collect();
    Ok(PullPage { docs, cursor: page.cursor, bootstrap: None, more, sla })
}
