//! The sync client: registers the device with a relay and runs the sync
//! protocol of `tickets_core::protocol` over HTTP.
//!
//! Each round is one request and one SQLite transaction: the confirmations
//! of the pushed page, the pulled page and the new cursor commit together,
//! so an interrupted sync loses nothing and the next one resumes after the
//! last committed round. Transient failures are retried with jittered
//! exponential backoff.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::time::Duration;

use automerge::ActorId;
use backon::{BlockingRetryable, ExponentialBuilder};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tickets_core::change_policy::RefusalCode;
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::index::{self, SlaInputJson};
use tickets_core::protocol::{
    decode_data, encode_data, Access, BootstrapPos, DocData, ErrorBody, ErrorCode, PullRequest, RawSlaInput,
    RegisterRequest, RegisterResponse, Settings, SyncRequest, SyncResponse, PROTOCOL_VERSION, PUSH_PAGE_BYTES_MAX,
    PUSH_PAGE_DOCS_MAX, SYNC_ROUNDS_MAX,
};
use tickets_core::sla::SlaSettings;
use uuid::Uuid;

use crate::error::NodeError;
use crate::node::{Node, M_LAST_SYNC, M_RELAY};
use crate::store::Tx;

pub(crate) const M_TOKEN: &str = "relay_token";
pub(crate) const M_CURSOR: &str = "cursor";
pub(crate) const M_BOOTSTRAP: &str = "bootstrap";
pub(crate) const M_ROLE: &str = "role";
pub(crate) const M_BOOTSTRAPPED: &str = "bootstrapped";
pub(crate) const M_EPOCH: &str = "relay_epoch";
pub(crate) const M_NOTES_RESTORING: &str = "notes_restoring";

/// How long one HTTP request may take before it counts as failed.
pub const REQUEST_TIMEOUT_SECS: u64 = 120;
/// Attempts per request before a sync gives up (it resumes next time).
pub const REQUEST_ATTEMPTS_MAX: usize = 6;
/// Attempts at a relay that refuses the connection.
pub const CONNECT_ATTEMPTS_MAX: usize = 3;
/// How long to hold pushes after a 429 without a readable `Retry-After`.
pub const RATE_RETRY_SECS_DEFAULT: u64 = 10;
/// The longest a 429 holds this device's pushes.
pub const RATE_RETRY_SECS_MAX: u64 = 3_600;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("this node is not registered with a relay")]
    NotRegistered,
    #[error("the relay refused the token (401): it is unknown or was revoked")]
    Unauthorized,
    #[error("the relay speaks another protocol version: {0}")]
    Protocol(String),
    #[error("the relay refused the request ({status}): {message}")]
    Refused {
        status: u16,
        message: String,
        /// The relay's code for the refusal, when this build knows it.
        code: Option<ErrorCode>,
    },
    #[error("cannot reach the relay at {url}: {message}")]
    Transport { url: String, message: String },
    #[error("relay error ({status}): {message}")]
    Server { status: u16, message: String },
    /// 429: this agent is over its write rate; nothing was applied.
    #[error("the relay limits this agent's writes: {message}")]
    RateLimited { retry_after_secs: u64, message: String },
    #[error("this node belongs to agent '{node}' but the token is agent '{token}'s")]
    WrongAgent { node: String, token: String },
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl SyncError {
    /// Worth retrying: the relay may come back.
    pub fn is_transient(&self) -> bool {
        matches!(self, SyncError::Transport { .. } | SyncError::Server { .. })
    }
}

/// One refused document, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    pub ticket: String,
    pub kind: String,
    pub reason: String,
    /// The relay's refusal code (`comment_too_large`, `event_overwrite`,
    /// ...), when it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub pushed: usize,
    pub pulled: usize,
    pub refused: Vec<Refused>,
    /// Documents still waiting to be pushed.
    pub pending: usize,
    pub rounds: usize,
    /// Internal notes removed from this device because its agent may no
    /// longer read them.
    pub purged_notes: usize,
    pub cursor: u64,
    /// True when the sync stopped at the round limit with work left.
    pub incomplete: bool,
    /// Pulled documents that could not be used, kept aside (quarantined);
    /// their tickets show it.
    pub damaged: Vec<Refused>,
    /// This agent's edits that the pulled changes superseded or made
    /// invalid (SPEC §1.1): the author learns of them here.
    pub not_applied: Vec<crate::node::NotApplied>,
    /// Inbox conversations received (new or changed).
    pub inbox: usize,
    /// Tickets this sync brought newly assigned to this agent by someone
    /// else (see [`crate::new_for_you`]).
    pub new_for_you: usize,
    /// The relay refused this sync's push for the agent's write rate: the
    /// documents stay pending, to be pushed after this many seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limited_secs: Option<u64>,
}

/// Progress of a running sync, for a terminal display.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncProgress {
    pub rounds: usize,
    pub pushed: usize,
    pub pulled: usize,
    pub pending: usize,
}

/// How a node reaches the relay's sync endpoint: HTTP in the product, a
/// simulated network in the deterministic simulation.
pub trait Transport {
    fn sync(&self, req: &SyncRequest) -> Result<SyncResponse, SyncError>;
}

impl Transport for Remote {
    fn sync(&self, req: &SyncRequest) -> Result<SyncResponse, SyncError> {
        self.post("/v1/sync", req)
    }
}

/// The relay's HTTP endpoint for this node.
pub struct Remote {
    url: String,
    token: String,
    client: reqwest::blocking::Client,
}

