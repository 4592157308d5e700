//! The operator's commands: `tickets relay ...`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use tickets_core::duration::parse_duration;
use tickets_core::model::{check_name, Priority};
use tickets_relay::store::{Db, RelayDb};
use tickets_relay::{auth, names};

use crate::output::{self, bold, outln, table};
use crate::{coded_error, user_error};

#[derive(Args, Debug)]
pub struct RelayArgs {
    /// The relay's database.
    #[arg(long, global = true, env = "TICKETS_RELAY_DB", default_value = "tickets-relay.db")]
    pub db: PathBuf,
    /// A node's folder means nothing to the relay's commands. Declaring the
    /// id here keeps the top level's global `--home` from being copied into
    /// every `tickets relay` subcommand's help (clap skips a global where the
    /// subcommand has an argument of that id); this one is hidden and unused.
    #[arg(long = "home", id = "home", hide = true)]
    pub _home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: RelayCommand,
}

impl RelayArgs {
    /// Whether the command was asked for JSON output.
    pub fn json(&self) -> bool {
        match &self.command {
            RelayCommand::Agent(AgentCommand::Add { json, .. } | AgentCommand::List { json }) => *json,
            RelayCommand::Sla(SlaCommand::Show { json }) => *json,
            RelayCommand::Category(CategoryCommand::List { json }) => *json,
            RelayCommand::Inbox(InboxCommand::Add { json, .. } | InboxCommand::List { json }) => *json,
            RelayCommand::Limits(LimitsCommand::Show { json } | LimitsCommand::Set { json, .. }) => *json,
            _ => false,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum RelayCommand {
    /// Serve the sync API, the board API and the dashboard.
    #[command(after_help = "Example:\n  tickets relay serve --db /var/lib/tickets/relay.db --listen 0.0.0.0:8080")]
    Serve {
        /// Address to listen on.
        #[arg(long, env = "TICKETS_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Log lines as text or JSON (level filter from TICKETS_LOG, e.g. debug).
        #[arg(long, env = "TICKETS_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
    },
    /// Manage agents and their tokens.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// SLA targets and the warning threshold.
    #[command(subcommand)]
    Sla(SlaCommand),
    /// The category taxonomy.
    #[command(subcommand)]
    Category(CategoryCommand),
    /// Webhook inboxes: chat tools post conversations to them.
    #[command(subcommand)]
    Inbox(InboxCommand),
    /// Limits per ticket, per agent and per inbox (a serving relay applies
    /// a change within a second).
    #[command(subcommand)]
    Limits(LimitsCommand),
    /// Copy the database to PATH while the relay keeps serving (SQLite online
    /// backup), and check the copy. Restore it with `tickets relay restore`.
    #[command(
        after_help = "Example:\n  tickets relay backup /var/backups/tickets-$(date +%F).db --db /var/lib/tickets/relay.db"
    )]
    Backup {
        /// Where to write the copy (must not exist).
        path: PathBuf,
    },
    /// Restore a backup into --db. Stop the relay first. Devices notice the
    /// restore on their next sync and resynchronize: nothing they pushed
    /// after the backup is lost.
    #[command(
        after_help = "Example:\n  systemctl stop tickets-relay\n  tickets relay restore /var/backups/tickets-2026-11-24.db --db /var/lib/tickets/relay.db\n  systemctl start tickets-relay"
    )]
    Restore {
        /// The backup file.
        backup: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Add an agent; prints its token (shown once).
    #[command(after_help = "Example:\n  tickets relay agent add ana --role agent --team field")]
    Add {
        /// The agent's name (letters, digits, '.', '_' or '-').
        name: String,
        /// agent, lead or admin.
        #[arg(long, default_value = "agent")]
        role: String,
        /// The agent's team (tickets can be assigned to team:NAME).
        #[arg(long)]
        team: Option<String>,
        /// May read and write internal notes (leads and admins always may).
        #[arg(long)]
        internal_notes: bool,
        /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
        #[arg(long)]
        json: bool,
    },
    /// List agents.
    #[command(after_help = "Example:\n  tickets relay agent list --db relay.db")]
    List {
        /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
        #[arg(long)]
        json: bool,
    },
    /// Revoke an agent (its token stops working), or with --internal-notes
    /// only its internal-notes permission.
    #[command(
        after_help = "Examples:\n  tickets relay agent revoke ana\n  tickets relay agent revoke ana --internal-notes"
    )]
    Revoke {
        /// The agent's name.
        name: String,
        /// Revoke only the internal-notes permission; the agent stays.
        #[arg(long)]
        internal_notes: bool,
    },
    /// Grant an agent a permission: --internal-notes (the only one).
    #[command(
        override_usage = "tickets relay agent grant NAME --internal-notes",
        after_help = "Example:\n  tickets relay agent grant ana --internal-notes"
    )]
    Grant {
        /// The agent's name.
        name: String,
        /// The permission to grant: read and write internal notes.
        #[arg(long)]
        internal_notes: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SlaCommand {
    /// Set targets for a priority (a duration needs a unit: 90s, 45m, 3min,
    /// 4h, 2d, 1h30m; "none" removes).
    #[command(after_help = "Example:\n  tickets relay sla set --priority urgent --first-response 30m --resolution 4h")]
    Set {
        /// low, medium, high or urgent.
        #[arg(long)]
        priority: String,
        /// Time to the first agent reply, e.g. 30m, 2h, 1h30m (or none).
        #[arg(long)]
        first_response: Option<String>,
        /// Time to resolution, e.g. 4h, 2d, 1day (or none).
        #[arg(long)]
        resolution: Option<String>,
    },
    /// Set the warning threshold (percent of the target elapsed).
    #[command(after_help = "Example:\n  tickets relay sla warn 80")]
    Warn {
        /// A ticket turns yellow once this share of its target has elapsed (1-100).
        percent: u8,
    },
    /// Business hours: SLA clocks count only open hours (default 24x7).
    #[command(
        after_help = "Examples:\n  tickets relay sla calendar --tz Europe/Berlin --hours 'mon-fri 09:00-17:00' --holiday 2026-12-25\n  tickets relay sla calendar --none"
    )]
    Calendar {
        /// IANA time zone of the hours and holidays.
        #[arg(long, required_unless_present = "none")]
        tz: Option<String>,
        /// Opening hours: DAYS HH:MM-HH:MM, days as mon-fri or mon,wed,sat (repeatable).
        #[arg(long = "hours", required_unless_present = "none")]
        hours: Vec<String>,
        /// A closed date, YYYY-MM-DD (repeatable).
        #[arg(long = "holiday")]
        holidays: Vec<String>,
        /// Remove the calendar: clocks run 24x7.
        #[arg(long, conflicts_with_all = ["tz", "hours", "holidays"])]
        none: bool,
    },
    /// Show the SLA settings in force (also `list`, as elsewhere).
    #[command(visible_alias = "list", after_help = "Example:\n  tickets relay sla show --json")]
    Show {
        /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CategoryCommand {
    /// Add a category to the taxonomy nodes validate against.
    #[command(after_help = "Example:\n  tickets relay category add hardware")]
    Add {
        /// The category's name.
        name: String,
    },
    /// Remove a category (existing tickets keep it).
    #[command(after_help = "Example:\n  tickets relay category remove legacy")]
    Remove {
        /// The category's name.
        name: String,
    },
    /// List the taxonomy.
    #[command(after_help = "Example:\n  tickets relay category list --json")]
    List {
        /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum InboxCommand {
    /// Add an inbox; prints its webhook URL, with the secret in its path
    /// (shown once: to change it, remove the inbox and add it again).
    #[command(
        after_help = "Examples:\n  tickets relay inbox add support --kind chatwoot --url https://relay.example.com\n  tickets relay inbox add field-chat --kind generic --team field"
    )]
    Add {
        /// The inbox's name (letters, digits, '.', '_' or '-'); Chatwoot
        /// conversations get the id chatwoot:NAME:ID.
        name: String,
        /// What the webhook receives: Chatwoot's webhook events, or the
        /// conversation object of SPEC §1.2.
        #[arg(long, value_parser = ["chatwoot", "generic"])]
        kind: String,
        /// Only this team's agents and leads receive its conversations.
        #[arg(long)]
        team: Option<String>,
        /// The relay's address as the chat tool reaches it.
        #[arg(long, env = "TICKETS_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
        #[arg(long)]
        json: bool,
    },
    /// List inboxes (never their secrets).
    #[command(after_help = "Example:\n  tickets relay inbox list --json")]
    List {
        /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
        #[arg(long)]
        json: bool,
    },
    /// Remove an inbox: its URL stops working at once.
    #[command(after_help = "Example:\n  tickets relay inbox remove support")]
    Remove {
        /// The inbox's name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum LimitsCommand {
    /// Show the limits in force.
    #[command(after_help = "Example:\n  tickets relay limits show --json")]
    Show {
        /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
        #[arg(long)]
        json: bool,
    },
    /// Set one or more limits (the others keep their values).
    #[command(
        after_help = "Example:\n  tickets relay limits set --doc-bytes 4194304 --comments 1000 --agent-writes-per-min 300"
    )]
    Set {
        /// The most bytes a stored ticket (or notes) document may take.
        #[arg(long, value_name = "N")]
        doc_bytes: Option<u64>,
        /// The most comments (or internal notes) one ticket may hold.
        #[arg(long, value_name = "N")]
        comments: Option<u64>,
        /// The most bytes one comment or note may take.
        #[arg(long, value_name = "N")]
        comment_bytes: Option<u64>,
        /// Documents one agent (role agent; leads and admins have no rate)
        /// may push per minute.
        #[arg(long, value_name = "N")]
        agent_writes_per_min: Option<u64>,
        /// Webhook deliveries one inbox may make per minute.
        #[arg(long, value_name = "N")]
        inbox_writes_per_min: Option<u64>,
        /// Print JSON for scripts (errors too: {"error", "code", "hint"} on stdout).
        #[arg(long)]
        json: bool,
    },
}

