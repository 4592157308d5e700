//! The inbox's cases (SPEC §10), run on every backend like the rest.

use std::collections::HashSet;

use tickets_core::inbox::{InboxConversation, InboxKind, RECENT_MS};
use tickets_core::protocol::{InboxPage, InboxPull};
use tickets_relay::inbox::store::{add_inbox, inboxes, ingest, pull, remove_inbox, InboxStoreError, Ingested};
use tickets_relay::store::inbox::{ConversationCommit, ConversationWrite};
use tickets_relay::store::{AgentRow, Caller};

use crate::backends::Backend;
use crate::delegate::Interleave;

fn caller(team: Option<&str>) -> Caller {
    Caller {
        agent: AgentRow {
            name: "a".into(),
            role: "agent".into(),
            team: team.map(str::to_string),
            internal_notes: false,
            revoked: false,
            devices: 0,
        },
        actors: HashSet::new(),
    }
}

/// A generic delivery of one message `msg` of conversation `conv`.
fn message(conv: &str, msg: u32) -> Vec<u8> {
    serde_json::json!({"id": conv, "messages": [
        {"id": msg.to_string(), "role": "customer", "text": format!("m{msg}"), "at": "2026-01-01T00:00:00Z"}]})
    .to_string()
    .into_bytes()
}

fn ids(page: &InboxPage) -> Vec<&str> {
    page.conversations.iter().map(|c| c.id.as_str()).collect()
}

fn texts(b: &dyn Backend, id: &str) -> Vec<String> {
    let stored = b.connect().conversation(id).expect("read").expect("stored");
    let conv: InboxConversation = serde_json::from_str(&stored.json).expect("conversation JSON");
    conv.messages.into_iter().map(|m| m.text).collect()
}

/// Devices get the recent conversations of their team (or of no team); the
/// cursor passes what is filtered out, so an idle pull reads nothing; a
/// repeat changes nothing; an inbox cannot write another's conversation.
pub fn inbox_scope_and_cursor(b: &dyn Backend) {
    let mut c = b.connect();
    let c = &mut *c;
    add_inbox(c, "all", InboxKind::Generic, None, "h-all", 0).expect("add");
    add_inbox(c, "sales", InboxKind::Generic, Some("sales"), "h-sales", 0).expect("add");
    assert!(matches!(add_inbox(c, "all", InboxKind::Chatwoot, None, "h-2", 0), Err(InboxStoreError::Exists(_))));
    let day = 86_400_000;
    ingest(c, "h-all", &message("old", 1), 0).expect("old");
    ingest(c, "h-all", &message("new", 1), 10 * day).expect("new");
    ingest(c, "h-sales", &message("lead", 1), 10 * day).expect("sales");
    let now = 15 * day;
    assert!(now > RECENT_MS && now - 10 * day < RECENT_MS);
    let field = pull(c, &caller(Some("field")), &InboxPull { cursor: 0 }, now).expect("pull");
    assert_eq!(ids(&field), ["generic:all:new"], "not the aged-out one, not another team's");
    let sales = pull(c, &caller(Some("sales")), &InboxPull { cursor: 0 }, now).expect("pull");
    assert_eq!(ids(&sales), ["generic:all:new", "generic:sales:lead"]);
    assert_eq!((field.cursor, sales.cursor), (3, 3), "the cursor passes what was filtered out");
    let idle = pull(c, &caller(Some("sales")), &InboxPull { cursor: 3 }, now).expect("pull");
    assert!(idle.conversations.is_empty() && !idle.more && idle.cursor == 3);
    // A repeat changes nothing, not even the sequence.
    assert_eq!(
        ingest(c, "h-sales", &message("lead", 1), now).expect("repeat"),
        Ingested::Stored { id: "generic:sales:lead".into(), changed: false, seq: 3 }
    );
    // A new message moves the conversation after the cursor.
    ingest(c, "h-sales", &message("lead", 2), now).expect("more");
    let next = pull(c, &caller(Some("sales")), &InboxPull { cursor: 3 }, now).expect("pull");
    assert_eq!((ids(&next), next.cursor), (vec!["generic:sales:lead"], 4));
    assert_eq!(next.conversations[0].messages.len(), 2);
    assert_eq!(c.inbox_head().expect("head"), 4);
    // An inbox cannot write into another's conversation: the same posted id
    // from another generic inbox is that inbox's own conversation.
    let own = ingest(c, "h-all", &message("lead", 9), now).expect("its own");
    assert_eq!(own, Ingested::Stored { id: "generic:all:lead".into(), changed: true, seq: 5 });
    assert_eq!(texts(b, "generic:sales:lead"), ["m1", "m2"], "the sales inbox's conversation is untouched");
    let listed: Vec<(String, u64)> = inboxes(c).expect("list").into_iter().map(|r| (r.name, r.conversations)).collect();
    assert_eq!(listed, [("all".to_string(), 3), ("sales".to_string(), 1)]);
    // A removed inbox's secret stores nothing.
    remove_inbox(c, "all").expect("remove");
    assert!(matches!(remove_inbox(c, "all"), Err(InboxStoreError::NoInbox(_))));
    assert!(matches!(ingest(c, "h-all", &message("new", 2), now), Err(InboxStoreError::UnknownSecret)));
    assert_eq!(c.inbox_head().expect("head"), 5);
}

