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

/// The scripts (ES modules) and the style sheet, by name.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.css", CSS, include_bytes!("../assets/app.css")),
    ("app.js", JS, include_bytes!("../assets/app.js")),
    ("api.js", JS, include_bytes!("../assets/api.js")),
    ("detail.js", JS, include_bytes!("../assets/detail.js")),
    ("dom.js", JS, include_bytes!("../assets/dom.js")),
    ("form.js", JS, include_bytes!("../assets/form.js")),
    ("inbox.js", JS, include_bytes!("../assets/inbox.js")),
    ("list.js", JS, include_bytes!("../assets/list.js")),
    ("state.js", JS, include_bytes!("../assets/state.js")),
];
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// A static asset under `/assets/NAME`: its content type and bytes.
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS.iter().find(|(n, _, _)| *n == name).map(|(_, t, b)| (*t, *b))
}

/// Every asset's name (for servers that list or preload them).
pub fn asset_names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(n, _, _)| *n)
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

    /// Every module the scripts import, and every file the page links,
    /// is in the table: a missing one would only show in a browser.
    #[test]
    fn every_imported_module_is_served() {
        let page = index_html(Host::App);
        for name in asset_names() {
            let (_, bytes) = asset(name).unwrap_or_else(|| panic!("{name} is listed but not served"));
            let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{name} is not UTF-8: {e}"));
            for import in text.split("from \"./").skip(1) {
                let module = import.split('"').next().unwrap_or_default();
                assert!(asset(module).is_some(), "{name} imports ./{module}, which is not in the asset table");
            }
        }
        for linked in page.split("\"/assets/").skip(1) {
            let file = linked.split('"').next().unwrap_or_default();
            assert!(asset(file).is_some(), "index.html links /assets/{file}, which is not in the asset table");
        }
    }

    /// The page's own script and styles stay well under 200 KB.
    #[test]
    fn the_ui_is_small() {
        let total: usize = asset_names().filter_map(asset).map(|(_, b)| b.len()).sum();
        assert!(total < 120 * 1024, "the UI's scripts and styles are {total} bytes; keep them well under 200 KB");
    }

    /// Ticket text is never parsed as markup: no script sets innerHTML,
    /// outerHTML or uses insertAdjacentHTML / document.write.
    #[test]
    fn no_script_parses_markup() {
        for name in asset_names().filter(|n| n.ends_with(".js")) {
            let (_, bytes) = asset(name).unwrap_or_else(|| panic!("{name} is listed but not served"));
            let text = String::from_utf8_lossy(bytes);
            for bad in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
                assert!(!text.contains(bad), "{name} uses {bad}: build the DOM and set textContent instead");
            }
        }
    }
}
