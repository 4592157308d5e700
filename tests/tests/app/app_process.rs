//! A `tickets app --no-open` process on a node home, the URL it printed,
//! and HTTP requests to it with or without its session (the token the
//! printed URL is exchanged for, sent as `Authorization: Bearer`, and the
//! page cookie).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;
use serde_json::Value;

use crate::support::tickets_bin;

/// How long the app may take to print its URL, or to stop.
const APP_START_TIMEOUT: Duration = Duration::from_secs(20);
const APP_STOP_TIMEOUT: Duration = Duration::from_secs(20);

pub struct AppProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `127.0.0.1:PORT`
    pub host: String,
    /// The printed URL, with the secret.
    pub url: String,
    pub secret: String,
    log: Arc<Mutex<String>>,
    pub http: Client,
    /// The session token and the page cookie (`name=value`), once signed in.
    session: OnceLock<(String, String)>,
}

/// What opening the printed URL gave: the status, the session token in
/// the page's `<meta name="tickets-session">`, and the `Set-Cookie` header.
pub struct SignIn {
    pub status: u16,
    pub token: Option<String>,
    pub set_cookie: String,
    pub html: String,
}

/// Opens `url` (a printed URL) as a browser would.
pub fn open_url(http: &Client, url: &str) -> SignIn {
    let resp = http.get(url).send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let set_cookie = resp.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let html = resp.text().unwrap_or_default();
    let token = html
        .split("<meta name=\"tickets-session\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_string);
    SignIn { status, token, set_cookie, html }
}

impl AppProcess {
    /// `tickets --home HOME app --no-open EXTRA…`, once it printed its URL.
    pub fn start(home: &Path, extra: &[&str]) -> AppProcess {
        let mut args = vec!["--no-open"];
        args.extend_from_slice(extra);
        AppProcess::spawn(home, &args, &[])
    }

    /// `tickets --home HOME app ARGS…` with `env` set (a desktop is not).
    pub fn spawn(home: &Path, args: &[&str], env: &[(&str, &str)]) -> AppProcess {
        let mut child = Command::new(tickets_bin())
            .arg("--home")
            .arg(home)
            .arg("app")
            .args(args)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .env_remove("TICKETS_HOME")
            .env_remove("TICKETS_CLOCK_OFFSET")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tickets app starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut l) = log2.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = match rx.recv_timeout(APP_START_TIMEOUT) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tickets app printed no URL; stderr:\n{}", log.lock().map(|l| l.clone()).unwrap_or_default());
            }
        };
        let url = line.strip_prefix("Open ").unwrap_or_else(|| panic!("the first line is {line:?}")).to_string();
        let (base, secret) = url.split_once("/?session=").unwrap_or_else(|| panic!("no session in {url}"));
        assert!(base.starts_with("http://127.0.0.1:"), "the app listens on {base}, not loopback");
        assert!(secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()), "secret {secret:?}");
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        AppProcess {
            child,
            host: base.trim_start_matches("http://").to_string(),
            base: base.to_string(),
            secret: secret.to_string(),
            url,
            log,
            http,
            session: OnceLock::new(),
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// `tickets_page_PORT`: one page cookie per app, as browsers keep
    /// cookies per host whatever the port.
    pub fn page_cookie_name(&self) -> String {
        format!("tickets_page_{}", self.host.rsplit(':').next().unwrap_or_default())
    }

    /// Opens the printed URL once (it works once) and keeps the token and
    /// the page cookie it gives.
    fn session(&self) -> &(String, String) {
        self.session.get_or_init(|| {
            let s = open_url(&self.http, &self.url);
            assert_eq!(s.status, 200, "opening the printed URL: {}", s.html);
            let token = s.token.unwrap_or_else(|| panic!("no session token in the page: {}", s.html));
            let cookie = s.set_cookie.split(';').next().unwrap_or_default().to_string();
            (token, cookie)
        })
    }

    /// The session token (signs in on first use).
    pub fn token(&self) -> String {
        self.session().0.clone()
    }

    /// The page cookie, `tickets_page_PORT=VALUE` (signs in on first use).
    pub fn page_cookie(&self) -> String {
        self.session().1.clone()
    }

    /// A request with no session.
    pub fn bare(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// A request with the session, as the app's page sends it.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self
            .bare(method.clone(), path)
            .header("Authorization", format!("Bearer {}", self.token()))
            .header("Cookie", self.page_cookie());
        if method == Method::GET {
            r
        } else {
            r.header("Origin", &self.base)
        }
    }

    /// A JSON request from the page: the status and the JSON answer.
    pub fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.request(method.clone(), path);
        if let Some(b) = &body {
            r = r.header("Content-Type", "application/json").body(b.to_string());
        } else if method != Method::GET {
            r = r.header("Content-Type", "application/json");
        }
        let resp = r.send().unwrap_or_else(|e| panic!("{method} {path}: {e}\napp log:\n{}", self.log()));
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        (status, v)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None)
    }

    /// Opens `GET /v1/events`; each event arrives on the returned channel
    /// as (event name, data).
    pub fn events(&self) -> mpsc::Receiver<(String, String)> {
        let client = Client::builder().timeout(None).build().expect("an HTTP client");
        let resp = client
            .get(format!("{}/v1/events", self.base))
            .header("Authorization", format!("Bearer {}", self.token()))
            .send()
            .unwrap_or_else(|e| panic!("GET /v1/events: {e}"));
        assert_eq!(resp.status().as_u16(), 200, "GET /v1/events");
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert!(ct.starts_with("text/event-stream"), "content type {ct}");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut event = String::new();
            for line in BufReader::new(resp).lines() {
                let Ok(line) = line else { return };
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    if tx.send((std::mem::take(&mut event), d.trim().to_string())).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }

    /// Sends SIGTERM and waits (bounded) for the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + APP_STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the app") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "tickets app did not stop on SIGTERM; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (bounded) for an event named `name` on an event stream.
pub fn wait_event(rx: &mpsc::Receiver<(String, String)>, name: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((e, data)) if e == name => return data,
            Ok(_) => continue,
            Err(_) => panic!("no `{name}` event within {limit:?}"),
        }
    }
}
