//! The JSON form of a ticket: the stable object of `show --json`,
//! `list --json`, `GET /v1/tickets` and exports. A serialization boundary:
//! field names and order here are a public contract.

use serde::Serialize;

use crate::hlc::Hlc;
use crate::sla::{Metric, SlaReport, SlaState};
use crate::time::{iso, iso_i64};
use crate::view::{Entry, HistoryEntry, Outcome, TicketView};

#[derive(Debug, Clone, Serialize)]
pub struct TicketJson {
    pub id: String,
    pub subject: String,
    pub description: String,
    pub priority: String,
    pub category: String,
    pub status: String,
    pub assignee: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    /// When the ticket last became resolved or closed (an applied status
    /// edit), as in every export format.
    pub resolved_at: Option<String>,
    pub closed_at: Option<String>,
    pub conversation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationJson>,
    pub comments: Vec<EntryJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_notes: Option<Vec<EntryJson>>,
    pub history: Vec<HistoryJson>,
    /// The history entries that did not take effect (superseded or
    /// ignored), everyone's: the same on every replica. A reader picks its
    /// own by `by`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_applied: Vec<HistoryJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConversationJson {
    pub channel: String,
    pub customer: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryJson {
    /// The entry's clock stamp: unique, stable across replicas.
    pub id: String,
    pub author: String,
    pub at: String,
    pub body: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryJson {
    pub at: String,
    pub by: String,
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// `applied`, `superseded` or `ignored`.
    pub outcome: &'static str,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlaJson {
    pub first_response: MetricJson,
    pub resolution: MetricJson,
    /// The ticket's colour ([`ticket_color`]): `red`, `yellow`, `green`,
    /// `met` or `none`.
    pub color: &'static str,
    /// The clock that decides the colour (`first_response` or
    /// `resolution`), or none when every clock met its target or none has
    /// one ([`deciding_clock`]).
    pub clock: Option<&'static str>,
    /// The badge's words ([`sla_label`]): `First response 23m overdue`,
    /// `Resolution 3h 5m left`, `Met` or `No SLA`.
    pub label: String,
    /// True while computed by a node rather than by the relay.
    pub provisional: bool,
    pub computed_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricJson {
    pub state: &'static str,
    pub target_secs: Option<u64>,
    pub due_at: Option<String>,
    pub warn_at: Option<String>,
    pub breached_at: Option<String>,
    pub overrun_secs: Option<u64>,
    pub stopped_at: Option<String>,
    pub elapsed_secs: u64,
}

fn entry(e: &Entry, at: &dyn Fn(&Hlc) -> i64) -> EntryJson {
    EntryJson { id: e.at.encode(), author: e.by.clone(), at: iso_i64(at(&e.at)), body: e.body.clone() }
}

fn history(h: &HistoryEntry, at: &dyn Fn(&Hlc) -> i64) -> HistoryJson {
    HistoryJson {
        at: iso_i64(at(&h.at)),
        by: h.by.clone(),
        field: h.field.clone(),
        from: h.from.clone(),
        to: h.to.clone(),
        outcome: match h.outcome {
            Outcome::Applied => "applied",
            Outcome::Superseded => "superseded",
            Outcome::Ignored => "ignored",
        },
        note: h.note.clone(),
    }
}

/// When the last applied status edit to `to` happened.
fn last_status_change(v: &TicketView, to: &str, at: &dyn Fn(&Hlc) -> i64) -> Option<String> {
    v.history
        .iter()
        .rev()
        .find(|h| h.field == "status" && h.to.as_deref() == Some(to) && h.outcome == Outcome::Applied)
        .map(|h| iso_i64(at(&h.at)))
}

impl TicketJson {
    /// The JSON of a view, with each stamp shown at its effective time.
    pub fn from_view(v: &TicketView, at: &dyn Fn(&Hlc) -> i64) -> TicketJson {
        let history: Vec<HistoryJson> = v.history.iter().map(|h| history(h, at)).collect();
        let not_applied = history.iter().filter(|h| h.outcome != "applied").cloned().collect();
        TicketJson {
            id: v.id.to_string(),
            subject: v.subject.clone(),
            description: v.description.clone(),
            priority: v.priority.as_str().into(),
            category: v.category.clone(),
            status: v.status.as_str().into(),
            assignee: v.assignee.clone(),
            created_at: iso_i64(at(&v.created_at)),
            created_by: v.created_by.clone(),
            updated_at: iso_i64(at(&v.updated_at)),
            resolved_at: last_status_change(v, "resolved", at),
            closed_at: last_status_change(v, "closed", at),
            conversation_id: v.conversation.as_ref().map(|c| c.id.clone()),
            conversation: v
                .conversation
                .as_ref()
                .map(|c| ConversationJson { channel: c.channel.clone(), customer: c.customer.clone() }),
            comments: v.comments.iter().map(|e| entry(e, at)).collect(),
            internal_notes: v.internal_notes.as_ref().map(|n| n.iter().map(|e| entry(e, at)).collect()),
            history,
            not_applied,
            problems: v.problems.clone(),
        }
    }
}

/// Node replicas show stamps at their own wall time.
pub fn wall_time(h: &Hlc) -> i64 {
    i64::try_from(h.wall_ms).unwrap_or(i64::MAX)
}

pub fn state_str(s: SlaState) -> &'static str {
    match s {
        SlaState::Green => "green",
        SlaState::Yellow => "yellow",
        SlaState::Red => "red",
        SlaState::Met => "met",
        SlaState::Breached => "breached",
        SlaState::None => "none",
    }
}

/// A ticket's SLA colour: the one definition behind `sla.color` in every
/// ticket object, the board's counts, its `--sla` filters and the
/// dashboard (the index's SQL in `index.rs` says the same in columns).
///
/// - `red`: a metric breached (its clock running or stopped: a breach is
///   never erased);
/// - `yellow`: a running metric past its warning threshold;
/// - `green`: a running metric within its target;
/// - `met`: every clock stopped within its target (nothing left to watch:
///   not green, which means "running and on time");
/// - `none`: no target for the ticket's priority.
///
/// The worst of the two metrics wins, in that order.
pub fn ticket_color(r: &SlaReport) -> &'static str {
    rank_color(color_rank(r.first_response.state).max(color_rank(r.resolution.state)))
}

/// Severity of a metric's state as a colour rank: none 0, met 1, green 2,
/// yellow 3, red/breached 4.
pub fn color_rank(s: SlaState) -> u8 {
    match s {
        SlaState::None => 0,
        SlaState::Met => 1,
        SlaState::Green => 2,
        SlaState::Yellow => 3,
        SlaState::Red | SlaState::Breached => 4,
    }
}

pub fn rank_color(rank: u8) -> &'static str {
    match rank {
        1 => "met",
        2 => "green",
        3 => "yellow",
        4 => "red",
        _ => "none",
    }
}

