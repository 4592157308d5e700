//! Comments and internal notes stay apart (SPEC §1.3).

use crate::support::{ms, Home};

#[test]
fn notes_go_to_internal_notes_and_comments_to_comments() {
    let h = Home::with_agent("bo");
    let id = h.create("Laptop", "low", "hardware");
    h.run(&["comment", &id, "We ordered a new battery"]).ok();
    h.run(&["note", &id, "Customer is a VIP; do not charge"]).ok();
    h.run(&["comment", &id, "Battery arrives Tuesday"]).ok();
    h.run(&["note", &id, "Supplier invoice #42"]).ok();
    let t = h.show(&id);
    let bodies = |key: &str| -> Vec<String> {
        t[key].as_array().expect(key).iter().map(|c| c["body"].as_str().unwrap_or_default().to_string()).collect()
    };
    assert_eq!(bodies("comments"), vec!["We ordered a new battery", "Battery arrives Tuesday"]);
    assert_eq!(bodies("internal_notes"), vec!["Customer is a VIP; do not charge", "Supplier invoice #42"]);
    for key in ["comments", "internal_notes"] {
        for c in t[key].as_array().expect(key) {
            assert_eq!(c["author"], "bo");
            ms(&c["at"]);
        }
    }
    let text = serde_json::to_string(&t["comments"]).unwrap_or_default();
    assert!(!text.contains("VIP") && !text.contains("invoice"), "no note leaks into comments");
    let history = serde_json::to_string(&t["history"]).unwrap_or_default();
    assert!(!history.contains("VIP"), "note bodies are not copied into the history");
}

#[test]
fn list_and_text_show_keep_them_apart_too() {
    let h = Home::new();
    let id = h.create("Laptop", "low", "hardware");
    h.run(&["comment", &id, "public words"]).ok();
    h.run(&["note", &id, "private words"]).ok();
    let listed = &h.list(&[])[0];
    assert_eq!(listed["comments"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["internal_notes"][0]["body"], "private words");
    let out = h.run(&["show", &id]).ok();
    let comments = out.find("Comments").expect("a comments section");
    let notes = out.find("Internal notes").expect("a notes section");
    let public = out.find("public words").expect("comment shown");
    let private = out.find("private words").expect("note shown");
    assert!(comments < public && public < notes && notes < private, "{out}");
}

#[test]
fn comments_and_notes_keep_unicode_and_newlines() {
    let h = Home::new();
    let id = h.create("Ñandú ☕", "low", "hardware");
    let body = "línea 1\nline 2 — 😀\ttab";
    h.run(&["comment", &id, body]).ok();
    h.run(&["note", &id, body]).ok();
    let t = h.show(&id);
    assert_eq!(t["subject"], "Ñandú ☕");
    assert_eq!(t["comments"][0]["body"], body);
    assert_eq!(t["internal_notes"][0]["body"], body);
    assert_eq!(h.subjects(&["--search", "ñandú"]), vec!["Ñandú ☕".to_string()]);
}
