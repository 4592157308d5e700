//! The agent's commands on the local node.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tickets_core::conversation::Conversation;
use tickets_core::edit::{Edit, NewTicket};
use tickets_core::model::{Priority, Status};
use tickets_node::{BulkEdit, EditOutcome, ListQuery, Node, NodeError, SortKey, WallClock};

use tickets_node::home::{self, open, short_id as short};

use crate::output::{self, bold, dim, outln, paint, table};
use crate::term::safe;
use crate::tickets_table::{print_not_applied, print_tickets, sla_badge, PROVISIONAL_LEGEND};
use crate::{coded_error, user_error, Cli, Command};

/// The home folder, or the error that says how to name one.
pub fn home_or_error(cli_home: Option<PathBuf>) -> Result<PathBuf> {
    home::home_folder(cli_home)
        .ok_or_else(|| user_error("no home folder: HOME is not set", Some("pass --home DIR or set TICKETS_HOME")))
}

fn parse_priority(s: &str) -> Result<Priority> {
    s.parse().map_err(|e: tickets_core::InputError| user_error(e.to_string(), None))
}

fn parse_status(s: &str) -> Result<Status> {
    s.parse().map_err(|e: tickets_core::InputError| user_error(e.to_string(), None))
}

fn required(v: Option<String>, flag: &str) -> Result<String> {
    v.ok_or_else(|| user_error(format!("{flag} is required"), Some("see `tickets create --help`")))
}

