//! What both ends keep per ticket in their index tables: the scalar columns
//! that list, filter and sort read, the ticket's JSON without live figures,
//! the SLA engine's input, and the instants at which colours change — so
//! that "which tickets are yellow now" is a range query and no document is
//! loaded to answer it.

use serde::{Deserialize, Serialize};

use crate::hlc::Hlc;
use crate::json::{SlaJson, TicketJson};
use crate::model::{Priority, Status};
use crate::sla::{self, SlaInput, SlaSettings, SlaState};
use crate::view::TicketView;

/// The SLA engine's input as stored and sent (a storage boundary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaInputJson {
    pub c: i64,
    pub fr: Option<i64>,
    pub p: Vec<(i64, Priority)>,
    pub s: Vec<(i64, Status)>,
}

impl From<&SlaInput> for SlaInputJson {
    fn from(i: &SlaInput) -> Self {
        SlaInputJson {
            c: i.created_at_ms,
            fr: i.first_response_at_ms,
            p: i.priority_changes.clone(),
            s: i.status_changes.clone(),
        }
    }
}

impl From<SlaInputJson> for SlaInput {
    fn from(s: SlaInputJson) -> Self {
        SlaInput { created_at_ms: s.c, first_response_at_ms: s.fr, priority_changes: s.p, status_changes: s.s }
    }
}

/// One ticket's index entry.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub id: String,
    pub subject: String,
    pub priority: String,
    pub priority_rank: i64,
    pub category: String,
    pub status: String,
    pub status_rank: i64,
    pub assignee: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub conversation_id: Option<String>,
    /// The ticket's JSON object without `sla` (and without notes: those are
    /// added per reader).
    pub view_json: String,
    pub sla_input: String,
    pub sla: SlaColumns,
}

/// What stopped or breached metrics fix (`sla_static`: 0 nothing, 1 met,
/// 3 breached) and the instants at which running metrics turn yellow and
/// red. These stored numbers are a storage format, kept as they were.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlaColumns {
    pub fixed_rank: i64,
    pub fr_warn: Option<i64>,
    pub fr_due: Option<i64>,
    pub res_warn: Option<i64>,
    pub res_due: Option<i64>,
}

/// Rows that are red at `:now`. Written as an OR of indexable range terms
/// (each column has a partial index), so SQLite reads only the red rows.
pub const SLA_RED_SQL: &str = "(sla_static = 3 OR fr_due <= :now OR res_due <= :now)";
/// Rows that are yellow at `:now`.
///
/// (`IS NOT TRUE` rather than `NOT`: with one of the two clocks without a
/// target its column is NULL, `NOT (… OR NULL)` is NULL, and the row would
/// be in no colour at all.)
pub const SLA_YELLOW_SQL: &str =
    "((sla_static = 2 OR fr_warn <= :now OR res_warn <= :now) AND (sla_static = 3 OR fr_due <= :now OR res_due <= :now) IS NOT TRUE)";
/// Rows with no SLA at all (no target for their priority).
pub const SLA_NONE_SQL: &str = "(sla_static = 0 AND fr_due IS NULL AND res_due IS NULL)";
/// Rows whose clocks all stopped within target (`met`, not green).
pub const SLA_MET_SQL: &str = "(sla_static = 1 AND fr_due IS NULL AND res_due IS NULL)";
/// Rows green at `:now`: a running clock on time, nothing yellow or red.
/// Red, yellow, green, met and none split every row exactly once, as
/// [`crate::json::ticket_color`] does.
pub const SLA_GREEN_SQL: &str = "((fr_due IS NOT NULL OR res_due IS NOT NULL) AND (sla_static = 3 OR fr_due <= :now OR res_due <= :now) IS NOT TRUE AND (sla_static = 2 OR fr_warn <= :now OR res_warn <= :now) IS NOT TRUE)";

/// Tickets per SLA colour, as the board API and the dashboard count them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaCounts {
    pub green: u64,
    pub yellow: u64,
    pub red: u64,
    pub met: u64,
    pub none: u64,
}

/// The rank of a colour name in [`ListQuery::sla_rank`].
pub fn sla_rank_of(color: &str) -> Option<i64> {
    match color {
        "none" => Some(0),
        "green" => Some(1),
        "yellow" => Some(2),
        "red" => Some(3),
        "met" => Some(4),
        _ => None,
    }
}
/// The soonest running deadline of a row (sorting by SLA), as indexed.
pub const SLA_DUE_SQL: &str =
    "coalesce(min(coalesce(fr_due, res_due), coalesce(res_due, fr_due)), 9223372036854775807)";

