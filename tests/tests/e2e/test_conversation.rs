//! Tickets created from an inbox conversation (SPEC §1.2).

use serde_json::{json, Value};

use crate::support::{assert_mentions, is_uuid, Home};

/// A conversation with `n` messages m1..mn, a minute apart; message 3 is
/// the agent's.
fn conversation(id: &str, n: usize) -> String {
    let messages: Vec<Value> = (1..=n)
        .map(|i| {
            let (from, role) = if i == 3 { ("Bo", "agent") } else { ("Maria", "customer") };
            json!({"from": from, "role": role, "text": format!("message m{i}"), "at": format!("2026-01-01T10:{i:02}:00Z")})
        })
        .collect();
    json!({"id": id, "channel": "whatsapp", "customer": {"name": "Maria Lopez"}, "messages": messages}).to_string()
}

fn create_from(h: &Home, file: &std::path::Path, extra: &[&str]) -> crate::support::Run {
    let mut args = vec![
        "create",
        "--subject",
        "Refund",
        "--priority",
        "medium",
        "--category",
        "billing",
        "--conversation",
        file.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    h.run(&args)
}

#[test]
fn prefill_puts_the_users_text_first_then_customer_channel_and_last_five() {
    let h = Home::new();
    let file = h.file("chat.json", &conversation("conv-7", 7));
    let id = create_from(&h, &file, &["--description", "Customer wants a refund"]).ok();
    let t = h.show(id.trim());
    assert_eq!(t["conversation_id"], "file:conv-7", "a file's id is in the file namespace");
    let d = t["description"].as_str().expect("description");
    assert!(d.starts_with("Customer wants a refund"), "the user's description comes first:\n{d}");
    assert!(d.contains("Maria Lopez"), "customer name:\n{d}");
    assert!(d.contains("whatsapp"), "channel:\n{d}");
    for i in 1..=2 {
        assert!(
            !d.contains(&format!("m{i}\n")) && !d.contains(&format!("message m{i}")),
            "m{i} is not among the last 5:\n{d}"
        );
    }
    let at: Vec<usize> = (3..=7).map(|i| d.find(&format!("message m{i}")).expect("last five quoted")).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "messages in time order:\n{d}");
    assert!(d.find("Maria Lopez") > Some(0), "prefill after the user's text");
}

#[test]
fn prefill_without_description_and_with_few_messages() {
    let h = Home::new();
    let file = h.file("chat.json", &conversation("conv-2", 2));
    let id = create_from(&h, &file, &[]).ok();
    let d = h.show(id.trim())["description"].as_str().unwrap_or_default().to_string();
    assert!(d.contains("Maria Lopez") && d.contains("whatsapp"), "{d}");
    assert!(d.contains("message m1") && d.contains("message m2"), "{d}");
    let empty = h.file("empty.json", r#"{"id": "conv-0", "messages": []}"#);
    let id = create_from(&h, &empty, &[]).ok();
    assert_eq!(h.show(id.trim())["conversation_id"], "file:conv-0");
}

#[test]
fn one_conversation_gives_one_ticket_unless_forced() {
    let h = Home::new();
    let file = h.file("chat.json", &conversation("conv-1", 3));
    let first = create_from(&h, &file, &[]).ok().trim().to_string();
    let out = create_from(&h, &file, &[]).out();
    assert_ne!(out.code, 0, "a second ticket for the same conversation is refused");
    assert_eq!(out.stdout.trim(), first, "the existing ticket's id goes to stdout");
    assert_mentions(&out, "--force");
    assert_eq!(h.list(&[]).len(), 1);

    let forced = create_from(&h, &file, &["--force"]).ok().trim().to_string();
    assert!(is_uuid(&forced) && forced != first, "--force makes another ticket");
    assert_eq!(h.show(&forced)["conversation_id"], "file:conv-1");
    assert_eq!(h.list(&[]).len(), 2);
    // The duplicate check still points at the first ticket.
    assert_eq!(create_from(&h, &file, &[]).out().stdout.trim(), first);
}

#[test]
fn two_nodes_give_a_conversation_the_same_ticket_id() {
    // The id is what lets the relay merge the two agents' tickets into one.
    let ana = Home::with_agent("ana");
    let bo = Home::with_agent("bo");
    let text = conversation("conv-shared", 4);
    let a = create_from(&ana, &ana.file("chat.json", &text), &[]).ok();
    let b = create_from(&bo, &bo.file("chat.json", &text), &[]).ok();
    assert_eq!(a, b);
    let other = create_from(&bo, &bo.file("other.json", &conversation("conv-other", 4)), &[]).ok();
    assert_ne!(a, other);
}

#[test]
fn bad_conversation_files_are_refused_and_create_nothing() {
    let h = Home::new();
    let cases = [
        ("not-json.json", "{\"id\": \"c\", "),
        ("array.json", "[1, 2]"),
        ("no-id.json", r#"{"messages": []}"#),
        ("blank-id.json", r#"{"id": "  ", "messages": []}"#),
        ("bad-time.json", r#"{"id": "c", "messages": [{"role": "customer", "text": "t", "at": "yesterday"}]}"#),
        ("bad-role.json", r#"{"id": "c", "messages": [{"role": "bot", "text": "t", "at": "2026-01-01T00:00:00Z"}]}"#),
        ("no-text.json", r#"{"id": "c", "messages": [{"role": "customer", "at": "2026-01-01T00:00:00Z"}]}"#),
        ("binary.json", "\u{0}\u{1}\u{2}garbage"),
        ("empty.json", ""),
    ];
    for (name, text) in cases {
        let file = h.file(name, text);
        let out = create_from(&h, &file, &[]).fails();
        assert_mentions(&out, name);
    }
    let missing = h.path().join("missing.json");
    let out = create_from(&h, &missing, &[]).fails();
    assert_mentions(&out, "missing.json");
    let folder = tempfile::tempdir().expect("a folder");
    create_from(&h, folder.path(), &[]).fails();
    assert!(h.list(&[]).is_empty());
}
