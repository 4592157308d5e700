//! Tickets as a terminal table (`list`, `board`) and the lines that tell an
//! author which edits did not take effect.

use serde_json::Value;
use tickets_node::home::short_id as short;

use crate::output::{self, cell, dim, outln, paint, sla_color, table};

/// Prints tickets as a table (list and board); false when there are none.
pub fn print_tickets(rows: &[Value], now: i64) -> bool {
    if rows.is_empty() {
        outln(&dim("no tickets match"));
        return false;
    }
    let mut t = table(&["ID", "SUBJECT", "PRIORITY", "STATUS", "ASSIGNEE", "CREATED", "SLA"]);
    let mut provisional = false;
    let mut new_for_you = false;
    for r in rows {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (badge, color) = sla_badge(r, now);
        provisional |= badge.ends_with('*');
        // Someone else assigned it to this agent, who has not opened it.
        let is_new = r["new_for_you"].as_bool() == Some(true);
        new_for_you |= is_new;
        let id = if is_new { format!("• {}", short(&s("id"))) } else { short(&s("id")).to_string() };
        t.add_row(vec![
            cell(&id, None),
            cell(&s("subject"), None),
            cell(&s("priority"), priority_color(&s("priority"))),
            cell(&s("status"), None),
            cell(&s("assignee"), None),
            cell(&output::short_time(&s("created_at")), None),
            cell(&badge, color),
        ]);
    }
    outln(&t.to_string());
    if provisional {
        outln(&dim(PROVISIONAL_LEGEND));
    }
    if new_for_you {
        outln(&dim(NEW_FOR_YOU_LEGEND));
    }
    true
}

/// The line that explains the `*` after an SLA badge.
pub const PROVISIONAL_LEGEND: &str =
    "* provisional: computed on this device; the relay's figures are authoritative (run `tickets sync`)";

/// The line that explains the `•` before an id.
pub const NEW_FOR_YOU_LEGEND: &str = "• new for you: assigned to you by someone else; `tickets show ID` opens it";

pub fn priority_color(p: &str) -> Option<comfy_table::Color> {
    match p {
        "urgent" => Some(comfy_table::Color::Red),
        "high" => Some(comfy_table::Color::Yellow),
        _ => None,
    }
}

/// The SLA badge of a ticket: its colour and the nearest running deadline.
pub fn sla_badge(t: &Value, now: i64) -> (String, Option<comfy_table::Color>) {
    let sla = &t["sla"];
    let color = sla["color"].as_str().unwrap_or("none");
    if color == "none" {
        return ("-".into(), None);
    }
    let mut text = color.to_string();
    let dues: Vec<&str> = ["first_response", "resolution"].iter().filter_map(|m| sla[m]["due_at"].as_str()).collect();
    if let Some(due) = dues.iter().min() {
        text = format!("{color} · {}", output::time_left(due, now));
    } else if let Some(state) = ["resolution", "first_response"]
        .iter()
        .map(|m| sla[m]["state"].as_str().unwrap_or(""))
        .find(|s| *s == "breached" || *s == "met")
    {
        text = state.to_string();
    }
    if sla["provisional"].as_bool() == Some(true) {
        text.push('*');
    }
    (text, sla_color(color))
}

/// Tells an author which of their edits did not take effect.
pub fn print_not_applied(list: &[tickets_node::node::NotApplied], with_ticket: bool) {
    if list.is_empty() {
        return;
    }
    let n = list.len();
    outln(&paint("yellow", &format!("{n} of your edits did not take effect:")));
    for x in list {
        let ticket = if with_ticket { format!("ticket {}: ", short(&x.ticket)) } else { String::new() };
        outln(&format!("  {ticket}{}", crate::term::safe(&x.describe())));
    }
}
