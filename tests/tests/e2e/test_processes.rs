//! The binary as a process among others: closed pipes and several
//! processes on one home at once.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::support::{record, tickets_bin, Home};

#[test]
fn a_closed_pipe_ends_quietly() {
    let h = Home::new();
    let records: Vec<_> = (0..300).map(|i| record(&format!("ticket number {i}"), "low", "x")).collect();
    h.import_ndjson(&records);
    // `tickets list --json | head -c 1`: far more output than a pipe holds.
    let mut child = Command::new(tickets_bin())
        .arg("--home")
        .arg(h.path())
        .args(["list", "--json"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tickets");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).expect("some output");
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "a closed pipe exits quietly: {stderr}");
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
}

#[test]
fn concurrent_processes_on_one_home_lose_nothing() {
    let h = Home::new();
    let id = h.create("shared", "low", "x");
    let bin = tickets_bin();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let bin = bin.clone();
            let home = h.path();
            let id = id.clone();
            std::thread::spawn(move || {
                for i in 0..3 {
                    for args in [
                        vec![
                            "create".to_string(),
                            "--subject".into(),
                            format!("w{w} t{i}"),
                            "--priority".into(),
                            "low".into(),
                            "--category".into(),
                            "x".into(),
                        ],
                        vec!["comment".to_string(), id.clone(), format!("w{w} c{i}")],
                    ] {
                        let out = Command::new(&bin).arg("--home").arg(&home).args(&args).output().expect("run");
                        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
                        assert!(out.status.success() && !stderr.contains("panicked"), "{args:?}: {stderr}");
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    assert_eq!(h.list(&[]).len(), 13);
    assert_eq!(h.show(&id)["comments"].as_array().map(Vec::len), Some(12));
}