impl Remote {
    pub fn new(url: &str, token: &str) -> Result<Remote, SyncError> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SyncError::Transport { url: url.to_string(), message: e.to_string() })?;
        Ok(Remote { url: url.trim_end_matches('/').to_string(), token: token.trim().to_string(), client })
    }

    fn transport(&self, e: reqwest::Error) -> SyncError {
        SyncError::Transport { url: self.url.clone(), message: transport_cause(&e) }
    }

    /// The error a non-OK response stands for.
    fn error_of(&self, resp: reqwest::blocking::Response) -> SyncError {
        let status = resp.status().as_u16();
        let bytes = resp.bytes().unwrap_or_default();
        error_of_body(status, &bytes)
    }

    fn read<R: DeserializeOwned>(&self, resp: reqwest::blocking::Response) -> Result<R, SyncError> {
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let bytes = resp.bytes().map_err(|e| self.transport(e))?;
        if status == 429 {
            let message = match error_of_body(status, &bytes) {
                SyncError::Refused { message, .. } => message,
                e => e.to_string(),
            };
            return Err(SyncError::RateLimited {
                retry_after_secs: retry_after.unwrap_or(RATE_RETRY_SECS_DEFAULT).min(RATE_RETRY_SECS_MAX),
                message,
            });
        }
        if status == 200 {
            return serde_json::from_slice(&bytes)
                .map_err(|e| SyncError::Protocol(format!("unreadable relay response: {e}")));
        }
        if let Ok(r) = serde_json::from_slice::<R>(&bytes) {
            if status == 403 || status == 400 {
                return Ok(r);
            }
        }
        Err(error_of_body(status, &bytes))
    }

    /// POST with retries on transient failures. A relay that refuses the
    /// connection outright (down, or this device offline) is tried only
    /// [`CONNECT_ATTEMPTS_MAX`] times, so that a sync while offline fails in
    /// about a second rather than after the whole backoff.
    pub fn post<B: Serialize, R: DeserializeOwned>(&self, path: &str, body: &B) -> Result<R, SyncError> {
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(10))
            .with_max_times(REQUEST_ATTEMPTS_MAX);
        let unreachable = std::cell::Cell::new(0usize);
        let attempt = || {
            let resp = self.client.post(format!("{}{path}", self.url)).bearer_auth(&self.token).json(body).send();
            match resp {
                Ok(resp) => self.read(resp),
                Err(e) => {
                    if e.is_connect() {
                        unreachable.set(unreachable.get() + 1);
                    }
                    Err(self.transport(e))
                }
            }
        };
        attempt
            .retry(backoff)
            .sleep(std::thread::sleep)
            .when(|e| e.is_transient() && unreachable.get() < CONNECT_ATTEMPTS_MAX)
            .call()
    }

    /// GET a JSON document (the board) with query parameters.
    pub fn get_json(&self, path: &str, query: &[(String, String)]) -> Result<serde_json::Value, SyncError> {
        let resp = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .query(query)
            .send()
            .map_err(|e| self.transport(e))?;
        // Any JSON reads as a Value, a refusal's body too: only a 200 is one.
        if resp.status().as_u16() != 200 {
            return Err(self.error_of(resp));
        }
        self.read(resp)
    }

    /// GET a streamed body (exports): the response, once its status is OK,
    /// and the relay's announced total (`X-Total-Count`).
    pub fn get_stream(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<(reqwest::blocking::Response, Option<u64>), SyncError> {
        let resp = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .query(query)
            .timeout(Duration::from_secs(24 * 3600))
            .send()
            .map_err(|e| self.transport(e))?;
        if resp.status().as_u16() != 200 {
            return Err(self.error_of(resp));
        }
        let total = resp.headers().get("x-total-count").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        Ok((resp, total))
    }

    /// Long-polls the relay until its sequence passes `cursor`.
    pub fn watch(&self, cursor: u64) -> Result<u64, SyncError> {
        self.watch_with_inbox(cursor, None).map(|(seq, _)| seq)
    }

    /// Long-polls the relay until its sequence passes `cursor` or its inbox
    /// head passes `inbox`; returns both heads (an older relay sends no
    /// inbox head: `inbox` comes back).
    pub fn watch_with_inbox(&self, cursor: u64, inbox: Option<u64>) -> Result<(u64, Option<u64>), SyncError> {
        let inbox_param = inbox.map(|i| format!("&inbox={i}")).unwrap_or_default();
        let resp = self
            .client
            .get(format!("{}/v1/sync/watch?cursor={cursor}{inbox_param}", self.url))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(tickets_core::protocol::WATCH_HOLD_SECS + 15))
            .send()
            .map_err(|e| self.transport(e))?;
        let v: serde_json::Value = self.read(resp)?;
        Ok((v["seq"].as_u64().unwrap_or(cursor), v["inbox"].as_u64().or(inbox)))
    }
}

/// Why a request never got an answer, in words a user can act on: the
/// innermost cause in the error's source chain (connection refused, timed
/// out, name not resolved, a TLS failure), not reqwest's outer wrapper.
pub fn transport_cause(e: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        causes.push(err.to_string());
        source = err.source();
    }
    let all = causes.join(": ").to_lowercase();
    let cause = if e.is_timeout() || all.contains("timed out") {
        "timed out"
    } else if all.contains("refused") {
        "connection refused (is the relay running at this address?)"
    } else if all.contains("dns error") || all.contains("failed to lookup") || all.contains("name or service") {
        "the host name does not resolve"
    } else if [
        "certificate",
        "tls",
        "ssl",
        "corrupt message",
        "handshake",
        "fatal alert",
        "peer misbehaved",
        "peer is incompatible",
    ]
    .iter()
    .any(|w| all.contains(w))
    {
        // rustls names a plain-HTTP answer to `https://` "received corrupt
        // message of type InvalidContentType", without saying TLS.
        "TLS failed"
    } else if e.is_builder() {
        "not a usable URL"
    } else {
        ""
    };
    let innermost = causes.last().cloned().unwrap_or_default();
    match (cause, innermost.is_empty()) {
        ("", _) => innermost,
        (c, true) => c.to_string(),
        (c, false) if innermost.to_lowercase().contains(c) => innermost,
        (c, false) => format!("{c} ({innermost})"),
    }
}

fn heads_text(heads: &[String]) -> String {
    heads.join(",")
}

fn hex_heads(h: Vec<automerge::ChangeHash>) -> Vec<String> {
    h.iter().map(|h| h.to_string()).collect()
}

fn parse_heads(s: &str) -> Vec<automerge::ChangeHash> {
    s.split(',').filter_map(|h| h.parse().ok()).collect()
}

impl Node {
    /// The relay this node syncs with, if registered.
    pub fn remote(&mut self) -> Result<Option<Remote>, SyncError> {
        let tx = self.store_tx()?;
        let (Some(url), Some(token)) = (tx.get_meta(M_RELAY)?, tx.get_meta(M_TOKEN)?) else { return Ok(None) };
        drop(tx);
        Ok(Some(Remote::new(&url, &token)?))
    }

