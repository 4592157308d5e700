//! Registering with a relay, syncing, watching, and the board.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tickets_node::sync::{register_actor, Remote, SyncError, SyncReport};
use tickets_node::{Node, WallClock};

use tickets_node::home::{open, short_id as short};

use crate::output::{self, bold, dim, outln, paint};
use crate::term::safe;
use crate::tickets_table::{print_not_applied, print_tickets};
use crate::{coded_error, user_error, BoardArgs, InitArgs, SyncArgs};

/// The hint for a sync error met by `tickets sync` (other commands reword
/// the ones that do not apply to them with [`with_hint`]).
pub fn hint(e: &SyncError) -> Option<String> {
    match e {
        SyncError::NotRegistered => Some("register with `tickets init --relay URL --token TOKEN`".into()),
        SyncError::Unauthorized => Some("ask the relay operator for a new token".into()),
        SyncError::Transport { .. } | SyncError::Server { .. } => {
            Some("nothing is lost: local edits stay pending and the next sync resumes".into())
        }
        SyncError::Refused { .. } => Some("nothing was changed; correct the request and run it again".into()),
        SyncError::RateLimited { retry_after_secs, .. } => {
            Some(format!("nothing is lost: local edits stay pending; try again in {retry_after_secs} s"))
        }
        SyncError::Protocol(_) => {
            Some("update `tickets` on this device or the relay so both speak the same version".into())
        }
        _ => None,
    }
}

/// The error of a relay that cannot be reached (or fails) with a hint that
/// fits the command, where the sync hint ("local edits stay pending") does
/// not; other errors pass through.
pub fn with_hint(e: SyncError, hint: &str) -> anyhow::Error {
    match e {
        SyncError::Transport { .. } => coded_error("unreachable", e.to_string(), Some(hint)),
        SyncError::Server { .. } => coded_error("relay_error", e.to_string(), Some(hint)),
        other => other.into(),
    }
}

/// Checks a relay URL before anything is sent: a scheme (`http://` or
/// `https://`) and a host. `127.0.0.1:8080` alone is refused at once, with
/// the URL it probably meant.
pub fn check_relay_url(url: &str) -> Result<()> {
    let url = url.trim();
    let parsed = reqwest::Url::parse(url);
    let ok = matches!(&parsed, Ok(u) if ["http", "https"].contains(&u.scheme()) && u.host_str().is_some());
    if ok {
        return Ok(());
    }
    let has_scheme = url.contains("://");
    let hint = if has_scheme {
        "the relay's URL starts with http:// or https:// and names a host, e.g. http://127.0.0.1:8080".to_string()
    } else {
        format!("add the scheme: --relay http://{url} (or https:// behind TLS)")
    };
    Err(coded_error("bad_url", format!("'{url}' is not a relay URL"), Some(&hint)))
}

/// `tickets init --relay URL --token TOKEN`: a new node registered with a
/// relay, or an existing local-only node registered later.
pub fn init_relay(home: &Path, a: InitArgs) -> Result<()> {
    let (Some(url), Some(token)) = (a.relay, a.token) else {
        return Err(user_error("--relay and --token go together", None));
    };
    check_relay_url(&url)?;
    let unreachable = "check the URL and that the relay is running (`tickets relay serve`); nothing was registered";
    let wall = WallClock::from_env()?;
    let mut node = if home.join(tickets_node::DB_FILE).exists() {
        Node::open(home, wall)?
    } else {
        let actor = Node::new_actor();
        let remote = Remote::new(&url, &token).map_err(|e| with_hint(e, unreachable))?;
        let resp = register_actor(&remote, &actor).map_err(|e| with_hint(e, unreachable))?;
        if let Some(agent) = &a.agent {
            if agent.trim() != resp.access.agent {
                return Err(SyncError::WrongAgent { node: agent.clone(), token: resp.access.agent }.into());
            }
        }
        Node::init_with_actor(home, &resp.access.agent, actor, wall)?
    };
    let access = node.register(&url, &token).map_err(|e| with_hint(e, unreachable))?;
    if a.json {
        output::json(&serde_json::json!({"home": home, "agent": access.agent, "role": access.role,
            "internal_notes": access.internal_notes, "relay": url}));
    } else {
        outln(&format!(
            "This device is registered with {url} as {} ({}{}). Run `tickets sync` to pull tickets.",
            bold(&safe(&access.agent)),
            access.role,
            if access.internal_notes { ", internal notes" } else { "" }
        ));
    }
    Ok(())
}