fn limits(c: &mut dyn tickets_relay::store::RelayStore, cmd: LimitsCommand) -> Result<()> {
    let mut l = c.limits()?;
    let json = match cmd {
        LimitsCommand::Show { json } => json,
        LimitsCommand::Set { doc_bytes, comments, comment_bytes, agent_writes_per_min, inbox_writes_per_min, json } => {
            let asked = [doc_bytes, comments, comment_bytes, agent_writes_per_min, inbox_writes_per_min];
            if asked.iter().all(Option::is_none) {
                return Err(user_error(
                    "nothing to set",
                    Some("pass one or more of --doc-bytes, --comments, --comment-bytes, --agent-writes-per-min, --inbox-writes-per-min"),
                ));
            }
            l.doc_bytes = doc_bytes.unwrap_or(l.doc_bytes);
            l.comments = comments.unwrap_or(l.comments);
            l.comment_bytes = comment_bytes.unwrap_or(l.comment_bytes);
            l.agent_writes_per_min = agent_writes_per_min.unwrap_or(l.agent_writes_per_min);
            l.inbox_writes_per_min = inbox_writes_per_min.unwrap_or(l.inbox_writes_per_min);
            l.check().map_err(|e| {
                user_error(format!("--{e}"), Some("`tickets relay limits show` lists the limits in force"))
            })?;
            c.set_limits(&l)?;
            json
        }
    };
    if json {
        output::json(&serde_json::to_value(l)?);
    } else {
        let mut t = table(&["LIMIT", "VALUE"]);
        for (name, value) in [
            ("doc-bytes", l.doc_bytes),
            ("comments", l.comments),
            ("comment-bytes", l.comment_bytes),
            ("agent-writes-per-min", l.agent_writes_per_min),
            ("inbox-writes-per-min", l.inbox_writes_per_min),
        ] {
            t.add_row(vec![name.to_string(), value.to_string()]);
        }
        outln(&t.to_string());
    }
    Ok(())
}