    /// Registers this node's device actor with a relay, for the token's
    /// agent, and stores what the relay says.
    pub fn register(&mut self, url: &str, token: &str) -> Result<Access, SyncError> {
        let remote = Remote::new(url, token)?;
        // The request names this node's agent: the relay refuses a token of
        // another agent without binding the device to it.
        let resp = register_actor_as(&remote, self.actor(), Some(self.agent()))?;
        if resp.access.agent != self.agent() {
            return Err(SyncError::WrongAgent { node: self.agent().to_string(), token: resp.access.agent });
        }
        let now = self.now_ms();
        let tx = self.store_tx()?;
        tx.set_meta(M_RELAY, url.trim_end_matches('/'))?;
        tx.set_meta(M_TOKEN, token.trim())?;
        tx.set_meta(M_ROLE, &resp.access.role)?;
        let purged = apply_access(&tx, &resp.access)?;
        // No clock reading comes with a registration: settings are kept in
        // the frame of the last sync (none yet: the relay's own).
        let skew = tx.get_meta(M_SKEW)?.and_then(|s| s.parse().ok()).unwrap_or(0);
        apply_settings(&tx, &resp.settings, skew, now)?;
        tx.commit()?;
        if purged > 0 {
            self.checkpoint()?;
        }
        Ok(resp.access)
    }

    /// Runs a sync with the registered relay to completion (or the round
    /// limit).
    pub fn sync(&mut self, progress: &mut dyn FnMut(&SyncProgress)) -> Result<SyncReport, SyncError> {
        let Some(remote) = self.remote()? else { return Err(SyncError::NotRegistered) };
        self.sync_over(&remote, progress)
    }

