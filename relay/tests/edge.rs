//! The relay's network edge over real sockets: a relay served by
//! `tickets_relay::serve` on a loopback port, spoken to in raw HTTP/1.1 so
//! that requests no HTTP client would send (bad paths, huge URIs, thousands
//! of headers, bodies that never come) can be sent.
//!
//! Every refusal must be a 4xx with a JSON `{error, code}` body; an upload
//! without a valid token is refused before its body is read; idle
//! connections and stalled uploads leave `/healthz` answering.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tickets_relay::{auth, AppState, Db};

/// A relay on a loopback port, stopped on drop.
struct Relay {
    addr: SocketAddr,
    token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Relay {
    fn start() -> Relay {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = Db::open(&dir.path().join("relay.db"), true).expect("relay database");
        let token = auth::new_token();
        db.with(|c| c.add_agent("lead", "lead", None, true, &auth::token_hash(&token), 0)).expect("an agent");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
                addr_tx.send(listener.local_addr().expect("its address")).expect("send the address");
                let (state, stop) = AppState::new(db).expect("state");
                tickets_relay::serve(listener, state, stop, async move {
                    let _ = stop_rx.await;
                })
                .await
                .expect("serve");
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(30)).expect("the relay's address");
        Relay { addr, token, stop: Some(stop_tx), thread: Some(thread), _dir: dir }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A response read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    /// The JSON error body, checked to have a string `error` and `code`.
    fn error(&self) -> Value {
        assert!(
            self.content_type.starts_with("application/json"),
            "status {} with content type {:?}: {}",
            self.status,
            self.content_type,
            String::from_utf8_lossy(&self.body)
        );
        let v: Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)));
        assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()), "no error in {v}");
        assert!(v["code"].as_str().is_some_and(|s| !s.is_empty()), "no code in {v}");
        v
    }
}

/// Parses one response from `raw` (everything the server sent).
fn parse(raw: &[u8]) -> Answer {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("a status line");
    let mut content_type = String::new();
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-type" => content_type = v.trim().to_string(),
                "content-length" => length = v.trim().parse::<usize>().ok(),
                _ => {}
            }
        }
    }
    let mut body = raw[end + 4..].to_vec();
    if let Some(n) = length {
        body.truncate(n);
    }
    Answer { status, content_type, body }
}

/// Sends `request` on a new connection and reads the answer, giving up on
/// the read after `within`.
fn exchange_within(addr: SocketAddr, request: &[u8], within: Duration) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(within)).expect("read timeout");
    // The server may answer and close before taking all of a huge request.
    let _ = s.write_all(request);
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if raw.is_empty() => panic!("no answer within {within:?}: {e}"),
            Err(_) => break,
        }
        if response_complete(&raw) {
            break;
        }
    }
    parse(&raw)
}

fn response_complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let length =
        head.split("\r\n").find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()));
    length.is_some_and(|n| raw.len() >= end + 4 + n)
}

fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    exchange_within(addr, request, Duration::from_secs(20))
}

fn get(relay: &Relay, target: &str) -> Answer {
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        relay.token
    );
    exchange(relay.addr, req.as_bytes())
}

fn post_json(relay: &Relay, target: &str, body: &Value) -> Answer {
    let body = body.to_string();
    let req = format!(
        "POST {target} HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        relay.token,
        body.len()
    );
    exchange(relay.addr, req.as_bytes())
}

#[test]
fn a_wrong_method_is_a_json_405() {
    let relay = Relay::start();
    let a = exchange(relay.addr, b"DELETE /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
    assert_eq!(a.status, 405);
    assert_eq!(a.error()["code"], "method_not_allowed");
    let a = get(&relay, "/v1/sync");
    assert_eq!(a.status, 405);
    a.error();
}

#[test]
fn an_unknown_path_is_a_json_404() {
    let relay = Relay::start();
    let a = get(&relay, "/v2/nothing");
    assert_eq!(a.status, 404);
    assert_eq!(a.error()["code"], "not_found");
}

/// `GET /` is the shared UI marked as the relay's (read-only) host, and
/// every file it needs is served under `/assets/`; anything else there is
/// a JSON 404, a path that climbs out included.
#[test]
fn the_dashboard_and_its_assets_are_served() {
    let relay = Relay::start();
    let page = exchange(relay.addr, b"GET / HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"), "{}", page.content_type);
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("data-host=\"relay\""), "the page is not marked as the relay's: {html}");
    // Nothing may load from elsewhere, no inline script runs, no site frames it.
    let mut s = TcpStream::connect(relay.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("read timeout");
    s.write_all(b"GET / HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n").expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let head = head.split("\r\n\r\n").next().unwrap_or_default();
    for line in [
        "content-security-policy: default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        "x-content-type-options: nosniff",
    ] {
        assert!(head.contains(line), "GET / lacks `{line}`:\n{head}");
    }
    for name in tickets_web::asset_names() {
        let a = get(&relay, &format!("/assets/{name}"));
        assert_eq!(a.status, 200, "/assets/{name}");
        let (content_type, bytes) = tickets_web::asset(name).expect("a listed asset");
        assert_eq!(a.content_type, content_type, "/assets/{name}");
        assert_eq!(a.body, bytes, "/assets/{name}");
    }
    for bad in ["/assets/nothing.js", "/assets/..%2FCargo.toml", "/assets/"] {
        let a = get(&relay, bad);
        assert_eq!(a.status, 404, "{bad}");
        assert_eq!(a.error()["code"], "not_found", "{bad}");
    }
}