pub fn run(cli: Cli) -> Result<()> {
    let home = home_or_error(cli.home)?;
    match cli.command {
        Command::Init(a) if a.relay.is_some() => crate::sync_cmd::init_relay(&home, a)?,
        Command::Init(a) => {
            let Some(agent) = a.agent else {
                return Err(user_error(
                    "--agent NAME or --relay URL --token TOKEN is required",
                    Some("tickets init --agent NAME"),
                ));
            };
            let node = Node::init(&home, &agent, WallClock::from_env()?)?;
            if a.json {
                output::json(
                    &serde_json::json!({"home": home, "agent": node.agent(), "actor": node.actor().to_hex_string()}),
                );
            } else {
                outln(&format!("Initialized a local node for {} in {}", bold(node.agent()), home.display()));
            }
        }
        Command::Create(a) => {
            let conversation = match &a.conversation {
                // A file as in SPEC §1.2, or else an inbox conversation's id.
                Some(path) if path.is_file() => {
                    let bytes = std::fs::read(path)
                        .map_err(|e| user_error(format!("cannot read {}: {e}", path.display()), None))?;
                    Some(
                        Conversation::parse(&bytes)
                            .map_err(|e| user_error(format!("{}: {e}", path.display()), None))?,
                    )
                }
                Some(id) => {
                    let id = id.to_string_lossy().to_string();
                    match open(&home)?.inbox_conversation(&id)? {
                        Some(c) => Some(c.to_conversation()),
                        None => {
                            return Err(coded_error(
                                "not_found",
                                format!(
                                    "'{id}' is neither a conversation file nor a conversation in this device's inbox"
                                ),
                                Some("`tickets sync` brings the inbox; `tickets inbox` lists its conversation ids"),
                            ))
                        }
                    }
                }
                None => None,
            };
            let new = NewTicket {
                subject: required(a.subject, "--subject")?,
                priority: parse_priority(&required(a.priority, "--priority")?)?,
                category: required(a.category, "--category")?,
                description: a.description,
                assignee: a.assignee,
            };
            let mut node = open(&home)?;
            let id = match node.create(&new, conversation.as_ref(), a.force) {
                Err(NodeError::ConversationExists { conversation, ticket }) => {
                    // The existing id goes to stdout so scripts can use it.
                    outln(&ticket);
                    return Err(NodeError::ConversationExists { conversation, ticket }.into());
                }
                r => r?,
            };
            if a.json {
                output::json(&node.show(&id)?);
            } else {
                outln(&id);
            }
        }
        Command::List(a) => list(&home, a)?,
        Command::Show(a) => {
            let mut node = open(&home)?;
            // Opening a ticket for a person clears "new for you".
            let t = node.open_ticket(&a.id)?;
            if a.json {
                output::json(&t);
            } else {
                print_ticket(&t, node.now_ms(), node.agent());
            }
        }
        Command::Edit(a) => {
            let mut edits = Vec::new();
            if let Some(s) = a.subject {
                edits.push(Edit::Subject(s));
            }
            if let Some(d) = a.description {
                edits.push(Edit::Description(d));
            }
            if let Some(p) = a.priority {
                edits.push(Edit::Priority(parse_priority(&p)?));
            }
            if let Some(c) = a.category {
                edits.push(Edit::Category(c));
            }
            if edits.is_empty() {
                return Err(user_error(
                    "nothing to edit",
                    Some("pass --subject, --description, --priority or --category"),
                ));
            }
            edit(&home, &a.id, &edits, a.json)?;
        }
        Command::Assign(a) => {
            let (ids, to) = if a.none {
                // An assignee beside --none is a contradiction, as it was
                // with one id: ids are hex digits and hyphens (or `-`).
                let id_like = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
                if let Some(other) = a.args.iter().find(|s| !id_like(s)) {
                    usage_error(
                        clap::error::ErrorKind::ArgumentConflict,
                        &format!("'{}' is not a ticket id, and --none takes no assignee", visible(other)),
                    );
                }
                (a.args, None)
            } else {
                let mut args = a.args;
                let to = args.pop();
                if args.is_empty() {
                    usage_error(
                        clap::error::ErrorKind::MissingRequiredArgument,
                        "missing the assignee: tickets assign ID… AGENT|team:NAME, or tickets assign ID… --none",
                    );
                }
                (args, to)
            };
            match single(&ids) {
                Some(id) => edit(&home, id, &[Edit::Assignee(to)], a.json)?,
                None => bulk(&home, &ids, &BulkEdit { assignee: Some(to), ..BulkEdit::default() }, a.json)?,
            }
        }
        Command::Status(a) => {
            let mut args = a.args;
            let Some(status) = args.pop() else { return node_status(&home, a.json) };
            if args.is_empty() {
                return Err(user_error(
                    "missing the new status",
                    Some("tickets status ID… open|in-progress|resolved|closed"),
                ));
            }
            let status = parse_status(&status)?;
            match single(&args) {
                Some(id) => edit(&home, id, &[Edit::Status(status)], a.json)?,
                None => bulk(&home, &args, &BulkEdit { status: Some(status), ..BulkEdit::default() }, a.json)?,
            }
        }
        Command::Priority(a) => {
            let mut args = a.args;
            let p = parse_priority(&args.pop().unwrap_or_default())?;
            match single(&args) {
                Some(id) => edit(&home, id, &[Edit::Priority(p)], a.json)?,
                None => bulk(&home, &args, &BulkEdit { priority: Some(p), ..BulkEdit::default() }, a.json)?,
            }
        }
        Command::View(a) => view(&home, a.command)?,
        Command::Comment(a) => edit(&home, &a.id, &[Edit::Comment(a.text)], a.json)?,
        Command::Note(a) => edit(&home, &a.id, &[Edit::Note(a.text)], a.json)?,
        Command::Import(a) => import(&home, &a.file, a.json)?,
        Command::Sync(a) => crate::sync_cmd::sync(&home, a)?,
        Command::Inbox(a) => inbox(&home, a.json)?,
        Command::Board(a) => crate::sync_cmd::board(&home, a)?,
        Command::Export(a) => crate::export_cmd::run(&home, a)?,
        Command::App(a) => crate::app_cmd::run(&home, a)?,
        Command::Relay(_) | Command::Demo(_) | Command::Completions { .. } => {}
    }
    Ok(())
}

