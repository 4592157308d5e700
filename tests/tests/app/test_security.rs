//! Who gets in (SPEC §8): only the browser that opened the printed URL,
//! at the address the app listens on, and writes only from the app's own
//! page.

use reqwest::Method;
use serde_json::json;

use crate::app_process::{open_url, AppProcess};
use crate::support::Home;

#[test]
fn without_the_session_every_request_is_refused_with_401() {
    let home = Home::new();
    let app = AppProcess::start(&home.path(), &[]);
    for path in [
        "/v1/me",
        "/v1/tickets",
        "/v1/inbox",
        "/v1/inbox/x/prefill",
        "/v1/events",
        "/v1/sync/status",
        "/v1/nothing-here",
    ] {
        let resp = app.bare(Method::GET, path).send().expect("GET");
        assert_eq!(resp.status().as_u16(), 401, "GET {path} without the session");
        let body: serde_json::Value = resp.json().expect("a JSON error");
        assert_eq!(body["code"], "unauthorized", "GET {path}: {body}");
    }
    let page = app.bare(Method::GET, "/").send().expect("GET /");
    assert_eq!(page.status().as_u16(), 401);
    let text = page.text().unwrap_or_default();
    assert!(text.contains("tickets app"), "the 401 page says which URL to open: {text}");
    let wrong = app.bare(Method::GET, &format!("/?session={}", "0".repeat(64))).send().expect("GET");
    assert_eq!(wrong.status().as_u16(), 401, "a wrong secret");
    assert!(wrong.headers().get("set-cookie").is_none(), "a wrong secret gets no cookie");
    for forged in [format!("Bearer {}", "0".repeat(64)), format!("Bearer {}", app.secret)] {
        let r = app.bare(Method::GET, "/v1/me").header("Authorization", &forged);
        assert_eq!(r.send().expect("GET").status().as_u16(), 401, "a forged token: {forged}");
    }
    assert_eq!(app.terminate(), Some(0), "SIGTERM ends the app with exit 0");
}

#[test]
fn the_printed_url_works_once_and_gives_a_token_that_is_no_cookie() {
    let home = Home::new();
    let app = AppProcess::start(&home.path(), &[]);
    let first = open_url(&app.http, &app.url);
    assert_eq!(first.status, 200, "{}", first.html);
    assert!(first.html.contains("data-host=\"app\""), "the answer is the app's page");
    let token = first.token.clone().unwrap_or_else(|| panic!("no token in the page: {}", first.html));
    assert!(token.len() == 64 && token != app.secret, "the token is not the URL's secret");
    // The one cookie is the page cookie: HttpOnly, SameSite=Strict, and
    // neither the secret nor the token.
    let parts: Vec<&str> = first.set_cookie.split(';').map(str::trim).collect();
    let (name, value) = parts.first().and_then(|c| c.split_once('=')).unwrap_or_default();
    assert_eq!(name, app.page_cookie_name(), "{}", first.set_cookie);
    assert!(value != token && value != app.secret, "the cookie carries a credential: {}", first.set_cookie);
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(parts.contains(&attr), "the cookie lacks {attr}: {}", first.set_cookie);
    }
    // A cookie reaches every port of 127.0.0.1: it must open nothing.
    let cookie_only = app.bare(Method::GET, "/v1/me").header("Cookie", format!("{name}={value}"));
    assert_eq!(cookie_only.send().expect("GET").status().as_u16(), 401, "the page cookie opened the API");
    let me = app.bare(Method::GET, "/v1/me").header("Authorization", format!("Bearer {token}"));
    let me: serde_json::Value = me.send().expect("GET /v1/me").json().expect("JSON");
    assert_eq!((me["agent"].as_str(), me["host"].as_str()), (Some("ana"), Some("app")), "{me}");
    // The second use of the printed URL is refused, with the styled page.
    let second = open_url(&app.http, &app.url);
    assert_eq!(second.status, 401, "the printed URL worked twice");
    assert!(second.token.is_none() && second.set_cookie.is_empty(), "a second use got a session");
    assert!(second.html.contains("already used"), "the page says why: {}", second.html);
    // The page with the page cookie; the security headers.
    let page = app.bare(Method::GET, "/").header("Cookie", format!("{name}={value}")).send().expect("GET /");
    assert_eq!(page.status().as_u16(), 200);
    let csp = page.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "CSP: {csp}");
    assert_eq!(page.headers().get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
    assert!(page.text().unwrap_or_default().contains("data-host=\"app\""), "the page is the app's");
}

