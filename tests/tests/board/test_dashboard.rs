//! The team lead's dashboard in a real headless Chromium (SPEC §6, §8): the
//! UI shared with the app, read-only on the relay.
//! `tests/browser/dashboard.mjs` (playwright-core driving Debian's
//! /usr/bin/chromium, only by roles and accessible names) signs in, checks
//! counts, badges, the SLA filter, search, sorting, a live update, the
//! detail view, the Export dialog, markup in a subject shown as text, axe
//! and 390 px, and takes screenshots.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{wait_for, Device, Relay};
use crate::support::tickets_bin;

const SETUP_HINT: &str = "run `.ci/run` once, or `cd tests/browser && npm ci` (and `apt-get install chromium`)";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate is in the workspace").to_path_buf()
}

/// Fails, never skips, when the browser test cannot run here.
fn check_browser_tools(browser_dir: &Path) -> String {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "the dashboard test needs Node.js (`node` on PATH): {SETUP_HINT}"
    );
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "{} has no node_modules/playwright-core: {SETUP_HINT}",
        browser_dir.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "no Chromium at {chromium}: {SETUP_HINT}");
    chromium
}

#[test]
fn the_dashboard_shows_the_relays_board_in_headless_chromium() {
    let browser_dir = workspace().join("tests/browser");
    let chromium = check_browser_tools(&browser_dir);

    let relay = Relay::start();
    let lead_token = relay.agent("lea", "lead");
    let agent_token = relay.agent("ana", "agent");
    relay.category("hardware");
    relay.sla("urgent", "1s", "2s");
    relay.sla("high", "4h", "2d");
    let ana = Device::register(&relay.url, &agent_token);
    let red = [
        ana.create("Server room flooded", "urgent", "hardware"),
        ana.create("Badge reader dead", "urgent", "hardware"),
    ];
    let html_subject = "Keyboard <img src=x onerror=window.pwned=1> missing keys";
    for s in ["Zebra printer offline", "Monitor flickers", html_subject] {
        ana.create(s, "high", "hardware");
    }
    ana.sync();
    // Wait until the relay's clock has made exactly the urgent ones red.
    wait_for("two red tickets", Duration::from_secs(15), || {
        let b = relay.board(&lead_token, "sla=red");
        if b["total"] == red.len() {
            Ok(())
        } else {
            Err(b["counts"].to_string())
        }
    });

    let artifacts = workspace().join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("the artifacts folder");
    let shot = artifacts.join("dashboard.png");
    let others = ["dashboard-detail.png", "dashboard-phone.png"].map(|n| artifacts.join(n));
    for f in std::iter::once(&shot).chain(&others) {
        let _ = std::fs::remove_file(f);
    }
    let out = Command::new("node")
        .arg(browser_dir.join("dashboard.mjs"))
        .current_dir(&browser_dir)
        .env("RELAY_URL", &relay.url)
        .env("LEAD_TOKEN", &lead_token)
        .env("AGENT_TOKEN", &agent_token)
        .env("TICKETS_BIN", tickets_bin())
        .env("NODE_HOME", ana.home.path())
        .env("EXPECT_RED", red.len().to_string())
        .env("EXPECT_TOTAL", "5")
        .env("SEARCH", "zebra")
        .env("HTML_SUBJECT", html_subject)
        .env("SCREENSHOT", &shot)
        .env("CHROMIUM", &chromium)
        .env("NO_COLOR", "1")
        .env_remove("TICKETS_HOME")
        .env_remove("TICKETS_CLOCK_OFFSET")
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "dashboard.mjs failed ({}):\nstdout:\n{}\nstderr:\n{}\nrelay log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        relay.log()
    );
    for shot in std::iter::once(&shot).chain(&others) {
        let png = std::fs::read(shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", shot.display());
        assert!(png.len() > 1000, "the screenshot is suspiciously small ({} bytes)", png.len());
    }
    // The script's live update went through the relay: one more ticket.
    assert_eq!(relay.board(&lead_token, "")["total"], 6);
}
