//! `tickets app --no-open` as a child process, and the tools the browser
//! scripts need (Node.js, playwright-core, axe-core, Chromium).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{tickets_bin, Home};

/// How long `tickets app` may take to print its URL.
const APP_START: Duration = Duration::from_secs(30);

pub const SETUP_HINT: &str =
    "run `.ci/run` once, or `cd tests/browser && npm ci` (and `apt-get install chromium nodejs npm`)";

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate is in the workspace").to_path_buf()
}

/// Fails, never skips, when the browser tests cannot run here; returns
/// the Chromium to use.
pub fn check_browser_tools(browser_dir: &Path) -> String {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "the browser tests need Node.js (`node` on PATH): {SETUP_HINT}"
    );
    for package in ["playwright-core", "axe-core"] {
        assert!(
            browser_dir.join("node_modules").join(package).is_dir(),
            "{} has no node_modules/{package}: {SETUP_HINT}",
            browser_dir.display()
        );
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "no Chromium at {chromium}: {SETUP_HINT}");
    chromium
}

/// A running `tickets app --no-open` on a node; stopped (SIGTERM, then
/// kill) when dropped.
pub struct App {
    child: Option<Child>,
    /// The URL it printed, with its session secret.
    pub url: String,
    log: Arc<Mutex<String>>,
}

impl App {
    pub fn start(home: &Home) -> App {
        let mut child = Command::new(tickets_bin())
            .arg("--home")
            .arg(home.path())
            .args(["app", "--no-open"])
            .env("NO_COLOR", "1")
            .env_remove("TICKETS_HOME")
            .env_remove("TICKETS_CLOCK_OFFSET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn `tickets app`");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (log1, log2) = (log.clone(), log.clone());
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                    if let Some(t) = tx.take() {
                        let _ = t.send(url.to_string());
                    }
                }
                push(&log1, &line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                push(&log2, &line);
            }
        });
        let url = match rx.recv_timeout(APP_START) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`tickets app --no-open` printed no URL within {APP_START:?}:\n{}", text(&log));
            }
        };
        assert!(url.contains("?session="), "the app's URL carries no session secret: {url}");
        App { child: Some(child), url, log }
    }

    pub fn log(&self) -> String {
        text(&self.log)
    }

    /// SIGTERM, and the exit within a few seconds.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        if !std::thread::panicking() {
            panic!("`tickets app` did not stop within 10 s of SIGTERM:\n{}", self.log());
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop();
        if !std::thread::panicking() {
            let log = self.log();
            assert!(!log.contains("panicked"), "`tickets app` panicked:\n{log}");
        }
    }
}

fn push(log: &Arc<Mutex<String>>, line: &str) {
    if let Ok(mut l) = log.lock() {
        l.push_str(line);
        l.push('\n');
    }
}

fn text(log: &Arc<Mutex<String>>) -> String {
    log.lock().map(|l| l.clone()).unwrap_or_default()
}

/// Kills process `pid` if it still runs after `limit`, so a hanging script
/// fails its test instead of holding it: set the flag when the process is
/// done; the thread answers whether it had to kill.
pub fn watchdog(pid: u32, limit: Duration) -> (Arc<AtomicBool>, std::thread::JoinHandle<bool>) {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let thread = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while !flag.load(Ordering::SeqCst) {
            if Instant::now() > deadline {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    });
    (done, thread)
}
