//! The web UI, one codebase for two hosts: the node's app (`tickets app`,
//! read-write over the local node) and the relay's dashboard (`GET /`,
//! read-only over the authoritative API). Plain HTML, CSS and a script with
//! no build step; the files in `web/assets/` are compiled into the binary,
//! so nothing is ever loaded from outside it.

/// Which server hosts the page: the UI reads it from `<html data-host>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The node's app: reads and writes the local node, session cookie.
    App,
    /// The relay's dashboard: read-only, signs in with a bearer token.
    Relay,
}

impl Host {
    pub fn as_str(self) -> &'static str {
        match self {
            Host::App => "app",
            Host::Relay => "relay",
        }
    }
}

const INDEX_HTML: &str = include_str!("../assets/index.html");

/// The page, marked with its host.
pub fn index_html(host: Host) -> String {
    INDEX_HTML.replacen("data-host=\"\"", &format!("data-host=\"{}\"", host.as_str()), 1)
}

/// A static asset under `/assets/NAME`: its content type and bytes.
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    match name {
        "app.js" => Some(("text/javascript; charset=utf-8", include_bytes!("../assets/app.js"))),
        "app.css" => Some(("text/css; charset=utf-8", include_bytes!("../assets/app.css"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_its_host() {
        assert!(index_html(Host::App).contains("data-host=\"app\""));
        assert!(index_html(Host::Relay).contains("data-host=\"relay\""));
    }

    #[test]
    fn unknown_assets_are_none() {
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("app.js").is_some());
    }
}