pub fn sla_columns(input: &SlaInput, settings: &SlaSettings, now: i64) -> SlaColumns {
    let report = sla::compute(input, settings, now);
    let mut cols = SlaColumns::default();
    for (i, m) in [&report.first_response, &report.resolution].into_iter().enumerate() {
        let running = matches!(m.state, SlaState::Green | SlaState::Yellow | SlaState::Red);
        if m.breached_at_ms.is_some() {
            cols.fixed_rank = cols.fixed_rank.max(3);
        } else if running {
            if i == 0 {
                (cols.fr_warn, cols.fr_due) = (m.warn_at_ms, m.due_at_ms);
            } else {
                (cols.res_warn, cols.res_due) = (m.warn_at_ms, m.due_at_ms);
            }
        } else if m.state == SlaState::Met {
            cols.fixed_rank = cols.fixed_rank.max(1);
        }
    }
    cols
}

/// Builds the index entry of a view, each stamp shown at its effective time.
pub fn index_entry(v: &TicketView, settings: &SlaSettings, now: i64, effective: &dyn Fn(&Hlc) -> i64) -> IndexEntry {
    let mut without_notes = v.clone();
    without_notes.internal_notes = None;
    let json = TicketJson::from_view(&without_notes, effective);
    let input = v.sla_input(effective);
    IndexEntry {
        id: json.id.clone(),
        subject: v.subject.clone(),
        priority: v.priority.as_str().into(),
        priority_rank: v.priority.rank(),
        category: v.category.clone(),
        status: v.status.as_str().into(),
        status_rank: v.status as i64,
        assignee: v.assignee.clone(),
        created_at: effective(&v.created_at),
        updated_at: effective(&v.updated_at),
        conversation_id: v.conversation.as_ref().map(|c| c.id.clone()),
        view_json: serde_json::to_string(&json).unwrap_or_default(),
        sla_input: serde_json::to_string(&SlaInputJson::from(&input)).unwrap_or_default(),
        sla: sla_columns(&input, settings, now),
    }
}

/// The JSON of a ticket's internal notes, for the readers who may see them.
pub fn notes_json(v: &TicketView, effective: &dyn Fn(&Hlc) -> i64) -> Option<String> {
    let j = TicketJson::from_view(v, effective);
    j.internal_notes.map(|n| serde_json::to_string(&n).unwrap_or_default())
}

/// A stored ticket object with live SLA figures (and notes, when given and
/// permitted) added.
pub fn live_object(
    view_json: &str,
    sla_input: &str,
    notes_json: Option<&str>,
    settings: &SlaSettings,
    now: i64,
    provisional: bool,
) -> Result<serde_json::Value, String> {
    let mut v: serde_json::Value = serde_json::from_str(view_json).map_err(|e| format!("stored ticket: {e}"))?;
    let input: SlaInputJson = serde_json::from_str(sla_input).map_err(|e| format!("stored SLA input: {e}"))?;
    let report = sla::compute(&input.into(), settings, now);
    let sla = serde_json::to_value(SlaJson::from_report(&report, provisional, now)).map_err(|e| e.to_string())?;
    if let Some(o) = v.as_object_mut() {
        if let Some(n) = notes_json {
            let notes: serde_json::Value = serde_json::from_str(n).map_err(|e| format!("stored notes: {e}"))?;
            // Notes go right after comments, as in `show --json`.
            let mut out = serde_json::Map::with_capacity(o.len() + 2);
            for (k, val) in std::mem::take(o) {
                let after_comments = k == "comments";
                out.insert(k, val);
                if after_comments {
                    out.insert("internal_notes".into(), notes.clone());
                }
            }
            *o = out;
        }
        o.insert("sla".into(), sla);
    }
    Ok(v)
}