/// Ends the process with a usage error (exit 2, on stderr), as argument
/// parsing does.
fn usage_error(kind: clap::error::ErrorKind, message: &str) -> ! {
    <crate::Cli as clap::CommandFactory>::command().error(kind, message).exit()
}

/// Most bytes of ids read from stdin (`-`): room for the most ids a bulk
/// edit takes, with any spacing.
const BULK_STDIN_BYTES_MAX: u64 = 1024 * 1024;

/// The one id of a single-ticket edit, which keeps its own output and
/// errors; `None` for a bulk edit (several ids, or `-`).
fn single(ids: &[String]) -> Option<&str> {
    match ids {
        [id] if id != "-" => Some(id),
        _ => None,
    }
}

/// Text from a person, shown on a terminal: control characters visible.
fn visible(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// A bulk edit: the ids given, or read from stdin with `-`.
fn bulk(home: &std::path::Path, ids: &[String], set: &BulkEdit, json: bool) -> Result<()> {
    let ids: Vec<String> = if ids.iter().any(|i| i == "-") {
        if ids.len() > 1 {
            return Err(user_error("`-` must be the only id", Some("`-` reads the ids from stdin")));
        }
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(std::io::stdin().lock(), BULK_STDIN_BYTES_MAX + 1),
            &mut text,
        )
        .map_err(|e| user_error(format!("cannot read ids from stdin: {e}"), None))?;
        if text.len() as u64 > BULK_STDIN_BYTES_MAX {
            return Err(user_error(
                format!("more than {BULK_STDIN_BYTES_MAX} bytes of ids on stdin"),
                Some("split the selection"),
            ));
        }
        let ids = tickets_node::bulk::ids_from_text(&text);
        if ids.is_empty() {
            return Err(user_error("no ids on stdin", Some("give one id per line, or separated by spaces")));
        }
        ids
    } else {
        ids.to_vec()
    };
    let mut node = open(home)?;
    let out = node.bulk_edit(&ids, set)?;
    let summary = format!(
        "{} of {} tickets refused; the other {} applied",
        out.refused.len(),
        out.refused.len() + out.applied.len(),
        out.applied.len()
    );
    if json {
        let mut v = serde_json::json!({"applied": out.applied, "refused": out.refused});
        if out.all_applied() {
            output::json(&v);
            return Ok(());
        }
        // Some refused: the object is also the error object of the one
        // rule for `--json` errors (error, code), with exit 1.
        v["error"] = Value::String(summary);
        v["code"] = Value::String("refused".into());
        output::json(&v);
        return Err(crate::Reported(1).into());
    }
    for id in &out.applied {
        let how = if out.unchanged.contains(id) { "unchanged" } else { "updated" };
        outln(&format!("{}: {how}", short(id)));
    }
    for r in &out.refused {
        let id = if r.id.len() == 36 { short(&r.id).to_string() } else { visible(&r.id) };
        outln(&format!("{id}: refused ({}): {}", r.code, visible(&r.error)));
    }
    if out.all_applied() {
        return Ok(());
    }
    Err(coded_error("refused", summary, Some("each refused ticket is listed above with its code")))
}

/// The list's filter flags as the key/value pairs a view holds.
#[allow(clippy::too_many_arguments)]
fn filter_pairs(
    status: &[String],
    priority: &[String],
    category: &[String],
    assignee: &[String],
    sla: Option<&str>,
    search: Option<&str>,
    sort: Option<&str>,
) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut add = |k: &str, v: &str| pairs.push((k.to_string(), v.to_string()));
    for (k, vs) in [("status", status), ("priority", priority), ("category", category), ("assignee", assignee)] {
        for v in vs {
            add(k, v);
        }
    }
    for (k, v) in [("sla", sla), ("search", search), ("sort", sort)] {
        if let Some(v) = v {
            add(k, v);
        }
    }
    pairs
}

