//! Reading an import file: a JSON array or NDJSON of tickets. Every record is
//! checked here, before the node writes anything.

use serde::Deserialize;
use tickets_core::edit::NewTicket;
use tickets_core::model::{Priority, Status};

use crate::error::NodeError;

/// One import is one transaction held in memory; bound it.
pub const IMPORT_BYTES_MAX: u64 = 512 * 1024 * 1024;

/// How many bad records one error names; the rest are counted.
pub const IMPORT_ERRORS_SHOWN_MAX: usize = 20;

/// Bad records, gathered so that one run of `tickets import` names them all
/// (up to [`IMPORT_ERRORS_SHOWN_MAX`]) rather than one per attempt.
#[derive(Default)]
struct Problems {
    shown: Vec<(usize, String)>,
    more: usize,
}

impl Problems {
    fn add(&mut self, e: NodeError) {
        let (record, message) = match e {
            NodeError::Import { record, message } => (record, message),
            other => (0, other.to_string()),
        };
        if self.shown.len() < IMPORT_ERRORS_SHOWN_MAX {
            self.shown.push((record, message));
        } else {
            self.more += 1;
        }
    }

    /// One error naming every bad record shown: the first as the error's
    /// record, the others and the count of the rest in its message.
    fn into_error(self) -> Option<NodeError> {
        let mut shown = self.shown.into_iter();
        let (record, mut message) = shown.next()?;
        for (r, m) in shown {
            message.push_str(&format!("; record {r}: {m}"));
        }
        if self.more > 0 {
            message.push_str(&format!("; and {} more bad record(s)", self.more));
        }
        Some(NodeError::Import { record, message })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    subject: String,
    #[serde(default)]
    description: Option<String>,
    priority: String,
    category: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    assignee: Option<String>,
}

/// A checked record.
#[derive(Debug, Clone)]
pub struct ImportRecord {
    pub ticket: NewTicket,
    pub status: Option<Status>,
}

fn check(raw: RawRecord, record: usize) -> Result<ImportRecord, NodeError> {
    let bad = |m: String| NodeError::Import { record, message: m };
    tickets_core::view::check_subject(&raw.subject).map_err(|e| bad(e.to_string()))?;
    let priority: Priority = raw.priority.parse().map_err(|e: tickets_core::InputError| bad(e.to_string()))?;
    let category = tickets_core::model::check_name("category", &raw.category).map_err(|e| bad(e.to_string()))?;
    let status = raw.status.as_deref().map(str::parse::<Status>).transpose().map_err(|e| bad(e.to_string()))?;
    let assignee = raw
        .assignee
        .as_deref()
        .filter(|a| !a.trim().is_empty())
        .map(tickets_core::model::parse_assignee)
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    if let Some(d) = &raw.description {
        tickets_core::view::check_body("description", d).map_err(|e| bad(e.to_string()))?;
    }
    Ok(ImportRecord {
        ticket: NewTicket { subject: raw.subject, priority, category, description: raw.description, assignee },
        status,
    })
}

/// Parses a whole import file. Records are numbered from 1 (for NDJSON,
/// the line number of the record).
pub fn parse_import(text: &str) -> Result<Vec<ImportRecord>, NodeError> {
    let text = text.trim_start_matches('\u{feff}');
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(trimmed).map_err(|e| NodeError::ImportFile(format!("not a valid JSON array: {e}")))?;
        let mut problems = Problems::default();
        let mut out = Vec::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            let checked = serde_json::from_value::<RawRecord>(v)
                .map_err(|e| NodeError::Import { record: i + 1, message: e.to_string() })
                .and_then(|raw| check(raw, i + 1));
            match checked {
                Ok(r) => out.push(r),
                Err(e) => problems.add(e),
            }
        }
        match problems.into_error() {
            Some(e) => Err(e),
            None => Ok(out),
        }
    } else {
        let mut out = Vec::new();
        let mut problems = Problems::default();
        let mut records = 0usize;
        // Records are named by their line in the file as written.
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            records += 1;
            let checked = serde_json::from_str::<RawRecord>(line)
                .map_err(|e| NodeError::Import { record: i + 1, message: e.to_string() })
                .and_then(|raw| check(raw, i + 1));
            match checked {
                Ok(r) => out.push(r),
                Err(e) => problems.add(e),
            }
        }
        if let Some(e) = problems.into_error() {
            return Err(e);
        }
        if records == 0 {
            return Err(NodeError::ImportFile("the file holds no tickets".into()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_errors() {
        let arr = r#"[{"subject":"a","priority":"low","category":"x"},{"subject":"b","priority":"high","category":"y","status":"resolved","assignee":"team:ops"}]"#;
        assert_eq!(parse_import(arr).map(|r| r.len()).ok(), Some(2));
        let nd = "{\"subject\":\"a\",\"priority\":\"low\",\"category\":\"x\"}\n\n{\"subject\":\"b\",\"priority\":\"low\",\"category\":\"x\"}\n";
        assert_eq!(parse_import(nd).map(|r| r.len()).ok(), Some(2));
        let bad = "{\"subject\":\"a\",\"priority\":\"low\",\"category\":\"x\"}\n{\"subject\":\"b\",\"priority\":\"extreme\",\"category\":\"x\"}\n";
        match parse_import(bad) {
            Err(NodeError::Import { record, .. }) => assert_eq!(record, 2),
            other => panic!("expected an import error, got {other:?}"),
        }
        assert!(parse_import("").is_err());
        assert!(parse_import("[{]").is_err());
    }

    #[test]
    fn every_bad_record_is_named_up_to_the_limit() {
        let good = "{\"subject\":\"a\",\"priority\":\"low\",\"category\":\"x\"}";
        let bad = "{\"subject\":\"b\",\"priority\":\"extreme\",\"category\":\"x\"}";
        let text = [good, bad, good, bad, "not json"].join("\n");
        let e = parse_import(&text).err().map(|e| e.to_string()).unwrap_or_default();
        for named in ["record 2:", "record 4:", "record 5:"] {
            assert!(e.contains(named), "{named} missing from {e}");
        }
        let many: Vec<&str> = std::iter::repeat_n(bad, IMPORT_ERRORS_SHOWN_MAX + 7).collect();
        let e = parse_import(&many.join("\n")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(&format!("record {}:", IMPORT_ERRORS_SHOWN_MAX)), "{e}");
        assert!(!e.contains(&format!("record {}:", IMPORT_ERRORS_SHOWN_MAX + 1)), "{e}");
        assert!(e.ends_with("and 7 more bad record(s)"), "{e}");
        let arr = format!("[{good},{bad},{bad}]");
        let e = parse_import(&arr).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("record 2:") && e.contains("record 3:"), "{e}");
    }
}