fn inbox(c: &mut dyn tickets_relay::store::RelayStore, cmd: InboxCommand) -> Result<()> {
    use tickets_relay::inbox::store as inbox_store;
    match cmd {
        InboxCommand::Add { name, kind, team, url, json } => {
            let name = inbox_store::check_inbox_name(&name).map_err(|e| user_error(e, None))?;
            let kind = tickets_core::inbox::InboxKind::parse(&kind)
                .ok_or_else(|| user_error(format!("unknown kind '{kind}'"), Some("use chatwoot or generic")))?;
            let team = team.map(|t| check_name("team", &t)).transpose().map_err(|e| user_error(e.to_string(), None))?;
            let secret = inbox_store::new_secret();
            inbox_store::add_inbox(c, &name, kind, team.as_deref(), &auth::token_hash(&secret), now_ms())
                .map_err(|e| user_error(e.to_string(), Some("pick another name, or remove the old inbox first")))?;
            let path = format!("/v1/inbox/{secret}");
            let webhook = format!("{}{path}", url.trim_end_matches('/'));
            if json {
                output::json(&serde_json::json!({
                    "inbox": name, "kind": kind.as_str(), "team": team, "url": webhook, "path": path,
                }));
            } else {
                outln(&webhook);
                eprintln!(
                    "inbox {name} added ({}); give the URL above to the chat tool's webhook settings (shown only once)",
                    kind.as_str()
                );
            }
        }
        InboxCommand::List { json } => {
            let rows = inbox_store::inboxes(c)?;
            if json {
                output::json(&serde_json::to_value(&rows)?);
            } else {
                let mut t = table(&["INBOX", "KIND", "TEAM", "CONVERSATIONS"]);
                for r in &rows {
                    t.add_row(vec![
                        r.name.clone(),
                        r.kind.clone(),
                        r.team.clone().unwrap_or_default(),
                        r.conversations.to_string(),
                    ]);
                }
                outln(&t.to_string());
            }
        }
        InboxCommand::Remove { name } => {
            inbox_store::remove_inbox(c, &name)
                .map_err(|e| user_error(e.to_string(), Some("see `tickets relay inbox list`")))?;
            outln(&format!("inbox {name} removed; its URL is refused from now on"));
        }
    }
    Ok(())
}

