//! Reading an import file: a JSON array or NDJSON of tickets. Every record is
//! checked here, before the node writes anything.

use serde::Deserialize;
use tickets_core::edit::NewTicket;
use tickets_core::model::{Priority, Status};

use crate::error::NodeError;

/// One import is one transaction held in memory; bound it.
pub const IMPORT_BYTES_MAX: u64 = 512 * 1024 * 1024;

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
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let raw: RawRecord = serde_json::from_value(v)
                    .map_err(|e| NodeError::Import { record: i + 1, message: e.to_string() })?;
                check(raw, i + 1)
            })
            .collect()
    } else {
        let mut out = Vec::new();
        // Records are named by their line in the file as written.
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let raw: RawRecord =
                serde_json::from_str(line).map_err(|e| NodeError::Import { record: i + 1, message: e.to_string() })?;
            out.push(check(raw, i + 1)?);
        }
        if out.is_empty() {
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
}
