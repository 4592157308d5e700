//! A fault-injecting TCP proxy between nodes and the relay: while faulty,
//! it passes every third connection through and cuts the others after a
//! random number of bytes (log-uniform, so from the headers to deep in a
//! body) of the request or, on the next connection, of the response. Seeded, so a failing run
//! can be replayed with the printed seed.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::harness::Rng;

/// A cut connection forwards fewer than 2^this bytes in the direction it is
/// cut.
const CUT_AFTER_BITS_MAX: u64 = 18;

pub struct Proxy {
    pub addr: SocketAddr,
    faulty: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Connections accepted, and how many were cut in a request or in a
    /// response.
    pub connections: Arc<AtomicU64>,
    pub cuts_up: Arc<AtomicU64>,
    pub cuts_down: Arc<AtomicU64>,
}

impl Proxy {
    /// Starts forwarding to `upstream`, faultless until [`Proxy::set_faulty`].
    pub fn start(upstream: SocketAddr, seed: u64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let proxy = Proxy {
            addr,
            faulty: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            connections: Arc::new(AtomicU64::new(0)),
            cuts_up: Arc::new(AtomicU64::new(0)),
            cuts_down: Arc::new(AtomicU64::new(0)),
        };
        let (faulty, stop, connections) = (proxy.faulty.clone(), proxy.stop.clone(), proxy.connections.clone());
        let (cuts_up, cuts_down) = (proxy.cuts_up.clone(), proxy.cuts_down.clone());
        let rng = Arc::new(Mutex::new(Rng::new(seed)));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    // The relay is down: the client sees a closed connection.
                    continue;
                };
                let n = connections.fetch_add(1, Ordering::Relaxed);
                // Per connection: pass it through, or cut it after some
                // bytes of the request (upstream) or of the response.
                let budget = || {
                    let mut r = rng.lock().expect("rng");
                    let bits = r.range(4, CUT_AFTER_BITS_MAX);
                    Some(r.range(1, 1 << bits))
                };
                let (up, down) = match (faulty.load(Ordering::Relaxed), n % 3) {
                    (true, 0) => (budget(), None),
                    (true, 1) => (None, budget()),
                    _ => (None, None),
                };
                let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => continue,
                };
                let cuts_up = cuts_up.clone();
                std::thread::spawn(move || pipe(client, server, up, &cuts_up));
                let cuts_down = cuts_down.clone();
                std::thread::spawn(move || pipe(s2, c2, down, &cuts_down));
            }
        });
        proxy
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_faulty(&self, on: bool) {
        self.faulty.store(on, Ordering::Relaxed);
    }

    /// (connections, cut in a request, cut in a response).
    pub fn stats(&self) -> (u64, u64, u64) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (get(&self.connections), get(&self.cuts_up), get(&self.cuts_down))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies `from` to `to`; with a budget, stops after that many bytes and
/// closes both connections (both directions) abruptly.
fn pipe(mut from: TcpStream, mut to: TcpStream, budget: Option<u64>, cuts: &AtomicU64) {
    let mut left = budget.unwrap_or(u64::MAX);
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let take = (n as u64).min(left) as usize;
        if to.write_all(&buf[..take]).is_err() {
            break;
        }
        left -= take as u64;
        if left == 0 {
            cuts.fetch_add(1, Ordering::Relaxed);
            // Both peers see the connection end in the middle of a message
            // (HTTP bodies here carry a length, so a short one is an error).
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
    }
    // One side finished: pass the end on.
    let _ = to.shutdown(Shutdown::Write);
}
