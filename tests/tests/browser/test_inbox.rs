//! `tests/browser/inbox.mjs`: the app's Inbox view in headless Chromium.
//! A real relay with a Chatwoot inbox, an agent's node and `tickets app
//! --no-open` on it; the script posts the Chatwoot fixtures to the webhook
//! while the page is open and follows the conversation from the Inbox to
//! its ticket.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::app::{check_browser_tools, workspace, App};
use crate::harness::Relay;
use crate::support::tickets_bin;

/// The most the script may run: its steps have their own timeouts, this
/// only stops a script that hangs.
const SCRIPT_LIMIT: Duration = Duration::from_secs(180);

#[test]
fn the_inbox_view_follows_a_chatwoot_conversation_to_its_ticket() {
    let browser_dir = workspace().join("tests/browser");
    let chromium = check_browser_tools(&browser_dir);

    let relay = Relay::start();
    relay.admin(&["category", "add", "billing"]).ok();
    let url = relay.url();
    let added = relay.admin(&["inbox", "add", "support", "--kind", "chatwoot", "--url", &url, "--json"]).json();
    let webhook = added["url"].as_str().expect("the webhook URL").to_string();
    let ana = relay.agent("ana", "agent", &[]);
    let app = App::start(&ana.home);

    let artifacts = workspace().join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("the artifacts folder");
    let shot = artifacts.join("app-inbox.png");
    let _ = std::fs::remove_file(&shot);

    let mut child = Command::new("node")
        .arg(browser_dir.join("inbox.mjs"))
        .current_dir(&browser_dir)
        .env("APP_URL", &app.url)
        .env("WEBHOOK_URL", &webhook)
        .env("FIXTURES", workspace().join("tests/fixtures/chatwoot"))
        .env("TICKETS_BIN", tickets_bin())
        .env("AGENT_HOME", ana.home.path())
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .env("NO_COLOR", "1")
        .env_remove("TICKETS_HOME")
        .env_remove("TICKETS_CLOCK_OFFSET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let (done, watchdog) = crate::app::watchdog(child.id(), SCRIPT_LIMIT);
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut printed = String::new();
    let _ = stdout.read_to_string(&mut printed);
    let status = child.wait().expect("node exits");
    done.store(true, Ordering::SeqCst);
    let killed = watchdog.join().unwrap_or(false);
    assert!(!killed, "inbox.mjs was still running after {SCRIPT_LIMIT:?} and was killed:\n{printed}");
    let errors = errors.join().unwrap_or_default();
    assert!(
        status.success(),
        "inbox.mjs failed ({status}):\nstdout:\n{printed}\nstderr:\n{errors}\napp:\n{}\nrelay:\n{}",
        app.log(),
        relay.log()
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", shot.display());
}