/// `tickets view save|list|delete`.
fn view(home: &std::path::Path, cmd: crate::ViewCommand) -> Result<()> {
    let mut node = open(home)?;
    match cmd {
        crate::ViewCommand::Save(a) => {
            let mut pairs = filter_pairs(
                &a.status,
                &a.priority,
                &a.category,
                &a.assignee,
                a.sla.as_deref(),
                a.search.as_deref(),
                a.sort.as_deref(),
            );
            for f in &a.filters {
                let Some((k, v)) = f.split_once('=') else {
                    return Err(user_error(
                        format!("--filter '{}' is not KEY=VALUE", visible(f)),
                        Some("e.g. --filter status=open"),
                    ));
                };
                pairs.push((k.trim().to_string(), v.to_string()));
            }
            let saved = node.save_view(&a.name, &pairs)?;
            if a.json {
                output::json(&serde_json::to_value(&saved)?);
            } else {
                outln(&format!("saved view {}", bold(&visible(&saved.name))));
            }
        }
        crate::ViewCommand::List { json } => {
            let views = node.views()?;
            if json {
                output::json(&serde_json::to_value(&views)?);
                return Ok(());
            }
            if views.is_empty() {
                outln(&dim("no saved views; `tickets view save NAME --status open …` saves one"));
                return Ok(());
            }
            let mut t = table(&["VIEW", "FILTERS"]);
            for v in &views {
                let filters: Vec<String> = v.filters.iter().map(|(k, v)| format!("{k}={}", visible(v))).collect();
                t.add_row(vec![visible(&v.name), filters.join(" ")]);
            }
            outln(&t.to_string());
        }
        crate::ViewCommand::Delete { name, json } => {
            node.delete_view(&name)?;
            if json {
                output::json(&serde_json::json!({"deleted": name}));
            } else {
                outln(&format!("deleted view {}", bold(&visible(&name))));
            }
        }
    }
    Ok(())
}

fn edit(home: &std::path::Path, id: &str, edits: &[Edit], json: bool) -> Result<()> {
    let mut node = open(home)?;
    let (id, outcome) = node.edit(id, edits)?;
    if json {
        output::json(&node.show(&id)?);
    } else if outcome == EditOutcome::Unchanged {
        outln(&format!("{}: nothing changed", short(&id)));
    } else {
        outln(&format!("{}: updated", short(&id)));
    }
    Ok(())
}

/// Tickets a `list` table shows unless told (`--limit N`, `--all`).
const LIST_TABLE_DEFAULT_LIMIT: usize = 50;
/// Tickets `list --json` prints unless told: a million-ticket node would
/// otherwise print every one.
const LIST_JSON_DEFAULT_LIMIT: usize = 100;