#[test]
fn a_path_that_is_not_utf8_is_a_json_400() {
    let relay = Relay::start();
    for target in ["/v1/tickets/%FF%FE", "/v1/%C3%28", "/%80"] {
        let a = get(&relay, target);
        assert_eq!(a.status, 400, "{target}");
        assert_eq!(a.error()["code"], "bad_path", "{target}");
    }
    // Raw bytes that are not URI characters: hyper refuses the request line.
    let a = exchange(relay.addr, b"GET /v1/tickets/\xff\xfe HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
    assert_eq!(a.status, 400);
    a.error();
}

#[test]
fn a_long_uri_is_a_json_414() {
    let relay = Relay::start();
    // 60 KB: over the relay's limit, under hyper's fixed 65,534 bytes.
    let a = get(&relay, &format!("/v1/tickets?search={}", "a".repeat(60 * 1024)));
    assert_eq!(a.status, 414);
    assert_eq!(a.error()["code"], "uri_too_long");
    // 70 KB: beyond hyper's own limit, where hyper answers by itself.
    let a = get(&relay, &format!("/v1/tickets?search={}", "a".repeat(70 * 1024)));
    assert_eq!(a.status, 414);
    assert_eq!(a.error()["code"], "uri_too_long");
    let health = get(&relay, "/healthz");
    assert_eq!(health.status, 200);
}

#[test]
fn thousands_of_headers_are_a_json_431() {
    let relay = Relay::start();
    let mut req = String::from("GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n");
    for i in 0..5000 {
        req.push_str(&format!("x-h{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let a = exchange(relay.addr, req.as_bytes());
    assert_eq!(a.status, 431);
    assert_eq!(a.error()["code"], "headers_too_large");
    // One huge header.
    let req =
        format!("GET /healthz HTTP/1.1\r\nHost: relay\r\nx-big: {}\r\nConnection: close\r\n\r\n", "b".repeat(100_000));
    let a = exchange(relay.addr, req.as_bytes());
    assert_eq!(a.status, 431);
    a.error();
    // A head over hyper's read buffer.
    let mut req = String::from("GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n");
    for i in 0..8 {
        req.push_str(&format!("x-h{i}: {}\r\n", "c".repeat(100_000)));
    }
    req.push_str("\r\n");
    let a = exchange(relay.addr, req.as_bytes());
    assert_eq!(a.status, 431);
    a.error();
}

#[test]
fn board_numbers_that_overflow_are_a_json_400() {
    let relay = Relay::start();
    for q in [
        "offset=9223372036854775808",
        "offset=18446744073709551616",
        "limit=99999999999999999999999",
        "offset=-1",
        "limit=1&offset=9223372036854775808",
    ] {
        let a = get(&relay, &format!("/v1/tickets?{q}"));
        assert_eq!(a.status, 400, "{q}: {}", String::from_utf8_lossy(&a.body));
        assert_eq!(a.error()["code"], "bad_request", "{q}");
    }
    let a = get(&relay, "/v1/tickets?limit=1&offset=9223372036854775807");
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
}

#[test]
fn a_refused_push_carries_a_code() {
    let relay = Relay::start();
    let device = "0123456789abcdef0123456789abcdef";
    let a = post_json(&relay, "/v1/sync/register", &serde_json::json!({"protocol": 1, "device": device}));
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let push = serde_json::json!({
        "protocol": 1,
        "device": device,
        "clock_ms": now as i64,
        "push": [{"id": "7c0c6a5e-0000-4000-8000-000000000001", "kind": "ticket", "data": "bm90IGF1dG9tZXJnZQ=="}],
    });
    let a = post_json(&relay, "/v1/sync", &push);
    assert!(a.status == 400 || a.status == 403, "status {}: {}", a.status, String::from_utf8_lossy(&a.body));
    let v = a.error();
    assert!(v["pushed"].is_array(), "the refusal still carries per-document results: {v}");
    assert_eq!(v["pushed"][0]["code"], "corrupt_data", "each refused document has its code: {v}");
    // A device clock further off than the bound is refused as a whole, with
    // a hint, whichever way it is off (1970, or i64's ends).
    for clock in [0i64, i64::MAX, i64::MIN, now as i64 + 8 * 24 * 3_600_000] {
        let a = post_json(&relay, "/v1/sync", &serde_json::json!({"protocol": 1, "device": device, "clock_ms": clock}));
        assert_eq!(a.status, 400, "clock {clock}");
        let v = a.error();
        assert_eq!(v["code"], "clock_skew", "clock {clock}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| e.contains("set the device's date and time")), "{v}");
    }
    // Refusals before any work have their codes too.
    let a = post_json(&relay, "/v1/sync", &serde_json::json!({"protocol": 9, "device": device, "clock_ms": 0}));
    assert_eq!(a.status, 400);
    assert_eq!(a.error()["code"], "protocol_version");
    let a = post_json(&relay, "/v1/sync", &serde_json::json!({"nonsense": true}));
    assert_eq!(a.status, 400);
    a.error();
}

#[test]
fn an_upload_without_a_token_is_refused_before_its_body() {
    let relay = Relay::start();
    // 15 MB announced, 1 KB sent: the answer must come without the rest.
    let mut req =
        b"POST /v1/sync HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: 15000000\r\n\r\n"
            .to_vec();
    req.extend_from_slice(&[b' '; 1024]);
    let a = exchange_within(relay.addr, &req, Duration::from_secs(5));
    assert_eq!(a.status, 401);
    assert_eq!(a.error()["code"], "unauthorized");
    let req = format!(
        "POST /v1/sync/register HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer tk_wrong\r\nContent-Length: 15000000\r\n\r\n{}",
        " ".repeat(1024)
    );
    let a = exchange_within(relay.addr, req.as_bytes(), Duration::from_secs(5));
    assert_eq!(a.status, 401);
    a.error();
}

/// VmRSS of this process (the relay runs in it), in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("a VmRSS line")
}

#[test]
fn idle_connections_and_stalled_uploads_leave_health_answering() {
    const IDLE: usize = 2000;
    const UPLOADS: usize = 50;
    let relay = Relay::start();
    let idle: Vec<TcpStream> = (0..IDLE).map(|_| TcpStream::connect(relay.addr).expect("an idle connection")).collect();
    let mut uploads = Vec::new();
    for _ in 0..UPLOADS {
        let mut s = TcpStream::connect(relay.addr).expect("an upload connection");
        s.write_all(b"POST /v1/sync HTTP/1.1\r\nHost: relay\r\nContent-Length: 15000000\r\n\r\n{").expect("headers");
        uploads.push(s);
    }
    // The uploads trickle on while health is asked.
    let done = Arc::new(AtomicBool::new(false));
    let trickle = {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                for s in &mut uploads {
                    let _ = s.write_all(b" ");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    for _ in 0..5 {
        let started = Instant::now();
        let a = exchange_within(
            relay.addr,
            b"GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n",
            Duration::from_secs(1),
        );
        assert_eq!(a.status, 200);
        assert!(started.elapsed() < Duration::from_secs(1), "healthz took {:?}", started.elapsed());
    }
    let rss = rss_bytes();
    assert!(rss < 300 * 1024 * 1024, "RSS {} MB with {IDLE} idle connections and {UPLOADS} uploads", rss >> 20);
    done.store(true, Ordering::Relaxed);
    let _ = trickle.join();
    drop(idle);
}

/// Reads from `s` until the peer closes (a read of 0 bytes, or a reset);
/// returns what it sent, or `None` if it was still open after `within`.
fn closed_within(mut s: TcpStream, within: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1)))).expect("read timeout");
        match s.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if Instant::now() >= deadline {
                    return None;
                }
            }
            Err(_) => return Some(got),
        }
    }
}

/// A connection that sends nothing, or half a request line and then
/// nothing, is closed by the relay once the header-read timeout runs out
/// (a bounded wait on the read, not a measure of the timeout).
#[test]
fn a_connection_that_never_finishes_its_headers_is_closed() {
    use tickets_relay::edge::HEADER_READ_TIMEOUT_SECS;
    let relay = Relay::start();
    let within = Duration::from_secs(HEADER_READ_TIMEOUT_SECS + 5);
    let silent = TcpStream::connect(relay.addr).expect("a silent connection");
    let mut half = TcpStream::connect(relay.addr).expect("a half-request connection");
    half.write_all(b"GET /healthz HT").expect("half a request line");
    let waiters: Vec<_> = [("silent", silent), ("half a request line", half)]
        .into_iter()
        .map(|(what, s)| std::thread::spawn(move || (what, closed_within(s, within))))
        .collect();
    for w in waiters {
        let (what, closed) = w.join().expect("a waiter");
        assert!(closed.is_some(), "{what}: the relay kept the connection open past {within:?}");
    }
    // The relay still answers a new connection.
    let a = get(&relay, "/healthz");
    assert_eq!(a.status, 200);
}