/// A name that looks like one already there: one error line and a hint.
fn confusable(e: names::Confusable) -> anyhow::Error {
    coded_error(
        "confusable_name",
        e.to_string(),
        Some("choose a name that reads differently: names that look alike on screen (letters of another script, 1 for l, rn for m) are refused"),
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn target(s: Option<String>) -> Result<Option<Option<u64>>> {
    match s.as_deref().map(str::trim) {
        None => Ok(None),
        Some("none") | Some("off") => Ok(Some(None)),
        Some(d) => Ok(Some(Some(parse_duration(d).map_err(|e| user_error(e.to_string(), None))?))),
    }
}

pub fn run(a: RelayArgs) -> Result<()> {
    if let RelayCommand::Serve { listen, log_format } = &a.command {
        init_logs(log_format == "json");
        return serve(&a.db, listen);
    }
    if let RelayCommand::Restore { backup } = &a.command {
        if is_url(&a.db) {
            return Err(user_error(
                "restore is not possible on PostgreSQL",
                Some(tickets_relay::store::PG_BACKUP_HINT),
            ));
        }
        return restore(backup, &a.db);
    }
    let db = RelayDb::open(&a.db, false).map_err(|e| user_error(e.to_string(), None))?;
    let mut c = db.conn()?;
    match a.command {
        RelayCommand::Serve { .. } | RelayCommand::Restore { .. } => {}
        RelayCommand::Backup { path } => {
            if path.exists() {
                return Err(user_error(
                    format!("{} already exists", path.display()),
                    Some("a backup never overwrites; pick a new path"),
                ));
            }
            let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
                let b = indicatif::ProgressBar::new(0);
                b.set_style(
                    indicatif::ProgressStyle::with_template("backing up {bar:40} {pos}/{len} pages")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b
            });
            let started = std::time::Instant::now();
            let result = c.backup_to(&path, &mut |done, total| {
                if let Some(b) = &bar {
                    b.set_length(total.max(0) as u64);
                    b.set_position(done.max(0) as u64);
                }
            });
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            if let Err(e) = result {
                let _ = std::fs::remove_file(&path);
                return Err(user_error(format!("backup failed: {e}"), None));
            }
            outln(&format!(
                "backed up {} to {} in {:.1}s (integrity ok)",
                a.db.display(),
                path.display(),
                started.elapsed().as_secs_f64()
            ));
        }
        RelayCommand::Inbox(cmd) => inbox(&mut *c, cmd)?,
        RelayCommand::Limits(cmd) => limits(&mut *c, cmd)?,
        RelayCommand::Agent(cmd) => match cmd {
            AgentCommand::Add { name, role, team, internal_notes, json } => {
                let name = check_name("agent", &name).map_err(|e| user_error(e.to_string(), None))?;
                if !["agent", "lead", "admin"].contains(&role.as_str()) {
                    return Err(user_error(format!("unknown role '{role}'"), Some("use agent, lead or admin")));
                }
                let team =
                    team.map(|t| check_name("team", &t)).transpose().map_err(|e| user_error(e.to_string(), None))?;
                // NFC, and no look-alike of an agent or team already there.
                let known = c.agents()?;
                let name =
                    names::check_new("agent", &name, known.iter().map(|a| a.name.as_str())).map_err(confusable)?;
                let team = team
                    .map(|t| names::check_new("team", &t, known.iter().filter_map(|a| a.team.as_deref())))
                    .transpose()
                    .map_err(confusable)?;
                let token = auth::new_token();
                c.add_agent(&name, &role, team.as_deref(), internal_notes, &auth::token_hash(&token), now_ms())
                    .map_err(|e| user_error(e.to_string(), None))?;
                if json {
                    output::json(&serde_json::json!({"agent": name, "role": role, "team": team, "token": token}));
                } else {
                    outln(&token);
                    eprintln!("agent {name} added ({role}); the token above is shown only once");
                }
            }
            AgentCommand::List { json } => {
                let agents = c.agents()?;
                if json {
                    output::json(&serde_json::to_value(&agents)?);
                } else {
                    let mut t = table(&["AGENT", "ROLE", "TEAM", "NOTES", "DEVICES", "STATE"]);
                    for ag in &agents {
                        t.add_row(vec![
                            ag.name.clone(),
                            ag.role.clone(),
                            ag.team.clone().unwrap_or_default(),
                            if ag.may_read_notes() { "yes".into() } else { "no".into() },
                            ag.devices.to_string(),
                            if ag.revoked { "revoked".into() } else { "active".into() },
                        ]);
                    }
                    outln(&t.to_string());
                }
            }
            AgentCommand::Revoke { name, internal_notes } => {
                if internal_notes {
                    c.set_notes_permission(&name, false).map_err(|e| user_error(e.to_string(), None))?;
                    outln(&format!(
                        "{name} may no longer read internal notes; its devices drop them on their next sync"
                    ));
                } else {
                    c.revoke_agent(&name).map_err(|e| user_error(e.to_string(), None))?;
                    outln(&format!("{name} revoked; its token is refused from now on"));
                }
            }
            AgentCommand::Grant { name, internal_notes } => {
                if !internal_notes {
                    return Err(user_error(
                        "name the permission to grant",
                        Some(&format!("tickets relay agent grant {name} --internal-notes")),
                    ));
                }
                c.set_notes_permission(&name, true).map_err(|e| user_error(e.to_string(), None))?;
                outln(&format!("{name} may read and write internal notes"));
            }
        },
        RelayCommand::Sla(cmd) => match cmd {
            SlaCommand::Set { priority, first_response, resolution } => {
                let p: Priority =
                    priority.parse().map_err(|e: tickets_core::InputError| user_error(e.to_string(), None))?;
                let fr = target(first_response)?;
                let res = target(resolution)?;
                if fr.is_none() && res.is_none() {
                    return Err(user_error("nothing to set", Some("pass --first-response and/or --resolution")));
                }
                let policy = c.update_sla(now_ms(), |pol| {
                    let t = pol.targets.entry(p).or_default();
                    if let Some(v) = fr {
                        t.first_response_secs = v;
                    }
                    if let Some(v) = res {
                        t.resolution_secs = v;
                    }
                })?;
                print_policy(&policy);
            }
            SlaCommand::Warn { percent } => {
                if percent == 0 || percent > 100 {
                    return Err(user_error("the warning threshold is a percentage from 1 to 100", None));
                }
                let policy = c.update_sla(now_ms(), |pol| pol.warn_percent = percent)?;
                print_policy(&policy);
            }
            SlaCommand::Calendar { tz, hours, holidays, none } => {
                let calendar = if none {
                    None
                } else {
                    let mut weekly = Vec::new();
                    for h in &hours {
                        weekly.extend(parse_hours(h)?);
                    }
                    let cal = tickets_core::sla::Calendar {
                        time_zone: tz.unwrap_or_default(),
                        weekly,
                        holidays: holidays.iter().map(|d| d.trim().to_string()).collect(),
                    };
                    cal.validate().map_err(|e| user_error(e.to_string(), None))?;
                    Some(cal)
                };
                let policy = c.update_sla(now_ms(), |pol| pol.calendar = calendar)?;
                print_policy(&policy);
            }
            SlaCommand::Show { json } => {
                let s = c.sla_settings()?;
                let policy = s.epochs.last().map(|(_, p)| p.clone()).unwrap_or_default();
                if json {
                    output::json(&serde_json::to_value(&policy)?);
                } else {
                    print_policy(&policy);
                }
            }
        },
        RelayCommand::Category(cmd) => {
            let mut cats = c.settings()?.categories;
            match cmd {
                CategoryCommand::Add { name } => {
                    let name = check_name("category", &name).map_err(|e| user_error(e.to_string(), None))?;
                    let name =
                        names::check_new("category", &name, cats.iter().map(String::as_str)).map_err(confusable)?;
                    if cats.contains(&name) {
                        outln(&format!("category {name} already exists; nothing changed"));
                    } else {
                        cats.push(name.clone());
                        cats.sort();
                        c.set_categories(&cats)?;
                        outln(&format!("category {name} added"));
                    }
                }
                CategoryCommand::Remove { name } => {
                    let before = cats.len();
                    cats.retain(|c| *c != name.trim());
                    if cats.len() == before {
                        return Err(user_error(format!("no category named '{name}'"), None));
                    }
                    c.set_categories(&cats)?;
                    outln(&format!("category {name} removed (existing tickets keep it)"));
                }
                CategoryCommand::List { json } => {
                    if json {
                        output::json(&serde_json::to_value(&cats)?);
                    } else {
                        for cat in cats {
                            outln(&cat);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `mon-fri 09:00-17:00`, `sat,sun 10:00-14:00`: weekly intervals.
fn parse_hours(spec: &str) -> Result<Vec<tickets_core::sla::WeeklyInterval>> {
    let bad =
        || user_error(format!("invalid hours '{spec}'"), Some("write DAYS HH:MM-HH:MM, e.g. 'mon-fri 09:00-17:00'"));
    let (days, times) = spec.trim().split_once(' ').ok_or_else(bad)?;
    let day = |d: &str| DAYS.iter().position(|x| *x == d.trim().to_ascii_lowercase().get(..3).unwrap_or(""));
    let mut list = Vec::new();
    for part in days.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a).ok_or_else(bad)?, day(b).ok_or_else(bad)?);
                if a > b {
                    return Err(bad());
                }
                list.extend(a..=b);
            }
            None => list.push(day(part).ok_or_else(bad)?),
        }
    }
    let minute = |t: &str| -> Option<u16> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
    };
    let (start, end) = times.trim().split_once('-').ok_or_else(bad)?;
    let (start_min, end_min) = (minute(start).ok_or_else(bad)?, minute(end).ok_or_else(bad)?);
    if start_min >= end_min {
        return Err(bad());
    }
    Ok(list.into_iter().map(|d| tickets_core::sla::WeeklyInterval { weekday: d as u8, start_min, end_min }).collect())
}

fn print_policy(p: &tickets_core::sla::SlaPolicy) {
    let mut t = table(&["PRIORITY", "FIRST RESPONSE", "RESOLUTION"]);
    for pr in Priority::ALL {
        let tg = p.targets.get(&pr).cloned().unwrap_or_default();
        let f = |v: Option<u64>| v.map(output::human).unwrap_or_else(|| "-".into());
        t.add_row(vec![pr.as_str().to_string(), f(tg.first_response_secs), f(tg.resolution_secs)]);
    }
    outln(&t.to_string());
    outln(&format!("warning at {}% of a target", bold(&p.warn_percent.to_string())));
    match &p.calendar {
        None => outln("clocks run 24x7"),
        Some(c) => {
            let hours: Vec<String> = c
                .weekly
                .iter()
                .map(|w| {
                    let day = DAYS.get(w.weekday as usize).copied().unwrap_or("?");
                    format!(
                        "{day} {:02}:{:02}-{:02}:{:02}",
                        w.start_min / 60,
                        w.start_min % 60,
                        w.end_min / 60,
                        w.end_min % 60
                    )
                })
                .collect();
            outln(&format!("business hours ({}): {}", c.time_zone, hours.join(", ")));
            if !c.holidays.is_empty() {
                outln(&format!("holidays: {}", c.holidays.join(", ")));
            }
        }
    }
}

/// Stderr that never fails: a relay whose log pipe was closed keeps serving
/// (a failed log write must not abort the request that logged it).
struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Structured logs on stderr; `TICKETS_LOG` sets the filter (default
/// `info,automerge=warn`: Automerge opens an info-level span for every
/// document it loads, and formatting those cost ~4 % of a push).
fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TICKETS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,automerge=warn"));
    // Colour only on a terminal: a log file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| LogSink).with_target(false).with_ansi(ansi);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// The file a serving relay holds a shared lock on, and a restore an
/// exclusive one: `<db>.serve.lock` beside the database. The lock, not the
/// file, is what counts; the file stays.
fn serve_lock_path(db_path: &std::path::Path) -> PathBuf {
    let mut p = db_path.as_os_str().to_owned();
    p.push(".serve.lock");
    PathBuf::from(p)
}

/// Opens (creating) the serve lock file of a database.
fn open_serve_lock(db_path: &std::path::Path) -> Result<std::fs::File> {
    let path = serve_lock_path(db_path);
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| user_error(format!("cannot open the lock file {}: {e}", path.display()), None))
}

/// Copies a checked backup over the database and gives it a new epoch.
fn restore(backup: &std::path::Path, db_path: &std::path::Path) -> Result<()> {
    if !backup.is_file() {
        return Err(user_error(format!("no backup file at {}", backup.display()), None));
    }
    // A serving relay would keep using the file this replaces: refuse while
    // one holds the database, and hold the lock so none starts meanwhile.
    let lock = open_serve_lock(db_path)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(coded_error(
                "relay_running",
                format!("a relay is serving {}; restoring under it would lose the restore", db_path.display()),
                Some("stop the relay first (e.g. `systemctl stop tickets-relay`), restore, then start it again"),
            ))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(user_error(format!("cannot lock {}: {e}", serve_lock_path(db_path).display()), None))
        }
    }
    // The copy is checked (and upgraded, for a backup of an older schema),
    // never the backup itself, which stays as it was.
    let tmp = db_path.with_extension("restoring");
    // A restore that crashed may have left the copy's log behind: it must
    // not be replayed onto this copy.
    for suffix in ["-wal", "-shm"] {
        let mut p = tmp.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
    std::fs::copy(backup, &tmp).map_err(|e| user_error(format!("cannot copy {}: {e}", backup.display()), None))?;
    // `copy` carries the backup's mode over: the database is private.
    tickets_relay::store::sqlite::files::restrict(&tmp)
        .map_err(|e| user_error(format!("cannot make {} private: {e}", tmp.display()), None))?;
    let checked = Db::open(&tmp, false)
        .map_err(|e| user_error(format!("{}: {e}", backup.display()), None))
        .and_then(|check| Ok(check.conn()?.integrity_check()?));
    let ok = match checked {
        Ok(ok) => ok,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if ok != "ok" {
        let _ = std::fs::remove_file(&tmp);
        return Err(user_error(format!("{} fails its integrity check: {ok}", backup.display()), None));
    }
    for suffix in ["-wal", "-shm"] {
        let mut p = db_path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
    std::fs::rename(&tmp, db_path)
        .map_err(|e| user_error(format!("cannot replace {}: {e}", db_path.display()), None))?;
    let db = Db::open(db_path, false)?;
    let epoch = db.conn()?.new_epoch()?;
    outln(&format!(
        "restored {} into {} (epoch {epoch}); devices resynchronize on their next sync",
        backup.display(),
        db_path.display()
    ));
    Ok(())
}

/// Whether `--db` is a PostgreSQL URL.
fn is_url(db: &std::path::Path) -> bool {
    db.to_str().is_some_and(tickets_relay::store::postgres::is_url)
}

fn serve(db_path: &std::path::Path, listen: &str) -> Result<()> {
    if is_url(db_path) {
        return serve_on(RelayDb::open(db_path, true).map_err(|e| user_error(e.to_string(), None))?, listen);
    }
    // Held (shared: other relays may serve the same file) until the process
    // ends, so that `tickets relay restore` can tell the database is in use.
    let lock = open_serve_lock(db_path)?;
    match lock.try_lock_shared() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(coded_error(
                "restoring",
                format!("{} is being restored", db_path.display()),
                Some("start the relay once `tickets relay restore` has finished"),
            ))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(user_error(format!("cannot lock {}: {e}", serve_lock_path(db_path).display()), None))
        }
    }
    let db = Db::open(db_path, true).map_err(|e| user_error(e.to_string(), None))?;
    let served = serve_on(db.into(), listen);
    drop(lock);
    served
}

fn serve_on(db: RelayDb, listen: &str) -> Result<()> {
    let shown = db.describe();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            user_error(format!("cannot listen on {listen}: {e}"), Some("pick another --listen address"))
        })?;
        let addr = listener.local_addr()?;
        let (state, stop) = tickets_relay::AppState::new(db)?;
        // The first line is for people (and scripts that wait for it).
        let _ = writeln!(std::io::stderr(), "relay listening on http://{addr} (database {shown})");
        tracing::info!(%addr, db = %shown, "relay started");
        tickets_relay::serve(listener, state, stop, shutdown_signal()).await?;
        tracing::info!("relay stopped");
        Ok(())
    })
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
