//! One sync exchange, independent of HTTP: what the relay does with an
//! authenticated device's request. The HTTP handler and the deterministic
//! simulation both call [`handle_sync`].

use tickets_core::change_policy::CLOCK_OFFSET_MS_MAX;
use tickets_core::protocol::{Access, ErrorCode, SyncRequest, SyncResponse, PROTOCOL_VERSION};

use crate::store::{Caller, Heads, RelayStore, StoreError};

/// Why a request was refused before any work (a 4xx).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRefusal {
    Protocol(u32),
    DeviceUnregistered,
    /// The device id is not a lower-case hex actor id.
    NonCanonicalDevice,
    /// The device's clock is further from the relay's than
    /// [`CLOCK_OFFSET_MS_MAX`] (the offset, in ms).
    ClockSkew(i64),
}

impl SyncRefusal {
    /// The HTTP status and error code of the refusal.
    pub fn status_and_code(&self) -> (u16, ErrorCode) {
        match self {
            SyncRefusal::Protocol(_) => (400, ErrorCode::ProtocolVersion),
            SyncRefusal::DeviceUnregistered => (403, ErrorCode::DeviceUnregistered),
            SyncRefusal::NonCanonicalDevice => (400, ErrorCode::NonCanonicalId),
            SyncRefusal::ClockSkew(_) => (400, ErrorCode::ClockSkew),
        }
    }

    pub fn message(&self) -> String {
        match self {
            SyncRefusal::NonCanonicalDevice => "device must be a lower-case hex actor id".into(),
            SyncRefusal::ClockSkew(offset) => {
                let hours = offset.unsigned_abs() / 3_600_000;
                let way = if *offset > 0 { "ahead of" } else { "behind" };
                format!(
                    "this device's clock is {hours} h {way} the relay's (more than {} days): set the device's date and time right, then sync again",
                    CLOCK_OFFSET_MS_MAX / 86_400_000
                )
            }
            SyncRefusal::Protocol(v) => {
                format!("protocol version {v} is not supported; this relay speaks version {PROTOCOL_VERSION}")
            }
            SyncRefusal::DeviceUnregistered => {
                "this device is not registered to the token's agent; run `tickets init --relay URL --token TOKEN`"
                    .into()
            }
        }
    }
}

/// A handled exchange: the status to answer with, the response body, and
/// figures for metrics.
pub struct Handled {
    pub status: u16,
    pub response: SyncResponse,
    /// The change log's heads after the exchange (what watchers wait on).
    pub heads: Heads,
    pub accepted: usize,
    pub changes: usize,
    pub refused: usize,
}

pub fn access(c: &Caller) -> Access {
    Access { agent: c.agent.name.clone(), role: c.agent.role.clone(), internal_notes: c.agent.may_read_notes() }
}

/// Checks a request before any work: protocol, the device (canonical and
/// registered to the caller) and the device's clock, at the relay's `now`.
pub fn check(caller: &Caller, req: &SyncRequest, now: i64) -> Result<(), SyncRefusal> {
    if req.protocol != PROTOCOL_VERSION {
        return Err(SyncRefusal::Protocol(req.protocol));
    }
    let actor = automerge::ActorId::try_from(req.device.as_str()).map_err(|_| SyncRefusal::DeviceUnregistered)?;
    if actor.to_hex_string() != req.device {
        return Err(SyncRefusal::NonCanonicalDevice);
    }
    if !caller.actors.contains(&actor) {
        return Err(SyncRefusal::DeviceUnregistered);
    }
    let offset = req.clock_ms.saturating_sub(now);
    if offset.saturating_abs() > CLOCK_OFFSET_MS_MAX {
        return Err(SyncRefusal::ClockSkew(offset));
    }
    Ok(())
}

/// Applies the push page and reads the pull page of one request at `now`.
/// The push commits before the pull is read, so a device sees its own
/// accepted work reflected in the same exchange.
pub fn handle_sync<S: RelayStore + ?Sized>(
    conn: &mut S,
    caller: &Caller,
    req: &SyncRequest,
    now: i64,
) -> Result<Handled, StoreError> {
    let offset = req.clock_ms.saturating_sub(now);
    // The floor first: a sync's start is read with the offset measured
    // before this request (see `RelayStore::sync_floor`).
    let floor = conn.sync_floor(&req.device, now, req.clock_ms)?;
    conn.touch_device(&req.device, offset, now)?;
    let outcome = if req.push.is_empty() {
        None
    } else {
        Some(crate::push::push_above(conn, caller, &req.device, offset, floor, &req.push, now)?)
    };
    let (pull, settings) = match &req.pull {
        Some(p) => (Some(crate::pull::pull(conn, caller, &req.device, p)?), Some(conn.settings()?)),
        None => (None, None),
    };
    // inbox: its own page, with its own cursor (SPEC §10).
    let inbox = match &req.inbox {
        Some(p) => Some(crate::inbox::store::pull(conn, caller, p, now)?),
        None => None,
    };
    if crate::push::completes_sync(req, pull.as_ref()) {
        conn.complete_sync(&req.device)?;
    }
    let heads = conn.heads()?;
    let epoch = conn.epoch()?;
    let mut status = 200;
    let mut error = None;
    let mut code = None;
    let (mut accepted, mut changes, mut refused) = (0, 0, 0);
    let mut pushed = Vec::new();
    if let Some(o) = outcome {
        accepted = o.accepted;
        changes = o.changes;
        refused = o.forbidden + o.invalid;
        if o.accepted == 0 && o.forbidden > 0 {
            status = 403;
            error = Some("every pushed document was refused: forbidden write".to_string());
            code = Some(ErrorCode::Forbidden.as_str().to_string());
        } else if o.accepted == 0 && o.invalid > 0 {
            status = 400;
            error = Some("every pushed document was refused: invalid data".to_string());
            code = Some(ErrorCode::InvalidData.as_str().to_string());
        }
        pushed = o.results;
    }
    let response = SyncResponse {
        protocol: PROTOCOL_VERSION,
        relay_ms: now,
        pushed,
        pull,
        settings,
        access: access(caller),
        epoch,
        error,
        code,
        inbox,
    };
    Ok(Handled { status, response, heads, accepted, changes, refused })
}
