//! Who may talk to the app, checked on every request before any handler
//! runs, in this order:
//!
//! 1. **`Host`** must name the address the app listens on
//!    (`127.0.0.1:PORT`, or `localhost:PORT` on loopback): otherwise 403,
//!    so a page on another site that rebinds its DNS name to 127.0.0.1
//!    reaches nothing.
//! 2. **The printed URL works once.** `GET /?session=SECRET` (a new secret
//!    on every start) takes the secret out of use and answers the app's
//!    page carrying a fresh **session token**, a different random value;
//!    the page keeps it in `localStorage`, which the browser keeps per
//!    origin (host *and port*), and drops the secret from the address bar.
//!    A second use of the URL gets the "open the app again" page.
//! 3. **Every API request** (`/v1/…`, the event stream included) needs
//!    `Authorization: Bearer TOKEN`: 401 JSON without it. The token is never
//!    a cookie, because browsers send a host's cookies to every port of it:
//!    any other program listening on 127.0.0.1 would receive it.
//! 4. **Pages** (`/`) need this start's page cookie, `tickets_page_PORT`,
//!    set with the token. It grants nothing (the page and its scripts are
//!    the same for everyone, and hold no data): it only tells a browser
//!    that opened this start's link from a stale tab or a bookmark, which
//!    gets a styled 401 page saying how to get back in. `/assets/…` need
//!    nothing but the `Host`.
//! 5. **Writes** (any method but GET and HEAD) need `Origin` equal to the
//!    app's own origin (or, without `Origin`, `Sec-Fetch-Site:
//!    same-origin`) and a JSON content type: otherwise 403 `cross_origin`,
//!    before the body is read. A form on another site can send neither.
//!
//! Every response carries a strict Content-Security-Policy (nothing from
//! outside the app, no inline script or style, no framing) and
//! `X-Content-Type-Options: nosniff`.

use std::net::SocketAddr;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::error::ApiError;
use crate::AppState;

/// The page cookie's name before its port: browsers keep cookies per
/// host, not per port, so two apps on one machine each need their own.
pub const PAGE_COOKIE: &str = "tickets_page";

/// The page cookie of the app listening on `port`.
pub fn page_cookie_name(port: u16) -> String {
    format!("{PAGE_COOKIE}_{port}")
}

/// How long a browser keeps the page cookie: a bookmark opened after the
/// browser restarted still reaches a running app.
pub const PAGE_COOKIE_MAX_AGE_SECS: u64 = 30 * 24 * 3600;

/// The query parameter of the printed URL.
pub const QUERY: &str = "session";

/// The `<meta name>` that hands the session token to the page.
pub const TOKEN_META: &str = "tickets-session";

/// The page that says how to get back in (also where the page goes when
/// the app answers 401).
pub const SIGNED_OUT_PATH: &str = "/signed-out";

