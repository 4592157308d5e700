//! Who may talk to the app, checked on every request before any handler
//! runs, in this order:
//!
//! 1. **`Host`** must name the address the app listens on
//!    (`127.0.0.1:PORT`, or `localhost:PORT` on loopback): otherwise 403,
//!    so a page on another site that rebinds its DNS name to 127.0.0.1
//!    reaches nothing.
//! 2. **The session**: `GET /?session=SECRET` (the URL `tickets app`
//!    prints, a new secret on every start) sets an HttpOnly, SameSite=Strict
//!    cookie named for the port (`tickets_session_PORT`) and redirects to `/`, so later URLs carry no secret. Every other
//!    request needs the cookie: 401 without it (JSON under `/v1/`, a short
//!    page elsewhere).
//! 3. **Writes** (any method but GET and HEAD) need `Origin` equal to the
//!    app's own origin (or, without `Origin`, `Sec-Fetch-Site:
//!    same-origin`) and a JSON content type: otherwise 403 `cross_origin`,
//!    before the body is read. A form on another site can send neither.
//!
//! Every response carries a strict Content-Security-Policy (nothing from
//! outside the app, no inline script or style, no framing) and
//! `X-Content-Type-Options: nosniff`.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::error::ApiError;
use crate::AppState;

/// The session cookie's name before its port: browsers keep cookies per
/// host, not per port, so two apps on one machine (two nodes, or a node
/// started twice) each need their own cookie, `tickets_session_PORT`, or
/// each sign-in would log the other app out.
pub const COOKIE: &str = "tickets_session";

/// The session cookie of the app listening on `port`.
pub fn cookie_name(port: u16) -> String {
    format!("{COOKIE}_{port}")
}

/// The query parameter of the printed URL.
pub const QUERY: &str = "session";

/// Random bytes in a session secret.
pub const SECRET_BYTES: usize = 32;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// A fresh secret: 32 random bytes from the operating system, in hex.
pub fn new_secret() -> std::io::Result<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::getrandom(&mut bytes).map_err(|e| std::io::Error::other(format!("no random bytes: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The `Host` values that name the listening address: the address itself
/// and, on loopback, `localhost` with the same port.
pub fn allowed_hosts(addr: SocketAddr) -> Vec<String> {
    let mut hosts = vec![addr.to_string()];
    if addr.ip().is_loopback() {
        hosts.push(format!("localhost:{}", addr.port()));
    }
    hosts
}

/// Equal strings, compared in time that does not depend on where they
/// first differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The value of the cookie `name`, if the request carries one.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

/// The secret in `?session=...`, if any.
fn secret_in_query(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes()).find(|(k, _)| k == QUERY).map(|(_, v)| v.into_owned())
}

fn forbidden(code: &'static str, message: &str) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, code, message).into_response()
}

fn unauthorized(path: &str) -> Response {
    if path.starts_with("/v1/") {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "no session: open the URL that `tickets app` printed",
        )
        .into_response();
    }
    let page = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tickets: open the app's URL</title></head>\
<body><main><h1>Open the URL printed by <code>tickets app</code></h1>\
<p>This app only answers the browser that opened the link <code>tickets app</code> printed when it started \
(<code>Open http://…/?session=…</code>). Open that link again, or restart <code>tickets app</code> for a new one.</p>\
</main></body></html>";
    (StatusCode::UNAUTHORIZED, Html(page)).into_response()
}

/// Whether a write comes from the app's own page.
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    match header(headers, header::ORIGIN) {
        Some(origin) => state.hosts.iter().any(|h| origin.eq_ignore_ascii_case(&format!("http://{h}"))),
        None => header(headers, header::HeaderName::from_static("sec-fetch-site")) == Some("same-origin"),
    }
}

fn json_content(headers: &HeaderMap) -> bool {
    header(headers, header::CONTENT_TYPE)
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The checks of the module docs, then the handler; the security headers
/// go on every response, refusals included.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = check(&state, req, next).await;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    resp
}

async fn check(state: &AppState, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host_ok = header(headers, header::HOST).is_some_and(|h| state.hosts.iter().any(|a| a.eq_ignore_ascii_case(h)));
    if !host_ok {
        return forbidden("bad_host", "this app answers only at the address it listens on");
    }
    let path = req.uri().path().to_string();
    if req.method() == Method::GET && path == "/" {
        if let Some(given) = secret_in_query(req.uri().query()) {
            if !same_secret(&given, &state.secret) {
                return unauthorized(&path);
            }
            let cookie = format!("{}={}; HttpOnly; SameSite=Strict; Path=/", state.cookie, state.secret);
            let mut resp = StatusCode::SEE_OTHER.into_response();
            resp.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/"));
            match HeaderValue::from_str(&cookie) {
                Ok(v) => resp.headers_mut().insert(header::SET_COOKIE, v),
                Err(e) => return ApiError::internal(e).into_response(),
            };
            return resp;
        }
    }
    if !cookie(headers, &state.cookie).is_some_and(|c| same_secret(c, &state.secret)) {
        return unauthorized(&path);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        if !same_origin(state, headers) {
            return forbidden("cross_origin", "writes are accepted only from the app's own page");
        }
        if !json_content(headers) {
            return forbidden("cross_origin", "writes must send Content-Type: application/json");
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_64_hex_digits_and_differ() {
        let (a, b) = (new_secret().unwrap_or_default(), new_secret().unwrap_or_default());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn loopback_is_also_localhost() {
        let addr: SocketAddr = "127.0.0.1:8123".parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8123)));
        assert_eq!(allowed_hosts(addr), vec!["127.0.0.1:8123".to_string(), "localhost:8123".to_string()]);
        let lan = SocketAddr::from(([192, 168, 1, 5], 8123));
        assert_eq!(allowed_hosts(lan), vec!["192.168.1.5:8123".to_string()]);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tickets_session_8124=xyz; tickets_session_8123=abc; b=2"),
        );
        assert_eq!(cookie(&h, &cookie_name(8123)), Some("abc"));
        assert_eq!(cookie(&h, &cookie_name(8124)), Some("xyz"));
        assert_eq!(cookie(&h, &cookie_name(8125)), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
