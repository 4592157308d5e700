//! `tickets demo`: a relay and three agents' nodes in a temporary folder,
//! telling the product's story on the terminal, then exiting.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use tickets_core::conversation::Conversation;
use tickets_core::edit::{Edit, NewTicket};
use tickets_core::index::ListQuery;
use tickets_core::model::{Priority, Status};
use tickets_node::{Node, WallClock};
use tickets_relay::{auth, store::Db};

use crate::output::{bold, dim, outln};
use tickets_node::home::short_id as short;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Keep the relay and its dashboard up at the end (Ctrl-C stops it).
    #[arg(long)]
    pub serve: bool,
    /// Where to write the demo's outputs (default: a new folder under the
    /// system's temporary folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn step(n: u32, title: &str) {
    outln("");
    outln(&bold(&format!("{n}. {title}")));
}

fn say(s: &str) {
    outln(&format!("   {s}"));
}

const CONVERSATION: &str = r#"{"id": "wa-20261124-0042", "channel": "whatsapp",
 "customer": {"name": "Marta Gómez"},
 "messages": [
  {"from": "Marta Gómez", "role": "customer", "text": "Hola, the card reader at store 12 rejects every card.", "at": "2026-11-24T08:01:00Z"},
  {"from": "Marta Gómez", "role": "customer", "text": "It shows error E-17 since this morning.", "at": "2026-11-24T08:02:30Z"},
  {"from": "Marta Gómez", "role": "customer", "text": "We are losing sales, please hurry.", "at": "2026-11-24T08:05:10Z"}
 ]}"#;

struct Agent {
    name: &'static str,
    node: Node,
}

impl Agent {
    fn sync(&mut self) -> Result<String> {
        let r = self.node.sync(&mut |_| {})?;
        Ok(format!("{} synced: pushed {}, pulled {}, refused {}", self.name, r.pushed, r.pulled, r.refused.len()))
    }
}

