//! `tickets export`: downloads an authoritative export from the relay and
//! writes it atomically (a cut connection leaves no half file posing as a
//! complete one).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use tickets_node::home::{create_private_dir, create_private_file, open};
use tickets_node::sync::{Remote, SyncError};

use crate::output::{self, outln};
use crate::user_error;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// csv (a folder of tickets.csv, comments.csv, history.csv), json or ndjson.
    #[arg(long)]
    pub format: String,
    /// First creation date included (YYYY-MM-DD, UTC).
    #[arg(long)]
    pub from: Option<String>,
    /// Last creation date included (YYYY-MM-DD, UTC).
    #[arg(long)]
    pub to: Option<String>,
    /// Only this status: open, in-progress, resolved or closed (repeatable).
    #[arg(long)]
    pub status: Vec<String>,
    /// Only this category (repeatable).
    #[arg(long)]
    pub category: Vec<String>,
    /// Where to write: a file (json, ndjson) or a folder (csv).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

/// Where a streamed export goes: a writer with an optional progress bar and
/// a last check once the body has ended.
trait Sink: Write {
    fn bar(&self) -> Option<&ProgressBar>;
    /// Whether the body ended cleanly (no half frame left over).
    fn complete(&self) -> bool {
        true
    }
}

impl<W: Write> Sink for Counting<W> {
    fn bar(&self) -> Option<&ProgressBar> {
        self.bar.as_ref()
    }
}

impl Sink for Demux {
    fn bar(&self) -> Option<&ProgressBar> {
        self.bar.as_ref()
    }

