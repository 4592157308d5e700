//! The optional configuration file. Precedence, highest first: command-line
//! flags, environment variables, the configuration file, built-in defaults.
//!
//! The file is TOML, found at `--config PATH`, else `TICKETS_CONFIG`, else
//! `~/.config/tickets/config.toml` if it exists. Every key stands for the
//! environment variable of the same setting and only fills it when the
//! environment does not set it, so flags and the environment keep winning:
//!
//! ```toml
//! home = "/home/ana/.tickets"         # TICKETS_HOME
//! [relay]
//! db = "/var/lib/tickets/relay.db"    # TICKETS_RELAY_DB
//! listen = "0.0.0.0:8080"             # TICKETS_LISTEN
//! log_format = "json"                 # TICKETS_LOG_FORMAT
//! log = "info"                        # TICKETS_LOG
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    home: Option<PathBuf>,
    #[serde(default)]
    relay: RelaySection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RelaySection {
    db: Option<PathBuf>,
    listen: Option<String>,
    log_format: Option<String>,
    log: Option<String>,
}

/// The configuration file named on the command line (`--config PATH`
/// anywhere before a `--`), if any.
fn from_args() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--" {
            return None;
        }
        if a == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(v) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            return Some(PathBuf::from(v));
        }
    }
    None
}

/// Reads the configuration file, if one is named or present, into the
/// environment variables it stands for. Called before the command line is
/// parsed, on the main thread, before any other thread exists.
pub fn load() -> Result<Option<PathBuf>, String> {
    let named = from_args().or_else(|| std::env::var_os("TICKETS_CONFIG").map(PathBuf::from));
    let path = match named {
        Some(p) => p,
        None => match std::env::var_os("HOME") {
            Some(h) => {
                let p = Path::new(&h).join(".config/tickets/config.toml");
                if !p.exists() {
                    return Ok(None);
                }
                p
            }
            None => return Ok(None),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
    let file: File = toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?;
    let set = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            if std::env::var_os(key).is_none() {
                std::env::set_var(key, v);
            }
        }
    };
    set("TICKETS_HOME", file.home.map(|p| p.to_string_lossy().into_owned()));
    set("TICKETS_RELAY_DB", file.relay.db.map(|p| p.to_string_lossy().into_owned()));
    set("TICKETS_LISTEN", file.relay.listen);
    set("TICKETS_LOG_FORMAT", file.relay.log_format);
    set("TICKETS_LOG", file.relay.log);
    Ok(Some(path))
}