/// The same object as [`live_object`], as JSON text, built by splicing the
/// stored text instead of parsing and re-serializing it (exports stream
/// hundreds of thousands of these).
pub fn live_text(
    view_json: &str,
    sla_input: &str,
    notes_json: Option<&str>,
    settings: &SlaSettings,
    now: i64,
    provisional: bool,
) -> Result<String, String> {
    let input: SlaInputJson = serde_json::from_str(sla_input).map_err(|e| format!("stored SLA input: {e}"))?;
    let report = sla::compute(&input.into(), settings, now);
    let sla = serde_json::to_string(&SlaJson::from_report(&report, provisional, now)).map_err(|e| e.to_string())?;
    let body = view_json.trim_end();
    let Some(open) = body.strip_suffix('}') else { return Err("stored ticket is not a JSON object".into()) };
    let mut out = String::with_capacity(body.len() + sla.len() + notes_json.map_or(0, str::len) + 40);
    match notes_json {
        // Notes go right after comments, as in `show --json`. In serde_json's
        // output a quote inside a string is always escaped, so this
        // unescaped key can only be the top-level `history` key.
        Some(n) => match open.find(r#","history":["#) {
            Some(at) => {
                out.push_str(&open[..at]);
                out.push_str(r#","internal_notes":"#);
                out.push_str(n);
                out.push_str(&open[at..]);
            }
            None => return Err("stored ticket has no history".into()),
        },
        None => out.push_str(open),
    }
    out.push_str(r#","sla":"#);
    out.push_str(&sla);
    out.push('}');
    Ok(out)
}

/// Sort keys of a list query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Created,
    Updated,
    Priority,
    Status,
    Subject,
    Assignee,
    Category,
    /// Soonest SLA deadline first.
    Sla,
}

impl SortKey {
    /// `priority`, `-created`, ...: a leading '-' sorts descending.
    pub fn parse(s: &str) -> Option<(SortKey, bool)> {
        let (desc, name) = match s.trim().strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, s.trim()),
        };
        let key = match name {
            "created" | "created_at" => SortKey::Created,
            "updated" | "updated_at" => SortKey::Updated,
            "priority" => SortKey::Priority,
            "status" => SortKey::Status,
            "subject" => SortKey::Subject,
            "assignee" => SortKey::Assignee,
            "category" => SortKey::Category,
            "sla" | "due" => SortKey::Sla,
            _ => return None,
        };
        Some((key, desc))
    }

    fn column(self) -> &'static str {
        match self {
            SortKey::Created => "created_at",
            SortKey::Updated => "updated_at",
            SortKey::Priority => "priority_rank",
            SortKey::Status => "status_rank",
            SortKey::Subject => "subject_lc",
            SortKey::Assignee => "assignee",
            SortKey::Category => "category",
            SortKey::Sla => SLA_DUE_SQL,
        }
    }
}

/// A query over an index table. Empty vectors mean "any".
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub statuses: Vec<String>,
    pub priorities: Vec<String>,
    pub categories: Vec<String>,
    pub assignees: Vec<String>,
    /// Colour wanted: 1 green, 2 yellow, 3 red, 4 met, 0 none
    /// ([`sla_rank_of`]).
    pub sla_rank: Option<i64>,
    /// Text in the subject (any case), or an id prefix.
    pub search: Option<String>,
    pub sort: Option<(SortKey, bool)>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// A value bound to a named SQL parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlArg {
    Int(i64),
    Text(String),
}

/// SQL text of a list query over the `tickets` index table (both ends share
/// its column names): the WHERE clause, the ORDER/LIMIT tail, and the named
/// arguments (`:now` is always bound). Pure string building; the stores run
/// it.
pub struct ListSql {
    pub filter: String,
    pub tail: String,
    pub args: Vec<(String, SqlArg)>,
}

impl ListQuery {
    pub fn to_sql(&self, now: i64) -> ListSql {
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<(String, SqlArg)> = vec![(":now".into(), SqlArg::Int(now))];
        let groups = [
            ("status", &self.statuses),
            ("priority", &self.priorities),
            ("category", &self.categories),
            ("assignee", &self.assignees),
        ];
        for (column, values) in groups {
            if values.is_empty() {
                continue;
            }
            let names: Vec<String> = values
                .iter()
                .map(|v| {
                    let name = format!(":a{}", args.len());
                    args.push((name.clone(), SqlArg::Text(v.clone())));
                    name
                })
                .collect();
            clauses.push(format!("{column} IN ({})", names.join(", ")));
        }
        if let Some(rank) = self.sla_rank {
            // Red and yellow are few and found through indexes; green is
            // what is left of the tickets with an SLA.
            clauses.push(match rank {
                3 => SLA_RED_SQL.to_string(),
                2 => SLA_YELLOW_SQL.to_string(),
                1 => SLA_GREEN_SQL.to_string(),
                4 => SLA_MET_SQL.to_string(),
                _ => SLA_NONE_SQL.to_string(),
            });
        }
        if let Some(s) = self.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            let escaped = s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            clauses.push(
                "(subject_lc LIKE '%' || :search || '%' ESCAPE '\\' OR id LIKE :search || '%' ESCAPE '\\')".into(),
            );
            args.push((":search".into(), SqlArg::Text(escaped)));
        }
        let filter = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
        let (key, desc) = self.sort.unwrap_or((SortKey::Created, true));
        let dir = if desc { "DESC" } else { "ASC" };
        // With a red or yellow filter the matches are few: sort them rather
        // than walk the whole deadline index (`+ 0` keeps SQLite from
        // choosing that index for the order).
        let column = match (key, self.sla_rank) {
            (SortKey::Sla, Some(2 | 3)) => format!("({}) + 0", key.column()),
            _ => key.column().to_string(),
        };
        let mut tail = format!(" ORDER BY {column} {dir}, id {dir}");
        if let Some(l) = self.limit {
            tail.push_str(&format!(" LIMIT {l}"));
            if let Some(o) = self.offset {
                tail.push_str(&format!(" OFFSET {o}"));
            }
        }
        ListSql { filter, tail, args }
    }
}