pub fn run(a: DemoArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let work = tempfile_dir()?;
    let out = match a.out {
        Some(o) => o,
        None => work.join("out"),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    // A rerun into the same folder replaces the demo's own earlier outputs
    // (and nothing else).
    for name in ["board.json", "conversation.json", "export.json", "export.ndjson"] {
        let _ = std::fs::remove_file(out.join(name));
    }
    let _ = std::fs::remove_dir_all(out.join("export-csv"));
    let result = story(&work, &out, a.serve);
    // Node and relay databases are scratch: only the outputs stay.
    for sub in ["relay", "ana", "ben", "lea"] {
        let _ = std::fs::remove_dir_all(work.join(sub));
    }
    result?;
    outln("");
    outln(&format!("Done in {:.1}s. Outputs written to {}:", started.elapsed().as_secs_f64(), out.display()));
    let mut files: Vec<_> = std::fs::read_dir(&out)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    for f in files {
        outln(&format!("   {}", f.display()));
    }
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tickets-demo-{}", uuid_short()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn uuid_short() -> String {
    let n = now_ms();
    format!("{n:x}-{}", std::process::id())
}

fn story(work: &Path, out: &Path, serve: bool) -> Result<()> {
    outln(&bold("Tickets demo: a relay and three agents (ana and ben in the field, lea the team lead)"));

    step(1, "The operator starts a relay and sets it up");
    std::fs::create_dir_all(work.join("relay"))?;
    let db_path = work.join("relay").join("relay.db");
    let db = Db::open(&db_path, true)?;
    let mut conn = db.conn()?;
    let mut tokens = Vec::new();
    for (name, role, team, notes) in
        [("ana", "agent", Some("field"), false), ("ben", "agent", Some("field"), false), ("lea", "lead", None, true)]
    {
        let token = auth::new_token();
        conn.add_agent(name, role, team, notes, &auth::token_hash(&token), now_ms())?;
        tokens.push(token);
    }
    conn.set_categories(&["hardware".into(), "payments".into(), "network".into()])?;
    conn.update_sla(now_ms(), |p| {
        p.warn_percent = 50;
        let t = p.targets.entry(Priority::Urgent).or_default();
        t.first_response_secs = Some(8);
        t.resolution_secs = Some(20);
        let t = p.targets.entry(Priority::High).or_default();
        t.first_response_secs = Some(20);
        t.resolution_secs = Some(3600);
        let t = p.targets.entry(Priority::Medium).or_default();
        t.first_response_secs = Some(3600);
        t.resolution_secs = Some(8 * 3600);
    })?;
    say("agents: ana (agent, team field), ben (agent, team field), lea (lead, reads internal notes)");
    say("SLA: urgent must get a first response in 8s and be resolved in 20s (short, for the demo); warn at 50%");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    let (state, stop) = tickets_relay::AppState::new(db.clone())?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(tickets_relay::serve(listener, state, stop, async move {
        let _ = shutdown_rx.await;
    }));
    say(&format!("relay listening on {url}"));

    step(2, "Three devices register with the relay");
    let mut agents = Vec::new();
    for (name, token) in ["ana", "ben", "lea"].into_iter().zip(&tokens) {
        let home = work.join(name);
        let mut node = Node::init(&home, name, WallClock::default())?;
        node.register(&url, token)?;
        agents.push(Agent { name, node });
    }
    say("each device keeps its own SQLite database and works offline");
    let [ana, ben, lea] = &mut agents[..] else { anyhow::bail!("three agents expected") };

    step(3, "ana creates tickets, one from a WhatsApp conversation");
    let conv_path = out.join("conversation.json");
    std::fs::write(&conv_path, CONVERSATION)?;
    let conv = Conversation::parse(CONVERSATION.as_bytes())?;
    let card = ana.node.create(
        &NewTicket {
            subject: "Card reader rejects every card (store 12)".into(),
            priority: Priority::Urgent,
            category: "payments".into(),
            description: Some("Escalated from WhatsApp.".into()),
            assignee: Some("team:field".into()),
        },
        Some(&conv),
        false,
    )?;
    let wifi = ana.node.create(
        &NewTicket {
            subject: "Wi-Fi drops in the back office".into(),
            priority: Priority::High,
            category: "network".into(),
            description: Some("Drops every ~10 minutes since the router swap.".into()),
            assignee: None,
        },
        None,
        false,
    )?;
    let printer = ana.node.create(
        &NewTicket {
            subject: "Receipt printer paper jam".into(),
            priority: Priority::Medium,
            category: "hardware".into(),
            description: None,
            assignee: Some("ana".into()),
        },
        None,
        false,
    )?;
    say(&format!("{} (urgent, from conversation {})", short(&card), conv.id));
    say(&format!("{} (high), {} (medium)", short(&wifi), short(&printer)));

    step(4, "Still offline, ben creates a ticket from the same conversation");
    let bens = ben.node.create(
        &NewTicket {
            subject: "Store 12 card payments down".into(),
            priority: Priority::Urgent,
            category: "payments".into(),
            description: Some("Customer called the hotline too.".into()),
            assignee: None,
        },
        Some(&conv),
        false,
    )?;
    ben.node.edit(&bens, &[Edit::Comment("Called Marta back, she confirms E-17.".into())])?;
    say(&format!("ben's ticket {} has the same id: it is derived from the conversation", short(&bens)));
    say(&ana.sync()?);
    say(&ben.sync()?);
    say(&lea.sync()?);
    say(&ana.sync()?);
    let q = ListQuery { search: Some(short(&card).to_string()), ..ListQuery::default() };
    for agent in [&mut *ana, &mut *ben, &mut *lea] {
        let (rows, _) = agent.node.list(&q)?;
        let t = &rows[0];
        say(&format!(
            "{} sees 1 ticket for the conversation: \"{}\" with {} comment(s), descriptions of both agents kept",
            agent.name,
            t["subject"].as_str().unwrap_or(""),
            t["comments"].as_array().map_or(0, |c| c.len())
        ));
    }

    step(5, "Offline, ana and ben edit the same ticket differently; lea adds an internal note");
    ana.node.edit(&card, &[Edit::Status(Status::InProgress), Edit::Assignee(Some("ana".into()))])?;
    ana.node.edit(&card, &[Edit::Comment("On my way to store 12 with a spare reader.".into())])?;
    std::thread::sleep(Duration::from_millis(20));
    ben.node
        .edit(&card, &[Edit::Assignee(Some("ben".into())), Edit::Comment("I can take it, I'm next door.".into())])?;
    lea.node.edit(&card, &[Edit::Note("Store 12 is a key account: call the manager when fixed.".into())])?;
    let note_refused = ben.node.edit(&card, &[Edit::Note("trying a note".into())]);
    say("ana: in-progress, assigned to herself, comments; ben (later): assigns himself, comments");
    say(&format!(
        "ben tries an internal note: {}",
        match note_refused {
            Err(e) => format!("refused locally ({e})"),
            Ok(_) => "accepted".into(),
        }
    ));

    step(6, "Everyone reconnects and converges");
    say(&ana.sync()?);
    say(&ben.sync()?);
    say(&lea.sync()?);
    say(&ana.sync()?);
    let va = ana.node.show(&card)?;
    let vb = ben.node.show(&card)?;
    let strip = |mut v: serde_json::Value| {
        if let Some(o) = v.as_object_mut() {
            o.remove("sla");
            o.remove("internal_notes");
        }
        v
    };
    let same_view = strip(va.clone()) == strip(vb.clone());
    say(&format!(
        "ana and ben now show the same ticket: {} (assignee {}, status {})",
        if same_view { "yes" } else { "NO" },
        va["assignee"].as_str().unwrap_or("-"),
        va["status"].as_str().unwrap_or("-")
    ));
    if let Some(h) = va["history"].as_array() {
        for e in h.iter().filter(|e| e["outcome"] != "applied") {
            say(&dim(&format!(
                "history keeps the losing edit: {} {} -> {} ({})",
                e["field"].as_str().unwrap_or(""),
                e["from"].as_str().unwrap_or("none"),
                e["to"].as_str().unwrap_or("none"),
                e["note"].as_str().unwrap_or("")
            )));
        }
    }
    say(&format!(
        "internal notes on ben's device: {}; on lea's: {}",
        vb.get("internal_notes").map(|n| n.as_array().map_or(0, |a| a.len())).unwrap_or(0),
        lea.node.show(&card)?["internal_notes"].as_array().map_or(0, |a| a.len())
    ));
    if !same_view {
        anyhow::bail!("replicas did not converge");
    }

    step(7, "The SLA board moves with time, with no edit at all");
    let counts = |db: &Db| -> Result<tickets_core::index::SlaCounts> { Ok(db.conn()?.color_counts(now_ms())?) };
    for wait in [0u64, 5, 7] {
        std::thread::sleep(Duration::from_secs(wait));
        let tickets_core::index::SlaCounts { none, green, yellow, red, .. } = counts(&db)?;
        say(&format!("t+{:>2}s  green {green}  yellow {yellow}  red {red}  (no target: {none})", wait));
    }
    ben.node
        .edit(&wifi, &[Edit::Comment("Replaced the access point firmware.".into()), Edit::Status(Status::Resolved)])?;
    say(&ben.sync()?);
    let board = db.conn()?.tickets(&ListQuery::default(), now_ms(), true)?.0;
    for t in &board {
        say(&format!(
            "{}  {:<42} {:<8} {:<12} SLA {}",
            short(t["id"].as_str().unwrap_or("")),
            t["subject"].as_str().unwrap_or(""),
            t["priority"].as_str().unwrap_or(""),
            t["status"].as_str().unwrap_or(""),
            t["sla"]["color"].as_str().unwrap_or("")
        ));
    }

    step(8, "lea exports the authoritative data");
    let board_path = out.join("board.json");
    std::fs::write(&board_path, serde_json::to_vec_pretty(&board)?)?;
    say(&format!("the board as the API serves it: {}", board_path.display()));
    for (format, name) in [("csv", "export-csv"), ("json", "export.json"), ("ndjson", "export.ndjson")] {
        crate::export_cmd::run(
            &work.join("lea"),
            crate::export_cmd::ExportArgs {
                format: format.into(),
                from: None,
                to: None,
                status: vec![],
                category: vec![],
                output: out.join(name),
                json: false,
            },
        )?;
    }
    let ben_export = crate::export_cmd::run(
        &work.join("ben"),
        crate::export_cmd::ExportArgs {
            format: "json".into(),
            from: None,
            to: None,
            status: vec![],
            category: vec![],
            output: out.join("ben-not-allowed.json"),
            json: false,
        },
    );
    if let Err(e) = ben_export {
        say(&format!("ben (an agent) may not export: {e}"));
    }

    let lea_home = work.join("lea");
    if serve {
        outln("");
        outln(&bold(&format!("Relay serving at {url}")));
        outln(&format!("Lead token (sign in to the dashboard with it): {}", tokens[2]));
        outln(&format!(
            "Open the app on lea's node (in another terminal; it syncs with this relay): tickets --home {} app",
            lea_home.display()
        ));
        outln("Ctrl-C stops it.");
        rt.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
    }
    let _ = shutdown_tx.send(());
    let _ = rt.block_on(server);
    if !serve {
        outln("");
        outln(&format!(
            "To work these tickets in the app (the web UI on an agent's node): run {} and then the `tickets --home \
             ... app` line it prints, in another terminal.",
            bold("tickets demo --serve")
        ));
    }
    Ok(())
}
