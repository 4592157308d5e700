//! What both ends keep per ticket in their index tables: the scalar columns
//! that list, filter and sort read, the ticket's JSON without live figures,
//! the SLA engine's input, and the instants at which colours change — so
//! that "which tickets are yellow now" is a range query and no document is
//! loaded to answer it.

use serde::{Deserialize, Serialize};

use crate::hlc::Hlc;
use crate::json::{SlaJson, TicketJson};
use crate::model::{Priority, Status};
use crate::search;
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
    /// What search reads ([`crate::search::search_text`]).
    pub search_text: String,
}

/// What stopped or breached metrics fix (`sla_static`: 0 nothing, 1 met,
/// 3 breached) and the instants at which running metrics turn yellow and
/// red. These stored numbers are a storage format, kept as they were.
///
/// A running clock keeps its due instant even once breached (then in the
/// past): how late it is is computed when a query runs, so an overdue
/// ticket that someone touches stays first in the SLA order. A stopped
/// clock that was breached keeps by how much (`late_ms`), fixed for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlaColumns {
    pub fixed_rank: i64,
    pub fr_warn: Option<i64>,
    pub fr_due: Option<i64>,
    pub res_warn: Option<i64>,
    pub res_due: Option<i64>,
    /// The largest overrun of a stopped, breached clock, in ms.
    pub late_ms: Option<i64>,
}

/// The version of what [`sla_columns`] and [`search_text`] write. A store
/// whose rows were indexed by an older version re-indexes them from their
/// stored JSON and SLA input when it opens (before version 2, a breached
/// running clock lost its due instant and stopped breaches their overrun;
/// there was no search text).
pub const INDEX_FORMAT: i64 = 2;

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

/// The rank of a colour name in [`ListQuery::sla_ranks`].
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
/// The soonest running deadline of a row, as indexed before
/// [`INDEX_FORMAT`] 2 (kept for the expression index that old databases
/// hold; queries sort by [`SLA_ORDER_SQL`]).
pub const SLA_DUE_SQL: &str =
    "coalesce(min(coalesce(fr_due, res_due), coalesce(res_due, fr_due)), 9223372036854775807)";

/// The SLA order of a row at `:now`, ascending: the instant its most
/// urgent clock is (or was) due. A running clock counts at its due instant;
/// a stopped, breached one as if due `sla_late` before now, so breached
/// tickets come first, the most overdue first, then running clocks by time
/// left; then met tickets, then those without an SLA. Lateness is computed
/// here, at query time, never stored.
pub const SLA_ORDER_SQL: &str = "min(coalesce(fr_due, 9223372036854775807), coalesce(res_due, 9223372036854775807), \
     coalesce(:now - sla_late, CASE WHEN sla_static = 1 THEN 9223372036854775806 ELSE 9223372036854775807 END))";

/// The most a stored overrun says (about 31 700 years), so that `:now -
/// sla_late` never overflows a 64-bit integer on either backend.
pub const LATE_SECS_MAX: u64 = 1_000_000_000_000;

