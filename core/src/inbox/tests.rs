use proptest::prelude::*;

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/chatwoot/", $name))
    };
}

fn update(kind: InboxKind, body: &[u8]) -> Update {
    match parse_delivery(kind, "support", body) {
        Ok(Delivery::Update(u)) => u,
        other => panic!("expected an update, got {other:?}"),
    }
}

#[test]
fn chatwoot_conversation_created() {
    let u = update(InboxKind::Chatwoot, fixture!("conversation_created.json"));
    assert_eq!(u.conversation_id, "chatwoot:support:10");
    assert_eq!(u.channel.as_deref(), Some("webwidget"));
    assert_eq!(u.customer.as_deref(), Some("jane"));
    assert_eq!(u.status.as_deref(), Some("open"));
    // The template message (type 3, a bot's form) is left out.
    assert_eq!(u.messages.len(), 1);
    let m = &u.messages[0];
    assert_eq!((m.id.as_str(), m.role, m.at_ms), ("117", Role::Customer, 1_627_063_308_000));
}

#[test]
fn chatwoot_message_created_roles_and_left_out_messages() {
    let u = update(InboxKind::Chatwoot, fixture!("message_created.incoming.json"));
    assert_eq!(u.conversation_id, "chatwoot:support:10");
    assert_eq!(u.messages.len(), 1);
    assert_eq!(u.messages[0].role, Role::Customer);
    assert_eq!(u.messages[0].at_ms, 1_627_063_368_000);
    let u = update(InboxKind::Chatwoot, fixture!("message_created.outgoing.json"));
    assert_eq!((u.messages[0].role, u.messages[0].from.as_deref()), (Role::Agent, Some("John")));
    for f in [&fixture!("message_created.private.json")[..], &fixture!("message_created.activity.json")[..]] {
        let u = update(InboxKind::Chatwoot, f);
        assert!(u.messages.is_empty(), "{u:?}");
        assert_eq!(u.customer.as_deref(), Some("jane"));
    }
    let u = update(InboxKind::Chatwoot, fixture!("message_created.html.json"));
    assert!(u.messages[0].text.starts_with("<script>alert(1)</script>"), "HTML stays text");
}

#[test]
fn chatwoot_numbers_words_and_times() {
    let body = |t: &str, at: &str| {
        format!(
            r#"{{"event":"message_created","id":"7","content":"x","message_type":{t},"created_at":{at},
                "conversation":{{"display_id":"3","meta":{{"sender":{{"name":"Ana"}}}}}},"inbox":{{"name":"WhatsApp"}}}}"#
        )
    };
    let cases = [
        ("0", "1627063308", Role::Customer, 1_627_063_308_000),
        ("1", "\"1627063308\"", Role::Agent, 1_627_063_308_000),
        ("\"incoming\"", "\"2020-03-03 13:05:57 UTC\"", Role::Customer, 1_583_240_757_000),
        ("\"outgoing\"", "\"2021-07-23T18:02:48.000Z\"", Role::Agent, 1_627_063_368_000),
        ("0", "1627063308.5", Role::Customer, 1_627_063_308_500),
    ];
    for (t, at, role, ms) in cases {
        let u = update(InboxKind::Chatwoot, body(t, at).as_bytes());
        assert_eq!(u.conversation_id, "chatwoot:support:3");
        assert_eq!(u.channel.as_deref(), Some("WhatsApp"), "the inbox's name when no channel");
        assert_eq!((u.messages[0].role, u.messages[0].at_ms), (role, ms), "{t} {at}");
    }
}