fn list(home: &std::path::Path, a: crate::ListArgs) -> Result<()> {
    for s in &a.status {
        parse_status(s)?;
    }
    for p in &a.priority {
        parse_priority(p)?;
    }
    let sla_ranks = match a.sla.as_deref() {
        None => Vec::new(),
        Some(c) => match tickets_core::index::sla_rank_of(c) {
            Some(r) => vec![r],
            None => {
                return Err(user_error(format!("unknown SLA color '{c}'"), Some("use red, yellow, green, met or none")))
            }
        },
    };
    let sort = match a.sort.as_deref() {
        None => None,
        Some(s) => Some(SortKey::parse(s).ok_or_else(|| {
            user_error(
                format!("cannot sort by '{s}'"),
                Some(
                    "use created, updated, priority, status, subject, assignee, category or sla; prefix '-' to reverse",
                ),
            )
        })?),
    };
    if a.limit == Some(0) {
        return Err(user_error("--limit must be at least 1", None));
    }
    let limit = match (a.all, a.limit) {
        (true, _) => None,
        (false, Some(l)) => Some(l),
        (false, None) if a.json => Some(LIST_JSON_DEFAULT_LIMIT),
        (false, None) => Some(LIST_TABLE_DEFAULT_LIMIT),
    };
    let q = ListQuery {
        statuses: a.status.iter().map(|s| parse_status(s).map(|s| s.as_str().to_string())).collect::<Result<_>>()?,
        priorities: a
            .priority
            .iter()
            .map(|p| parse_priority(p).map(|p| p.as_str().to_string()))
            .collect::<Result<_>>()?,
        categories: a.category,
        assignees: a.assignee,
        unassigned: false,
        sla_ranks,
        search: a.search,
        sort,
        limit,
        offset: None,
    };
    let mut node = open(home)?;
    let q = match &a.view {
        Some(name) => refine(node.view(name)?.query()?, q),
        None => q,
    };
    let (rows, total) = node.list(&q)?;
    if a.json {
        // The array stays what scripts read; how many more match is said
        // on stderr, where it cannot break them.
        let shown = rows.len();
        output::json(&Value::Array(rows));
        if total > shown {
            eprintln!("note: {shown} of {total} tickets printed; --limit N or --all prints more");
        }
        return Ok(());
    }
    if !print_tickets(&rows, node.now_ms()) {
        return Ok(());
    }
    if total > rows.len() {
        outln(&dim(&format!("{} of {total} tickets shown; --limit N or --all shows more", rows.len())));
    }
    Ok(())
}

/// A saved view's query refined by the list's flags: each filter given on
/// the command line replaces the view's value for it; the rest is the
/// view's.
fn refine(view: ListQuery, flags: ListQuery) -> ListQuery {
    let mut q = view;
    if !flags.statuses.is_empty() {
        q.statuses = flags.statuses;
    }
    if !flags.priorities.is_empty() {
        q.priorities = flags.priorities;
    }
    if !flags.categories.is_empty() {
        q.categories = flags.categories;
    }
    if !flags.assignees.is_empty() || flags.unassigned {
        q.assignees = flags.assignees;
        q.unassigned = flags.unassigned;
    }
    if !flags.sla_ranks.is_empty() {
        q.sla_ranks = flags.sla_ranks;
    }
    q.search = flags.search.or(q.search);
    q.sort = flags.sort.or(q.sort);
    q.limit = flags.limit;
    q.offset = flags.offset;
    q
}

/// `3h 5m left` or `23m overdue` for a due instant, in the badge's words.
fn due_words(due: &str, now_ms: i64) -> String {
    let Ok(d) = chrono::DateTime::parse_from_rfc3339(due) else { return String::new() };
    let late = now_ms.saturating_sub(d.timestamp_millis()).div_euclid(1_000);
    let words = tickets_core::json::short_duration(late.unsigned_abs());
    if late > 0 {
        format!("{words} overdue")
    } else {
        format!("{words} left")
    }
}

