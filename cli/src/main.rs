//! `tickets`: one binary for agents' nodes and the relay operator.
//!
//! - `main.rs`: argument parsing, dispatch and exit codes.
//! - [`node_cmd`]: the agent's commands on the local node.
//! - [`sync_cmd`]: registering with a relay, sync, watch and the board.
//! - [`relay_cmd`]: the operator's `tickets relay ...` commands.
//! - [`output`]: terminal output, colours and tables.
//!
//! Exit codes: 0 success, 1 a user error (one line on stderr, with a hint
//! where one helps), 2 a usage error, 255 an internal error.

mod config;
mod demo;
mod export_cmd;
mod node_cmd;
mod output;
mod relay_cmd;
mod sync_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Offline-first support tickets.
#[derive(Parser, Debug)]
#[command(name = "tickets", version, about, long_about = None, propagate_version = true)]
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

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a node in the home folder, or register it with a relay.
    #[command(
        after_help = "Examples:\n  tickets init --agent ana\n  tickets init --relay https://tickets.example.com --token tk_...\n  tickets --home /tmp/ana init --agent ana"
    )]
    Init(InitArgs),
    /// Create a ticket; prints its id.
    #[command(
        after_help = "Examples:\n  tickets create --subject 'Printer jams' --priority high --category hardware\n  tickets create --subject 'Refund' --priority medium --category billing --conversation chat.json"
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
    /// Assign a ticket to an agent or a team, or unassign it with --none.
    #[command(
        after_help = "Examples:\n  tickets assign 3f2a ana\n  tickets assign 3f2a team:field\n  tickets assign 3f2a --none"
    )]
    Assign(AssignArgs),
    /// Set a ticket's status; without arguments, show the node's state.
    #[command(
        after_help = "Examples:\n  tickets status 3f2a resolved\n  tickets status            # backlog and last sync"
    )]
    Status(StatusArgs),
    /// Add a comment (visible to everyone who sees the ticket).
    #[command(after_help = "Example:\n  tickets comment 3f2a 'Replaced the toner, testing now'")]
    Comment(TextArgs),
    /// Add an internal note (visible only to permitted agents).
    #[command(after_help = "Example:\n  tickets note 3f2a 'Customer is on the premium plan'")]
    Note(TextArgs),
    /// Import tickets from a JSON array or NDJSON file, in one transaction.
    #[command(after_help = "Example:\n  tickets import tickets.ndjson")]
    Import(ImportArgs),
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
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BoardArgs {
    /// green, yellow or red.
    #[arg(long)]
    pub sla: Option<String>,
    #[arg(long)]
    pub status: Vec<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub search: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
    #[arg(long)]
    pub limit: Option<usize>,
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
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[arg(long, allow_hyphen_values = true)]
    pub subject: Option<String>,
    /// low, medium, high or urgent.
    #[arg(long)]
    pub priority: Option<String>,
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub description: Option<String>,
    /// An agent name or team:NAME.
    #[arg(long)]
    pub assignee: Option<String>,
    /// A conversation exported from an inbox (JSON).
    #[arg(long)]
    pub conversation: Option<PathBuf>,
    /// Create a new ticket even if the conversation already has one.
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long)]
    pub status: Vec<String>,
    #[arg(long)]
    pub priority: Vec<String>,
    #[arg(long)]
    pub category: Vec<String>,
    #[arg(long)]
    pub assignee: Vec<String>,
    /// green, yellow or red.
    #[arg(long)]
    pub sla: Option<String>,
    /// Text in the subject, or an id prefix.
    #[arg(long, allow_hyphen_values = true)]
    pub search: Option<String>,
    /// created, updated, priority, status, subject, assignee, category or sla;
    /// a leading '-' sorts descending (default: -created).
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// At most this many tickets (a table shows 50 unless told).
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The ticket id, or any unique prefix of it.
    pub id: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct EditArgs {
    pub id: String,
    #[arg(long, allow_hyphen_values = true)]
    pub subject: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub description: Option<String>,
    #[arg(long)]
    pub priority: Option<String>,
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct AssignArgs {
    pub id: String,
    /// An agent name or team:NAME.
    #[arg(required_unless_present = "none", conflicts_with = "none")]
    pub assignee: Option<String>,
    /// Remove the assignee.
    #[arg(long)]
    pub none: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    pub id: Option<String>,
    /// open, in-progress, resolved or closed.
    #[arg(requires = "id")]
    pub status: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TextArgs {
    pub id: String,
    #[arg(allow_hyphen_values = true)]
    pub text: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    pub file: PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// An error the user can act on: exit 1, one line, maybe a hint.
#[derive(Debug)]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

pub fn user_error(message: impl Into<String>, hint: Option<&str>) -> anyhow::Error {
    anyhow::Error::new(UserError { message: message.into(), hint: hint.map(str::to_string) })
}

fn main() -> ExitCode {
    if let Err(e) = config::load() {
        eprintln!("error: {e}");
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
        Err(e) => report(e),
    }
}

fn report(e: anyhow::Error) -> ExitCode {
    if let Some(u) = e.downcast_ref::<UserError>() {
        eprintln!("error: {}", u.message);
        if let Some(h) = &u.hint {
            eprintln!("hint: {h}");
        }
        return ExitCode::from(1);
    }
    if let Some(s) = e.downcast_ref::<tickets_node::sync::SyncError>() {
        eprintln!("error: {s}");
        if let Some(h) = sync_cmd::hint(s) {
            eprintln!("hint: {h}");
        }
        return ExitCode::from(1);
    }
    if let Some(n) = e.downcast_ref::<tickets_node::NodeError>() {
        eprintln!("error: {n}");
        if let Some(h) = node_cmd::hint(n) {
            eprintln!("hint: {h}");
        }
        return ExitCode::from(1);
    }
    eprintln!("internal error: {e:#}");
    ExitCode::from(255)
}
