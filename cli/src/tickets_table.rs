//! Tickets as a terminal table (`list`, `board`) and the lines that tell an
//! author which edits did not take effect.

use std::io::IsTerminal;

use serde_json::Value;
use tickets_node::home::short_id as short;

use crate::output::{self, bold, dim, outln, paint};

/// The narrowest a subject is squeezed to before the line grows past the
/// terminal's width.
const SUBJECT_CHARS_MIN: usize = 20;
/// The widest an assignee column gets (longer names end with `…`).
const ASSIGNEE_CHARS_MAX: usize = 16;

/// The width tables fit in: `COLUMNS` when set, else the terminal's;
/// `None` (no limit) when stdout is not a terminal.
fn line_width() -> Option<usize> {
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|c| *c > 0) {
        return Some(c);
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    comfy_table::Table::new().width().map(usize::from)
}

/// One line of text: line breaks and tabs become spaces, so a row never
/// breaks; every other character that could steer a terminal (an escape,
/// a bidi override) is shown as text ([`crate::term::safe`]).
fn one_line(s: &str) -> String {
    let flat: String = s.chars().map(|c| if matches!(c, '\n' | '\r' | '\t') { ' ' } else { c }).collect();
    crate::term::safe(&flat).into_owned()
}

/// `s` cut to `max` characters, ending with `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `s` padded with spaces to `width` characters.
fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

/// Prints tickets as a table (list and board), one line per ticket, the
/// subject cut with `…` to fit the terminal; false when there are none.
pub fn print_tickets(rows: &[Value], now: i64) -> bool {
    if rows.is_empty() {
        outln(&dim("no tickets match"));
        return false;
    }
    const HEADER: [&str; 7] = ["ID", "SUBJECT", "PRIORITY", "STATUS", "ASSIGNEE", "CREATED", "SLA"];
    let mut provisional = false;
    let mut new_for_you = false;
    let cells: Vec<([String; 7], &str)> = rows
        .iter()
        .map(|r| {
            let s = |k: &str| one_line(r.get(k).and_then(Value::as_str).unwrap_or(""));
            let (badge, color) = sla_badge(r, now);
            provisional |= badge.ends_with('*');
            let assignee = truncate(&s("assignee"), ASSIGNEE_CHARS_MAX);
            // Someone else assigned it to this agent, who has not opened it.
            let is_new = r["new_for_you"].as_bool() == Some(true);
            new_for_you |= is_new;
            let id = if is_new { format!("• {}", short(&s("id"))) } else { short(&s("id")).to_string() };
            let row = [
                id,
                s("subject"),
                s("priority"),
                s("status"),
                if assignee.is_empty() { "-".into() } else { assignee },
                output::short_time(&s("created_at")),
                badge,
            ];
            (row, color)
        })
        .collect();
    let mut widths: [usize; 7] = HEADER.map(str::len);
    for (row, _) in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Where the line is too narrow for every column and a readable
    // subject, the creation time goes first.
    let mut shown = [true; 7];
    if let Some(total) = line_width() {
        let others = |shown: &[bool; 7]| -> usize {
            let cols = (0..7).filter(|i| *i != 1 && shown[*i]);
            cols.clone().map(|i| widths[i]).sum::<usize>() + 2 * cols.count()
        };
        if others(&shown) + SUBJECT_CHARS_MIN > total {
            shown[5] = false;
        }
        widths[1] = widths[1].min(total.saturating_sub(others(&shown)).max(SUBJECT_CHARS_MIN));
    }
    let line = |row: &[String; 7], color: &str| -> String {
        let mut parts: Vec<String> = Vec::with_capacity(7);
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if !shown[i] {
                continue;
            }
            let text = if i == 1 { truncate(c, w) } else { c.clone() };
            // The last column is not padded: no trailing spaces.
            let text = if i + 1 == row.len() { text } else { pad(&text, w) };
            parts.push(match i {
                2 => paint(&row[2], &text),
                6 => paint(color, &text),
                _ => text,
            });
        }
        parts.join("  ")
    };
    outln(&bold(&line(&HEADER.map(String::from), "")));
    for (row, color) in &cells {
        outln(&line(row, color));
    }
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

/// The SLA badge of a ticket: the words that name the clock deciding its
/// colour and how late or how soon (`sla.label`: `First response 23m
/// overdue`, `Resolution 3h 5m left`, `Met`, `No SLA`), and that colour.
pub fn sla_badge(t: &Value, _now: i64) -> (String, &'static str) {
    let sla = &t["sla"];
    let color = match sla["color"].as_str().unwrap_or("none") {
        "red" => "red",
        "yellow" => "yellow",
        "green" => "green",
        "met" => "met",
        _ => "none",
    };
    let mut text = match sla["label"].as_str() {
        Some(l) if !l.is_empty() => one_line(l),
        // An older relay sends no label: its colour alone.
        _ if color == "none" => "No SLA".to_string(),
        _ => color.to_string(),
    };
    if sla["provisional"].as_bool() == Some(true) && color != "none" {
        text.push('*');
    }
    (text, color)
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