fn print_ticket(t: &Value, now: i64, me: &str) {
    // Every text of the ticket is shown through `safe`: any of it may come
    // from a person (see `term`).
    let s = |k: &str| safe(t.get(k).and_then(Value::as_str).unwrap_or("")).into_owned();
    let text = |v: &Value, default: &'static str| safe(v.as_str().unwrap_or(default)).into_owned();
    print_not_applied(&tickets_node::node::own_not_applied(me, t), false);
    outln(&format!("{}  {}", bold(&s("subject")), dim(&s("id"))));
    let (badge, _) = sla_badge(t, now);
    let color = t["sla"]["color"].as_str().unwrap_or("none");
    outln(&format!(
        "status {}  priority {}  category {}  assignee {}  SLA {}",
        bold(&s("status")),
        paint(&s("priority"), &s("priority")),
        s("category"),
        text(&t["assignee"], "-"),
        paint(color, &badge)
    ));
    outln(&dim(&format!("created {} by {}, updated {}", s("created_at"), s("created_by"), s("updated_at"))));
    if let Some(c) = t["conversation_id"].as_str() {
        outln(&dim(&format!("conversation {}", safe(c))));
    }
    for m in ["first_response", "resolution"] {
        let metric = &t["sla"][m];
        let state = metric["state"].as_str().unwrap_or("none");
        if state == "none" {
            continue;
        }
        let name = if m == "first_response" { "First response" } else { "Resolution" };
        let mut line = format!("  {name}: {}", paint(state, state));
        if let Some(d) = metric["due_at"].as_str() {
            line.push_str(&format!(" ({}, due {})", due_words(d, now), d));
        } else if let Some(o) = metric["overrun_secs"].as_u64().filter(|_| state == "breached") {
            line.push_str(&format!(" ({} overdue)", tickets_core::json::short_duration(o)));
        }
        if let Some(b) = metric["breached_at"].as_str() {
            line.push_str(&format!(", breached at {b}"));
        }
        outln(&line);
    }
    if t["sla"]["provisional"].as_bool() == Some(true) && color != "none" {
        outln(&dim(&format!("  {PROVISIONAL_LEGEND}")));
    }
    let desc = s("description");
    if !desc.is_empty() {
        outln("");
        outln(&desc);
    }
    let entries = |key: &str, title: &str| {
        if let Some(list) = t[key].as_array() {
            if !list.is_empty() {
                outln("");
                outln(&bold(title));
                for c in list {
                    outln(&format!(
                        "  {} {}: {}",
                        dim(&text(&c["at"], "")),
                        text(&c["author"], ""),
                        text(&c["body"], "")
                    ));
                }
            }
        }
    };
    entries("comments", "Comments");
    entries("internal_notes", "Internal notes");
    if let Some(h) = t["history"].as_array() {
        outln("");
        outln(&bold("Timeline"));
        for e in h {
            let field = text(&e["field"], "");
            let what = match field.as_str() {
                "created" => "created the ticket".to_string(),
                "description" => "edited the description".to_string(),
                // "from" is what the edit's author saw; setting what was
                // already there is no change.
                _ if e["from"] == e["to"] => format!("{field}: {} (unchanged)", text(&e["to"], "none")),
                _ => format!("{field}: {} → {}", text(&e["from"], "none"), text(&e["to"], "none")),
            };
            let mut line = format!("  {} {} {what}", dim(&text(&e["at"], "")), text(&e["by"], ""));
            if let Some(o) = e["outcome"].as_str().filter(|o| *o != "applied") {
                line.push_str(&format!(" {}", paint("yellow", &format!("[{o}]"))));
            }
            if let Some(n) = e["note"].as_str() {
                line.push_str(&format!(" {}", dim(&format!("({})", safe(n)))));
            }
            outln(&line);
        }
    }
    if let Some(r) = t["refusals"].as_array() {
        outln("");
        outln(&bold("Refused by the relay"));
        for x in r {
            outln(&format!("  {} {}: {}", dim(&text(&x["at"], "")), text(&x["kind"], ""), text(&x["reason"], "")));
        }
    }
    if let Some(p) = t["problems"].as_array() {
        outln("");
        outln(&bold("Problems in received data (ignored)"));
        for x in p {
            outln(&format!("  {}", text(x, "")));
        }
    }
}

fn node_status(home: &std::path::Path, json: bool) -> Result<()> {
    let mut node = open(home)?;
    let st = node.status()?;
    if json {
        output::json(&serde_json::to_value(&st)?);
        return Ok(());
    }
    outln(&format!("node    {} ({})", st.home.display(), bold(&safe(&st.agent))));
    outln(&format!("relay   {}", st.relay.as_deref().unwrap_or("none (local only)")));
    outln(&format!("tickets {}", st.tickets));
    outln(&format!("pending {} document(s) not yet on the relay", st.pending));
    outln(&format!("synced  {}", st.last_sync.as_deref().unwrap_or("never")));
    if st.new_for_you > 0 {
        outln(&bold(&newly_assigned(st.new_for_you)));
    }
    Ok(())
}

