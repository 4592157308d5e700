//! `tickets`: one binary for agents' nodes and the relay operator.
//!
//! - `main.rs`: argument parsing, dispatch and exit codes.
//! - [`node_cmd`]: the agent's commands on the local node.
//! - [`app_cmd`]: `tickets app`, the node's web app.
//! - [`sync_cmd`]: registering with a relay, sync, watch and the board.
//! - [`relay_cmd`]: the operator's `tickets relay ...` commands.
//! - [`export_cmd`]: downloading an authoritative export.
//! - [`tickets_table`]: tickets as a terminal table.
//! - [`output`]: terminal output, colours and tables.
//! - [`term`]: text from people made harmless for a terminal.
//!
//! Finding the home folder, opening the node, short ids and the code and
//! hint of each node error live in `tickets_node::home`, shared with the
//! app.
//!
//! Exit codes: 0 success, 1 a user error (one line on stderr, with a hint
//! where one helps), 2 a usage error, 255 an internal error.
//!
//! With `--json`, an error is instead one JSON object on stdout,
//! `{"error": MESSAGE, "code": CODE, "hint": HINT}` (`hint` only when there
//! is one), with the same exit code; usage errors from argument parsing
//! (exit 2) stay on stderr. Every command follows this one rule.

mod app_cmd;
mod config;
mod demo;
mod export_cmd;
mod node_cmd;
mod output;
mod relay_cmd;
mod sync_cmd;
mod term;
mod tickets_table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Offline-first support tickets.
#[derive(Parser, Debug)]
#[command(
    name = "tickets",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = ERRORS_HELP
)]
pub struct Cli {
    /// The node's data folder (default: ~/.tickets).
    #[arg(long, global = true, env = "TICKETS_HOME")]
    pub home: Option<PathBuf>,
    /// A TOML configuration file (default: ~/.config/tickets/config.toml if
    /// present). Flags win over environment variables, which win over it.
    #[arg(long, global = true, env = "TICKETS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// How errors reach a person or a script, shown under `tickets --help`.
const ERRORS_HELP: &str = "Errors: one line on stderr (`error: ...`, maybe a `hint: ...`) and exit 1; \
with --json, a JSON object {\"error\": ..., \"code\": ..., \"hint\": ...} on stdout instead, \
still exit 1. Usage errors exit 2, internal errors 255.";

/// `tickets create --help`: examples and the conversation file (SPEC §1.2).
const CREATE_HELP: &str = "Examples:
  tickets create --subject 'Printer jams' --priority high --category hardware
  tickets create --subject 'Refund' --priority medium --category billing --conversation chat.json
  tickets create --subject 'Order lost' --priority high --category billing --conversation chatwoot:support:10

--conversation takes a conversation of this device's inbox by its id (see
`tickets inbox`; `tickets sync` brings them) or a conversation file.
The conversation file (--conversation) is one JSON object:
  {\"id\": \"wa-4711\", \"channel\": \"whatsapp\", \"customer\": {\"name\": \"Maria Lopez\"},
   \"messages\": [
     {\"from\": \"Maria Lopez\", \"role\": \"customer\", \"text\": \"My refund never arrived\",
      \"at\": \"2026-11-24T09:15:00Z\"},
     {\"from\": \"ana\", \"role\": \"agent\", \"text\": \"Checking now\", \"at\": \"2026-11-24T09:20:00Z\"}]}
id is required; role is customer or agent; at is an RFC 3339 time. The ticket
links the conversation, and its description gets the customer, channel and last
5 messages (after --description, if given). A conversation makes one ticket: a
second create prints the existing ticket's id and fails unless --force.";

/// `tickets import --help`: the record format.
const IMPORT_HELP: &str = "Example:
  tickets import tickets.ndjson

The file is a JSON array of records, or NDJSON (one record per line; blank
lines are skipped). A record:
  {\"subject\": \"Printer jams\", \"priority\": \"high\", \"category\": \"hardware\",
   \"description\": \"Tray 2\", \"status\": \"in-progress\", \"assignee\": \"team:field\"}
subject, priority (low|medium|high|urgent) and category are required;
description, status (open|in-progress|resolved|closed, default open) and
assignee (an agent name or team:NAME) are optional; any other key is refused.
Records are checked first: every bad one is reported (the first 20, then a
count) and nothing is imported; otherwise all are, in one transaction.";

/// What every command that takes several ids says under `--help`.
macro_rules! bulk_help {
    () => {
        "Several ids edit several tickets in one transaction; `-` as the only id reads ids from \
stdin (one per line or separated by spaces). A ticket that cannot take the edit (unknown or \
ambiguous id, closed, a value outside the taxonomy) is named with a code and the others apply; \
the exit status is 1 if any was refused. --json prints {\"applied\": [ids], \"refused\": \
[{\"id\", \"code\", \"error\"}]}."
    };
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a node in the home folder, or register it with a relay.
    #[command(
        after_help = "Examples:\n  tickets init --agent ana\n  tickets init --relay https://tickets.example.com --token tk_...\n  tickets --home /tmp/ana init --agent ana"
    )]
    Init(InitArgs),
    /// Create a ticket; prints its id.
    #[command(
        after_help = "Examples:\n  tickets create --subject 'Printer jams' --priority high --category hardware\n  tickets create --subject 'Refund' --priority medium --category billing --conversation chat.json\n\n`tickets create --help` shows the conversation file's format.",
        after_long_help = CREATE_HELP
    )]
    Create(CreateArgs),
    /// List tickets, newest first.
    #[command(
        after_help = "Examples:\n  tickets list --status open --sort -priority\n  tickets list --search printer --json"
    )]
    List(ListArgs),
    /// Show one ticket: fields, comments, notes and its timeline.
    #[command(after_help = "Examples:\n  tickets show 3f2a\n  tickets show 3f2a --json | jq .sla")]
    Show(ShowArgs),
    /// Edit a ticket's fields.
    #[command(after_help = "Example:\n  tickets edit 3f2a --priority urgent --subject 'Printer on fire'")]
    Edit(EditArgs),
    /// Assign tickets to an agent or a team, or unassign them with --none.
    #[command(
        after_help = concat!("Examples:\n  tickets assign 3f2a ana\n  tickets assign 3f2a 9b1c 77aa team:field\n  tickets assign 3f2a --none\n  tickets list --status open --json | jq -r '.[].id' | tickets assign - bob\n\n", bulk_help!())
    )]
    Assign(AssignArgs),
    /// Set tickets' status; without arguments, show the node's state.
    #[command(
        after_help = concat!("Examples:\n  tickets status 3f2a resolved\n  tickets status 3f2a 9b1c closed\n  tickets status            # backlog, last sync, tickets new for you\n\n", bulk_help!())
    )]
    Status(StatusArgs),
    /// Set tickets' priority.
    #[command(
        after_help = concat!("Examples:\n  tickets priority 3f2a urgent\n  tickets priority 3f2a 9b1c high\n\n", bulk_help!())
    )]
    Priority(PriorityArgs),
    /// Saved views: a name for list filters, sort and search.
    #[command(
        after_help = "Examples:\n  tickets view save 'Urgent open' --status open --priority urgent --sort sla\n  tickets view list\n  tickets list --view 'Urgent open' --assignee ana\n  tickets view delete 'Urgent open'"
    )]
    View(ViewArgs),
    /// Add a comment (visible to everyone who sees the ticket).
    #[command(after_help = "Example:\n  tickets comment 3f2a 'Replaced the toner, testing now'")]
    Comment(TextArgs),
    /// Add an internal note (visible only to permitted agents).
    #[command(after_help = "Example:\n  tickets note 3f2a 'Customer is on the premium plan'")]
    Note(TextArgs),
    /// Import tickets from a JSON array or NDJSON file, in one transaction.
    #[command(
        after_help = "Example:\n  tickets import tickets.ndjson\n\n`tickets import --help` shows the record format.",
        after_long_help = IMPORT_HELP
    )]
    Import(ImportArgs),
    /// The inbox: recent conversations from chat tools, on this device
    /// (received by `tickets sync`).
    #[command(
        after_help = "Examples:\n  tickets inbox\n  tickets inbox --json\n  tickets create --conversation chatwoot:support:10 --subject 'Order lost' --priority high --category billing"
    )]
    Inbox(InboxArgs),
    /// Push local edits to the relay and pull everyone else's.
    #[command(
        after_help = "Examples:\n  tickets sync\n  tickets sync --watch      # stay connected\n  tickets sync --dry-run    # what would be pushed"
    )]
    Sync(SyncArgs),
    /// The authoritative SLA board, from the relay.
    #[command(after_help = "Examples:\n  tickets board\n  tickets board --sla red --json")]
    Board(BoardArgs),
    /// Download an authoritative export from the relay (leads and admins).
    #[command(
        after_help = "Examples:\n  tickets export --format csv -o export/\n  tickets export --format ndjson --from 2026-11-01 --to 2026-11-30 --status resolved -o nov.ndjson"
    )]
    Export(export_cmd::ExportArgs),
    /// Serve the node's app (the web UI) on loopback and print the URL to
    /// open; syncs in the background while registered.
    #[command(
        after_help = "Examples:\n  tickets app\n  tickets app --no-open --offline\n  tickets app --listen 127.0.0.1:8090"
    )]
    App(app_cmd::AppArgs),
    /// Run and administer a relay.
    Relay(relay_cmd::RelayArgs),
    /// A relay and three agents in a temporary folder: offline edits,
    /// conflicts, sync, the SLA board; then exits.
    #[command(after_help = "Examples:\n  tickets demo\n  tickets demo --serve      # keep the relay and dashboard up")]
    Demo(demo::DemoArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  tickets completions bash > /etc/bash_completion.d/tickets\n  tickets completions zsh > \"${fpath[1]}/_tickets\"\n  tickets completions fish > ~/.config/fish/completions/tickets.fish"
    )]
    Completions { shell: clap_complete::Shell },
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Stay connected and sync as soon as anything changes.
    #[arg(long)]
    pub watch: bool,
    /// Show what would be pushed, and the last sync, without syncing.
    #[arg(long, conflicts_with = "watch")]
    pub dry_run: bool,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BoardArgs {
    /// Only tickets of this SLA colour: green, yellow or red.
    #[arg(long)]
    pub sla: Option<String>,
    /// Only tickets in this status: open, in-progress, resolved or closed
    /// (repeatable).
    #[arg(long)]
    pub status: Vec<String>,
    /// Text in the subject, or an id prefix.
    #[arg(long, allow_hyphen_values = true)]
    pub search: Option<String>,
    /// sla (default), created, updated, priority, status, subject, assignee
    /// or category; a leading '-' sorts descending.
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// At most this many tickets.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The agent's name, for a local-only node.
    #[arg(long)]
    pub agent: Option<String>,
    /// Register this device with a relay (also later, on a local-only node).
    #[arg(long, requires = "token")]
    pub relay: Option<String>,
    /// The token the relay operator issued for this agent.
    #[arg(long, requires = "relay")]
    pub token: Option<String>,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InboxArgs {
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// A one-line summary (at most 500 characters).
    #[arg(long, required = true, allow_hyphen_values = true)]
    pub subject: Option<String>,
    /// low, medium, high or urgent.
    #[arg(long, required = true)]
    pub priority: Option<String>,
    /// A category of the relay's taxonomy (any name before the first sync).
    #[arg(long, required = true)]
    pub category: Option<String>,
    /// The longer story (default: none, or the conversation's last messages).
    #[arg(long, allow_hyphen_values = true)]
    pub description: Option<String>,
    /// An agent name or team:NAME.
    #[arg(long)]
    pub assignee: Option<String>,
    /// An inbox conversation's id (see `tickets inbox`), or a conversation
    /// file (JSON, format below): the ticket links to it and one
    /// conversation makes one ticket.
    #[arg(long, value_name = "ID|FILE")]
    pub conversation: Option<PathBuf>,
    /// Create a new ticket even if the conversation already has one.
    #[arg(long)]
    pub force: bool,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this status: open, in-progress, resolved or closed (repeatable).
    #[arg(long)]
    pub status: Vec<String>,
    /// Only this priority: low, medium, high or urgent (repeatable).
    #[arg(long)]
    pub priority: Vec<String>,
    /// Only this category (repeatable).
    #[arg(long)]
    pub category: Vec<String>,
    /// Only this assignee: an agent name or team:NAME (repeatable).
    #[arg(long)]
    pub assignee: Vec<String>,
    /// green, yellow or red.
    #[arg(long)]
    pub sla: Option<String>,
    /// Words in the subject, description, customer name or comments (any
    /// case, accents and punctuation), or an id prefix.
    #[arg(long, allow_hyphen_values = true)]
    pub search: Option<String>,
    /// created, updated, priority, status, subject, assignee, category or sla;
    /// a leading '-' sorts descending (default: -created).
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// At most this many tickets (a table shows 50 and --json 100 unless
    /// told; a note on stderr says when more match).
    #[arg(long, conflicts_with = "all")]
    pub limit: Option<usize>,
    /// Start from a saved view (`tickets view list`); a filter flag given
    /// here replaces the view's value for that filter.
    #[arg(long)]
    pub view: Option<String>,
    /// Every matching ticket, however many.
    #[arg(long)]
    pub all: bool,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The ticket id, or any unique prefix of it.
    pub id: String,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct EditArgs {
    /// The ticket id, or any unique prefix of it.
    pub id: String,
    /// The new subject.
    #[arg(long, allow_hyphen_values = true)]
    pub subject: Option<String>,
    /// The new description (replaces the old one).
    #[arg(long, allow_hyphen_values = true)]
    pub description: Option<String>,
    /// The new priority: low, medium, high or urgent.
    #[arg(long)]
    pub priority: Option<String>,
    /// The new category, from the relay's taxonomy.
    #[arg(long)]
    pub category: Option<String>,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct AssignArgs {
    /// Ticket ids (or unique prefixes; `-` reads them from stdin), then an
    /// agent name or team:NAME (none with --none).
    #[arg(value_name = "ID… AGENT|team:NAME", required = true, num_args = 1..)]
    pub args: Vec<String>,
    /// Remove the assignee.
    #[arg(long)]
    pub none: bool,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Ticket ids (or unique prefixes; `-` reads them from stdin), then
    /// open, in-progress, resolved or closed (none: show the node's state).
    #[arg(value_name = "ID… STATUS")]
    pub args: Vec<String>,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PriorityArgs {
    /// Ticket ids (or unique prefixes; `-` reads them from stdin), then
    /// low, medium, high or urgent.
    #[arg(value_name = "ID… PRIORITY", required = true, num_args = 2..)]
    pub args: Vec<String>,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ViewArgs {
    #[command(subcommand)]
    pub command: ViewCommand,
}

#[derive(Subcommand, Debug)]
pub enum ViewCommand {
    /// Save (or replace) a view: a name for list filters, sort and search.
    Save(ViewSaveArgs),
    /// List the saved views.
    List {
        /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
        #[arg(long)]
        json: bool,
    },
    /// Delete a saved view.
    Delete {
        /// The view's name.
        name: String,
        /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct ViewSaveArgs {
    /// The view's name: 1 to 64 characters, no control characters.
    pub name: String,
    /// Only this status: open, in-progress, resolved or closed (repeatable).
    #[arg(long)]
    pub status: Vec<String>,
    /// Only this priority: low, medium, high or urgent (repeatable).
    #[arg(long)]
    pub priority: Vec<String>,
    /// Only this category (repeatable).
    #[arg(long)]
    pub category: Vec<String>,
    /// Only this assignee: an agent name, team:NAME or none (repeatable).
    #[arg(long)]
    pub assignee: Vec<String>,
    /// green, yellow, red, met or none.
    #[arg(long)]
    pub sla: Option<String>,
    /// Text in the subject, or an id prefix.
    #[arg(long, allow_hyphen_values = true)]
    pub search: Option<String>,
    /// created, updated, priority, status, subject, assignee, category or sla;
    /// a leading '-' sorts descending.
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// A filter as KEY=VALUE, as the app's URL holds it (repeatable).
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

impl ViewCommand {
    fn json(&self) -> bool {
        match self {
            ViewCommand::Save(a) => a.json,
            ViewCommand::List { json } | ViewCommand::Delete { json, .. } => *json,
        }
    }
}

#[derive(Args, Debug)]
pub struct TextArgs {
    /// The ticket id, or any unique prefix of it.
    pub id: String,
    /// The text to add.
    #[arg(allow_hyphen_values = true)]
    pub text: String,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A JSON array or NDJSON file of records (format below).
    pub file: PathBuf,
    /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
    #[arg(long)]
    pub json: bool,
}

impl Command {
    /// Whether the command was asked for JSON output, which errors follow too.
    fn json(&self) -> bool {
        match self {
            Command::Init(a) => a.json,
            Command::Create(a) => a.json,
            Command::List(a) => a.json,
            Command::Show(a) => a.json,
            Command::Edit(a) => a.json,
            Command::Assign(a) => a.json,
            Command::Status(a) => a.json,
            Command::Priority(a) => a.json,
            Command::View(a) => a.command.json(),
            Command::Comment(a) | Command::Note(a) => a.json,
            Command::Import(a) => a.json,
            Command::Sync(a) => a.json,
            Command::Inbox(a) => a.json,
            Command::Board(a) => a.json,
            Command::Export(a) => a.json,
            Command::App(a) => a.json,
            Command::Relay(r) => r.json(),
            Command::Demo(_) | Command::Completions { .. } => false,
        }
    }
}

/// An outcome already reported in full (a bulk edit's `--json` with some
/// tickets refused): exit with this code and print nothing more.
#[derive(Debug)]
pub struct Reported(pub u8);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Reported {}

/// An error the user can act on: exit 1, one line, maybe a hint.
#[derive(Debug)]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
    /// A stable word for scripts (`--json` errors).
    pub code: &'static str,
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

pub fn user_error(message: impl Into<String>, hint: Option<&str>) -> anyhow::Error {
    coded_error("invalid", message, hint)
}

/// A user error with a code of its own.
pub fn coded_error(code: &'static str, message: impl Into<String>, hint: Option<&str>) -> anyhow::Error {
    anyhow::Error::new(UserError { message: message.into(), hint: hint.map(str::to_string), code })
}

fn main() -> ExitCode {
    if let Err(e) = config::load() {
        eprintln!("error: {}", term::safe(&e.to_string()));
        return ExitCode::from(1);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let json = cli.command.json();
    let result = match cli.command {
        Command::Relay(r) => relay_cmd::run(r),
        Command::Demo(d) => demo::run(d),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "tickets", &mut buf);
            output::out(&String::from_utf8_lossy(&buf));
            Ok(())
        }
        _ => node_cmd::run(cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Reported>() => ExitCode::from(e.downcast_ref::<Reported>().map_or(1, |r| r.0)),
        Err(e) => report(&describe(&e), json),
    }
}

/// What an error tells a person or a script.
struct Described {
    message: String,
    code: &'static str,
    hint: Option<String>,
    exit: u8,
}

/// The code of a sync error, for scripts.
fn sync_code(e: &tickets_node::sync::SyncError) -> &'static str {
    use tickets_node::sync::SyncError;
    match e {
        SyncError::NotRegistered => "not_registered",
        SyncError::Unauthorized => "unauthorized",
        SyncError::Protocol(_) => "protocol_version",
        // The relay's own code, when it sent one this build knows.
        SyncError::Refused { code: Some(code), .. } => code.as_str(),
        SyncError::Refused { status: 400, .. } => "bad_request",
        SyncError::Refused { status: 403, .. } => "forbidden",
        SyncError::Refused { status: 404, .. } => "not_found",
        SyncError::Refused { status: 413, .. } => "too_large",
        SyncError::Transport { .. } => "unreachable",
        SyncError::Server { .. } => "relay_error",
        SyncError::WrongAgent { .. } => "wrong_agent",
        SyncError::RateLimited { .. } => "rate_limited",
        SyncError::Node(n) => tickets_node::home::code(n),
        // Other refusals, and variants added later.
        _ => "refused",
    }
}

fn describe(e: &anyhow::Error) -> Described {
    let user = |message: String, code, hint| Described { message, code, hint, exit: 1 };
    if let Some(u) = e.downcast_ref::<UserError>() {
        return user(u.message.clone(), u.code, u.hint.clone());
    }
    if let Some(s) = e.downcast_ref::<tickets_node::sync::SyncError>() {
        return user(s.to_string(), sync_code(s), sync_cmd::hint(s));
    }
    if let Some(n) = e.downcast_ref::<tickets_node::NodeError>() {
        return user(n.to_string(), tickets_node::home::code(n), tickets_node::home::hint(n));
    }
    Described { message: format!("{e:#}"), code: "internal", hint: None, exit: 255 }
}

/// Prints an error by the one rule (see the crate docs) and gives its exit
/// code.
fn report(d: &Described, json: bool) -> ExitCode {
    if json {
        let mut v = serde_json::json!({"error": d.message, "code": d.code});
        if let Some(h) = &d.hint {
            v["hint"] = serde_json::Value::String(h.clone());
        }
        output::json(&v);
    } else {
        let prefix = if d.exit == 255 { "internal error" } else { "error" };
        // A message or hint may echo what a person or a relay sent.
        eprintln!("{prefix}: {}", term::safe(&d.message));
        if let Some(h) = &d.hint {
            eprintln!("hint: {}", term::safe(h));
        }
    }
    ExitCode::from(d.exit)
}

#[cfg(test)]
mod code_tests {
    use tickets_core::protocol::ErrorCode;
    use tickets_node::sync::SyncError;

    #[test]
    fn a_refusal_reports_the_relay_s_own_code() {
        let refused = |status, code| SyncError::Refused { status, message: "any words".into(), code };
        assert_eq!(super::sync_code(&refused(400, Some(ErrorCode::ClockSkew))), "clock_skew");
        assert_eq!(super::sync_code(&refused(403, Some(ErrorCode::DeviceUnregistered))), "device_unregistered");
        assert_eq!(super::sync_code(&refused(409, Some(ErrorCode::DeviceTaken))), "device_taken");
        assert_eq!(super::sync_code(&refused(400, None)), "bad_request");
    }
}
