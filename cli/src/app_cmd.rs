//! `tickets app`: serves the node's app on loopback (see the `tickets_app`
//! crate), prints the one URL to open, opens the browser on a desktop, and
//! stops cleanly on SIGTERM or Ctrl-C.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::Result;

use crate::output::outln;
use crate::user_error;

#[derive(clap::Args, Debug)]
pub struct AppArgs {
    /// The address to listen on (default: 127.0.0.1 on a free port).
    #[arg(long)]
    pub listen: Option<String>,
    /// Do not open a browser; only print the URL.
    #[arg(long)]
    pub no_open: bool,
    /// Do not sync with the relay while the app runs.
    #[arg(long)]
    pub offline: bool,
    /// Allow a --listen address that is not loopback: anyone who can reach
    /// it and has the printed URL can read and change this node's tickets,
    /// over plain HTTP.
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// Print {"url": ...} instead of the line for people.
    #[arg(long)]
    pub json: bool,
}

/// The address to bind: loopback on a free port unless told otherwise.
fn listen_addr(a: &AppArgs) -> Result<SocketAddr> {
    let Some(text) = a.listen.as_deref().map(str::trim) else {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
    };
    let addr = match text.strip_prefix("localhost:") {
        Some(port) => port.parse::<u16>().ok().map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p)),
        None => text.parse::<SocketAddr>().ok(),
    };
    let Some(addr) = addr else {
        return Err(user_error(
            format!("'{text}' is not an address to listen on"),
            Some("use IP:PORT, e.g. --listen 127.0.0.1:8090 (port 0 picks a free one)"),
        ));
    };
    if addr.ip().is_unspecified() {
        // The Host check needs the one address the browser will use.
        return Err(user_error(
            format!("--listen {addr} names no single address"),
            Some("name the interface's own address, e.g. --listen 192.168.1.20:8090 --allow-non-loopback"),
        ));
    }
    if !addr.ip().is_loopback() {
        if !a.allow_non_loopback {
            return Err(user_error(
                format!("--listen {addr} is not loopback: other machines could reach this node's tickets"),
                Some("add --allow-non-loopback if that is what you want, or leave out --listen"),
            ));
        }
        let _ = writeln!(
            std::io::stderr(),
            "warning: listening on {addr}, not loopback: anyone who can reach it and has the URL below can read and \
change this node's tickets, over plain HTTP"
        );
    }
    Ok(addr)
}

/// Opens `url` in the desktop's browser, if there is a desktop; a failure
/// is only mentioned.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        Some("open")
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        Some("xdg-open")
    } else {
        None
    };
    let Some(opener) = opener else { return };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        // Reaped on a thread of its own so that it leaves no zombie.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "could not open a browser ({opener}: {e}); open the URL yourself");
        }
    }
}

pub fn run(home: &Path, a: AppArgs) -> Result<()> {
    let addr = listen_addr(&a)?;
    let mut node = tickets_node::home::open(home)?;
    let registered = node.profile()?.relay.is_some();
    let agent = node.agent().to_string();
    drop(node);
    let sync = registered && !a.offline;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            user_error(
                format!("cannot listen on {addr}: {e}"),
                Some("pick another address with --listen 127.0.0.1:PORT, or leave out --listen"),
            )
        })?;
        let local = listener.local_addr()?;
        let app = tickets_app::App::new(tickets_app::Config { home: home.to_path_buf(), sync }, local)?;
        let url = app.url();
        if a.json {
            outln(&serde_json::json!({"url": url}).to_string());
        } else {
            outln(&format!("Open {url}"));
        }
        let mode = match (registered, a.offline) {
            (true, false) => "syncing with the relay in the background",
            (true, true) => "offline: not syncing (--offline)",
            (false, _) => "local node: not registered with a relay",
        };
        let _ = writeln!(std::io::stderr(), "the app for {agent} ({}); {mode}; Ctrl-C stops it", home.display());
        if !a.no_open {
            open_browser(&url);
        }
        app.serve(listener, crate::relay_cmd::shutdown_signal()).await?;
        let _ = writeln!(std::io::stderr(), "the app stopped");
        Ok(())
    })
}
