//! `tickets app`: serves the node's app on loopback (see the `tickets_app`
//! crate), prints the one URL to open, opens the browser on a desktop, and
//! stops cleanly on SIGTERM or Ctrl-C.
//!
//! The app keeps its port per home folder (`app.port`): started again, it
//! listens at the same address when that is free, so bookmarks and open
//! tabs reach it again (they get a page saying to open the new link). The
//! browser is never given the secret URL on its command line, where every
//! local user can read it (`/proc/PID/cmdline`): it opens `app-open.html`,
//! a private file (0600) in the home folder that forwards to the URL.

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

/// The file in the home folder that remembers the app's port.
pub const PORT_FILE: &str = "app.port";

/// The private file the browser opens, forwarding to the secret URL.
pub const OPEN_FILE: &str = "app-open.html";

/// The browser command, if set: run with the path of [`OPEN_FILE`] as its
/// one argument, instead of the desktop's opener.
pub const BROWSER_ENV: &str = "TICKETS_BROWSER";

/// The port this home's app listened on last time, if it recorded one.
fn remembered_port(home: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(home.join(PORT_FILE)).ok()?;
    text.trim().parse::<u16>().ok().filter(|p| *p != 0)
}

/// Records the port for the next start; a failure is only mentioned.
fn remember_port(home: &Path, port: u16) {
    let path = home.join(PORT_FILE);
    let written = tickets_node::home::create_private_file(&path).and_then(|mut f| writeln!(f, "{port}"));
    if let Err(e) = written {
        let _ = writeln!(std::io::stderr(), "warning: cannot record the app's port in {}: {e}", path.display());
    }
}

/// Binds the app's listener: `--listen` if given, else this home's port of
/// last time when it is free, else a free one (and says so).
async fn bind(home: &Path, listen: Option<SocketAddr>) -> Result<tokio::net::TcpListener> {
    let cannot = |addr: SocketAddr, e: std::io::Error| {
        user_error(
            format!("cannot listen on {addr}: {e}"),
            Some("pick another address with --listen 127.0.0.1:PORT, or leave out --listen"),
        )
    };
    if let Some(addr) = listen {
        return tokio::net::TcpListener::bind(addr).await.map_err(|e| cannot(addr, e));
    }
    let loopback = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let before = remembered_port(home);
    if let Some(port) = before {
        if let Ok(l) = tokio::net::TcpListener::bind(loopback(port)).await {
            return Ok(l);
        }
    }
    let l = tokio::net::TcpListener::bind(loopback(0)).await.map_err(|e| cannot(loopback(0), e))?;
    let port = l.local_addr()?.port();
    if let Some(old) = before {
        let _ = writeln!(
            std::io::stderr(),
            "port {old} of the last start is taken (is this app running already?); the app moved to port {port}: \
bookmarks of the old address will not reach it"
        );
    }
    remember_port(home, port);
    Ok(l)
}

/// The address `--listen` names, if given.
fn listen_addr(a: &AppArgs) -> Result<Option<SocketAddr>> {
    let Some(text) = a.listen.as_deref().map(str::trim) else {
        return Ok(None);
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
    Ok(Some(addr))
}

/// Writes the private page that forwards the browser to `url` (a meta
/// refresh, and a link for a browser that does not follow it), as
/// Jupyter does: the secret stays off every command line.
fn write_open_file(home: &Path, url: &str) -> std::io::Result<std::path::PathBuf> {
    let path = home.join(OPEN_FILE);
    let mut f = tickets_node::home::create_private_file(&path)?;
    // The URL is ours (an address and hex), but is escaped all the same.
    let url = url.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;");
    write!(
        f,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"refresh\" content=\"0;url={url}\">\n<title>Opening Tickets</title>\n</head>\n<body>\n\
<p>Opening the app… If nothing happens, <a href=\"{url}\">open Tickets</a>.</p>\n</body>\n</html>\n"
    )?;
    f.sync_all()?;
    Ok(path)
}

/// Opens the browser on `file` (the forwarding page): `TICKETS_BROWSER` if
/// set, else the desktop's opener if there is a desktop; a failure is only
/// mentioned.
fn open_browser(file: &Path) {
    let custom = std::env::var_os(BROWSER_ENV).filter(|v| !v.is_empty());
    let opener = if let Some(c) = custom {
        Some(c)
    } else if cfg!(target_os = "macos") {
        Some("open".into())
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        Some("xdg-open".into())
    } else {
        None
    };
    let Some(opener) = opener else { return };
    let spawned = std::process::Command::new(&opener)
        .arg(file)
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
            let _ = writeln!(
                std::io::stderr(),
                "could not open a browser ({}: {e}); open the URL yourself",
                opener.to_string_lossy()
            );
        }
    }
}

pub fn run(home: &Path, a: AppArgs) -> Result<()> {
    let listen = listen_addr(&a)?;
    let mut node = tickets_node::home::open(home)?;
    let registered = node.profile()?.relay.is_some();
    let agent = node.agent().to_string();
    drop(node);
    let sync = registered && !a.offline;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let listener = bind(home, listen).await?;
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
        let mut open_file = None;
        if !a.no_open {
            match write_open_file(home, &url) {
                Ok(file) => {
                    open_browser(&file);
                    open_file = Some(file);
                }
                Err(e) => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "could not write the page that opens the browser ({e}); open the URL yourself"
                    );
                }
            }
        }
        let served = app.serve(listener, crate::relay_cmd::shutdown_signal()).await;
        if let Some(file) = open_file {
            let _ = std::fs::remove_file(file);
        }
        served?;
        let _ = writeln!(std::io::stderr(), "the app stopped");
        Ok(())
    })
}
