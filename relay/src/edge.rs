//! The relay's network edge: the accept loop, what a connection and a
//! request may cost before any handler runs, and the answers to requests
//! that never reach one.
//!
//! Connections are served by hyper's HTTP/1 connection builder over the
//! `TcpListener` (not `axum::serve`, which hides hyper's limits):
//!
//! - at most [`connections_limit`] connections are open at once (below the
//!   process's open-files limit, so `accept` never runs out of descriptors);
//!   at the limit a new connection closes the oldest *idle* one (no request
//!   in flight: a client still sending its headers, or a kept-alive one
//!   waiting for its next request), as nginx reuses its idle keep-alive
//!   connections, or is itself closed when none is idle;
//! - hyper closes a connection that has not sent a whole request head
//!   within [`HEADER_READ_TIMEOUT_SECS`]: the timer also runs while a
//!   kept-alive connection waits for its next request, so it bounds idle
//!   connections too;
//! - a request body that sends nothing for [`REQUEST_BODY_TIMEOUT_SECS`] is
//!   cut (tower-http's request-body timeout), and a body is never larger
//!   than `REQUEST_BODY_BYTES_MAX`;
//! - [`check_request`] answers JSON 414 and 431 for URIs and headers over
//!   the relay's limits, which sit well below hyper's own ([`HYPER_HEADERS_MAX`],
//!   [`HYPER_BUF_BYTES_MAX`], and hyper's fixed 65,534-byte URI): beyond
//!   those, and for a request line that is not valid HTTP (raw bytes that
//!   are not URI characters), hyper answers by itself, with the status, an
//!   empty body and `connection: close`; [`JsonParseErrors`] gives those
//!   answers the relay's JSON body on their way out.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::http::AppError;
use tickets_core::protocol::ErrorCode;

/// The most connections open at once (lowered to fit the open-files limit).
pub const CONNECTIONS_MAX: usize = 16_384;
/// Descriptors kept for everything but connections: the listener, SQLite's
/// files for each pooled connection, logs, tokio's own.
pub const FDS_RESERVED: usize = 256;
/// A connection must send a whole request head within this time, counted
/// from its opening or from the end of its previous response (so it is also
/// the idle keep-alive timeout).
pub const HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// A request body that sends nothing for this long is cut.
pub const REQUEST_BODY_TIMEOUT_SECS: u64 = 30;
/// How long a stopping relay waits for requests in flight.
pub const SHUTDOWN_DRAIN_SECS: u64 = 10;
/// The longest request URI (path and query) the relay reads.
pub const URI_BYTES_MAX: usize = 8 * 1024;
/// The most header lines in a request.
pub const HEADERS_MAX: usize = 100;
/// The most bytes of header names and values in a request.
pub const HEADER_BYTES_MAX: usize = 32 * 1024;
/// Hyper's own header-count limit, above [`HEADERS_MAX`] so that the relay
/// answers a request with a few too many headers itself; past it, hyper's
/// bare 431 is answered with the relay's JSON (see `JsonParseErrors`).
/// Hyper reserves room for this many headers on every request it parses:
/// at 8 192 a burst of 200 devices cost the relay ~100 MiB more (run H in
/// BENCHMARKS.md), so it stays small.
pub const HYPER_HEADERS_MAX: usize = 256;
/// Hyper's read buffer limit: a request head larger than this is answered
/// by hyper itself (431, empty body).
pub const HYPER_BUF_BYTES_MAX: usize = 512 * 1024;
/// How long the accept loop pauses after an error that is not one
/// connection's (out of descriptors, for instance).
const ACCEPT_RETRY_MILLIS: u64 = 50;

