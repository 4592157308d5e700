//! Export records: how a ticket object becomes rows of `tickets.csv`,
//! `comments.csv` and `history.csv` (SPEC §4). Pure: the relay streams what
//! these functions write.

use serde_json::Value;

/// Which CSV file of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvTable {
    Tickets,
    Comments,
    History,
}

impl CsvTable {
    pub fn parse(s: &str) -> Option<CsvTable> {
        match s {
            "tickets" => Some(CsvTable::Tickets),
            "comments" => Some(CsvTable::Comments),
            "history" => Some(CsvTable::History),
            _ => None,
        }
    }

    pub fn file_name(self) -> &'static str {
        match self {
            CsvTable::Tickets => "tickets.csv",
            CsvTable::Comments => "comments.csv",
            CsvTable::History => "history.csv",
        }
    }

    pub fn header(self) -> &'static [&'static str] {
        match self {
            CsvTable::Tickets => &TICKET_COLUMNS,
            CsvTable::Comments => &["ticket_id", "kind", "author", "at", "body"],
            CsvTable::History => &["ticket_id", "at", "by", "field", "from", "to", "outcome", "note"],
        }
    }
}

const TICKET_COLUMNS: [&str; 30] = [
    "id",
    "subject",
    "description",
    "priority",
    "category",
    "status",
    "assignee",
    "created_at",
    "created_by",
    "updated_at",
    "resolved_at",
    "closed_at",
    "conversation_id",
    "comments",
    "sla_color",
    "first_response_state",
    "first_response_target_secs",
    "first_response_due_at",
    "first_response_at",
    "first_response_breached_at",
    "first_response_overrun_secs",
    "first_response_elapsed_secs",
    "resolution_state",
    "resolution_target_secs",
    "resolution_due_at",
    "resolution_stopped_at",
    "resolution_breached_at",
    "resolution_overrun_secs",
    "resolution_elapsed_secs",
    "sla_computed_at",
];

/// A cell as text, neutralized against spreadsheet formula injection: text
/// that a spreadsheet would run as a formula gets a leading apostrophe.
pub fn cell(v: &Value) -> String {
    let s = match v {
        Value::Null => return String::new(),
        Value::String(s) => s.clone(),
        other => return other.to_string(),
    };
    neutralize(s)
}

pub fn neutralize(s: String) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s,
    }
}

/// `resolved_at` or `closed_at` as the ticket object carries it; an object
/// stored before it carried them (not rewritten since) gets it from its
/// history, by the same rule (the last applied status edit to that status).
fn status_time(t: &Value, key: &str, to: &str) -> Value {
    if let Some(v) = t.get(key) {
        return v.clone();
    }
    t["history"]
        .as_array()
        .and_then(|h| {
            h.iter()
                .rev()
                .find(|e| e["field"] == "status" && e["to"] == to && e["outcome"] == "applied")
                .map(|e| e["at"].clone())
        })
        .unwrap_or(Value::Null)
}

/// The rows a ticket object contributes to a table.
pub fn rows(table: CsvTable, t: &Value) -> Vec<Vec<String>> {
    let id = cell(&t["id"]);
    match table {
        CsvTable::Tickets => {
            let fr = &t["sla"]["first_response"];
            let res = &t["sla"]["resolution"];
            let values = [
                t["id"].clone(),
                t["subject"].clone(),
                t["description"].clone(),
                t["priority"].clone(),
                t["category"].clone(),
                t["status"].clone(),
                t["assignee"].clone(),
                t["created_at"].clone(),
                t["created_by"].clone(),
                t["updated_at"].clone(),
                status_time(t, "resolved_at", "resolved"),
                status_time(t, "closed_at", "closed"),
                t["conversation_id"].clone(),
                Value::from(t["comments"].as_array().map_or(0, Vec::len)),
                t["sla"]["color"].clone(),
                fr["state"].clone(),
                fr["target_secs"].clone(),
                fr["due_at"].clone(),
                fr["stopped_at"].clone(),
                fr["breached_at"].clone(),
                fr["overrun_secs"].clone(),
                fr["elapsed_secs"].clone(),
                res["state"].clone(),
                res["target_secs"].clone(),
                res["due_at"].clone(),
                res["stopped_at"].clone(),
                res["breached_at"].clone(),
                res["overrun_secs"].clone(),
                res["elapsed_secs"].clone(),
                t["sla"]["computed_at"].clone(),
            ];
            vec![values.iter().map(cell).collect()]
        }
        CsvTable::Comments => {
            let mut out = Vec::new();
            for (key, kind) in [("comments", "comment"), ("internal_notes", "internal_note")] {
                for c in t[key].as_array().into_iter().flatten() {
                    out.push(vec![id.clone(), kind.to_string(), cell(&c["author"]), cell(&c["at"]), cell(&c["body"])]);
                }
            }
            out
        }
        CsvTable::History => t["history"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                vec![
                    id.clone(),
                    cell(&h["at"]),
                    cell(&h["by"]),
                    cell(&h["field"]),
                    cell(&h["from"]),
                    cell(&h["to"]),
                    cell(&h["outcome"]),
                    cell(&h["note"]),
                ]
            })
            .collect(),
    }
}

/// Writes rows as RFC 4180 CSV.
pub fn write_csv(out: &mut Vec<u8>, rows: &[Vec<String>]) {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(out);
    for r in rows {
        // Writing to memory cannot fail.
        let _ = w.write_record(r);
    }
    let _ = w.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralizes_formulas_and_quotes() {
        assert_eq!(cell(&Value::from("=SUM(A1)")), "'=SUM(A1)");
        assert_eq!(cell(&Value::from("@cmd")), "'@cmd");
        assert_eq!(cell(&Value::from("plain")), "plain");
        assert_eq!(cell(&Value::Null), "");
        assert_eq!(cell(&Value::from(42)), "42");
        let mut out = Vec::new();
        write_csv(&mut out, &[vec!["a,b".into(), "say \"hi\"".into(), "two\nlines".into()]]);
        assert_eq!(String::from_utf8_lossy(&out), "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n");
    }
}
