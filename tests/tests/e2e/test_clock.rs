//! `TICKETS_CLOCK_OFFSET` shifts every time the node reads (SPEC §5).

use crate::support::{assert_mentions, history, ms, now_ms, Home};

const HOUR_MS: i64 = 3_600_000;
/// Slack for process start-up on a busy machine.
const SLACK_MS: i64 = 60_000;

fn create_with_offset(h: &Home, offset: &str) -> String {
    h.run(&["create", "--subject", "s", "--priority", "low", "--category", "x"])
        .env("TICKETS_CLOCK_OFFSET", offset)
        .ok()
        .trim()
        .to_string()
}

#[test]
fn a_positive_offset_shifts_created_at_and_edits() {
    let h = Home::new();
    let id = create_with_offset(&h, "+2h");
    let t = h.show(&id);
    let shift = ms(&t["created_at"]) - now_ms();
    assert!((shift - 2 * HOUR_MS).abs() < SLACK_MS, "created_at is 2h ahead, got {shift} ms");
    h.run(&["status", &id, "resolved"]).env("TICKETS_CLOCK_OFFSET", "+2h").ok();
    let e = history(&h.show(&id), "status")[0].clone();
    let shift = ms(&e["at"]) - now_ms();
    assert!((shift - 2 * HOUR_MS).abs() < SLACK_MS, "the edit is 2h ahead, got {shift} ms");
    let sla = h.run(&["show", &id, "--json"]).env("TICKETS_CLOCK_OFFSET", "+2h").json();
    let shift = ms(&sla["sla"]["computed_at"]) - now_ms();
    assert!((shift - 2 * HOUR_MS).abs() < SLACK_MS, "SLA figures are computed at the shifted now, got {shift} ms");
}

#[test]
fn a_negative_offset_shifts_created_at_back() {
    let h = Home::new();
    let id = create_with_offset(&h, "-90m");
    let shift = ms(&h.show(&id)["created_at"]) - now_ms();
    assert!((shift + 90 * 60_000).abs() < SLACK_MS, "created_at is 90m behind, got {shift} ms");
}

#[test]
fn an_invalid_offset_is_refused_and_writes_nothing() {
    let h = Home::new();
    for bad in ["soon", "+", "2 hours", "+2x", "--1h"] {
        let out = h
            .run(&["create", "--subject", "s", "--priority", "low", "--category", "x"])
            .env("TICKETS_CLOCK_OFFSET", bad)
            .fails();
        assert_mentions(&out, "TICKETS_CLOCK_OFFSET");
        h.run(&["list"]).env("TICKETS_CLOCK_OFFSET", bad).fails();
    }
    assert!(h.list(&[]).is_empty());
    let init = Home::empty();
    init.run(&["init", "--agent", "ana"]).env("TICKETS_CLOCK_OFFSET", "soon").fails();
}