/// Random bytes in a secret or a token.
pub const SECRET_BYTES: usize = 32;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// A fresh secret: 32 random bytes from the operating system, in hex.
pub fn new_secret() -> std::io::Result<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::getrandom(&mut bytes).map_err(|e| std::io::Error::other(format!("no random bytes: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// This start's keys: the printed URL's secret until it is used, the
/// session token it was exchanged for, and the page cookie's value.
pub struct Keys {
    url_secret: Mutex<Option<String>>,
    token: Mutex<Option<String>>,
    start: String,
}

impl Keys {
    /// New keys and the URL secret to print.
    pub fn new() -> std::io::Result<(Keys, String)> {
        let secret = new_secret()?;
        let keys = Keys { url_secret: Mutex::new(Some(secret.clone())), token: Mutex::new(None), start: new_secret()? };
        Ok((keys, secret))
    }

    /// Takes the URL secret out of use if `given` is it, and hands out a
    /// new session token; `None` for a wrong or used secret.
    fn exchange(&self, given: &str) -> Option<String> {
        let mut secret = self.url_secret.lock().ok()?;
        if !secret.as_deref().is_some_and(|s| same_secret(s, given)) {
            return None;
        }
        let token = new_secret().ok()?;
        *secret = None;
        *self.token.lock().ok()? = Some(token.clone());
        Some(token)
    }

    fn valid_token(&self, given: &str) -> bool {
        self.token.lock().ok().is_some_and(|t| t.as_deref().is_some_and(|t| same_secret(t, given)))
    }
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

/// The token of `Authorization: Bearer TOKEN`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = header(headers, header::AUTHORIZATION)?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// The secret in `?session=...`, if any.
fn secret_in_query(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes()).find(|(k, _)| k == QUERY).map(|(_, v)| v.into_owned())
}

fn forbidden(code: &'static str, message: &str) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, code, message).into_response()
}

/// Why a page was not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Away {
    /// No page cookie of this start: a bookmark, a stale tab, another
    /// browser.
    NotOpened,
    /// The printed link was opened before (each works once), or is wrong.
    LinkUsed,
}

/// The styled page that says how to get back in, with status 401.
fn signed_out_page(why: Away) -> Response {
    let reason = match why {
        Away::NotOpened => {
            "This browser has not opened the app since it last started: the app may have stopped or been \
started again, which ends every earlier session."
        }
        Away::LinkUsed => {
            "This link was already used, or belongs to an earlier start: each link that <code>tickets app</code> \
prints opens the app once."
        }
    };
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>Tickets: open the app again</title>\n<link rel=\"stylesheet\" href=\"/assets/app.css\">\n</head>\n<body>\n\
<header class=\"top\"><span class=\"brand\">Tickets</span></header>\n<main id=\"main\">\n\
<h1>Open the app again</h1>\n<p>{reason}</p>\n\
<p>To get back in, run <code>tickets app</code> on this computer: it opens the browser by itself on a desktop, \
or prints a link (<code>Open http://…/?session=…</code>) to open here. The app keeps its address, so bookmarks \
and open tabs work again once you have opened the new link.</p>\n</main>\n</body>\n</html>\n"
    );
    (StatusCode::UNAUTHORIZED, Html(page)).into_response()
}

fn unauthorized_api() -> Response {
    let mut e = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "no session: open the link that `tickets app` printed (run it again for a new one)",
    );
    e.hint = Some("run `tickets app` and open the link it prints".into());
    e.into_response()
}

/// The answer to the printed URL: the app's page, carrying the new session
/// token, and the page cookie of this start.
fn signed_in_page(state: &AppState, token: &str) -> Response {
    let page = tickets_web::index_html(tickets_web::Host::App).replacen(
        "</head>",
        &format!("<meta name=\"{TOKEN_META}\" content=\"{token}\">\n</head>"),
        1,
    );
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={PAGE_COOKIE_MAX_AGE_SECS}",
        state.page_cookie, state.keys.start
    );
    let mut resp = Html(page).into_response();
    match HeaderValue::from_str(&cookie) {
        Ok(v) => resp.headers_mut().insert(header::SET_COOKIE, v),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    resp
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
    let reading = req.method() == Method::GET || req.method() == Method::HEAD;
    if path.starts_with("/v1/") {
        if !bearer(headers).is_some_and(|t| state.keys.valid_token(t)) {
            return unauthorized_api();
        }
    } else if reading && path.starts_with("/assets/") {
        // The scripts and the style sheet: the same for everyone, and the
        // styled 401 page needs the style sheet.
        return next.run(req).await;
    } else if req.method() == Method::GET && path == "/" && secret_in_query(req.uri().query()).is_some() {
        // GET only: a HEAD (a link preview) must not use up the secret.
        let given = secret_in_query(req.uri().query()).unwrap_or_default();
        return match state.keys.exchange(&given) {
            Some(token) => signed_in_page(state, &token),
            None => signed_out_page(Away::LinkUsed),
        };
    } else if path == SIGNED_OUT_PATH
        || !cookie(headers, &state.page_cookie).is_some_and(|c| same_secret(c, &state.keys.start))
    {
        return signed_out_page(Away::NotOpened);
    }
    if !reading {
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
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; tickets_page_8124=xyz; tickets_page_8123=abc; b=2"));
        assert_eq!(cookie(&h, &page_cookie_name(8123)), Some("abc"));
        assert_eq!(cookie(&h, &page_cookie_name(8124)), Some("xyz"));
        assert_eq!(cookie(&h, &page_cookie_name(8125)), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn the_url_secret_works_once_and_differs_from_the_token() {
        let Ok((keys, secret)) = Keys::new() else { panic!("no random bytes") };
        assert!(keys.exchange(&"0".repeat(64)).is_none(), "a wrong secret");
        let token = keys.exchange(&secret).unwrap_or_default();
        assert_eq!(token.len(), 64);
        assert_ne!(token, secret);
        assert!(keys.valid_token(&token));
        assert!(!keys.valid_token(&secret), "the URL secret is no session");
        assert!(keys.exchange(&secret).is_none(), "a second use");
        assert!(keys.valid_token(&token), "a refused second use keeps the session");
    }

    #[test]
    fn the_bearer_token_is_read_from_authorization() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }
}
