//! Who gets in (SPEC §8): only the browser that opened the printed URL,
//! at the address the app listens on, and writes only from the app's own
//! page.

use reqwest::Method;
use serde_json::json;

use crate::app_process::AppProcess;
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
    let forged = app.bare(Method::GET, "/v1/me").header("Cookie", format!("{}={}", app.cookie_name(), "0".repeat(64)));
    assert_eq!(forged.send().expect("GET").status().as_u16(), 401, "a forged cookie");
    assert_eq!(app.terminate(), Some(0), "SIGTERM ends the app with exit 0");
}

#[test]
fn the_secret_is_exchanged_for_an_http_only_same_site_cookie_and_a_redirect() {
    let home = Home::new();
    let app = AppProcess::start(&home.path(), &[]);
    let resp = app.http.get(&app.url).send().expect("GET the printed URL");
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers().get("location").and_then(|v| v.to_str().ok()), Some("/"), "redirects without the secret");
    let cookie = resp.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let parts: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert_eq!(parts.first().copied(), Some(app.cookie().as_str()), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(parts.contains(&attr), "the cookie lacks {attr}: {cookie}");
    }
    let page = app.request(Method::GET, "/").send().expect("GET / with the cookie");
    assert_eq!(page.status().as_u16(), 200);
    let csp = page.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "CSP: {csp}");
    assert_eq!(page.headers().get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
    let html = page.text().unwrap_or_default();
    assert!(html.contains("data-host=\"app\""), "the page is the app's");
    let (status, me) = app.get("/v1/me");
    assert_eq!((status, me["agent"].as_str(), me["host"].as_str()), (200, Some("ana"), Some("app")), "{me}");
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
    let cookie = app.cookie();
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
            .header("Cookie", &cookie)
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
        .header("Cookie", &cookie)
        .header("Origin", "http://evil.example")
        .header("Content-Type", "application/json");
    assert_eq!(patch.send().expect("POST").status().as_u16(), 403);
    assert!(home.list(&[]).is_empty(), "a refused write created a ticket");
    // The same request from the app's own page goes through.
    let same_site = app
        .bare(Method::POST, "/v1/tickets")
        .header("Cookie", &cookie)
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

/// Signs in with the printed URL and keeps the cookie it sets in `jar`, as
/// a browser does: by host (both apps are on 127.0.0.1) and name, whatever
/// the port.
fn sign_in(app: &AppProcess, jar: &mut std::collections::BTreeMap<String, String>) {
    let resp = app.http.get(&app.url).send().expect("GET the printed URL");
    assert_eq!(resp.status().as_u16(), 303);
    let set = resp.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (name, value) = set.split(';').next().and_then(|c| c.split_once('=')).expect("a name=value cookie");
    jar.insert(name.to_string(), value.to_string());
}

fn with_jar(app: &AppProcess, jar: &std::collections::BTreeMap<String, String>) -> u16 {
    let cookies: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let resp = app.bare(Method::GET, "/v1/me").header("Cookie", cookies.join("; ")).send().expect("GET /v1/me");
    resp.status().as_u16()
}

#[test]
fn two_apps_on_one_machine_keep_their_own_sessions_in_one_cookie_jar() {
    let home = Home::new();
    let other = Home::new();
    let a = AppProcess::start(&home.path(), &[]);
    let b = AppProcess::start(&other.path(), &[]);
    let mut jar = std::collections::BTreeMap::new();
    sign_in(&a, &mut jar);
    sign_in(&b, &mut jar);
    assert_eq!(jar.len(), 2, "each app sets a cookie of its own name: {jar:?}");
    assert_eq!((with_jar(&a, &jar), with_jar(&b, &jar)), (200, 200), "signing in to one app logged the other out");
    // One app's session is nothing to the other, under either name.
    for cookie in [a.cookie(), format!("{}={}", b.cookie_name(), a.secret)] {
        let resp = b.bare(Method::GET, "/v1/me").header("Cookie", cookie.clone()).send().expect("GET");
        assert_eq!(resp.status().as_u16(), 401, "app b took {cookie}");
    }
    // Both still work after the other signs in again (a restart's new URL).
    sign_in(&a, &mut jar);
    assert_eq!((with_jar(&a, &jar), with_jar(&b, &jar)), (200, 200));
}
