//! The SLA order and the badge's words, table-driven: each case is a ticket
//! indexed at one instant (when it was last touched) and read at another.
//! The order runs core's own SQL ([`SLA_ORDER_SQL`]) on an in-memory SQLite
//! table with the index's columns, as both ends' stores do.

use std::collections::BTreeMap;

use crate::index::{sla_columns, ListQuery, SortKey, SqlArg, SLA_ORDER_SQL};
use crate::json::sla_label;
use crate::model::Priority::{self, High, Low, Urgent};
use crate::model::Status::{self, Open, Resolved};
use crate::sla::{self, SlaInput, SlaPolicy, SlaSettings, Targets};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
/// "Now" of every case: 2026-03-02 20:00Z.
const NOW: i64 = 1_772_481_600_000;

fn settings() -> SlaSettings {
    let t = |fr: Option<u64>, res: Option<u64>| Targets { first_response_secs: fr, resolution_secs: res };
    let targets: BTreeMap<Priority, Targets> =
        [(Urgent, t(Some(15 * 60), Some(4 * 3600))), (High, t(Some(3600), Some(8 * 3600))), (Low, t(None, None))]
            .into_iter()
            .collect();
    SlaSettings { epochs: vec![(0, SlaPolicy { targets, ..SlaPolicy::default() })], skew_ms: 0 }
}

/// A ticket created `ago` before now, answered and status-changed at
/// offsets from its creation, indexed (last touched) `touched` before now.
struct Case {
    name: &'static str,
    ago: i64,
    priority: Priority,
    response: Option<i64>,
    statuses: &'static [(i64, Status)],
    touched: i64,
    label: &'static str,
}

fn input(c: &Case) -> SlaInput {
    let created = NOW - c.ago;
    let mut status_changes = vec![(created, Open)];
    status_changes.extend(c.statuses.iter().map(|(at, s)| (created + at, *s)));
    SlaInput {
        created_at_ms: created,
        first_response_at_ms: c.response.map(|r| created + r),
        priority_changes: vec![(created, c.priority)],
        status_changes,
    }
}

/// Every case, in the SLA order expected at now.
const CASES: &[Case] = &[
    // Urgent, never answered: first response 15m after creation, 5h 45m
    // ago; someone commented (an internal note) an hour ago.
    Case {
        name: "touched 5h45m late",
        ago: 6 * HOUR,
        priority: Urgent,
        response: None,
        statuses: &[],
        touched: HOUR,
        label: "First response 5h 45m overdue",
    },
    // Resolved two hours after its 4h target: breached for good, by 2h.
    Case {
        name: "resolved 2h late",
        ago: 30 * HOUR,
        priority: Urgent,
        response: Some(5 * MIN),
        statuses: &[(6 * HOUR, Resolved)],
        touched: 20 * HOUR,
        label: "Resolution 2h overdue",
    },
    // Indexed at creation, before anything was due: 45m late now.
    Case {
        name: "untouched 45m late",
        ago: HOUR,
        priority: Urgent,
        response: None,
        statuses: &[],
        touched: HOUR,
        label: "First response 45m overdue",
    },
    // Answered; resolution due in 3m, and yellow.
    Case {
        name: "3m left",
        ago: 4 * HOUR - 3 * MIN,
        priority: Urgent,
        response: Some(MIN),
        statuses: &[],
        touched: 2 * HOUR,
        label: "Resolution 3m left",
    },
    // Not answered yet: the first response is due first (55m left of its
    // 1h target) while resolution has 7h 55m.
    Case {
        name: "55m left",
        ago: 5 * MIN,
        priority: High,
        response: None,
        statuses: &[],
        touched: 5 * MIN,
        label: "First response 55m left",
    },
    Case {
        name: "7h 5m left",
        ago: 55 * MIN,
        priority: High,
        response: Some(10 * MIN),
        statuses: &[],
        touched: 0,
        label: "Resolution 7h 5m left",
    },
    Case {
        name: "met",
        ago: 5 * HOUR,
        priority: Urgent,
        response: Some(MIN),
        statuses: &[(HOUR, Resolved)],
        touched: 3 * HOUR,
        label: "Met",
    },
    Case { name: "no SLA", ago: 50 * HOUR, priority: Low, response: None, statuses: &[], touched: 0, label: "No SLA" },
];

#[test]
fn badges_name_the_deciding_clock_and_how_late_or_soon() {
    let settings = settings();
    for c in CASES {
        let report = sla::compute(&input(c), &settings, NOW);
        assert_eq!(sla_label(&report, NOW), c.label, "{}", c.name);
    }
}

fn sorted(query: &[(&str, &str)]) -> Vec<String> {
    let db = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
    db.execute_batch(
        "CREATE TABLE tickets (id TEXT, sla_static INTEGER, fr_warn INTEGER, fr_due INTEGER,
            res_warn INTEGER, res_due INTEGER, sla_late INTEGER)",
    )
    .expect("table");
    let settings = settings();
    for c in CASES {
        // Indexed when last touched, not now: what was due then is overdue now.
        let cols = sla_columns(&input(c), &settings, NOW - c.touched);
        db.execute(
            "INSERT INTO tickets VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                c.name,
                cols.fixed_rank,
                cols.fr_warn,
                cols.fr_due,
                cols.res_warn,
                cols.res_due,
                cols.late_ms
            ],
        )
        .expect("insert");
    }
    let q = ListQuery::from_pairs(query.iter().copied()).expect("query");
    let sql = q.to_sql(NOW);
    let text = format!("SELECT id FROM tickets{}{}", sql.filter, sql.tail);
    let args: Vec<(&str, rusqlite::types::Value)> = sql
        .args
        .iter()
        .filter(|(n, _)| text.contains(n.as_str()))
        .map(|(n, a)| {
            let v = match a {
                SqlArg::Int(i) => rusqlite::types::Value::Integer(*i),
                SqlArg::Text(t) => rusqlite::types::Value::Text(t.clone()),
            };
            (n.as_str(), v)
        })
        .collect();
    let params: Vec<(&str, &dyn rusqlite::ToSql)> = args.iter().map(|(n, v)| (*n, v as &dyn rusqlite::ToSql)).collect();
    let mut st = db.prepare(&text).expect("prepare");
    let rows = st.query_map(params.as_slice(), |r| r.get::<_, String>(0)).expect("query");
    rows.collect::<Result<Vec<_>, _>>().expect("rows")
}

#[test]
fn sla_order_is_breached_most_overdue_first_then_time_left_then_met_then_none() {
    let expected: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    assert_eq!(sorted(&[("sort", "sla")]), expected);
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(sorted(&[("sort", "-sla")]), reversed);
}

#[test]
fn red_and_yellow_filters_keep_the_sla_order() {
    assert_eq!(
        sorted(&[("sla", "red"), ("sort", "sla")]),
        ["touched 5h45m late", "resolved 2h late", "untouched 45m late"]
    );
    assert_eq!(
        sorted(&[("sla", "yellow,red"), ("sort", "sla")]),
        ["touched 5h45m late", "resolved 2h late", "untouched 45m late", "3m left"]
    );
}

#[test]
fn a_breached_running_clock_keeps_its_due_instant_when_indexed_late() {
    let settings = settings();
    let c = &CASES[0];
    let cols = sla_columns(&input(c), &settings, NOW - c.touched);
    assert_eq!(cols.fr_due, Some(NOW - c.ago + 15 * MIN));
    assert_eq!(cols.fixed_rank, 3);
    assert_eq!(SortKey::parse("sla"), Some((SortKey::Sla, false)));
    assert!(SLA_ORDER_SQL.contains(":now"));
}