/// Raises the soft open-files limit to the hard one, so the relay can hold
/// as many connections as the system lets it. Returns the soft limit in
/// force afterwards (`None`: unknown or unlimited).
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let l = getrlimit(Resource::Nofile);
    if l.current < l.maximum || (l.current.is_some() && l.maximum.is_none()) {
        let raised = Rlimit { current: l.maximum, maximum: l.maximum };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// [`CONNECTIONS_MAX`], lowered to what the open-files limit leaves.
pub fn connections_limit(open_files: Option<u64>) -> usize {
    match open_files {
        Some(n) => CONNECTIONS_MAX.min((n as usize).saturating_sub(FDS_RESERVED)).max(1),
        None => CONNECTIONS_MAX,
    }
}

/// One open connection.
struct Slot {
    /// Requests of this connection in flight (until their response body ends).
    busy: AtomicUsize,
    evicting: AtomicBool,
    evict: Notify,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Conns {
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Slot>>>,
}

impl Conns {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Slot>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> (u64, Arc<Slot>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot { busy: AtomicUsize::new(0), evicting: AtomicBool::new(false), evict: Notify::new() });
        self.lock().insert(id, slot.clone());
        (id, slot)
    }

    fn close(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Makes room for one more connection if the limit is reached: closes
    /// the oldest idle one. False when every open connection is busy.
    fn make_room(&self, limit: usize) -> bool {
        let open = self.lock();
        if open.len() < limit {
            return true;
        }
        for slot in open.values() {
            if slot.busy.load(Ordering::Acquire) == 0 && !slot.evicting.swap(true, Ordering::AcqRel) {
                slot.evict.notify_one();
                return true;
            }
        }
        false
    }
}

/// Marks a connection busy while it lives.
struct Busy(Arc<Slot>);

impl Busy {
    fn new(slot: &Arc<Slot>) -> Busy {
        slot.busy.fetch_add(1, Ordering::AcqRel);
        Busy(slot.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests
/// in flight finish (for at most [`SHUTDOWN_DRAIN_SECS`]).
pub async fn serve_connections(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limit = connections_limit(raise_open_files_limit());
    tracing::debug!(limit, "connection limit");
    let conns = Arc::new(Conns::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(HEADER_READ_TIMEOUT_SECS))
        .max_headers(HYPER_HEADERS_MAX)
        .max_buf_size(HYPER_BUF_BYTES_MAX);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MILLIS)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        if !conns.make_room(limit) {
            // Every connection is busy: this one is closed unread.
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (id, slot) = conns.open();
        let app = app.clone();
        let in_flight = slot.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let busy = Busy::new(&in_flight);
            let app = app.clone();
            async move {
                let resp = app.oneshot(req.map(Body::new)).await?;
                // The connection stays busy until the response body ends
                // (an export streams for a while).
                Ok::<_, std::convert::Infallible>(resp.map(move |b| {
                    Body::new(b.map_frame(move |f| {
                        let _ = &busy;
                        f
                    }))
                }))
            }
        });
        let io = TokioIo::new(JsonParseErrors { inner: stream, pending: None });
        let conn = graceful.watch(builder.serve_connection(io, service));
        let conns = conns.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                },
                _ = slot.evict.notified() => tracing::debug!("idle connection closed for a new one"),
            }
            conns.close(id);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(SHUTDOWN_DRAIN_SECS), graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after {SHUTDOWN_DRAIN_SECS} s; stopping anyway");
    }
    Ok(())
}

