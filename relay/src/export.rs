//! `GET /v1/export`: streams tickets as JSON, NDJSON or one CSV table.
//!
//! Rows leave as they are read: a blocking producer reads the index in pages
//! of [`EXPORT_PAGE_ROWS`] (no Automerge document is loaded: the relay
//! materialized every ticket at sync time) and sends encoded chunks through a
//! bounded channel, so memory stays flat however many tickets there are, and
//! a client that goes away stops the producer.

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use tickets_core::export::{rows, write_csv, CsvTable};

use crate::http::{authenticate, AppError, AppState};
use crate::store::ExportFilter;
use tickets_core::protocol::ErrorCode;

/// Tickets read per page.
pub const EXPORT_PAGE_ROWS: usize = 500;
/// Encoded chunks buffered between the reader and the socket.
pub const EXPORT_CHANNEL_CHUNKS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Ndjson,
    Csv(CsvTable),
    /// All three CSV tables from one snapshot in one response, as frames:
    /// one byte naming the table (0 tickets, 1 comments, 2 history), four
    /// bytes of big-endian length, then that many bytes of CSV.
    CsvBundle,
}

const BUNDLE_TABLES: [CsvTable; 3] = [CsvTable::Tickets, CsvTable::Comments, CsvTable::History];

fn frame(out: &mut Vec<u8>, table: usize, payload: &[u8]) {
    if payload.is_empty() {
        return;
    }
    out.push(table as u8);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

fn parse_date(s: &str, what: &str) -> Result<NaiveDate, AppError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        AppError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, format!("{what} must be a date as YYYY-MM-DD"))
    })
}

fn day_start_ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis()).unwrap_or(0)
}

fn parse(query: Option<&str>, notes: bool) -> Result<(Format, ExportFilter), AppError> {
    let bad = |m: String| AppError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, m);
    let mut format = None;
    let mut table = CsvTable::Tickets;
    let mut f = ExportFilter { from_ms: i64::MIN, to_ms: i64::MAX, statuses: vec![], categories: vec![], notes };
    crate::http::query_text(query)?;
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "format" => format = Some(v.to_string()),
            "table" => {
                table = CsvTable::parse(&v)
                    .ok_or_else(|| bad(format!("unknown table '{v}' (tickets, comments or history)")))?
            }
            "from" => f.from_ms = day_start_ms(parse_date(&v, "from")?),
            "to" => {
                let d = parse_date(&v, "to")?;
                f.to_ms = d.succ_opt().map(day_start_ms).unwrap_or(i64::MAX);
            }
            "status" => {
                for s in v.split(',').filter(|s| !s.trim().is_empty()) {
                    let st: tickets_core::model::Status =
                        s.parse().map_err(|e: tickets_core::InputError| bad(e.to_string()))?;
                    f.statuses.push(st.as_str().to_string());
                }
            }
            "category" => f.categories.extend(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from)),
            _ => {}
        }
    }
    let format = match format.as_deref() {
        Some("json") => Format::Json,
        Some("ndjson") => Format::Ndjson,
        Some("csv") => Format::Csv(table),
        Some("csv-bundle") => Format::CsvBundle,
        Some(other) => return Err(bad(format!("unknown format '{other}' (csv, json or ndjson)"))),
        None => return Err(bad("format is required (csv, json or ndjson)".into())),
    };
    if f.from_ms > f.to_ms {
        return Err(bad("from is after to".into()));
    }
    Ok((format, f))
}

pub async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let caller = authenticate(&state, &headers).await?;
    if !caller.agent.is_lead() {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!("only leads and admins export; {} is an {}", caller.agent.name, caller.agent.role),
        ));
    }
    let (format, filter) = parse(query.as_deref(), caller.agent.may_read_notes())?;
    let db = state.db.clone();
    let f2 = filter.clone();
    let total =
        tokio::task::spawn_blocking(move || db.with(|c| c.export_count(&f2))).await.map_err(AppError::internal)??;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(EXPORT_CHANNEL_CHUNKS);
    let db = state.db.clone();
    tokio::task::spawn_blocking(move || {
        let send = |b: Vec<u8>| tx.blocking_send(Ok(Bytes::from(b))).is_ok();
        let result = (|| -> Result<(), crate::store::StoreError> {
            let mut conn = db.conn()?;
            // An export reads every page once: a big cache would only grow
            // the relay's memory.
            if let Some(c) = conn.sqlite() {
                c.use_small_cache()?;
            }
            // One snapshot for the whole export, however long it streams.
            conn.begin_read()?;
            let settings = conn.sla_settings()?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            let mut first = true;
            let mut head = Vec::new();
            match format {
                Format::Json => head.extend_from_slice(b"["),
                Format::Csv(t) => write_csv(&mut head, &[t.header().iter().map(|h| h.to_string()).collect()]),
                Format::CsvBundle => {
                    for (i, t) in BUNDLE_TABLES.iter().enumerate() {
                        let mut h = Vec::new();
                        write_csv(&mut h, &[t.header().iter().map(|h| h.to_string()).collect()]);
                        frame(&mut head, i, &h);
                    }
                }
                Format::Ndjson => {}
            }
            if !send(head) {
                return Ok(());
            }
            let mut after = String::new();
            loop {
                let mut chunk = Vec::with_capacity(EXPORT_PAGE_ROWS * 2048);
                let count = match format {
                    // JSON and NDJSON splice stored text: no parse per ticket.
                    Format::Json | Format::Ndjson => {
                        let page =
                            crate::board::export_page_text(&*conn, &filter, &after, EXPORT_PAGE_ROWS, now, &settings)?;
                        let Some((last, _)) = page.last() else { break };
                        after = last.clone();
                        for (_, text) in &page {
                            if format == Format::Json {
                                if !first {
                                    chunk.push(b',');
                                }
                                chunk.push(b'\n');
                                chunk.extend_from_slice(text.as_bytes());
                            } else {
                                chunk.extend_from_slice(text.as_bytes());
                                chunk.push(b'\n');
                            }
                            first = false;
                        }
                        page.len()
                    }
                    Format::Csv(_) | Format::CsvBundle => {
                        let page =
                            crate::board::export_page(&*conn, &filter, &after, EXPORT_PAGE_ROWS, now, &settings)?;
                        let Some(last) = page.last() else { break };
                        after = last["id"].as_str().unwrap_or_default().to_string();
                        for t in &page {
                            if let Format::Csv(table) = format {
                                write_csv(&mut chunk, &rows(table, t));
                            } else {
                                for (i, table) in BUNDLE_TABLES.iter().enumerate() {
                                    let mut part = Vec::new();
                                    write_csv(&mut part, &rows(*table, t));
                                    frame(&mut chunk, i, &part);
                                }
                            }
                        }
                        page.len()
                    }
                };
                if !send(chunk) {
                    return Ok(());
                }
                if count < EXPORT_PAGE_ROWS {
                    break;
                }
            }
            if format == Format::Json {
                send(b"\n]\n".to_vec());
            }
            conn.end_read()?;
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!(error = %e, "export failed");
            // The stream ends with an error: the client sees a cut body and
            // discards its partial file.
            let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let content_type = match format {
        Format::Json => "application/json",
        Format::Ndjson => "application/x-ndjson",
        Format::Csv(_) => "text/csv; charset=utf-8",
        Format::CsvBundle => "application/octet-stream",
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::HeaderName::from_static("x-total-count"), total.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
