//! Shared helpers: a node home in a temporary folder and the real `tickets`
//! binary run against it.
//!
//! Every run checks what holds for any command: no panic, and the exit code
//! contract of the CLI (0 success, 1 a user error with one `error:` line and
//! maybe one `hint:` line, 2 a usage error, never anything else). With
//! `--json`, a user error is instead one JSON object `{"error", "code",
//! "hint"?}` on stdout and nothing on stderr.

use std::path::{Path, PathBuf};
use std::sync::Once;

use serde_json::Value;
use tempfile::TempDir;

/// Builds the `tickets` binary once per test run, so the suite never runs a
/// stale binary: `cargo test -p tickets-tests` does not build other crates'
/// binaries by itself. The build uses the profile and target folder of the
/// running test executable (`target/<profile>/deps/e2e-…`).
///
/// Two things keep this cheap. First, it builds `--workspace --bins`, the
/// command `./test` runs before the tests start, so here it finds the
/// binary up to date; `-p tickets-cli` resolved other features and
/// recompiled half the dependency tree (minutes on two cores) while every
/// other test process waited on Cargo's lock. (A binary is built with other
/// dependency features than the tests whatever the selection, since dev-
/// dependencies take part only in test builds: hence the build in `./test`.)
/// Second,
/// nextest runs each test in a process of its own, and a `Once` only
/// spans one process: under nextest the processes of one run share
/// `NEXTEST_RUN_ID`, so the first one builds under a file lock and leaves
/// a stamp named for the run, and the others skip Cargo altogether.
fn ensure_built() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let exe = std::env::current_exe().expect("the test executable has a path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
        let Ok(run) = std::env::var("NEXTEST_RUN_ID") else {
            cargo_build_bins(profile_dir);
            return;
        };
        let lock = std::fs::File::create(profile_dir.join(".tickets-build.lock")).expect("create the build lock");
        lock.lock().expect("take the build lock");
        let stamp = profile_dir.join(format!(".tickets-built-{run}"));
        if stamp.exists() {
            return;
        }
        cargo_build_bins(profile_dir);
        // Earlier runs' stamps are of no further use.
        if let Ok(entries) = std::fs::read_dir(profile_dir) {
            for e in entries.flatten() {
                if e.file_name().to_str().is_some_and(|n| n.starts_with(".tickets-built-")) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        std::fs::write(&stamp, b"").expect("write the build stamp");
    });
}

/// `cargo build --workspace --bins` into the running test's target folder
/// and profile.
fn cargo_build_bins(profile_dir: &Path) {
    let target_dir = profile_dir.parent().expect("target/<profile>");
    let mut cmd = std::process::Command::new(option_env!("CARGO").unwrap_or("cargo"));
    cmd.args(["build", "--quiet", "--workspace", "--bins", "--target-dir"]).arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    // `cargo test` gives this process the test crate's CARGO_MANIFEST_DIR,
    // CARGO_PKG_* and the like. Build scripts that watch them (ring's
    // does) would see a change and rebuild half the tree, and the next
    // plain `cargo build` would rebuild it back: drop them.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let set_by_cargo_for_tests = ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_BIN_", "CARGO_CRATE_", "CARGO_PRIMARY_"]
            .iter()
            .any(|p| key.starts_with(p))
            || matches!(key, "CARGO_TARGET_TMPDIR" | "OUT_DIR" | "RUST_RECURSION_COUNT");
        if set_by_cargo_for_tests {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "building the tickets binary failed");
}

/// What a finished `tickets` process left.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// One `tickets` invocation being set up against a home.
pub struct Run {
    cmd: assert_cmd::Command,
    shown: String,
    /// Whether `--json` was asked for: errors then come as JSON on stdout.
    json: bool,
}

impl Run {
    pub fn env(mut self, key: &str, value: &str) -> Run {
        self.cmd.env(key, value);
        self.shown = format!("{key}={value} {}", self.shown);
        self
    }