/// A connection's socket, through which hyper's own answers to request
/// heads it cannot parse (400, 414, 431 with an empty body: the relay's
/// own 4xx always have a JSON body) leave with the relay's JSON body
/// instead. Nothing of the client's bytes is parsed here: only hyper's
/// output is recognized, in the first buffer of a write (where hyper puts a
/// response head).
struct JsonParseErrors<T> {
    inner: T,
    /// A replacement being written, and how much of it is.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for JsonParseErrors<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> JsonParseErrors<T> {
    /// Writes the pending replacement, if any; `Ready(Ok(true))` once one
    /// was written whole.
    fn write_pending(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<bool>> {
        use std::task::Poll;
        let Some((replacement, written)) = &mut self.pending else { return Poll::Ready(Ok(false)) };
        while *written < replacement.len() {
            match std::pin::Pin::new(&mut self.inner).poll_write(cx, &replacement[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.pending = None;
        Poll::Ready(Ok(true))
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for JsonParseErrors<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.pending.is_none() {
            this.pending = json_parse_error(buf).map(|r| (r, 0));
        }
        match this.write_pending(cx) {
            Poll::Ready(Ok(true)) => return Poll::Ready(Ok(buf.len())),
            Poll::Ready(Ok(false)) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        std::pin::Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    /// Vectored writes keep hyper from copying every response, body
    /// included, into one buffer before writing it (which cost a burst of
    /// 200 devices ~100 MiB of relay memory). Hyper hands a response head
    /// over as the first slice, so its own bare error answers are still
    /// recognized there.
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.pending.is_none() {
            if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
                this.pending = json_parse_error(first).map(|r| (r, 0));
            }
        }
        match this.write_pending(cx) {
            Poll::Ready(Ok(true)) => return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum())),
            Poll::Ready(Ok(false)) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        std::pin::Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The JSON answer replacing `out`, if `out` is exactly one of hyper's own
/// answers to an unparsable request head.
fn json_parse_error(out: &[u8]) -> Option<Vec<u8>> {
    if !out.starts_with(b"HTTP/1.1 4") || !out.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(out).ok()?;
    if head.matches("\r\n\r\n").count() != 1 || !head.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let (status, code, error) = match head.get(9..12)? {
        "400" => (StatusCode::BAD_REQUEST, ErrorCode::BadRequestHead, "the request line or headers are not valid HTTP/1.1 (a path must be URI characters; percent-encode the rest)".to_string()),
        "414" => (StatusCode::URI_TOO_LONG, ErrorCode::UriTooLong, format!("the request URI is too long; the relay reads at most {URI_BYTES_MAX} bytes")),
        "431" => (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, ErrorCode::HeadersTooLarge, format!("the request head is too large; the relay reads at most {HEADERS_MAX} headers of {HEADER_BYTES_MAX} bytes")),
        _ => return None,
    };
    let body = serde_json::to_vec(&tickets_core::protocol::ErrorBody::new(code, error)).ok()?;
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

/// Errors of one connection, after which the listener is fine.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// Refuses, with a JSON body, a request whose URI or headers are over the
/// relay's limits or whose path is not UTF-8 once percent-decoded.
pub async fn check_request(req: Request, next: Next) -> Response {
    let uri_bytes = req.uri().path_and_query().map(|p| p.as_str().len()).unwrap_or(0);
    if uri_bytes > URI_BYTES_MAX {
        return AppError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::UriTooLong,
            format!("the request URI is {uri_bytes} bytes; the relay reads at most {URI_BYTES_MAX}: send fewer or shorter query parameters"),
        )
        .into_response();
    }
    let headers = req.headers();
    if headers.len() > HEADERS_MAX {
        return AppError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            format!("the request has {} header lines; the relay reads at most {HEADERS_MAX}", headers.len()),
        )
        .into_response();
    }
    let header_bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if header_bytes > HEADER_BYTES_MAX {
        return AppError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            format!("the request's headers are {header_bytes} bytes; the relay reads at most {HEADER_BYTES_MAX}"),
        )
        .into_response();
    }
    if percent_encoding::percent_decode_str(req.uri().path()).decode_utf8().is_err() {
        return AppError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadPath,
            "the request path is not UTF-8 once percent-decoded",
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_oldest_idle_connection_makes_room() {
        let conns = Conns::default();
        let slots: Vec<_> = (0..3).map(|_| conns.open()).collect();
        assert!(conns.make_room(4), "under the limit");
        let _busy = Busy::new(&slots[0].1);
        assert!(conns.make_room(3));
        // The oldest (slot 0) is busy: slot 1 is the one told to close.
        assert!(!slots[0].1.evicting.load(Ordering::Acquire));
        assert!(slots[1].1.evicting.load(Ordering::Acquire));
        conns.close(slots[1].0);
        let _busy2 = Busy::new(&slots[2].1);
        let (_, newest) = conns.open();
        let _busy3 = Busy::new(&newest);
        assert!(!conns.make_room(3), "every connection is busy");
    }

    #[test]
    fn only_hyper_s_empty_answers_are_replaced() {
        let hyper_414 = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let json = json_parse_error(hyper_414).expect("replaced");
        let text = String::from_utf8(json).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\n"), "{text}");
        assert!(text.ends_with(r#""code":"uri_too_long"}"#), "{text}");
        assert!(json_parse_error(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").is_some());
        // The relay's own answers, and anything with a body, pass as they are.
        assert!(json_parse_error(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}").is_none());
        assert!(json_parse_error(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(json_parse_error(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(json_parse_error(b"{\"tickets\": []}").is_none());
    }

    #[test]
    fn the_connection_limit_leaves_descriptors_for_the_rest() {
        assert_eq!(connections_limit(Some(20_000)), CONNECTIONS_MAX.min(20_000 - FDS_RESERVED));
        assert_eq!(connections_limit(Some(1024)), 1024 - FDS_RESERVED);
        assert_eq!(connections_limit(Some(10)), 1);
        assert_eq!(connections_limit(None), CONNECTIONS_MAX);
    }
}