#[test]
fn unknown_events_are_ignored_and_bad_shapes_say_what_was_wrong() {
    let ignored = parse_delivery(InboxKind::Chatwoot, "s", br#"{"event":"contact_updated","id":1}"#);
    assert_eq!(ignored, Ok(Delivery::Ignored { event: "contact_updated".into() }));
    let bad: &[(&[u8], &str)] = &[
        (b"{", "not JSON"),
        (b"[1]", "JSON object"),
        (br#"{"id":1}"#, "\"event\""),
        (br#"{"event":"message_created","id":1}"#, "\"conversation\""),
        (br#"{"event":"message_created","id":1,"message_type":"incoming","created_at":1,"conversation":{}}"#, "\"id\""),
        (
            br#"{"event":"message_created","id":1,"message_type":"shout","created_at":1,"conversation":{"id":2}}"#,
            "shout",
        ),
        (br#"{"event":"message_created","id":1,"message_type":0,"created_at":"soon","conversation":{"id":2}}"#, "soon"),
        (br#"{"event":"message_created","id":1,"message_type":0,"created_at":-5,"conversation":{"id":2}}"#, "1970"),
        (br#"{"event":"message_created","message_type":0,"created_at":1,"conversation":{"id":2}}"#, "\"id\""),
        (br#"{"event":"conversation_created","id":2,"messages":{}}"#, "array"),
    ];
    for (body, what) in bad {
        let e = parse_delivery(InboxKind::Chatwoot, "s", body).expect_err("refused");
        assert!(e.to_string().contains(what), "{e} should mention {what}");
    }
    let big = vec![b' '; WEBHOOK_BODY_BYTES_MAX + 1];
    assert_eq!(parse_delivery(InboxKind::Chatwoot, "s", &big), Err(InboxError::TooLarge));
    for (body, what) in [
        (&br#"{"channel":"x"}"#[..], "SPEC"),
        (br#"{"id":"","messages":[]}"#, "\"id\""),
        (br#"{"id":"c","messages":[{"role":"customer","text":"t","at":"yesterday"}]}"#, "yesterday"),
        (br#"{"id":"c","messages":[{"role":"bot","text":"t","at":"2026-01-01T00:00:00Z"}]}"#, "SPEC"),
    ] {
        let e = parse_delivery(InboxKind::Generic, "s", body).expect_err("refused");
        assert!(e.to_string().contains(what), "{e} should mention {what}");
    }
}

#[test]
fn generic_whole_or_new_messages_only() {
    let whole = br#"{"id":"wa-1","channel":"whatsapp","customer":{"name":"Ana"},"messages":[
        {"from":"Ana","role":"customer","text":"hello","at":"2026-01-01T10:00:00Z"},
        {"from":"Bo","role":"agent","text":"hi Ana","at":"2026-01-01T10:05:00Z"}]}"#;
    let only_new = br#"{"id":"wa-1","messages":[{"role":"customer","text":"thanks","at":"2026-01-01T10:06:00Z"}]}"#;
    let mut c = InboxConversation::new("wa-1", "wa", 0);
    assert!(c.merge(&update(InboxKind::Generic, whole)));
    assert!(c.merge(&update(InboxKind::Generic, only_new)));
    assert!(!c.merge(&update(InboxKind::Generic, whole)), "a repeat changes nothing");
    assert_eq!(c.messages.len(), 3);
    assert_eq!((c.channel.as_deref(), c.customer.as_deref()), (Some("whatsapp"), Some("Ana")));
    assert_eq!(c.last_message().map(|m| m.text.as_str()), Some("thanks"));
    // The §1.2 object made from it gives the same prefill as its file.
    let p = c.to_conversation().prefill().expect("prefill");
    assert!(p.contains("Customer: Ana") && p.contains("thanks"), "{p}");
}

#[test]
fn limits_are_named_and_held() {
    let long = "é".repeat(MESSAGE_TEXT_BYTES_MAX);
    let body = serde_json::json!({"id": "c", "messages": [{"role": "customer", "text": long, "at": 1}]});
    let u = update(InboxKind::Generic, body.to_string().as_bytes());
    assert!(u.messages[0].text.len() <= MESSAGE_TEXT_BYTES_MAX);
    let mut c = InboxConversation::new("c", "i", 0);
    for i in 0..(MESSAGES_PER_CONVERSATION_MAX + 10) {
        let m =
            InboxMessage { id: format!("{i}"), role: Role::Customer, from: None, text: "t".into(), at_ms: i as i64 };
        c.merge(&Update {
            conversation_id: "c".into(),
            channel: None,
            customer: None,
            status: None,
            messages: vec![m],
        });
    }
    assert_eq!(c.messages.len(), MESSAGES_PER_CONVERSATION_MAX);
    assert_eq!(c.messages[0].at_ms, 10, "the oldest drop out");
}

fn msg(id: u8, at: i64) -> InboxMessage {
    InboxMessage { id: id.to_string(), role: Role::Customer, from: None, text: format!("m{id}"), at_ms: at }
}

proptest! {
    /// Any order of deliveries, with repeats, ends in the same conversation,
    /// its messages in time order.
    #[test]
    fn merge_is_order_independent(
        msgs in proptest::collection::vec((0u8..30, 0i64..1000), 1..40),
        seed in any::<u64>(),
    ) {
        let mut uniq: Vec<InboxMessage> = Vec::new();
        for (id, at) in &msgs {
            if !uniq.iter().any(|m| m.id == id.to_string()) {
                uniq.push(msg(*id, *at));
            }
        }
        let deliveries: Vec<Update> = uniq
            .iter()
            .map(|m| Update { conversation_id: "c".into(), channel: None, customer: None, status: None, messages: vec![m.clone()] })
            .collect();
        let mut a = InboxConversation::new("c", "i", 0);
        for d in &deliveries {
            a.merge(d);
        }
        let mut order: Vec<usize> = (0..deliveries.len()).chain(0..deliveries.len() / 2).collect();
        let mut s = seed;
        for i in (1..order.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut b = InboxConversation::new("c", "i", 0);
        for i in order {
            b.merge(&deliveries[i]);
        }
        prop_assert_eq!(&a.messages, &b.messages);
        prop_assert!(a.messages.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        let again = a.clone();
        for d in &deliveries {
            prop_assert!(!a.merge(d));
        }
        prop_assert_eq!(a, again);
    }

    /// No body panics the parser.
    #[test]
    fn any_bytes_are_answered(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_delivery(InboxKind::Chatwoot, "s", &body);
        let _ = parse_delivery(InboxKind::Generic, "s", &body);
    }
}

#[test]
fn generic_ids_live_in_their_inbox_namespace() {
    let body = br#"{"id":"chatwoot:support:10","messages":[]}"#;
    let u = update(InboxKind::Generic, body);
    assert_eq!(u.conversation_id, "generic:support:chatwoot:support:10");
    assert!(crate::conversation::is_inbox_id(&u.conversation_id));
    assert!(!crate::conversation::is_inbox_id("file:chatwoot:support:10"));
}

#[test]
fn a_nul_from_a_chat_tool_is_replaced_everywhere_and_the_words_kept() {
    let body = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/generic/nul_in_a_message.json"));
    let u = update(InboxKind::Generic, body);
    let mut c = InboxConversation::new(&u.conversation_id, "support", 0);
    c.merge(&u);
    let json = serde_json::to_string(&c).expect("json");
    assert!(!json.contains("\\u0000") && !json.contains('\0'), "{json}");
    assert_eq!(c.id, "generic:support:n\u{FFFD}ul");
    assert_eq!(c.messages[0].text, "hello\u{FFFD}world");
    assert_eq!(c.customer.as_deref(), Some("Ana\u{FFFD}"));
    let p = c.to_conversation().prefill().expect("prefill");
    assert!(crate::text::check("prefill", &p).is_ok(), "{p}");
}

fn copy_with(texts: &[(&str, Role)]) -> InboxConversation {
    let mut c = InboxConversation::new("generic:web:98", "web", 0);
    c.customer = Some("Carla".into());
    for (i, (t, role)) in texts.iter().enumerate() {
        c.messages.push(InboxMessage {
            id: format!("m{i}"),
            role: *role,
            from: None,
            text: (*t).into(),
            at_ms: 1_767_225_600_000 + i as i64 * 60_000,
        });
    }
    c
}

fn prefill_of(c: &InboxConversation) -> Prefill {
    let conv = c.to_conversation();
    let link = conv.link().expect("link");
    Prefill { text: conv.prefill().expect("prefill"), link_json: serde_json::to_string(&link).expect("json"), link }
}

#[test]
fn a_prefill_is_only_what_the_relays_copy_gives() {
    let relay = copy_with(&[("late order", Role::Customer), ("on it", Role::Agent), ("thanks", Role::Customer)]);
    // (what the device held, accepted)
    let cases: Vec<(&str, InboxConversation, bool)> = vec![
        ("the whole copy", relay.clone(), true),
        (
            "the copy before its last message (a device synced earlier)",
            {
                let mut c = relay.clone();
                c.messages.truncate(2);
                c
            },
            true,
        ),
        (
            "the copy with no messages yet",
            {
                let mut c = relay.clone();
                c.messages.clear();
                c
            },
            true,
        ),
        ("an invented customer message", copy_with(&[("I agree to pay 5000 EUR", Role::Customer)]), false),
        (
            "an invented agent reply (first response met)",
            {
                let mut c = relay.clone();
                c.messages[0].role = Role::Agent;
                c
            },
            false,
        ),
        (
            "a message's words changed",
            {
                let mut c = relay.clone();
                c.messages[2].text = "thanks, refund me".into();
                c
            },
            false,
        ),
        (
            "another customer",
            {
                let mut c = relay.clone();
                c.customer = Some("Mallory".into());
                c
            },
            false,
        ),
    ];
    for (name, held, want) in cases {
        assert_eq!(check_prefill(&relay, &prefill_of(&held)), want, "{name}");
    }
}
