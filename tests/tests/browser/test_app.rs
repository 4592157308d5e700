//! `tests/browser/app.mjs` against two running apps (a plain agent's and a
//! lead's) over one relay: the form, the detail view, live edits from
//! another node, offline and back, permissions, security, accessibility,
//! 390 px, screenshots.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::app::{check_browser_tools, workspace, App};
use crate::harness::{sync, wait_for, Relay};
use crate::support::{now_ms, tickets_bin};

const SHOTS: [&str; 7] = [
    "app-list.png",
    "app-detail.png",
    "app-form.png",
    "app-export.png",
    "app-phone.png",
    "app-phone-detail.png",
    "app-phone-form.png",
];

/// The most the browser script may run: its steps have their own timeouts,
/// this only stops a script that hangs.
const SCRIPT_LIMIT: Duration = Duration::from_secs(300);

#[test]
fn the_app_works_in_headless_chromium() {
    let browser_dir = workspace().join("tests/browser");
    let chromium = check_browser_tools(&browser_dir);

    let mut relay = Relay::start();
    let ana = relay.agent("ana", "agent", &[]);
    let lea = relay.agent("lea", "lead", &[]);
    let html_subject = "<img src=x onerror=window.pwned=1> Printer";
    ana.create(html_subject, "high", "hardware");
    sync(&ana);
    sync(&lea);

    let mut app = App::start(&ana.home);
    let mut lead_app = App::start(&lea.home);

    let artifacts = workspace().join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("the artifacts folder");
    for s in SHOTS {
        let _ = std::fs::remove_file(artifacts.join(s));
    }
    let offline_subject = format!("Written offline {}", now_ms());

    let mut child = Command::new("node")
        .arg(browser_dir.join("app.mjs"))
        .current_dir(&browser_dir)
        .env("APP_URL", &app.url)
        .env("LEAD_APP_URL", &lead_app.url)
        .env("TICKETS_BIN", tickets_bin())
        .env("AGENT_HOME", ana.home.path())
        .env("LEAD_HOME", lea.home.path())
        .env("HTML_SUBJECT", html_subject)
        .env("OFFLINE_SUBJECT", &offline_subject)
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
    // A script that hangs is killed, so the test fails instead of waiting.
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
    assert!(!killed, "app.mjs was still running after {SCRIPT_LIMIT:?} and was killed:\n{printed}");
    let errors = errors.join().unwrap_or_default();
    assert!(
        status.success(),
        "app.mjs failed ({status}):\nstdout:\n{printed}\nstderr:\n{errors}\nagent's app:\n{}\nlead's app:\n{}\nrelay:\n{}",
        app.log(),
        lead_app.log(),
        relay.log()
    );

    // The ticket written offline reached the relay once it was back, and
    // from there the lead's node.
    wait_for("the lead's node to receive the ticket written offline", Duration::from_secs(30), || {
        sync(&lea);
        lea.subjects(&[]).contains(&offline_subject).then_some(())
    });
    for s in SHOTS {
        let path = artifacts.join(s);
        let png = std::fs::read(&path).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000, "{} is not a real PNG", path.display());
    }
    app.stop();
    lead_app.stop();
}