pub fn sla_columns(input: &SlaInput, settings: &SlaSettings, now: i64) -> SlaColumns {
    let report = sla::compute(input, settings, now);
    let mut cols = SlaColumns::default();
    for (i, m) in [&report.first_response, &report.resolution].into_iter().enumerate() {
        let running = matches!(m.state, SlaState::Green | SlaState::Yellow | SlaState::Red);
        if m.breached_at_ms.is_some() {
            cols.fixed_rank = cols.fixed_rank.max(3);
        } else if m.state == SlaState::Met {
            cols.fixed_rank = cols.fixed_rank.max(1);
        }
        if running {
            if i == 0 {
                (cols.fr_warn, cols.fr_due) = (m.warn_at_ms, m.due_at_ms);
            } else {
                (cols.res_warn, cols.res_due) = (m.warn_at_ms, m.due_at_ms);
            }
        } else if m.state == SlaState::Breached {
            let secs = m.overrun_secs.unwrap_or(0).min(LATE_SECS_MAX);
            let late = i64::try_from(secs).unwrap_or(0).saturating_mul(1_000);
            cols.late_ms = Some(cols.late_ms.map_or(late, |l| l.max(late)));
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
        search_text: search::search_text(
            &v.subject,
            [v.description.as_str(), v.conversation.as_ref().map_or("", |c| c.customer.as_str())]
                .into_iter()
                .chain(v.comments.iter().map(|c| c.body.as_str())),
        ),
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
    /// The SLA order ([`SLA_ORDER_SQL`]): breached first, most overdue
    /// first; running clocks by time left; met; no SLA.
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
            SortKey::Sla => SLA_ORDER_SQL,
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
    /// Unassigned tickets too (`assignee=none`): with `assignees`, either.
    pub unassigned: bool,
    /// Colours wanted, any of them: 1 green, 2 yellow, 3 red, 4 met, 0 none
    /// ([`sla_rank_of`]); empty means any colour.
    pub sla_ranks: Vec<i64>,
    /// Words in the subject, description, customer name or comments (any
    /// case, accents and punctuation: [`crate::search`]), or an id prefix.
    pub search: Option<String>,
    pub sort: Option<(SortKey, bool)>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// The most words of a search query that are looked for (the rest are
/// ignored): each is one more test of every search text.
pub const SEARCH_WORDS_MAX: usize = 8;

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
        let groups = [("status", &self.statuses), ("priority", &self.priorities), ("category", &self.categories)];
        let bind = |args: &mut Vec<(String, SqlArg)>, values: &[String]| -> String {
            let names: Vec<String> = values
                .iter()
                .map(|v| {
                    let name = format!(":a{}", args.len());
                    args.push((name.clone(), SqlArg::Text(v.clone())));
                    name
                })
                .collect();
            names.join(", ")
        };
        for (column, values) in groups {
            if !values.is_empty() {
                clauses.push(format!("{column} IN ({})", bind(&mut args, values)));
            }
        }
        match (self.assignees.is_empty(), self.unassigned) {
            (true, false) => {}
            (true, true) => clauses.push("assignee IS NULL".into()),
            (false, false) => clauses.push(format!("assignee IN ({})", bind(&mut args, &self.assignees))),
            (false, true) => {
                clauses.push(format!("(assignee IN ({}) OR assignee IS NULL)", bind(&mut args, &self.assignees)))
            }
        }
        if !self.sla_ranks.is_empty() {
            // Red and yellow are few and found through indexes; green is
            // what is left of the tickets with an SLA.
            let mut ranks = self.sla_ranks.clone();
            ranks.sort_unstable();
            ranks.dedup();
            let terms: Vec<&str> = ranks
                .iter()
                .map(|rank| match rank {
                    3 => SLA_RED_SQL,
                    2 => SLA_YELLOW_SQL,
                    1 => SLA_GREEN_SQL,
                    4 => SLA_MET_SQL,
                    _ => SLA_NONE_SQL,
                })
                .collect();
            clauses.push(if terms.len() == 1 { terms[0].to_string() } else { format!("({})", terms.join(" OR ")) });
        }
        let mut rank = None;
        if let Some(s) = self.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            // Words in the normalised search text (any case, accents and
            // punctuation), or an id prefix; subject matches rank first.
            let escaped = s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let id_term = "id LIKE :search || '%' ESCAPE '\\'";
            args.push((":search".into(), SqlArg::Text(escaped)));
            let words: Vec<String> = search::query_words(s).into_iter().take(SEARCH_WORDS_MAX).collect();
            if words.is_empty() {
                // Nothing but punctuation (`%`, `#`): that text, literally,
                // in the subject, or an id prefix.
                clauses.push(format!("(subject_lc LIKE '%' || :search || '%' ESCAPE '\\' OR {id_term})"));
            } else {
                let names: Vec<String> = (0..words.len()).map(|i| format!(":w{i}")).collect();
                let has: Vec<String> = names.iter().map(|n| format!("text LIKE '%' || {n} || '%'")).collect();
                clauses
                    .push(format!("(id IN (SELECT id FROM ticket_search WHERE {}) OR {id_term})", has.join(" AND ")));
                let in_subject: Vec<String> = names
                    .iter()
                    .map(|n| {
                        format!(
                            "instr(s.text, {n}) > 0 AND instr(s.text, {n}) < instr(s.text, '{}')",
                            search::SUBJECT_END
                        )
                    })
                    .collect();
                rank = Some(format!(
                    "(SELECT CASE WHEN {} THEN 0 ELSE 1 END FROM ticket_search s WHERE s.id = tickets.id)",
                    in_subject.join(" AND ")
                ));
                args.extend(names.into_iter().zip(words).map(|(n, w)| (n, SqlArg::Text(w))));
            }
        }
        let filter = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
        let (key, desc) = self.sort.unwrap_or((SortKey::Created, true));
        let dir = if desc { "DESC" } else { "ASC" };
        // With a red or yellow filter the matches are few: sort them rather
        // than walk the whole deadline index (`+ 0` keeps SQLite from
        // choosing that index for the order).
        let few = !self.sla_ranks.is_empty() && self.sla_ranks.iter().all(|r| matches!(r, 2 | 3));
        // A search tests every subject (a LIKE with a leading wildcard uses
        // no index): sort its matches rather than walk a time index and test
        // each row in turn, which reads every row when matches are few
        // (150 ms instead of 20 at 100 000 tickets).
        let searching = self.search.as_deref().is_some_and(|s| !s.trim().is_empty());
        let column = match key {
            SortKey::Sla if few => format!("({}) + 0", key.column()),
            SortKey::Created | SortKey::Updated if searching => format!("{} + 0", key.column()),
            _ => key.column().to_string(),
        };
        let rank = rank.map(|r| format!("{r}, ")).unwrap_or_default();
        let mut tail = format!(" ORDER BY {rank}{column} {dir}, id {dir}");
        if let Some(l) = self.limit {
            tail.push_str(&format!(" LIMIT {l}"));
            if let Some(o) = self.offset {
                tail.push_str(&format!(" OFFSET {o}"));
            }
        }
        ListSql { filter, tail, args }
    }
}

