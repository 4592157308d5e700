//! `tickets export`: downloads an authoritative export from the relay and
//! writes it atomically (a cut connection leaves no half file posing as a
//! complete one).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use tickets_node::sync::{Remote, SyncError};

use crate::node_cmd::open;
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
    #[arg(long)]
    pub status: Vec<String>,
    #[arg(long)]
    pub category: Vec<String>,
    /// Where to write: a file (json, ndjson) or a folder (csv).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    #[arg(long)]
    pub json: bool,
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

fn partial_name(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "export".into());
    target.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

fn download(remote: &Remote, query: &[(String, String)], dest: &Path, label: &str, show: bool) -> Result<u64> {
    let (mut resp, total) = remote.get_stream("/v1/export", query)?;
    let bar = show.then(|| {
        let b = ProgressBar::new(total.unwrap_or(0));
        b.set_style(
            ProgressStyle::with_template(&format!("{label:<13} {{bar:40}} {{pos}}/{{len}} rows ({{per_sec}})"))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let file =
        std::fs::File::create(dest).map_err(|e| user_error(format!("cannot write {}: {e}", dest.display()), None))?;
    let mut w = Counting { inner: std::io::BufWriter::new(file), lines: 0, bar };
    let copied = resp.copy_to(&mut w);
    let flushed = w.flush();
    if let Some(b) = &w.bar {
        b.finish_and_clear();
    }
    if let Err(e) = copied {
        return Err(SyncError::Transport { url: "relay".into(), message: format!("export cut off: {e}") }.into());
    }
    flushed.map_err(|e| user_error(format!("cannot write {}: {e}", dest.display()), None))?;
    Ok(total.unwrap_or(0))
}

pub fn run(home: &Path, a: ExportArgs) -> Result<()> {
    let format = a.format.trim().to_ascii_lowercase();
    if !["csv", "json", "ndjson"].contains(&format.as_str()) {
        return Err(user_error(format!("unknown format '{}'", a.format), Some("use csv, json or ndjson")));
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
        std::fs::create_dir_all(&tmp).map_err(|e| user_error(format!("cannot create {}: {e}", tmp.display()), None))?;
        let result = (|| -> Result<u64> {
            let mut n = 0;
            for table in ["tickets", "comments", "history"] {
                let mut q = query.clone();
                q.push(("table".into(), table.into()));
                let t = download(&remote, &q, &tmp.join(format!("{table}.csv")), &format!("{table}.csv"), show)?;
                if table == "tickets" {
                    n = t;
                }
            }
            Ok(n)
        })();
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