    fn complete(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Streams one export response into a sink built once the total is known.
fn stream(
    remote: &Remote,
    query: &[(String, String)],
    template: &str,
    show: bool,
    sink: impl FnOnce(Option<ProgressBar>) -> Result<Box<dyn Sink>>,
) -> Result<u64> {
    let (mut resp, total) = remote.get_stream("/v1/export", query).map_err(|e| {
        crate::sync_cmd::with_hint(e, "check that the relay is running and reachable, then run the export again")
    })?;
    let bar = show.then(|| {
        let b = ProgressBar::new(total.unwrap_or(0));
        b.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
        b
    });
    let mut w = sink(bar)?;
    let copied = resp.copy_to(&mut w);
    let flushed = w.flush();
    if let Some(b) = w.bar() {
        b.finish_and_clear();
    }
    if let Err(e) = copied {
        return Err(SyncError::Transport { url: "relay".into(), message: format!("export cut off: {e}") }.into());
    }
    if !w.complete() {
        return Err(SyncError::Transport { url: "relay".into(), message: "export cut off mid-frame".into() }.into());
    }
    flushed.map_err(|e| user_error(format!("cannot write the export: {e}"), None))?;
    Ok(total.unwrap_or(0))
}

/// Counts rows as they stream past, for the progress bar.
struct Counting<W> {
    inner: W,
    lines: u64,
    bar: Option<ProgressBar>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        if let Some(b) = &self.bar {
            b.set_position(self.lines);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Splits a CSV bundle (frames of: table byte, u32 big-endian length,
/// bytes) into the three files as it streams in.
struct Demux {
    files: Vec<std::io::BufWriter<std::fs::File>>,
    pending: Vec<u8>,
    tickets_rows: u64,
    bar: Option<ProgressBar>,
}

impl Write for Demux {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let mut at = 0;
        while self.pending.len() - at >= 5 {
            let table = self.pending[at] as usize;
            let len = u32::from_be_bytes([
                self.pending[at + 1],
                self.pending[at + 2],
                self.pending[at + 3],
                self.pending[at + 4],
            ]) as usize;
            if self.pending.len() - at - 5 < len {
                break;
            }
            let payload = &self.pending[at + 5..at + 5 + len];
            let file = self
                .files
                .get_mut(table)
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "unknown table in the export"))?;
            file.write_all(payload)?;
            if table == 0 {
                self.tickets_rows += 1;
                if let Some(b) = &self.bar {
                    b.set_position(self.tickets_rows.saturating_sub(1));
                }
            }
            at += 5 + len;
        }
        self.pending.drain(..at);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        for f in &mut self.files {
            f.flush()?;
        }
        Ok(())
    }
}

/// Downloads the three CSV tables of one snapshot into `dir`.
fn download_csv(remote: &Remote, query: &[(String, String)], dir: &Path, show: bool) -> Result<u64> {
    stream(remote, query, "exporting csv {bar:40} {pos}/{len} tickets ({per_sec})", show, |bar| {
        let mut files = Vec::new();
        for name in ["tickets.csv", "comments.csv", "history.csv"] {
            let p = dir.join(name);
            let f =
                create_private_file(&p).map_err(|e| user_error(format!("cannot write {}: {e}", p.display()), None))?;
            files.push(std::io::BufWriter::new(f));
        }
        Ok(Box::new(Demux { files, pending: Vec::new(), tickets_rows: 0, bar }))
    })
}

fn partial_name(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "export".into());
    target.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

fn download(remote: &Remote, query: &[(String, String)], dest: &Path, label: &str, show: bool) -> Result<u64> {
    let template = format!("{label:<13} {{bar:40}} {{pos}}/{{len}} rows ({{per_sec}})");
    stream(remote, query, &template, show, |bar| {
        // Exports hold tickets: private whatever the umask.
        let file =
            create_private_file(dest).map_err(|e| user_error(format!("cannot write {}: {e}", dest.display()), None))?;
        Ok(Box::new(Counting { inner: std::io::BufWriter::new(file), lines: 0, bar }))
    })
}

pub fn run(home: &Path, a: ExportArgs) -> Result<()> {
    let format = a.format.trim().to_ascii_lowercase();
    if !["csv", "json", "ndjson"].contains(&format.as_str()) {
        return Err(user_error(format!("unknown format '{}'", a.format), Some("use csv, json or ndjson")));
    }
    // An empty range is a mistake, not an export of nothing: say so before
    // asking the relay (which checks the dates' form itself).
    let date =
        |d: &Option<String>| d.as_deref().and_then(|d| chrono::NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").ok());
    if let (Some(from), Some(to)) = (date(&a.from), date(&a.to)) {
        if from > to {
            return Err(user_error(
                format!("--from {from} is after --to {to}: no date is in that range"),
                Some("swap them; both dates are included"),
            ));
        }
    }
    let mut node = open(home)?;
    let Some(remote) = node.remote()? else { return Err(SyncError::NotRegistered.into()) };
    let mut query: Vec<(String, String)> = vec![("format".into(), format.clone())];
    for (k, v) in [("from", &a.from), ("to", &a.to)] {
        if let Some(v) = v {
            query.push((k.into(), v.clone()));
        }
    }
    for s in &a.status {
        query.push(("status".into(), s.clone()));
    }
    for c in &a.category {
        query.push(("category".into(), c.clone()));
    }
    let show = std::io::stderr().is_terminal() && !a.json;
    let out = &a.output;
    let tickets;
    if format == "csv" {
        if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(true) {
            return Err(user_error(
                format!("{} already exists and is not an empty folder", out.display()),
                Some("choose a new folder for a CSV export"),
            ));
        }
        let tmp = partial_name(out);
        // The folder becomes the export: private whatever the umask.
        create_private_dir(&tmp).map_err(|e| user_error(format!("cannot create {}: {e}", tmp.display()), None))?;
        // One request: the three files come from one snapshot of the relay.
        let mut q = query.clone();
        if let Some(f) = q.iter_mut().find(|(k, _)| k == "format") {
            f.1 = "csv-bundle".into();
        }
        let result = download_csv(&remote, &q, &tmp, show);
        match result {
            Ok(n) => {
                if out.exists() {
                    let _ = std::fs::remove_dir(out);
                }
                std::fs::rename(&tmp, out)
                    .map_err(|e| user_error(format!("cannot move the export to {}: {e}", out.display()), None))?;
                tickets = n;
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        }
    } else {
        let tmp = partial_name(out);
        match download(&remote, &query, &tmp, &format, show) {
            Ok(n) => {
                std::fs::rename(&tmp, out)
                    .map_err(|e| user_error(format!("cannot move the export to {}: {e}", out.display()), None))?;
                tickets = n;
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        }
    }
    if a.json {
        output::json(&serde_json::json!({"format": format, "path": out, "tickets": tickets}));
    } else {
        outln(&format!("exported {tickets} tickets as {format} to {}", out.display()));
    }
    Ok(())
}