    /// Gives the process this text on stdin.
    pub fn stdin(mut self, text: &str) -> Run {
        self.cmd.write_stdin(text.to_string());
        self
    }

    /// Runs the command and checks what must hold for every command.
    pub fn out(mut self) -> Out {
        let o = self.cmd.output().expect("the tickets binary runs");
        let out = Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8(o.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(o.stderr).expect("stderr is UTF-8"),
        };
        let ctx = format!("`{}`\n{out:#?}", self.shown);
        assert!(!out.stderr.contains("panicked"), "panic in {ctx}");
        assert!(matches!(out.code, 0..=2), "unexpected exit code in {ctx}");
        assert!(!out.stdout.contains('\x1b') && !out.stderr.contains('\x1b'), "colour codes despite NO_COLOR in {ctx}");
        if out.code == 1 && self.json {
            let v: Value = serde_json::from_str(&out.stdout)
                .unwrap_or_else(|e| panic!("a --json error is not JSON on stdout ({e}) in {ctx}"));
            assert!(v["error"].is_string() && v["code"].is_string(), "a --json error has error and code in {ctx}");
            assert!(out.stderr.is_empty(), "a --json error wrote to stderr too in {ctx}");
        } else if out.code == 1 {
            let lines: Vec<&str> = out.stderr.lines().collect();
            assert!(lines.first().is_some_and(|l| l.starts_with("error: ")), "no `error:` line in {ctx}");
            assert!(lines.len() <= 2, "a user error is one line (and a hint) in {ctx}");
            if let Some(h) = lines.get(1) {
                assert!(h.starts_with("hint: "), "second line is not a hint in {ctx}");
            }
        }
        if out.code == 2 {
            assert!(out.stderr.starts_with("error: "), "a usage error starts with `error:` in {ctx}");
            assert!(out.stdout.is_empty(), "usage error wrote to stdout in {ctx}");
        }
        out
    }

    /// Expects success; returns stdout.
    pub fn ok(self) -> String {
        let shown = self.shown.clone();
        let out = self.out();
        assert_eq!(out.code, 0, "`{shown}` failed:\n{}", out.stderr);
        out.stdout
    }

    /// Expects success and JSON on stdout.
    pub fn json(self) -> Value {
        let shown = self.shown.clone();
        let out = self.out();
        assert_eq!(out.code, 0, "`{shown}` failed:\n{}", out.stderr);
        out.json()
    }

    /// Expects a user error: exit 1, nothing on stdout (with `--json`,
    /// nothing but the error object).
    pub fn fails(self) -> Out {
        let shown = self.shown.clone();
        let json = self.json;
        let out = self.out();
        assert_eq!(out.code, 1, "`{shown}` should fail with exit 1: {out:#?}");
        if !json {
            assert_eq!(out.stdout, "", "`{shown}` failed but wrote to stdout");
        }
        out
    }

    /// Expects a usage error from argument parsing: exit 2.
    pub fn usage_error(self) -> Out {
        let shown = self.shown.clone();
        let out = self.out();
        assert_eq!(out.code, 2, "`{shown}` should be a usage error: {out:#?}");
        out
    }
}

/// A node home in a temporary folder (not created until `init`).
pub struct Home {
    dir: TempDir,
}

impl Home {
    /// A folder with no node in it yet.
    pub fn empty() -> Home {
        Home { dir: tempfile::tempdir().expect("a temp dir") }
    }

    /// A local-only node for agent `ana`.
    pub fn new() -> Home {
        Home::with_agent("ana")
    }

    pub fn with_agent(agent: &str) -> Home {
        let h = Home::empty();
        h.run(&["init", "--agent", agent]).ok();
        h
    }