/// The most a list query's `limit` or `offset` may say: SQLite's integers
/// are signed 64-bit.
pub const QUERY_NUMBER_MAX: usize = i64::MAX as usize;

/// A list query parameter that cannot be read: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}

impl ListQuery {
    /// Reads a list query from URL query pairs, as the relay's board and the
    /// node's app both take it: `status`, `priority`, `category`,
    /// `assignee` (`none` for unassigned), `sla` (colours), each repeated or
    /// comma-separated; `search` (or `q`), `sort` (see [`SortKey::parse`]),
    /// `limit`, `offset`. Unknown keys are ignored. The caller bounds
    /// `limit`.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<ListQuery, QueryError> {
        let mut q = ListQuery::default();
        let bad = |field: &str, message: String| QueryError { field: field.to_string(), message };
        for (k, v) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref());
            let values = || v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
            match k {
                "status" => {
                    for s in values() {
                        let st: Status = s.parse().map_err(|e: crate::InputError| bad(k, e.to_string()))?;
                        q.statuses.push(st.as_str().to_string());
                    }
                }
                "priority" => {
                    for s in values() {
                        let p: Priority = s.parse().map_err(|e: crate::InputError| bad(k, e.to_string()))?;
                        q.priorities.push(p.as_str().to_string());
                    }
                }
                "category" => q.categories.extend(values()),
                "assignee" => {
                    for a in values() {
                        if a == "none" {
                            q.unassigned = true;
                        } else {
                            q.assignees.push(a);
                        }
                    }
                }
                "sla" => {
                    for c in values() {
                        q.sla_ranks.push(sla_rank_of(&c).ok_or_else(|| {
                            bad(k, format!("unknown SLA color '{c}' (red, yellow, green, met or none)"))
                        })?);
                    }
                }
                "search" | "q" => q.search = Some(v.to_string()),
                "sort" => q.sort = Some(SortKey::parse(v).ok_or_else(|| bad("sort", format!("cannot sort by '{v}'")))?),
                "limit" | "offset" => {
                    let n =
                        v.trim().parse::<usize>().ok().filter(|n| *n <= QUERY_NUMBER_MAX).ok_or_else(|| {
                            bad(k, format!("{k} must be a whole number from 0 to {QUERY_NUMBER_MAX}"))
                        })?;
                    if k == "limit" {
                        q.limit = Some(n);
                    } else {
                        q.offset = Some(n);
                    }
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

#[cfg(test)]
#[path = "sla_order_tests.rs"]
mod sla_order_tests;

#[cfg(test)]
mod list_query_tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ListQuery, QueryError> {
        ListQuery::from_pairs(pairs.iter().copied())
    }

    /// The WHERE clause of a query, with its text arguments in order.
    fn check(pairs: &[(&str, &str)], filter: &str, texts: &[&str]) {
        let q = parse(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e}"));
        let sql = q.to_sql(0);
        assert_eq!(sql.filter, filter, "{pairs:?}");
        let got: Vec<String> = sql
            .args
            .iter()
            .filter_map(|(_, a)| match a {
                SqlArg::Text(t) => Some(t.clone()),
                SqlArg::Int(_) => None,
            })
            .collect();
        assert_eq!(got, texts, "{pairs:?}");
    }

    #[test]
    fn assignee_none_means_unassigned_alone_or_beside_names() {
        check(&[("assignee", "none")], " WHERE assignee IS NULL", &[]);
        check(&[("assignee", "ana")], " WHERE assignee IN (:a1)", &["ana"]);
        check(&[("assignee", "ana,none")], " WHERE (assignee IN (:a1) OR assignee IS NULL)", &["ana"]);
        check(
            &[("assignee", "none"), ("assignee", "team:field")],
            " WHERE (assignee IN (:a1) OR assignee IS NULL)",
            &["team:field"],
        );
    }

    #[test]
    fn several_sla_colours_mean_any_of_them() {
        check(&[("sla", "red")], &format!(" WHERE {SLA_RED_SQL}"), &[]);
        check(&[("sla", "yellow,red")], &format!(" WHERE ({SLA_YELLOW_SQL} OR {SLA_RED_SQL})"), &[]);
        check(
            &[("sla", "red"), ("sla", "yellow"), ("sla", "red")],
            &format!(" WHERE ({SLA_YELLOW_SQL} OR {SLA_RED_SQL})"),
            &[],
        );
        check(&[("sla", "green, none")], &format!(" WHERE ({SLA_NONE_SQL} OR {SLA_GREEN_SQL})"), &[]);
    }

    #[test]
    fn filters_combine_with_and() {
        check(
            &[("status", "open,in-progress"), ("priority", "high"), ("assignee", "none"), ("sla", "yellow")],
            &format!(" WHERE status IN (:a1, :a2) AND priority IN (:a3) AND assignee IS NULL AND {SLA_YELLOW_SQL}"),
            &["open", "in-progress", "high"],
        );
    }

    #[test]
    fn only_red_and_yellow_sort_their_few_matches_by_deadline() {
        let tail = |pairs: &[(&str, &str)]| parse(pairs).map(|q| q.to_sql(0).tail).unwrap_or_default();
        assert!(tail(&[("sla", "yellow,red"), ("sort", "sla")]).contains("+ 0"));
        assert!(!tail(&[("sla", "yellow,green"), ("sort", "sla")]).contains("+ 0"));
        assert!(!tail(&[("sort", "sla")]).contains("+ 0"));
    }

    #[test]
    fn a_search_sorts_its_matches_instead_of_walking_a_time_index() {
        let tail = |pairs: &[(&str, &str)]| parse(pairs).map(|q| q.to_sql(0).tail).unwrap_or_default();
        // Subject matches rank first, then the sort.
        let ranked = |t: String, rest: &str| t.starts_with(" ORDER BY (SELECT CASE WHEN instr(") && t.ends_with(rest);
        assert!(ranked(tail(&[("search", "printer")]), "), created_at + 0 DESC, id DESC"));
        assert!(ranked(tail(&[("search", "3f2a"), ("sort", "updated")]), "), updated_at + 0 ASC, id ASC"));
        assert!(ranked(tail(&[("search", "printer"), ("sort", "subject")]), "), subject_lc ASC, id ASC"));
        // Nothing but punctuation: literal subject text or an id prefix, unranked.
        assert_eq!(tail(&[("search", "--")]), " ORDER BY created_at + 0 DESC, id DESC");
        assert_eq!(tail(&[("search", " ")]), " ORDER BY created_at DESC, id DESC");
        assert_eq!(tail(&[]), " ORDER BY created_at DESC, id DESC");
    }

    #[test]
    fn unreadable_parameters_name_their_field() {
        let field = |pairs: &[(&str, &str)]| parse(pairs).err().map(|e| e.field);
        assert_eq!(field(&[("sla", "yellow,purple")]).as_deref(), Some("sla"));
        assert_eq!(field(&[("status", "done")]).as_deref(), Some("status"));
        assert_eq!(field(&[("priority", "meh")]).as_deref(), Some("priority"));
        assert_eq!(field(&[("sort", "colour")]).as_deref(), Some("sort"));
        assert_eq!(field(&[("limit", "-1")]).as_deref(), Some("limit"));
        assert_eq!(field(&[("offset", "x")]).as_deref(), Some("offset"));
        assert_eq!(field(&[("unknown", "x")]), None);
    }

    #[test]
    fn paging_and_search_are_read() {
        let q =
            parse(&[("limit", "20"), ("offset", "40"), ("q", "printer"), ("sort", "-priority")]).unwrap_or_default();
        assert_eq!((q.limit, q.offset), (Some(20), Some(40)));
        assert_eq!(q.search.as_deref(), Some("printer"));
        assert_eq!(q.sort, Some((SortKey::Priority, true)));
    }
}
