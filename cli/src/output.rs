//! Terminal output: colours when stdout is a terminal (and `NO_COLOR` is
//! unset), tables, and writes that end quietly on a closed pipe.

use std::io::{IsTerminal, Write};

use comfy_table::{presets, Cell, Color, ContentArrangement, Table};

/// Whether to colour stdout.
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Writes to stdout; a closed pipe ends the program quietly (exit 0), as
/// `tickets list | head` expects.
pub fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write output: {e}");
        std::process::exit(255);
    }
}

pub fn outln(s: &str) {
    let mut line = String::with_capacity(s.len() + 1);
    line.push_str(s);
    line.push('\n');
    out(&line);
}

pub fn json(v: &serde_json::Value) {
    outln(&serde_json::to_string_pretty(v).unwrap_or_default());
}

fn ansi(code: &str, s: &str) -> String {
    if color_enabled() {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

pub fn bold(s: &str) -> String {
    ansi("1", s)
}

pub fn dim(s: &str) -> String {
    ansi("2", s)
}

pub fn paint(state: &str, s: &str) -> String {
    match state {
        "green" | "met" => ansi("32", s),
        "yellow" => ansi("33", s),
        "red" | "breached" => ansi("31", s),
        "urgent" => ansi("1;31", s),
        "high" => ansi("33", s),
        _ => s.to_string(),
    }
}

/// A table cell; its text is made harmless for a terminal.
pub fn cell(text: &str, color: Option<Color>) -> Cell {
    let c = Cell::new(crate::term::safe(text));
    match color {
        Some(col) if color_enabled() => c.fg(col),
        _ => c,
    }
}

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_HORIZONTAL_ONLY);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    if !std::io::stdout().is_terminal() {
        t.force_no_tty();
    }
    t.set_header(header.iter().map(|h| Cell::new(h).add_attribute(comfy_table::Attribute::Bold)));
    t
}

pub fn human(secs: u64) -> String {
    tickets_core::duration::format_duration(secs)
}

/// Short local-ish rendering of an ISO time for tables.
pub fn short_time(iso: &str) -> String {
    iso.get(..16).map(|s| s.replace('T', " ")).unwrap_or_else(|| iso.to_string())
}