    /// Runs a sync over any transport.
    pub fn sync_over(
        &mut self,
        remote: &dyn Transport,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<SyncReport, SyncError> {
        let mut report = SyncReport::default();
        let mut after: Option<(String, String)> = None;
        let mut push_done = false;
        loop {
            report.rounds += 1;
            if report.rounds > SYNC_ROUNDS_MAX {
                report.incomplete = true;
                break;
            }
            let (cursor, bootstrap, bootstrapped, inbox_cursor) = {
                let tx = self.store_tx()?;
                let inbox_cursor = tx.inbox_cursor()?;
                let cursor = tx.get_meta(M_CURSOR)?.and_then(|c| c.parse().ok()).unwrap_or(0u64);
                let bootstrap: Option<BootstrapPos> =
                    tx.get_meta(M_BOOTSTRAP)?.and_then(|b| serde_json::from_str(&b).ok());
                let bootstrapped = tx.get_meta(M_BOOTSTRAPPED)?.as_deref() == Some("1");
                (cursor, bootstrap, bootstrapped, inbox_cursor)
            };
            // A device bootstraps before it pushes: what it pushes afterwards
            // is logged as its own and never comes back to it, so a device
            // that starts with many local tickets does not pull them back.
            let bootstrapping = !bootstrapped || bootstrap.is_some();
            let (push, revs, more_to_push) = if push_done || bootstrapping {
                (Vec::new(), HashMap::new(), !push_done)
            } else {
                self.push_page(&mut after)?
            };
            let req = SyncRequest {
                protocol: PROTOCOL_VERSION,
                device: self.actor().to_hex_string(),
                clock_ms: self.now_ms(),
                push,
                pull: Some(PullRequest { cursor, bootstrapped, bootstrap }),
                inbox: Some(tickets_core::protocol::InboxPull { cursor: inbox_cursor }),
            };
            let sent = self.now_ms();
            let answer = remote.sync(&req);
            let received = self.now_ms();
            let resp: SyncResponse = match answer {
                // Over the agent's write rate: nothing of this request was
                // applied. The documents stay pending; this sync goes on
                // pulling, and pushes again after the relay's delay.
                Err(SyncError::RateLimited { retry_after_secs, .. }) if !req.push.is_empty() && !push_done => {
                    report.rate_limited_secs = Some(retry_after_secs);
                    push_done = true;
                    continue;
                }
                Err(SyncError::Unauthorized) => {
                    // A revoked agent keeps no internal notes on the device.
                    let tx = self.store_tx()?;
                    let purged = apply_access(&tx, &Access::default())?;
                    tx.commit()?;
                    if purged > 0 {
                        self.checkpoint()?;
                    }
                    return Err(SyncError::Unauthorized);
                }
                r => r?,
            };
            if resp.protocol != PROTOCOL_VERSION {
                return Err(SyncError::Protocol(format!(
                    "relay answered with protocol {}, this node speaks {PROTOCOL_VERSION}",
                    resp.protocol
                )));
            }
            if self.check_epoch(&resp.epoch)? {
                // The relay was restored from a backup: start over (see
                // check_epoch); this round's page is from the new epoch and
                // is simply pulled again.
                push_done = false;
                after = None;
                continue;
            }
            let page_more = resp.pull.as_ref().is_some_and(|p| p.more) || resp.inbox.as_ref().is_some_and(|p| p.more);
            let reading = SkewReading::of(sent, received, resp.relay_ms);
            let restarted = self.apply_round(&resp, reading, &revs, &mut report)?;
            push_done = !more_to_push;
            progress(&SyncProgress {
                rounds: report.rounds,
                pushed: report.pushed,
                pulled: report.pulled,
                pending: report.pending,
            });
            if push_done && !page_more && !restarted {
                break;
            }
        }
        let now = self.now_ms();
        let tx = self.store_tx()?;
        report.pending = tx.count_dirty()?;
        report.cursor = tx.get_meta(M_CURSOR)?.and_then(|c| c.parse().ok()).unwrap_or(0);
        tx.prune_inbox(now)?;
        tx.set_meta(M_LAST_SYNC, &tickets_core::time::iso_i64(now))?;
        tx.commit()?;
        if report.purged_notes > 0 {
            self.checkpoint()?;
        }
        Ok(report)
    }

    /// Notices a relay restored from a backup (a new epoch): its sequence
    /// numbers started over and it may lack what this device pushed after
    /// the backup, so the device pulls everything again and marks every
    /// document to be pushed whole. Returns true when it reset.
    fn check_epoch(&mut self, epoch: &str) -> Result<bool, SyncError> {
        let tx = self.store_tx()?;
        let known = tx.get_meta(M_EPOCH)?.unwrap_or_default();
        if known == epoch {
            return Ok(false);
        }
        tx.set_meta(M_EPOCH, epoch)?;
        let reset = !known.is_empty();
        if reset {
            tx.set_meta(M_CURSOR, "0")?;
            tx.set_meta(M_BOOTSTRAP, "")?;
            tx.set_meta(M_BOOTSTRAPPED, "")?;
            tx.set_meta(crate::inbox::M_INBOX_CURSOR, "0")?;
            tx.mark_all_dirty()?;
        }
        tx.commit()?;
        Ok(reset)
    }

    /// The next page of dirty documents: data to push, each one's rev, and
    /// whether more remain after it.
    #[allow(clippy::type_complexity)]
    fn push_page(
        &mut self,
        after: &mut Option<(String, String)>,
    ) -> Result<(Vec<DocData>, HashMap<(String, String), i64>, bool), SyncError> {
        let tx = self.store_tx()?;
        let rows = tx.dirty_docs(after.as_ref(), PUSH_PAGE_DOCS_MAX + 1)?;
        drop(tx);
        let mut push = Vec::new();
        let mut revs = HashMap::new();
        let mut bytes = 0usize;
        let mut more = false;
        for (id, kind, doc_bytes, synced, rev) in rows {
            if push.len() >= PUSH_PAGE_DOCS_MAX || bytes >= PUSH_PAGE_BYTES_MAX {
                more = true;
                break;
            }
            // Changes since what the relay is known to hold, or the whole
            // (compact) document the first time.
            let data = match (synced, Uuid::parse_str(&id), DocKind::parse(&kind)) {
                (Some(h), Ok(uuid), Some(k)) => match TicketDoc::load_stored(uuid, k, &doc_bytes) {
                    Ok(mut d) => {
                        let changes = d.changes_since(&parse_heads(&h));
                        let mut out = Vec::new();
                        for c in &changes {
                            out.extend_from_slice(c.raw_bytes());
                        }
                        if out.is_empty() {
                            doc_bytes
                        } else {
                            out
                        }
                    }
                    Err(_) => doc_bytes,
                },
                _ => doc_bytes,
            };
            bytes += data.len();
            *after = Some((id.clone(), kind.clone()));
            revs.insert((id.clone(), kind.clone()), rev);
            push.push(DocData { id, kind, data: encode_data(&data) });
        }
        Ok((push, revs, more))
    }

    /// Commits one round: push confirmations, the pulled page, settings,
    /// access and the cursor, in one transaction. Returns true when the pull
    /// must start over (the agent was just granted internal notes).
    fn apply_round(
        &mut self,
        resp: &SyncResponse,
        reading: SkewReading,
        revs: &HashMap<(String, String), i64>,
        report: &mut SyncReport,
    ) -> Result<bool, SyncError> {
        let now = self.now_ms();
        let mut stamps = Vec::new();
        let agent = self.agent().to_string();
        let (tx, clock) = self.tx_and_clock()?;
        let skew = frame_skew(&tx, reading, now)?;
        let was_permitted = tx.get_meta(crate::node::M_NOTES)?.as_deref() == Some("1");
        for r in &resp.pushed {
            let Some(rev) = revs.get(&(r.id.clone(), r.kind.clone())) else { continue };
            if r.accepted {
                report.pushed += 1;
                tx.mark_synced(&r.id, &r.kind, *rev, &heads_text(&r.heads))?;
            } else {
                let reason = r.reason.clone().unwrap_or_else(|| "refused".into());
                // The relay lacks what this document builds on (it was
                // restored, or lost a page): the next push sends it whole.
                let resend_whole = r.code.as_deref() == Some(RefusalCode::MissingDeps.as_str());
                tx.mark_refused(&r.id, &r.kind, *rev, resend_whole)?;
                tx.add_refusal(Some(&r.id), &r.kind, &reason, now)?;
                report.refused.push(Refused {
                    ticket: r.id.clone(),
                    kind: r.kind.clone(),
                    reason,
                    code: r.code.clone(),
                });
            }
        }
        // The relay's figures, once every confirmation is recorded (a
        // ticket whose notes document is still unconfirmed keeps its own).
        for r in resp.pushed.iter().filter(|r| r.accepted) {
            if let (Some(sla), true) = (&r.sla, revs.contains_key(&(r.id.clone(), r.kind.clone()))) {
                set_relay_sla(&tx, &r.id, sla, now, skew)?;
            }
        }
        if let Some(s) = &resp.settings {
            apply_settings(&tx, s, skew, now)?;
        }
        let purged = apply_access(&tx, &resp.access)?;
        report.purged_notes += purged;
        let notes_ok = resp.access.internal_notes;
        let restart = notes_ok && !was_permitted;
        if restart {
            // Newly permitted: pull everything again to receive the notes
            // that were withheld until now.
            tx.set_meta(M_CURSOR, "0")?;
            tx.set_meta(M_BOOTSTRAP, "")?;
            tx.set_meta(M_BOOTSTRAPPED, "")?;
            tx.set_meta(M_NOTES_RESTORING, "1")?;
        } else if let Some(page) = &resp.pull {
            let settings = crate::node::sla_settings_of(&tx)?;
            let sla: HashMap<&str, &RawSlaInput> = page.sla.iter().map(|(id, v)| (id.as_str(), v)).collect();
            // The page is merged in three steps: read what this device holds
            // of each ticket the page touches; merge every document and
            // materialize every touched ticket on all cores; write.
            let mut pulled: Vec<(&DocData, Uuid, DocKind, Vec<u8>)> = Vec::new();
            let mut held: HashMap<&str, Held> = HashMap::new();
            for d in &page.docs {
                let (Ok(uuid), Some(kind)) = (Uuid::parse_str(&d.id), DocKind::parse(&d.kind)) else { continue };
                if kind == DocKind::Notes && !notes_ok {
                    continue;
                }
                let data = decode_data(&d.data).map_err(|e| SyncError::Protocol(e.to_string()))?;
                if !held.contains_key(d.id.as_str()) {
                    let notes = if notes_ok { tx.load_doc(&d.id, DocKind::Notes.as_str())? } else { None };
                    held.insert(&d.id, Held { ticket: tx.load_doc(&d.id, DocKind::Ticket.as_str())?, notes });
                }
                pulled.push((d, uuid, kind, data));
            }
            // A document that cannot be merged or materialized is
            // quarantined: its pulled bytes are kept aside, this device's
            // copy stays as it was, the ticket shows it as damaged, and the
            // rest of the page goes on.
            let results = tickets_core::par::parallel_map(pulled, |(d, uuid, kind, data)| {
                let stored = held.get(d.id.as_str()).and_then(|h| h.bytes(kind));
                // A panic inside Automerge on hostile bytes is this
                // document's failure, not the page's.
                let merged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    merge_pulled(d, uuid, kind, &data, stored)
                }))
                .unwrap_or_else(|_| Err(format!("ticket {}: merging the relay's data failed", d.id)));
                match merged {
                    Ok((mut doc, bytes)) => {
                        let heads = heads_text(&hex_heads(doc.heads()));
                        Ok((d, kind, doc, data, (bytes, heads)))
                    }
                    Err(reason) => Err((d, kind, data, reason)),
                }
            })
            .ok_or_else(|| SyncError::Protocol("a merge worker failed".into()))?;
            let mut merged = Vec::with_capacity(results.len());
            let mut damaged: Vec<(&DocData, DocKind, Vec<u8>, String)> = Vec::new();
            for r in results {
                match r {
                    Ok(m) => merged.push(m),
                    Err(q) => damaged.push(q),
                }
            }
            // Each merged document by (id, kind), and the tickets touched.
            let mut by_doc: HashMap<(&str, DocKind), &TicketDoc> = HashMap::new();
            let mut touched: Vec<(&str, Uuid)> = Vec::new();
            let mut seen: HashSet<&str> = HashSet::new();
            for (d, kind, doc, _, _) in &merged {
                by_doc.insert((d.id.as_str(), *kind), doc);
                if seen.insert(d.id.as_str()) {
                    touched.push((d.id.as_str(), doc.id()));
                }
            }
            let merged_doc = |id: &str, kind: DocKind| by_doc.get(&(id, kind)).copied();
            let indexed = tickets_core::par::parallel_map(touched, |(id, uuid)| {
                let load = |kind: DocKind| -> Result<Option<TicketDoc>, NodeError> {
                    match (merged_doc(id, kind), held.get(id).and_then(|h| h.bytes(kind))) {
                        (None, Some(b)) => TicketDoc::load_stored(uuid, kind, b)
                            .map(Some)
                            .map_err(|source| NodeError::Doc { id: id.to_string(), source }),
                        _ => Ok(None),
                    }
                };
                let row = (|| {
                    let (stored_ticket, stored_notes) = (load(DocKind::Ticket)?, load(DocKind::Notes)?);
                    // Notes may arrive before their ticket: the ticket's own
                    // arrival indexes it then.
                    let Some(ticket) = merged_doc(id, DocKind::Ticket).or(stored_ticket.as_ref()) else {
                        return Ok(None);
                    };
                    let notes = merged_doc(id, DocKind::Notes).or(stored_notes.as_ref());
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        crate::node::index_row(ticket, notes, notes_ok, &settings, now)
                    }))
                    .unwrap_or_else(|_| {
                        Err(NodeError::Doc {
                            id: id.to_string(),
                            source: tickets_core::DocError::Schema("materializing the ticket failed".into()),
                        })
                    })
                    .map(Some)
                })();
                (id, row)
            })
            .ok_or_else(|| SyncError::Protocol("an index worker failed".into()))?;
            let mut rows = Vec::new();
            let mut unusable: HashMap<&str, String> = HashMap::new();
            for (id, row) in indexed {
                match row {
                    Ok(Some(r)) => rows.push((id, r)),
                    Ok(None) => {}
                    Err(e) => {
                        unusable.insert(id, e.to_string());
                    }
                }
            }
            for (d, kind, _, data, (bytes, heads)) in merged {
                if let Some(reason) = unusable.get(d.id.as_str()) {
                    damaged.push((d, kind, data, reason.clone()));
                    continue;
                }
                tx.save_pulled(&d.id, kind.as_str(), &bytes)?;
                report.pulled += 1;
                // What this device holds of a clean document, the relay holds
                // too: later pushes send only what comes after.
                tx.set_synced_if_clean(&d.id, kind.as_str(), &heads)?;
            }
            let bootstrapped = tx.get_meta(M_BOOTSTRAPPED)?.as_deref() == Some("1");
            for (id, (entry, notes_json, stamp)) in rows {
                report.not_applied.extend(crate::node::newly_not_applied(&tx, &agent, &entry.view_json)?);
                // Before the row is rewritten: it holds the assignee as it was.
                report.new_for_you += usize::from(tx.note_pulled_assignment(&agent, &entry, bootstrapped, now)?);
                tx.upsert_index(&entry, notes_json.as_deref(), true)?;
                stamps.push(stamp);
                if let Some(s) = sla.get(id) {
                    set_relay_sla(&tx, id, s, now, skew)?;
                }
            }
            for (d, kind, data, reason) in damaged {
                let reason = format!("damaged copy from the relay, kept aside: {reason}");
                tx.quarantine(&d.id, kind.as_str(), &data, &reason, now)?;
                report.damaged.push(Refused { ticket: d.id.clone(), kind: kind.as_str().into(), reason, code: None });
            }
            tx.set_meta(M_CURSOR, &page.cursor.to_string())?;
            if page.bootstrap.is_none() {
                tx.set_meta(M_BOOTSTRAPPED, "1")?;
                tx.set_meta(M_NOTES_RESTORING, "")?;
            }
            tx.set_meta(
                M_BOOTSTRAP,
                &page.bootstrap.as_ref().and_then(|b| serde_json::to_string(b).ok()).unwrap_or_default(),
            )?;
        }
        if let Some(page) = &resp.inbox {
            tx.apply_inbox_page(page)?;
            report.inbox += page.conversations.len();
        }
        for s in &stamps {
            clock.observe(s, now);
        }
        Node::save_clock_of(clock, &tx)?;
        tx.commit()?;
        Ok(restart)
    }

    /// Stays connected: syncs whenever the relay or this device has
    /// something new, until `keep_going` says stop. Failures back off and
    /// retry; nothing is lost across relay restarts or link loss.
    pub fn sync_watch(
        &mut self,
        keep_going: &dyn Fn() -> bool,
        on_round: &mut dyn FnMut(Result<&SyncReport, &SyncError>),
    ) -> Result<(), SyncError> {
        self.sync_watch_with(keep_going, &|| false, &mut |e| {
            if let WatchEvent::Done(r) = e {
                on_round(r)
            }
        })
    }

    /// [`Node::sync_watch`] for a long-running host (the app): `wake` says
    /// "sync now" (a button), checked several times a second, also while
    /// backing off from an unreachable relay; `on_event` hears when a round
    /// starts as well as how it ended. Backing off sleeps in short slices,
    /// so that `keep_going` turning false stops the loop within a fraction
    /// of a second of the round in flight.
    pub fn sync_watch_with(
        &mut self,
        keep_going: &dyn Fn() -> bool,
        wake: &dyn Fn() -> bool,
        on_event: &mut dyn FnMut(WatchEvent<'_>),
    ) -> Result<(), SyncError> {
        let Some(remote) = self.remote()? else { return Err(SyncError::NotRegistered) };
        let (tx, rx) = mpsc::channel::<()>();
        let (cursor, inbox_cursor) = {
            let t = self.store_tx()?;
            (t.get_meta(M_CURSOR)?.and_then(|c| c.parse().ok()).unwrap_or(0u64), t.inbox_cursor()?)
        };
        // The watcher thread long-polls and nudges the main loop; it ends
        // when the main loop drops the receiver.
        std::thread::spawn(move || {
            let mut seen = cursor;
            // The inbox head this watcher has seen: a message that lands
            // between a sync and the next long poll is answered at once.
            let mut seen_inbox = Some(inbox_cursor);
            let mut delay = Duration::from_millis(250);
            loop {
                match remote.watch_with_inbox(seen, seen_inbox) {
                    Ok((seq, inbox)) => {
                        seen_inbox = inbox.max(seen_inbox);
                        delay = Duration::from_millis(250);
                        // Every answer nudges a sync, even with nothing new:
                        // access and settings changes (a revoked notes
                        // permission) move no sequence number, and an idle
                        // sync is one small request per long poll.
                        seen = seen.max(seq);
                        if tx.send(()).is_err() {
                            return;
                        }
                    }
                    Err(_) => {
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_secs(10));
                        if tx.send(()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut backoff = Duration::from_millis(250);
        let mut due = true;
        // Pending pushes wait until then after a 429 (pulls go on).
        let mut hold_until: Option<std::time::Instant> = None;
        while keep_going() {
            if !due {
                due = wake();
            }
            if !due && hold_until.is_none_or(|t| std::time::Instant::now() >= t) {
                let t = self.store_tx()?;
                due = t.count_dirty()? > 0;
            }
            if due {
                on_event(WatchEvent::Syncing);
                match self.sync(&mut |_| {}) {
                    Ok(r) => {
                        backoff = Duration::from_millis(250);
                        hold_until = r.rate_limited_secs.map(|s| std::time::Instant::now() + Duration::from_secs(s));
                        on_event(WatchEvent::Done(Ok(&r)));
                        due = false;
                    }
                    Err(e) if e.is_transient() => {
                        on_event(WatchEvent::Done(Err(&e)));
                        let until = std::time::Instant::now() + backoff;
                        while std::time::Instant::now() < until && keep_going() && !wake() {
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(()) => due = true,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        Ok(())
    }
}

/// What [`Node::sync_watch_with`] tells its host.
#[derive(Debug)]
pub enum WatchEvent<'a> {
    /// A round begins.
    Syncing,
    /// A round ended: its report, or why it failed (a transient failure is
    /// retried after a back-off).
    Done(Result<&'a SyncReport, &'a SyncError>),
}

/// What this device held of a pulled ticket before merging the page.
struct Held {
    ticket: Option<Vec<u8>>,
    notes: Option<Vec<u8>>,
}

impl Held {
    fn bytes(&self, kind: DocKind) -> Option<&[u8]> {
        match kind {
            DocKind::Ticket => self.ticket.as_deref(),
            DocKind::Notes => self.notes.as_deref(),
        }
    }
}

/// Merges pulled data into the copy this device holds (or takes a document
/// new to it): the merged document and the bytes to store.
/// Merges a pulled document into what this device holds of it. `Err`
/// says why it cannot be used (damaged bytes, a stored copy that does not
/// load, a document that is no longer shaped like a ticket document).
fn merge_pulled(
    d: &DocData,
    uuid: Uuid,
    kind: DocKind,
    data: &[u8],
    stored: Option<&[u8]>,
) -> Result<(TicketDoc, Vec<u8>), String> {
    let unusable = |e: tickets_core::DocError| format!("ticket {}: relay sent unusable data: {e}", d.id);
    let (mut doc, bytes) = match stored {
        Some(b) => {
            let mut doc =
                TicketDoc::load_stored(uuid, kind, b).map_err(|e| format!("this device's copy does not load: {e}"))?;
            doc.load_incremental(data).map_err(unusable)?;
            let b = doc.save();
            (doc, b)
        }
        // A document new to this device usually arrives as a compact save:
        // keep its bytes as they are.
        None => match TicketDoc::load(uuid, kind, data) {
            Ok(doc) => (doc, data.to_vec()),
            Err(_) => {
                let mut doc = TicketDoc::genesis(uuid, kind);
                doc.load_incremental(data).map_err(unusable)?;
                let b = doc.save();
                (doc, b)
            }
        },
    };
    doc.check_shape().map_err(unusable)?;
    roots_intact(&mut doc).map_err(|e| format!("ticket {}: relay sent unusable data: {e}", d.id))?;
    Ok((doc, bytes))
}

/// The error a relay's non-OK answer stands for, told by its `code` (the
/// message is for people).
fn error_of_body(status: u16, bytes: &[u8]) -> SyncError {
    let (message, code) = match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(e) => {
            let code = e.error_code();
            (e.error, code)
        }
        Err(_) => (String::from_utf8_lossy(bytes).chars().take(300).collect(), None),
    };
    match (status, code) {
        (401, _) => SyncError::Unauthorized,
        (_, Some(ErrorCode::ProtocolVersion)) => SyncError::Protocol(message),
        (500..=599, _) => SyncError::Server { status, message },
        _ => SyncError::Refused { status, message, code },
    }
}

/// The merged document's root still holds the `events` map (and, in a
/// ticket document, the `description` text) that the document was loaded
/// with. A change that replaced either (a string, or a new empty map) left
/// a copy that no longer loads, and every later edit of the ticket failed;
/// `check_shape` counts root keys and does not see it, and the view kept
/// reading the old, now unreachable, objects.
fn roots_intact(doc: &mut TicketDoc) -> Result<(), String> {
    use automerge::legacy::OpId;
    use automerge::{ObjId, ObjType, ReadDoc, Value, ROOT};
    let held = doc.policy_objects();
    let kind = doc.kind();
    let am = doc.automerge();
    let root = |key: &str, want: ObjType| match am.get(ROOT, key) {
        Ok(Some((Value::Object(t), ObjId::Id(counter, actor, _)))) if t == want => Some(OpId::new(counter, &actor)),
        _ => None,
    };
    if held.events.is_none() || root("events", ObjType::Map) != held.events {
        return Err("the document's events map was replaced".into());
    }
    if kind == DocKind::Ticket && (held.description.is_none() || root("description", ObjType::Text) != held.description)
    {
        return Err("the document's description was replaced".into());
    }
    Ok(())
}

/// Registers an actor with the relay for the token's agent.
pub fn register_actor(remote: &Remote, actor: &ActorId) -> Result<RegisterResponse, SyncError> {
    register_actor_as(remote, actor, None)
}

/// Registers an actor, refused by the relay unless the token is `agent`'s.
pub fn register_actor_as(remote: &Remote, actor: &ActorId, agent: Option<&str>) -> Result<RegisterResponse, SyncError> {
    let req =
        RegisterRequest { protocol: PROTOCOL_VERSION, device: actor.to_hex_string(), agent: agent.map(str::to_string) };
    let resp: RegisterResponse = remote.post("/v1/sync/register", &req)?;
    if resp.protocol != PROTOCOL_VERSION {
        return Err(SyncError::Protocol(format!("relay speaks protocol {}", resp.protocol)));
    }
    Ok(resp)
}

/// Adopts the relay's SLA input for a ticket. `skew` is this device's clock
/// minus the relay's: the relay's instants are moved into this device's
/// clock so that, read against this device's "now", every state and time
/// left is the relay's, however wrong this device's clock is.
fn set_relay_sla(tx: &Tx<'_>, id: &str, sla: &RawSlaInput, now: i64, skew: i64) -> Result<(), NodeError> {
    // The relay's figures apply while this device has nothing newer on its
    // way (unconfirmed changes of the ticket or its notes).
    if tx.has_pending_changes(id)? {
        return Ok(());
    }
    let Ok(mut input) = serde_json::from_str::<SlaInputJson>(sla.get()) else { return Ok(()) };
    shift_input(&mut input, skew);
    let settings = crate::node::sla_settings_of(tx)?;
    let text = serde_json::to_string(&input).unwrap_or_default();
    let cols = index::sla_columns(&input.into(), &settings, now);
    tx.set_sla(id, &text, &cols, false)
}

/// Stores the relay's access decision; purges notes the agent may no longer
/// read. Returns how many notes documents were removed.
fn apply_access(tx: &Tx<'_>, access: &Access) -> Result<usize, NodeError> {
    let was_permitted = tx.get_meta(crate::node::M_NOTES)?.as_deref() != Some("0");
    tx.set_meta(crate::node::M_NOTES, if access.internal_notes { "1" } else { "0" })?;
    if !access.role.is_empty() {
        tx.set_meta(M_ROLE, &access.role)?;
    }
    // Notes can only be on this device if it was permitted until now: a
    // device never permitted has nothing to purge, and an idle sync must not
    // scan every document to find that out.
    if access.internal_notes || !was_permitted {
        return Ok(0);
    }
    tx.purge_notes()
}

/// Stores settings from the relay; recomputes SLA colours if they changed.
fn apply_settings(tx: &Tx<'_>, s: &Settings, skew: i64, now: i64) -> Result<(), NodeError> {
    tx.set_meta(crate::node::M_CATEGORIES, &serde_json::to_string(&s.categories).unwrap_or_default())?;
    tx.set_meta(crate::directory::M_TEAMS, &serde_json::to_string(&s.teams).unwrap_or_default())?;
    tx.set_meta(crate::node::M_AGENTS, &serde_json::to_string(&s.agents).unwrap_or_default())?;
    tx.set_meta(crate::directory::M_DIRECTORY, &serde_json::to_string(&s.directory).unwrap_or_default())?;
    tx.set_meta(crate::node::M_LIMITS, &serde_json::to_string(&s.limits).unwrap_or_default())?;
    let new = serde_json::to_string(&s.sla).unwrap_or_default();
    if tx.get_meta(M_SLA_RELAY)?.as_deref() != Some(new.as_str()) {
        tx.set_meta(M_SLA_RELAY, &new)?;
        reframe(tx, &s.sla, skew, 0, now)?;
    }
    Ok(())
}

/// This device's clock minus the relay's, read on one exchange: this
/// device's clock when the answer arrived against the relay's when it
/// handled the request (off by the answer's way back, which the round trip
/// bounds).
#[derive(Debug, Clone, Copy)]
struct SkewReading {
    skew: i64,
    round_trip_ms: i64,
}

impl SkewReading {
    fn of(sent: i64, received: i64, relay_ms: i64) -> SkewReading {
        SkewReading { skew: received.saturating_sub(relay_ms), round_trip_ms: received.saturating_sub(sent) }
    }
}

/// Node meta: the skew (this device's clock minus the relay's, in ms) that
/// moves the relay's SLA instants and settings epochs into this device's
/// clock frame, as they are stored here.
const M_SKEW: &str = "relay_skew_ms";
/// Node meta: the relay's SLA settings as it sent them (its clock frame).
const M_SLA_RELAY: &str = "sla_settings_relay";
/// A measured skew within this of the stored one is network delay, not a
/// clock change: the stored frame stays, so figures do not churn.
const SKEW_TOLERANCE_MS: i64 = 2_000;

/// The skew in which relay instants are kept here. While the measured skew
/// stays within tolerance of the stored one, the stored one; when this
/// device's clock was changed since, every adopted SLA input and the
/// settings epochs move into the new frame (a rare, whole-table rewrite),
/// so SLA figures adopted earlier stay the relay's.
fn frame_skew(tx: &Tx<'_>, reading: SkewReading, now: i64) -> Result<i64, NodeError> {
    let stored: Option<i64> = tx.get_meta(M_SKEW)?.and_then(|s| s.parse().ok());
    let measured = reading.skew;
    match stored {
        Some(s) if measured.abs_diff(s) <= SKEW_TOLERANCE_MS.unsigned_abs() => return Ok(s),
        // A slow exchange (a big page on a slow link) says little about
        // the clocks: the frame moves only on a quick one.
        Some(s) if reading.round_trip_ms > SKEW_TOLERANCE_MS => return Ok(s),
        _ => {}
    }
    tx.set_meta(M_SKEW, &measured.to_string())?;
    // (A node of an earlier version kept no frame: its adopted inputs were
    // moved by the skew of their sync, close to this one.)
    let moved = stored.map_or(0, |s| measured.saturating_sub(s));
    let relay_settings = match tx.get_meta(M_SLA_RELAY)? {
        Some(j) => j,
        None => tx.get_meta(crate::node::M_SLA)?.unwrap_or_default(),
    };
    let relay_settings: SlaSettings = serde_json::from_str(&relay_settings).unwrap_or_default();
    reframe(tx, &relay_settings, measured, moved, now)?;
    Ok(measured)
}

/// Stores the relay's settings moved into this device's frame by `skew`,
/// moves adopted (non-provisional) SLA inputs by `moved`, and recomputes
/// every ticket's SLA columns.
fn reframe(tx: &Tx<'_>, relay: &SlaSettings, skew: i64, moved: i64, now: i64) -> Result<(), NodeError> {
    let mut settings = relay.clone();
    for (from, _) in settings.epochs.iter_mut() {
        *from = from.saturating_add(skew);
    }
    settings.skew_ms = skew;
    tx.set_meta(crate::node::M_SLA, &serde_json::to_string(&settings).unwrap_or_default())?;
    for (id, input, provisional) in tx.sla_inputs()? {
        let Ok(mut i) = serde_json::from_str::<SlaInputJson>(&input) else { continue };
        if !provisional && moved != 0 {
            shift_input(&mut i, moved);
        }
        let text = serde_json::to_string(&i).unwrap_or_default();
        let cols = index::sla_columns(&i.into(), &settings, now);
        tx.set_sla(&id, &text, &cols, provisional)?;
    }
    Ok(())
}

/// Moves every instant of an SLA input by `by` ms.
fn shift_input(input: &mut SlaInputJson, by: i64) {
    input.c = input.c.saturating_add(by);
    input.fr = input.fr.map(|t| t.saturating_add(by));
    for (t, _) in input.p.iter_mut() {
        *t = t.saturating_add(by);
    }
    for (t, _) in input.s.iter_mut() {
        *t = t.saturating_add(by);
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT};
    use tickets_core::event::{EventBody, StoredEvent};
    use tickets_core::hlc::Hlc;

    use super::*;

    #[test]
    fn relay_errors_are_told_apart_by_their_code_not_their_words() {
        let body = |code: &str| format!(r#"{{"error":"worded any way at all","code":"{code}"}}"#).into_bytes();
        assert!(matches!(error_of_body(400, &body("protocol_version")), SyncError::Protocol(_)));
        assert!(matches!(
            error_of_body(400, &body("clock_skew")),
            SyncError::Refused { status: 400, code: Some(ErrorCode::ClockSkew), .. }
        ));
        assert!(matches!(
            error_of_body(409, &body("device_taken")),
            SyncError::Refused { code: Some(ErrorCode::DeviceTaken), .. }
        ));
        assert!(matches!(error_of_body(400, &body("from_a_newer_relay")), SyncError::Refused { code: None, .. }));
        assert!(matches!(error_of_body(503, &body("unavailable")), SyncError::Server { status: 503, .. }));
        assert!(matches!(error_of_body(502, b"<html>bad gateway</html>"), SyncError::Server { status: 502, .. }));
    }

    const T0: i64 = 1_767_225_600_000;

    /// A ticket as a device holds it, and changes made on a copy of it.
    fn held_and_changed(change: impl Fn(&mut TicketDoc)) -> (Uuid, Vec<u8>, Vec<u8>) {
        let id = Uuid::from_u128(0xabc);
        let mut doc = TicketDoc::genesis(id, DocKind::Ticket);
        doc.set_actor(&ActorId::from([0x0a; 16].as_slice()));
        let create = EventBody::Create {
            subject: "Printer".into(),
            priority: "low".into(),
            category: "hardware".into(),
            assignee: None,
        };
        doc.put_event(&Hlc::new(T0 as u64, 0, "0a0a0a0a0a0a0a0a"), &StoredEvent::new("ana", create)).expect("event");
        doc.commit(T0);
        let held = doc.save();
        let before = doc.heads();
        doc.set_actor(&ActorId::from([0x0b; 16].as_slice()));
        change(&mut doc);
        doc.commit(T0 + 1000);
        let data = doc.changes_since(&before).iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
        (id, held, data)
    }

    fn pulled(id: Uuid, data: &[u8]) -> DocData {
        DocData { id: id.to_string(), kind: "ticket".into(), data: tickets_core::protocol::encode_data(data) }
    }

    #[test]
    fn a_pulled_change_that_replaces_a_root_object_is_unusable() {
        type Change = fn(&mut TicketDoc);
        let cases: [(&str, Change); 4] = [
            ("events as a string", |d| d.automerge().put(ROOT, "events", "gone").map(|_| ()).expect("put")),
            ("events as a new map", |d| {
                d.automerge().put_object(ROOT, "events", ObjType::Map).map(|_| ()).expect("put_object")
            }),
            ("description as a string", |d| d.automerge().put(ROOT, "description", "x").map(|_| ()).expect("put")),
            ("description as new text", |d| {
                d.automerge().put_object(ROOT, "description", ObjType::Text).map(|_| ()).expect("put_object")
            }),
        ];
        let mut merged = Vec::new();
        for (name, change) in cases {
            let (id, held, data) = held_and_changed(change);
            if merge_pulled(&pulled(id, &data), id, DocKind::Ticket, &data, Some(&held)).is_ok() {
                merged.push(name);
            }
        }
        assert!(merged.is_empty(), "merged without complaint: {merged:?}");
        // An honest change merges.
        let (id, held, data) = held_and_changed(|d| {
            let e = StoredEvent::new("bob", EventBody::Comment { body: "hi".into() });
            d.put_event(&Hlc::new(T0 as u64 + 1000, 0, "0b0b0b0b0b0b0b0b"), &e).expect("event")
        });
        assert!(merge_pulled(&pulled(id, &data), id, DocKind::Ticket, &data, Some(&held)).is_ok());
    }
}
