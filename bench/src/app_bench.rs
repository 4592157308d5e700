//! `--only app`: the node's app (`tickets app`) over a node holding 100 000
//! tickets (`tickets import` of a generated file), timed from outside over
//! loopback HTTP as the page calls it: the list's first page, filters, a
//! search, sorts, a deep page, opening a ticket and an edit.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::{ms, proc_kb, Config, Report, Rng, WORDS};

/// A running `tickets app --no-open --offline`.
struct AppProc {
    child: Child,
    base: String,
    /// `Bearer TOKEN`, the session the printed URL was exchanged for.
    auth: String,
    http: reqwest::blocking::Client,
}

impl AppProc {
    fn start(bin: &Path, home: &Path) -> Result<AppProc> {
        let mut child = Command::new(bin)
            .arg("--home")
            .arg(home)
            .args(["app", "--no-open", "--offline"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("start tickets app")?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line.trim().strip_prefix("Open ").context("tickets app printed no URL")?.to_string();
        let (base, _secret) = url.split_once("/?session=").context("no session in the URL")?;
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        // The printed URL works once: its page hands the session token to
        // the page, which sends it as a Bearer header from then on.
        let page = http.get(&url).send()?.text()?;
        let token = page
            .split("<meta name=\"tickets-session\" content=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .context("the app's first page handed no session token")?;
        Ok(AppProc { base: base.to_string(), auth: format!("Bearer {token}"), http, child })
    }

    /// One request; the time until the whole body arrived (ms) and its JSON.
    fn timed(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<(f64, Value)> {
        let t = Instant::now();
        let mut r =
            self.http.request(method.clone(), format!("{}{path}", self.base)).header("Authorization", &self.auth);
        if let Some(b) = body {
            r = r.header("Origin", &self.base).header("Content-Type", "application/json").body(b.to_string());
        }
        let resp = r.send()?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes()?;
        let elapsed = ms(t.elapsed());
        if status >= 300 {
            bail!("{method} {path}: {status} {}", String::from_utf8_lossy(&bytes));
        }
        Ok((elapsed, serde_json::from_slice(&bytes)?))
    }

    fn rss_mb(&self) -> f64 {
        proc_kb(self.child.id(), "VmHWM") as f64 / 1024.0
    }
}

impl Drop for AppProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An import file of `n` varied tickets (NDJSON).
fn import_file(path: &Path, n: usize) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut rng = Rng(0x5eed_0000_0000_0001);
    for i in 0..n {
        let assignee = match rng.below(4) {
            0 => Value::Null,
            1 => json!("ana"),
            2 => json!("ben"),
            _ => json!("team:field"),
        };
        let priority = ["low", "medium", "high", "urgent"][rng.below(4)];
        let category = ["hardware", "network", "billing", "accounts"][rng.below(4)];
        let status = ["open", "in-progress", "resolved", "closed"][rng.below(4)];
        let rec = json!({
            "subject": format!("{} {} #{i}", WORDS[rng.below(WORDS.len())], WORDS[rng.below(WORDS.len())]),
            "priority": priority,
            "category": category,
            "status": status,
            "assignee": assignee,
            "description": crate::words(&mut rng, 200),
        });
        writeln!(f, "{rec}")?;
    }
    f.flush()?;
    Ok(())
}

pub fn run(cfg: &Config, bin: &Path, work: &Path, report: &mut Report) -> Result<()> {
    let n = if cfg.quick { 2_000 } else { 100_000 };
    let runs = if cfg.quick { 3 } else { 30 };
    let home = work.join("app-node");
    let init = Command::new(bin).arg("--home").arg(&home).args(["init", "--agent", "ana"]).output()?;
    if !init.status.success() {
        bail!("tickets init: {}", String::from_utf8_lossy(&init.stderr));
    }
    let file = work.join("app-import.ndjson");
    import_file(&file, n)?;
    let t = Instant::now();
    let import = Command::new(bin).arg("--home").arg(&home).arg("import").arg(&file).output()?;
    if !import.status.success() {
        bail!("tickets import: {}", String::from_utf8_lossy(&import.stderr));
    }
    println!("(imported {n} tickets in {:.1}s)", t.elapsed().as_secs_f64());
    let app = AppProc::start(bin, &home)?;
    let (_, first) = app.timed(reqwest::Method::GET, "/v1/tickets?limit=50", None)?;
    let total = first["total"].as_u64().unwrap_or(0);
    if total != n as u64 {
        bail!("the app lists {total} tickets, not {n}");
    }
    let id = first["tickets"][0]["id"].as_str().context("a ticket id")?.to_string();
    let queries = [
        ("app GET /v1/tickets: first page (50, newest first)", "/v1/tickets?limit=50".to_string()),
        (
            "app GET /v1/tickets: status=open&priority=high",
            "/v1/tickets?status=open&priority=high&limit=50".to_string(),
        ),
        ("app GET /v1/tickets: assignee=none (Unassigned)", "/v1/tickets?assignee=none&limit=50".to_string()),
        ("app GET /v1/tickets: search=printer", "/v1/tickets?search=printer&limit=50".to_string()),
        ("app GET /v1/tickets: search=id prefix", format!("/v1/tickets?search={}&limit=50", &id[..6])),
        ("app GET /v1/tickets: sort=subject", "/v1/tickets?sort=subject&limit=50".to_string()),
        (
            "app GET /v1/tickets: sort=-priority, status=open",
            "/v1/tickets?sort=-priority&status=open&limit=50".to_string(),
        ),
        ("app GET /v1/tickets: page 500 (offset 25 000)", "/v1/tickets?offset=25000&limit=50".to_string()),
        ("app GET /v1/tickets: 500 per page", "/v1/tickets?limit=500".to_string()),
    ];
    for (name, path) in &queries {
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            samples.push(app.timed(reqwest::Method::GET, path, None)?.0);
        }
        report.add(name, "ms", &mut samples, None);
    }
    let mut open = Vec::with_capacity(runs);
    let mut edit = Vec::with_capacity(runs);
    for i in 0..runs {
        open.push(app.timed(reqwest::Method::GET, &format!("/v1/tickets/{}", &id[..8]), None)?.0);
        let body = json!({"text": format!("bench comment {i}")});
        edit.push(app.timed(reqwest::Method::POST, &format!("/v1/tickets/{id}/comments"), Some(&body))?.0);
    }
    report.add("app GET /v1/tickets/{id} (open a ticket)", "ms", &mut open, Some(("<=", 150.0)));
    report.add("app POST comment (edit acknowledged)", "ms", &mut edit, Some(("<=", 100.0)));
    report.single("app process peak RSS", "MiB", app.rss_mb(), Some(("<=", 200.0)));
    Ok(())
}