/// A write whose conversation changed since it was read writes nothing and
/// says so; a write whose inbox lost its secret (removed) too.
pub fn inbox_stale_write_conflicts(b: &dyn Backend) {
    let mut c = b.connect();
    let c = &mut *c;
    add_inbox(c, "all", InboxKind::Generic, None, "h", 0).expect("add");
    ingest(c, "h", &message("x", 1), 1).expect("first");
    let read = c.conversation("generic:all:x").expect("read").expect("stored");
    assert_eq!((read.inbox.as_str(), read.seq), ("all", 1));
    ingest(c, "h", &message("x", 2), 2).expect("second");
    let mut w = ConversationWrite {
        id: "generic:all:x",
        secret_hash: "h",
        inbox: "all",
        team: None,
        active_ms: 3,
        json: &read.json,
        expect: Some(read.seq),
    };
    assert_eq!(c.put_conversation(&w).expect("write"), ConversationCommit::Conflict);
    w.expect = None;
    assert_eq!(c.put_conversation(&w).expect("write"), ConversationCommit::Conflict, "it exists");
    assert_eq!(c.inbox_head().expect("head"), 2, "a refused write took a number");
    assert_eq!(texts(b, "generic:all:x"), ["m1", "m2"]);
    w.expect = Some(2);
    w.secret_hash = "another";
    assert_eq!(c.put_conversation(&w).expect("write"), ConversationCommit::NoInbox);
    remove_inbox(c, "all").expect("remove");
    w.secret_hash = "h";
    assert_eq!(c.put_conversation(&w).expect("write"), ConversationCommit::NoInbox);
    assert_eq!(c.inbox_head().expect("head"), 2);
}

/// Two deliveries of one conversation at once (as on two instances): the
/// second lands between the first's read and its write. The first merges
/// again, so no message is lost; a repeat delivered twice at once is
/// stored once.
pub fn inbox_concurrent_deliveries_merge(b: &dyn Backend) {
    add_inbox(&mut *b.connect(), "all", InboxKind::Generic, None, "h", 0).expect("add");
    ingest(&mut *b.connect(), "h", &message("x", 1), 1).expect("first");
    let mut conn = Interleave {
        inner: b.connect(),
        before_commit: Some(Box::new(|| {
            let got = ingest(&mut *b.connect(), "h", &message("x", 3), 2).expect("the interleaved delivery");
            assert_eq!(got, Ingested::Stored { id: "generic:all:x".into(), changed: true, seq: 2 });
        })),
    };
    let got = ingest(&mut conn, "h", &message("x", 2), 2).expect("delivery");
    assert!(conn.before_commit.is_none(), "the interleaved delivery never ran");
    assert_eq!(got, Ingested::Stored { id: "generic:all:x".into(), changed: true, seq: 3 });
    assert_eq!(texts(b, "generic:all:x"), ["m1", "m2", "m3"], "a message was lost");

    let mut conn = Interleave {
        inner: b.connect(),
        before_commit: Some(Box::new(|| {
            let got = ingest(&mut *b.connect(), "h", &message("x", 4), 3).expect("the interleaved delivery");
            assert_eq!(got, Ingested::Stored { id: "generic:all:x".into(), changed: true, seq: 4 });
        })),
    };
    let got = ingest(&mut conn, "h", &message("x", 4), 3).expect("the repeat");
    assert_eq!(
        got,
        Ingested::Stored { id: "generic:all:x".into(), changed: false, seq: 4 },
        "the repeat was stored twice"
    );
    assert_eq!(b.connect().inbox_head().expect("head"), 4);
    assert_eq!(texts(b, "generic:all:x"), ["m1", "m2", "m3", "m4"]);
}