/// "2 tickets newly assigned to you": what `status` and `sync` say.
pub fn newly_assigned(n: usize) -> String {
    let tickets = if n == 1 { "ticket" } else { "tickets" };
    format!("{n} {tickets} newly assigned to you (marked • in `tickets list`; `tickets show ID` opens one)")
}

fn import(home: &std::path::Path, file: &std::path::Path, json: bool) -> Result<()> {
    let meta = std::fs::metadata(file).map_err(|e| user_error(format!("cannot read {}: {e}", file.display()), None))?;
    if meta.len() > tickets_node::import::IMPORT_BYTES_MAX {
        return Err(user_error(
            format!("{} is larger than {} bytes", file.display(), tickets_node::import::IMPORT_BYTES_MAX),
            Some("split it into several files"),
        ));
    }
    let text =
        std::fs::read_to_string(file).map_err(|e| user_error(format!("cannot read {}: {e}", file.display()), None))?;
    let records = tickets_node::import::parse_import(&text)
        .map_err(|e| coded_error("bad_import", format!("{}: {e}", file.display()), Some("nothing was imported")))?;
    let mut node = open(home)?;
    let bar = if std::io::stderr().is_terminal() && !json && records.len() >= 100 {
        let b = ProgressBar::new(records.len() as u64);
        b.set_style(
            ProgressStyle::with_template("importing {bar:40} {pos}/{len} tickets ({per_sec}, {eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let started = std::time::Instant::now();
    let n = node
        .import(&records, &mut |i| {
            if let Some(b) = &bar {
                if i % 64 == 0 {
                    b.set_position(i as u64);
                }
            }
        })
        .map_err(|e| match e {
            NodeError::Import { .. } | NodeError::ImportFile(_) => {
                coded_error("bad_import", format!("{}: {e}", file.display()), Some("nothing was imported"))
            }
            other => other.into(),
        })
        .context("import")?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if json {
        output::json(&serde_json::json!({"imported": n}));
    } else {
        outln(&format!("imported {n} tickets in {:.1}s", started.elapsed().as_secs_f64()));
    }
    Ok(())
}

/// `tickets inbox`: the recent conversations on this device.
fn inbox(home: &std::path::Path, json: bool) -> Result<()> {
    let mut node = open(home)?;
    let now = node.now_ms();
    let listed = node.inbox()?;
    if json {
        let items: Vec<Value> = listed.iter().map(|l| l.to_json(now)).collect();
        output::json(&Value::Array(items));
        return Ok(());
    }
    if listed.is_empty() {
        outln("The inbox is empty on this device (`tickets sync` brings conversations of the last 14 days).");
        return Ok(());
    }
    let mut t = table(&["CONVERSATION", "CUSTOMER", "CHANNEL", "LAST MESSAGE", "AGE", "TICKET"]);
    for l in &listed {
        let c = &l.conversation;
        let last = c
            .last_message()
            .map(|m| {
                // Shown as text: one line, cut, whatever markup it holds.
                let one_line: String = m.text.split_whitespace().collect::<Vec<_>>().join(" ");
                let cut: String = one_line.chars().take(48).collect();
                let role = if m.role == tickets_core::conversation::Role::Agent { "agent" } else { "customer" };
                format!("{role}: {cut}{}", if one_line.chars().count() > 48 { "…" } else { "" })
            })
            .unwrap_or_default();
        t.add_row(vec![
            output::cell(&c.id, None),
            output::cell(c.customer.as_deref().unwrap_or("unknown"), None),
            output::cell(c.channel.as_deref().unwrap_or_default(), None),
            output::cell(&last, None),
            output::cell(&output::human((now.saturating_sub(c.active_ms) / 1000).max(0) as u64), None),
            output::cell(l.ticket.as_deref().map(home::short_id).unwrap_or("-"), None),
        ]);
    }
    outln(&t.to_string());
    Ok(())
}
