//! `tests/browser/workday.mjs`: an agent's and a lead's day in the app, in
//! headless Chromium: a dense list (one line per ticket, 18 rows at
//! 1280×800, the first ticket high up at 390 px), bulk edits with a refused
//! ticket, the list's state in the address and saved views, closing with a
//! confirmation, the calm offline header, "New for you", the timeline in
//! words and the Export dialog taking the list's filters.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::app::{check_browser_tools, workspace, App};
use crate::harness::{sync, Relay};
use crate::support::tickets_bin;

const SHOTS: [&str; 10] = [
    "workday-list-1280.png",
    "workday-list-390.png",
    "workday-bulk-1280.png",
    "workday-bulk-390.png",
    "workday-view-1280.png",
    "workday-view-390.png",
    "workday-closed-1280.png",
    "workday-closed-390.png",
    "workday-offline-1280.png",
    "workday-offline-390.png",
];

/// Tickets on the agent's node: more than a screen's worth of rows.
const TICKETS: usize = 30;

/// The most the browser script may run: its steps have their own timeouts,
/// this only stops a script that hangs.
const SCRIPT_LIMIT: Duration = Duration::from_secs(300);

#[test]
fn an_agents_day_in_the_app() {
    let browser_dir = workspace().join("tests/browser");
    let chromium = check_browser_tools(&browser_dir);

    let mut relay = Relay::start();
    let ana = relay.agent("ana", "agent", &[]);
    let lea = relay.agent("lea", "lead", &[]);
    let priorities = ["low", "medium", "high", "urgent"];
    for i in 0..TICKETS {
        ana.create(&format!("Ticket number {i:02} about the printer"), priorities[i % 4], "hardware");
    }
    // The lead assigns one of them to the agent: new for her until she
    // opens it.
    sync(&ana);
    sync(&lea);
    let fresh = lea.create("Assigned by the lead", "high", "network");
    lea.run(&["assign", &fresh, "ana"]).ok();
    sync(&lea);
    sync(&ana);

    let app = App::start(&ana.home);
    let lead_app = App::start(&lea.home);

    let artifacts = workspace().join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("the artifacts folder");
    for s in SHOTS {
        let _ = std::fs::remove_file(artifacts.join(s));
    }

    let mut child = Command::new("node")
        .arg(browser_dir.join("workday.mjs"))
        .current_dir(&browser_dir)
        .env("APP_URL", &app.url)
        .env("LEAD_APP_URL", &lead_app.url)
        .env("TICKETS_BIN", tickets_bin())
        .env("AGENT_HOME", ana.home.path())
        .env("LEAD_HOME", lea.home.path())
        .env("FRESH_ID", &fresh)
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .env("NO_COLOR", "1")
        .env_remove("TICKETS_HOME")
        .env_remove("TICKETS_CLOCK_OFFSET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let (done, watchdog) = crate::app::watchdog(child.id(), SCRIPT_LIMIT);
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // The script's requests to stop and start the relay.
    let mut printed = String::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "@relay stop" => relay.kill9(),
            "@relay start" => relay.restart(),
            _ => {
                printed.push_str(&line);
                printed.push('\n');
                continue;
            }
        }
        writeln!(stdin, "ok").expect("answer the script");
    }
    let status = child.wait().expect("node exits");
    done.store(true, Ordering::SeqCst);
    let killed = watchdog.join().unwrap_or(false);
    assert!(!killed, "workday.mjs was still running after {SCRIPT_LIMIT:?} and was killed:\n{printed}");
    let errors = errors.join().unwrap_or_default();
    assert!(
        status.success(),
        "workday.mjs failed ({status}):\nstdout:\n{printed}\nstderr:\n{errors}\nagent's app:\n{}\nlead's app:\n{}\nrelay:\n{}",
        app.log(),
        lead_app.log(),
        relay.log()
    );
    for s in SHOTS {
        let path = artifacts.join(s);
        let png = std::fs::read(&path).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000, "{} is not a real PNG", path.display());
    }
}