fn metric(m: &Metric) -> MetricJson {
    MetricJson {
        state: state_str(m.state),
        target_secs: m.target_secs,
        due_at: m.due_at_ms.map(iso_i64),
        warn_at: m.warn_at_ms.map(iso_i64),
        breached_at: m.breached_at_ms.map(iso_i64),
        overrun_secs: m.overrun_secs,
        stopped_at: m.stopped_at_ms.map(iso_i64),
        elapsed_secs: m.elapsed_secs,
    }
}

/// How late a metric is at `now`, in whole seconds: negative while time
/// is left. A running clock counts from its due instant; a stopped one that
/// was breached by its overrun. `None` for met clocks and clocks without a
/// target.
pub fn lateness_secs(m: &Metric, now_ms: i64) -> Option<i64> {
    match m.state {
        SlaState::Green | SlaState::Yellow | SlaState::Red => {
            m.due_at_ms.map(|due| now_ms.saturating_sub(due).div_euclid(1_000))
        }
        SlaState::Breached => Some(i64::try_from(m.overrun_secs.unwrap_or(0)).unwrap_or(i64::MAX)),
        SlaState::Met | SlaState::None => None,
    }
}

/// The clock that decides a ticket's colour: the worse state wins; between
/// two breached clocks the later one, between two running ones the one with
/// less time left; the first response on a tie. `None` when no clock is
/// breached or running.
pub fn deciding_clock(r: &SlaReport, now_ms: i64) -> Option<(&'static str, &Metric)> {
    let clocks = [("first_response", &r.first_response), ("resolution", &r.resolution)];
    let key = |m: &Metric| (color_rank(m.state), lateness_secs(m, now_ms).unwrap_or(i64::MIN));
    let (name, m) = if key(clocks[1].1) > key(clocks[0].1) { clocks[1] } else { clocks[0] };
    (color_rank(m.state) >= 2).then_some((name, m))
}

/// A duration as a badge says it: `45s`, `23m`, `3h 5m`, `2d 4h` (rounded
/// down to the unit shown).
pub fn short_duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// The badge's words: the deciding clock and how late or how soon
/// (`First response 23m overdue`, `Resolution 3h 5m left`); `Met` when
/// every clock met its target, `No SLA` when none has one.
pub fn sla_label(r: &SlaReport, now_ms: i64) -> String {
    match deciding_clock(r, now_ms) {
        Some((name, m)) => {
            let clock = if name == "first_response" { "First response" } else { "Resolution" };
            let late = lateness_secs(m, now_ms).unwrap_or(0);
            if late > 0 || color_rank(m.state) == 4 {
                format!("{clock} {} overdue", short_duration(late.max(0).unsigned_abs()))
            } else {
                format!("{clock} {} left", short_duration(late.unsigned_abs()))
            }
        }
        None if ticket_color(r) == "met" => "Met".into(),
        None => "No SLA".into(),
    }
}

impl SlaJson {
    pub fn from_report(r: &SlaReport, provisional: bool, now_ms: i64) -> SlaJson {
        SlaJson {
            first_response: metric(&r.first_response),
            resolution: metric(&r.resolution),
            color: ticket_color(r),
            clock: deciding_clock(r, now_ms).map(|(name, _)| name),
            label: sla_label(r, now_ms),
            provisional,
            computed_at: iso(now_ms.max(0) as u64),
        }
    }
}
