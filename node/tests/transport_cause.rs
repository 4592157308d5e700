//! `cannot reach the relay` names the cause of a transport failure. The
//! node's own client waits `REQUEST_TIMEOUT_SECS` (120 s) before giving up
//! on a silent relay, too long for a test, so the timed-out case is checked
//! here with a short-timeout client against a real listener on loopback
//! that accepts and never answers; the other causes are end to end in
//! `tests/tests/ops/test_new_user.rs`.

use std::net::TcpListener;
use std::time::Duration;

use tickets_node::sync::transport_cause;

#[test]
fn a_relay_that_accepts_and_never_answers_is_named_timed_out() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    // The accepted connection is held open, unanswered, until `done`.
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let held = listener.accept();
        let _ = finished.recv();
        drop(held);
    });
    let client =
        reqwest::blocking::Client::builder().timeout(Duration::from_millis(300)).build().expect("an HTTP client");
    let err = client.post(format!("http://{addr}/v1/sync")).body("{}").send().expect_err("no answer comes");
    let cause = transport_cause(&err);
    assert!(cause.contains("timed out"), "the cause is named: {cause}");
    assert!(!cause.contains("error sending request"), "not reqwest's outer message alone: {cause}");
    let _ = done.send(());
    let _ = holder.join();
}