#[test]
fn a_foreign_host_header_is_refused_with_403_even_with_the_session() {
    let home = Home::new();
    let app = AppProcess::start(&home.path(), &[]);
    let port = app.host.rsplit(':').next().unwrap_or_default().to_string();
    for host in ["evil.example", &format!("evil.example:{port}"), "127.0.0.1:1", &format!("127.0.0.2:{port}")] {
        let resp = app.request(Method::GET, "/v1/me").header("Host", host).send().expect("GET");
        assert_eq!(resp.status().as_u16(), 403, "Host: {host}");
        let body: serde_json::Value = resp.json().expect("a JSON error");
        assert_eq!(body["code"], "bad_host", "Host: {host}");
    }
    let secret = app.bare(Method::GET, &format!("/?session={}", app.secret)).header("Host", "evil.example");
    let resp = secret.send().expect("GET");
    assert_eq!(resp.status().as_u16(), 403, "the secret is not exchanged at a foreign Host");
    assert!(resp.headers().get("set-cookie").is_none());
    for host in [app.host.clone(), format!("localhost:{port}")] {
        let resp = app.request(Method::GET, "/v1/me").header("Host", &host).send().expect("GET");
        assert_eq!(resp.status().as_u16(), 200, "Host: {host}");
    }
}

#[test]
fn a_write_from_another_origin_is_refused_and_writes_nothing() {
    let home = Home::new();
    let app = AppProcess::start(&home.path(), &[]);
    let body = json!({"subject": "Forged", "priority": "high", "category": "hardware"}).to_string();
    let auth = format!("Bearer {}", app.token());
    let attempts = [
        ("another site's Origin", Some("http://evil.example"), None, "application/json"),
        ("the app's port on another host name", Some("http://127.0.0.1:1"), None, "application/json"),
        ("no Origin and a cross-site fetch", None, Some("cross-site"), "application/json"),
        ("no Origin, no Sec-Fetch-Site", None, None, "application/json"),
        ("a form's content type", Some(app.base.as_str()), None, "application/x-www-form-urlencoded"),
        ("text/plain (a simple request)", Some(app.base.as_str()), None, "text/plain"),
    ];
    for (what, origin, fetch_site, content_type) in attempts {
        let mut r = app
            .bare(Method::POST, "/v1/tickets")
            .header("Authorization", &auth)
            .header("Content-Type", content_type)
            .body(body.clone());
        if let Some(o) = origin {
            r = r.header("Origin", o);
        }
        if let Some(s) = fetch_site {
            r = r.header("Sec-Fetch-Site", s);
        }
        let resp = r.send().expect("POST");
        assert_eq!(resp.status().as_u16(), 403, "{what}");
        let v: serde_json::Value = resp.json().expect("a JSON error");
        assert_eq!(v["code"], "cross_origin", "{what}: {v}");
    }
    let patch = app
        .bare(Method::POST, "/v1/sync/now")
        .header("Authorization", &auth)
        .header("Origin", "http://evil.example")
        .header("Content-Type", "application/json");
    assert_eq!(patch.send().expect("POST").status().as_u16(), 403);
    assert!(home.list(&[]).is_empty(), "a refused write created a ticket");
    // The same request from the app's own page goes through.
    let same_site = app
        .bare(Method::POST, "/v1/tickets")
        .header("Authorization", &auth)
        .header("Sec-Fetch-Site", "same-origin")
        .header("Content-Type", "application/json")
        .body(body);
    assert_eq!(same_site.send().expect("POST").status().as_u16(), 201);
    assert_eq!(home.subjects(&[]), vec!["Forged".to_string()]);
}

#[test]
fn a_listen_address_that_is_not_loopback_is_refused_unless_asked_for() {
    let home = Home::new();
    let out = home.run(&["app", "--no-open", "--listen", "192.0.2.10:0"]).fails();
    assert!(out.stderr.contains("not loopback"), "{}", out.stderr);
    assert!(out.stderr.contains("--allow-non-loopback"), "the hint names the flag: {}", out.stderr);
    let out = home.run(&["app", "--no-open", "--listen", "0.0.0.0:0", "--allow-non-loopback"]).fails();
    assert!(out.stderr.contains("names no single address"), "{}", out.stderr);
    let out = home.run(&["app", "--no-open", "--listen", "nowhere"]).fails();
    assert!(out.stderr.contains("not an address"), "{}", out.stderr);
}