fn print_report(r: &SyncReport) {
    let mut line =
        format!("pushed {}, pulled {}, refused {}, pending {}", r.pushed, r.pulled, r.refused.len(), r.pending);
    if r.inbox > 0 {
        line.push_str(&format!(", inbox {} conversation(s)", r.inbox));
    }
    if r.purged_notes > 0 {
        line.push_str(&format!(", removed {} internal note document(s) no longer permitted", r.purged_notes));
    }
    outln(&line);
    for x in &r.refused {
        outln(&format!("  refused {} ({}): {}", short(&x.ticket), safe(&x.kind), safe(&x.reason)));
    }
    for x in &r.damaged {
        outln(&format!("  damaged {} ({}): {}", short(&x.ticket), safe(&x.kind), safe(&x.reason)));
    }
    print_not_applied(&r.not_applied, true);
    if r.new_for_you > 0 {
        outln(&bold(&crate::node_cmd::newly_assigned(r.new_for_you)));
    }
    if let Some(secs) = r.rate_limited_secs {
        outln(&format!(
            "rate limited: the relay limits this agent's writes; {} document(s) stay pending, push again in {secs} s (`tickets sync --watch` does)",
            r.pending
        ));
    }
    if r.incomplete {
        outln(&dim("stopped at the round limit; run `tickets sync` again to continue"));
    }
}

pub fn sync(home: &Path, a: SyncArgs) -> Result<()> {
    let mut node = open(home)?;
    if a.dry_run {
        let st = node.status()?;
        if a.json {
            output::json(&serde_json::to_value(&st)?);
        } else {
            outln(&format!("would push {} document(s) to {}", st.pending, st.relay.as_deref().unwrap_or("(no relay)")));
            outln(&format!("last successful sync: {}", st.last_sync.as_deref().unwrap_or("never")));
        }
        return Ok(());
    }
    if a.watch {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        // Ctrl-C ends the watch after the round in flight.
        let _ = ctrlc_flag(s2);
        let json = a.json;
        eprintln!("watching for changes (Ctrl-C to stop)");
        // Say once when the relay is lost and once when it is back, not on
        // every retry.
        let mut lost = false;
        node.sync_watch(&|| !stop.load(Ordering::Relaxed), &mut |r| match r {
            Ok(rep) => {
                if lost {
                    lost = false;
                    eprintln!("reconnected to the relay; synced");
                }
                if rep.pushed + rep.pulled + rep.refused.len() + rep.inbox > 0 {
                    if json {
                        output::json(&serde_json::to_value(rep).unwrap_or_default());
                    } else {
                        print_report(rep);
                    }
                }
            }
            Err(e) => {
                if !lost {
                    lost = true;
                    eprintln!(
                        "connection to the relay lost ({}); retrying, local edits stay pending",
                        safe(&e.to_string())
                    );
                }
            }
        })?;
        return Ok(());
    }
    let bar = (std::io::stderr().is_terminal() && !a.json).then(|| {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} syncing: {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b
    });
    let report = node.sync(&mut |p| {
        if let Some(b) = &bar {
            b.set_message(format!("round {}, pushed {}, pulled {}", p.rounds, p.pushed, p.pulled));
            b.tick();
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let report = report?;
    if a.json {
        output::json(&serde_json::to_value(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Sets `flag` on Ctrl-C (SIGINT) via a small signal-handling thread.
fn ctrlc_flag(flag: Arc<AtomicBool>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::spawn(move || {
        rt.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
        flag.store(true, Ordering::Relaxed);
    });
    Ok(())
}

pub fn board(home: &Path, a: BoardArgs) -> Result<()> {
    let mut node = open(home)?;
    let Some(remote) = node.remote()? else { return Err(SyncError::NotRegistered.into()) };
    let mut query: Vec<(String, String)> = Vec::new();
    if let Some(s) = &a.sla {
        if tickets_core::index::sla_rank_of(s).is_none() {
            return Err(user_error(format!("unknown SLA color '{s}'"), Some("use red, yellow, green, met or none")));
        }
        query.push(("sla".into(), s.clone()));
    }
    for s in &a.status {
        query.push(("status".into(), s.clone()));
    }
    if let Some(s) = &a.search {
        query.push(("search".into(), s.clone()));
    }
    query.push(("sort".into(), a.sort.clone().unwrap_or_else(|| "sla".into())));
    if let Some(l) = a.limit {
        query.push(("limit".into(), l.to_string()));
    }
    let resp: Value = remote
        .get_json("/v1/tickets", &query)
        .map_err(|e| with_hint(e, "check that the relay is running and reachable, then run `tickets board` again"))?;
    if a.json {
        output::json(&resp["tickets"]);
        return Ok(());
    }
    let c = &resp["counts"];
    outln(&format!(
        "{}  {}  {}  {}",
        paint("green", &format!("● {} green", c["green"])),
        paint("yellow", &format!("● {} yellow", c["yellow"])),
        paint("red", &format!("● {} red", c["red"])),
        dim(&format!("{} met, {} without SLA", c["met"], c["none"]))
    ));
    let tickets = resp["tickets"].as_array().cloned().unwrap_or_default();
    if !print_tickets(&tickets, node.now_ms()) {
        return Ok(());
    }
    let total = resp["total"].as_u64().unwrap_or(0);
    if total as usize > tickets.len() {
        outln(&dim(&format!("{} of {total} tickets shown; --limit N shows more", tickets.len())));
    }
    Ok(())
}