    /// The node's data folder.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn db(&self) -> PathBuf {
        self.path().join("node.db")
    }

    /// `tickets --home HOME ARGS…`, with a clean environment for the
    /// variables the CLI reads.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut run = bare(args);
        run.cmd.current_dir(self.dir.path());
        run.cmd.arg("--home").arg(self.path()).args(args);
        run
    }

    /// Like [`Home::run`], but names the home through `TICKETS_HOME`.
    pub fn run_with_env_home(&self, args: &[&str]) -> Run {
        let mut run = bare(args);
        run.cmd.current_dir(self.dir.path());
        run.cmd.env("TICKETS_HOME", self.path()).args(args);
        run
    }

    /// Writes a file next to the home; returns its path.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).expect("write a fixture file");
        p
    }

    /// Creates a ticket; returns its full id.
    pub fn create(&self, subject: &str, priority: &str, category: &str) -> String {
        let out = self.run(&["create", "--subject", subject, "--priority", priority, "--category", category]).ok();
        let id = out.trim().to_string();
        assert!(is_uuid(&id), "create printed {out:?}, not an id");
        id
    }

    pub fn show(&self, id: &str) -> Value {
        self.run(&["show", id, "--json"]).json()
    }

    /// Every ticket, as `list --json` prints them (`--all` unless the
    /// filters give a `--limit`).
    pub fn list(&self, filters: &[&str]) -> Vec<Value> {
        let mut args = vec!["list", "--json"];
        if !filters.contains(&"--limit") {
            args.push("--all");
        }
        args.extend_from_slice(filters);
        match self.run(&args).json() {
            Value::Array(v) => v,
            other => panic!("list --json printed {other}"),
        }
    }

    /// Subjects of `list --json` with these arguments, in order.
    pub fn subjects(&self, filters: &[&str]) -> Vec<String> {
        self.list(filters).iter().map(|t| t["subject"].as_str().unwrap_or_default().to_string()).collect()
    }

    /// Imports tickets from JSON lines (NDJSON); returns how many.
    pub fn import_ndjson(&self, records: &[Value]) -> usize {
        let text: Vec<String> = records.iter().map(Value::to_string).collect();
        let path = self.file("import.ndjson", &text.join("\n"));
        let out = self.run(&["import", path.to_str().expect("utf-8 path"), "--json"]).json();
        out["imported"].as_u64().expect("imported count") as usize
    }
}

/// `tickets` with a clean environment for the variables the CLI reads; the
/// caller adds the arguments (`args` only names the run in messages).
fn bare(args: &[&str]) -> Run {
    ensure_built();
    let mut cmd = assert_cmd::Command::cargo_bin("tickets").expect("the tickets binary is built");
    cmd.env("NO_COLOR", "1").env_remove("TICKETS_HOME").env_remove("TICKETS_CLOCK_OFFSET");
    Run { cmd, shown: format!("tickets {}", args.join(" ")), json: args.contains(&"--json") }
}

/// The path of the built `tickets` binary, for tests that drive a process
/// themselves.
pub fn tickets_bin() -> PathBuf {
    ensure_built();
    assert_cmd::cargo::cargo_bin("tickets")
}

/// A canonical lower-case hyphenated UUID.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
            }
        })
}

/// Epoch milliseconds of an ISO-8601 instant in the JSON output.
pub fn ms(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("{v} is not a time"));
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}")).timestamp_millis()
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An import record.
pub fn record(subject: &str, priority: &str, category: &str) -> Value {
    serde_json::json!({"subject": subject, "priority": priority, "category": category})
}

/// The history entries of a ticket for one field.
pub fn history<'a>(t: &'a Value, field: &str) -> Vec<&'a Value> {
    t["history"].as_array().expect("history[]").iter().filter(|e| e["field"] == field).collect()
}

/// Asserts that stderr names something, case-insensitively.
#[track_caller]
pub fn assert_mentions(out: &Out, what: &str) {
    assert!(
        out.stderr.to_lowercase().contains(&what.to_lowercase()),
        "stderr should mention {what:?}:\n{}",
        out.stderr
    );
}

/// A ticket (or a list of them) without the live `sla` figures, which move
/// with time: what must stay byte for byte the same when nothing was written.
pub fn stable(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(stable).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().filter(|(k, _)| *k != "sla").map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        other => other.clone(),
    }
}