#[test]
fn with_json_the_url_is_one_json_object() {
    use std::io::BufRead;
    let home = Home::new();
    let mut child = std::process::Command::new(crate::support::tickets_bin())
        .arg("--home")
        .arg(home.path())
        .args(["app", "--no-open", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tickets app starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    std::io::BufReader::new(stdout).read_line(&mut line).expect("a line");
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let url = v["url"].as_str().unwrap_or_default();
    assert!(url.starts_with("http://127.0.0.1:") && url.contains("/?session="), "{v}");
}

#[test]
fn two_apps_on_one_machine_take_nothing_from_each_other() {
    let home = Home::new();
    let other = Home::new();
    let a = AppProcess::start(&home.path(), &[]);
    let b = AppProcess::start(&other.path(), &[]);
    assert_ne!(a.base, b.base);
    let me = |app: &AppProcess, token: &str| {
        let r = app.bare(Method::GET, "/v1/me").header("Authorization", format!("Bearer {token}"));
        r.send().expect("GET /v1/me").status().as_u16()
    };
    let (ta, tb) = (a.token(), b.token());
    assert_eq!((me(&a, &ta), me(&b, &tb)), (200, 200));
    assert_eq!((me(&b, &ta), me(&a, &tb)), (401, 401), "one app's token opened the other");
    // A's page cookie under b's name opens no page of b.
    let value = a.page_cookie().split_once('=').map(|(_, v)| v.to_string()).unwrap_or_default();
    let page = b.bare(Method::GET, "/").header("Cookie", format!("{}={value}", b.page_cookie_name()));
    assert_eq!(page.send().expect("GET /").status().as_u16(), 401);
}

/// Waits (bounded) until `path` exists and is not empty.
fn wait_for_file(path: &std::path::Path) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.is_empty() {
                return text;
            }
        }
        assert!(std::time::Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn the_browser_is_opened_on_a_private_page_never_with_the_secret_in_its_argv() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let seen = tempfile::tempdir().expect("a temp dir");
    // A fake browser: records its command line, as `/proc/PID/cmdline`
    // shows it to every local user, and what the file it got holds.
    let opener = seen.path().join("fake-browser");
    let out = seen.path().display().to_string();
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\ntr '\\0' ' ' < /proc/$$/cmdline > {out}/cmdline.tmp\nstat -c %a \"$1\" > {out}/mode\n\
cp \"$1\" {out}/page\nmv {out}/cmdline.tmp {out}/cmdline\n"
        ),
    )
    .expect("write the fake browser");
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let opener_path = opener.display().to_string();
    let app = AppProcess::spawn(&home.path(), &[], &[("TICKETS_BROWSER", opener_path.as_str())]);
    let cmdline = wait_for_file(&seen.path().join("cmdline"));
    assert!(!cmdline.contains(&app.secret), "the secret is in the browser's argv: {cmdline}");
    assert!(cmdline.contains("app-open.html"), "the browser opened {cmdline}");
    let mode = std::fs::read_to_string(seen.path().join("mode")).unwrap_or_default();
    assert_eq!(mode.trim(), "600", "the page with the secret is private");
    let page = std::fs::read_to_string(seen.path().join("page")).unwrap_or_default();
    assert!(page.contains(&format!("http-equiv=\"refresh\" content=\"0;url={}\"", app.url)), "{page}");
    // What the page forwards to signs in, once.
    assert_eq!(open_url(&app.http, &app.url).status, 200);
    assert_eq!(app.terminate(), Some(0));
    assert!(!home.path().join("app-open.html").exists(), "the forwarding page outlived the app");
}

#[test]
fn the_app_keeps_its_port_and_a_stale_tab_is_told_how_to_get_back_in() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let first = AppProcess::start(&home.path(), &[]);
    let (old_token, old_cookie) = (first.token(), first.page_cookie());
    let base = first.base.clone();
    assert_eq!(first.terminate(), Some(0));
    let port_file = home.path().join("app.port");
    let mode = std::fs::metadata(&port_file).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
    assert_eq!(mode, 0o600, "app.port");

    let again = AppProcess::start(&home.path(), &[]);
    assert_eq!(again.base, base, "a restart moved the app: bookmarks break");
    // The stale tab's API calls: JSON 401.
    let api = again.bare(Method::GET, "/v1/tickets").header("Authorization", format!("Bearer {old_token}"));
    let api = api.send().expect("GET /v1/tickets");
    assert_eq!(api.status().as_u16(), 401);
    let body: serde_json::Value = api.json().expect("a JSON 401");
    assert_eq!(body["code"], "unauthorized");
    // Its reload or a bookmark: the styled page that says what to do.
    for cookie in [Some(old_cookie.as_str()), None] {
        let mut r = again.bare(Method::GET, "/");
        if let Some(c) = cookie {
            r = r.header("Cookie", c);
        }
        let page = r.send().expect("GET /");
        assert_eq!(page.status().as_u16(), 401);
        let ct = page.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert!(ct.starts_with("text/html"), "{ct}");
        let html = page.text().unwrap_or_default();
        assert!(html.contains("<link rel=\"stylesheet\" href=\"/assets/app.css\">"), "an unstyled page: {html}");
        assert!(html.contains("run <code>tickets app</code>"), "the page says how to get back in: {html}");
    }
    let css = again.bare(Method::GET, "/assets/app.css").send().expect("GET /assets/app.css");
    assert_eq!(css.status().as_u16(), 200, "the styled page's style sheet needs no session");
    // The new link works at the same address.
    assert_eq!(again.get("/v1/me").0, 200);

    // A second app on the home while the first runs gets another port, and
    // says so.
    let other = AppProcess::start(&home.path(), &[]);
    assert_ne!(other.base, base);
    let said = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        other.log().contains("moved to port")
    });
    assert!(said, "no word of the new port: {}", other.log());
}
