//! Devices with wrong clocks (SPEC §2): the relay corrects each device's
//! times by the offset it measures at sync, and never counts an event as
//! later than it received it, so its `created_at`, due times and first
//! responses are true times whatever the devices' clocks say.

use crate::harness::{Device, Relay};
use crate::support::{ms, now_ms};

const HOUR_MS: i64 = 3_600_000;
/// Slack for process start-up on a busy machine.
const SLACK_MS: i64 = 120_000;

#[track_caller]
fn assert_near(what: &str, actual: i64, expected: i64) {
    assert!(
        (actual - expected).abs() < SLACK_MS,
        "{what}: {} is {} s away from {}",
        tickets_core::time::iso_i64(actual),
        (actual - expected) / 1000,
        tickets_core::time::iso_i64(expected)
    );
}

struct World {
    relay: Relay,
    lead: String,
    ahead: Device,
    behind: Device,
}

/// A relay with high targets of 1 h and 8 h, and two agents whose devices
/// run 3 h ahead and 3 h behind (for every command).
fn world() -> World {
    let relay = Relay::start();
    let lead = relay.agent("lea", "lead");
    let ana = relay.agent("ana", "agent");
    let bob = relay.agent("bob", "agent");
    relay.category("hardware");
    relay.sla("high", "1h", "8h");
    let ahead = Device::register_with_offset(&relay.url, &ana, Some("+3h"));
    let behind = Device::register_with_offset(&relay.url, &bob, Some("-3h"));
    World { relay, lead, ahead, behind }
}

#[test]
fn the_relay_shows_true_times_for_devices_three_hours_ahead_and_behind() {
    let w = world();
    let created = now_ms();
    let a = w.ahead.create("Created on a clock 3h ahead", "high", "hardware");
    let b = w.behind.create("Created on a clock 3h behind", "high", "hardware");
    // The offsets are in force: each device stamps its own wrong time.
    assert_near("the ahead device's own created_at", ms(&w.ahead.show(&a)["created_at"]), created + 3 * HOUR_MS);
    assert_near("the behind device's own created_at", ms(&w.behind.show(&b)["created_at"]), created - 3 * HOUR_MS);
    w.ahead.sync();
    w.behind.sync();

    let all = w.relay.tickets_by_id(&w.lead);
    for (id, who) in [(&a, "ahead"), (&b, "behind")] {
        let t = &all[id];
        assert_near(&format!("relay created_at of the {who} device's ticket"), ms(&t["created_at"]), created);
        let sla = &t["sla"];
        assert_eq!(sla["color"], "green", "{who}: {sla}");
        assert_near(&format!("{who}: first response due"), ms(&sla["first_response"]["due_at"]), created + HOUR_MS);
        assert_near(&format!("{who}: resolution due"), ms(&sla["resolution"]["due_at"]), created + 8 * HOUR_MS);
    }

    // Each answers the other's ticket. The device behind has seen stamps 3 h
    // ahead (its clock jumps past them) and the one ahead writes 3 h ahead:
    // the relay still counts both replies at the moment it received them.
    w.behind.sync();
    w.ahead.sync();
    let replied = now_ms();
    w.behind.run(&["comment", &a, "Reply from the device behind"]).ok();
    w.ahead.run(&["comment", &b, "Reply from the device ahead"]).ok();
    w.behind.sync();
    w.ahead.sync();
    let all = w.relay.tickets_by_id(&w.lead);
    for id in [&a, &b] {
        let t = &all[id];
        let fr = &t["sla"]["first_response"];
        assert_eq!(fr["state"], "met", "{t}");
        assert_near("first response", ms(&fr["stopped_at"]), replied);
        assert_near("the comment's time", ms(&t["comments"][0]["at"]), replied);
        assert_eq!(t["sla"]["color"], "green", "{t}");
    }
}

/// After a sync a node says it shows the relay's figures (`provisional:
/// false`), yet it evaluates them at its own wrong "now": a device 3 h ahead
/// shows a ticket created a second ago as red, 2 h overdue, while the relay
/// (and the dashboard) show it green.
#[test]
fn a_synced_node_with_a_wrong_clock_shows_the_relays_colours() {
    let w = world();
    let a = w.ahead.create("Created on a clock 3h ahead", "high", "hardware");
    w.ahead.sync();
    let relay_view = &w.relay.tickets_by_id(&w.lead)[&a];
    assert_eq!(relay_view["sla"]["color"], "green");
    let node = w.ahead.show(&a);
    assert_eq!(node["sla"]["provisional"], false);
    assert_eq!(
        node["sla"]["first_response"]["state"], relay_view["sla"]["first_response"]["state"],
        "the node claims the relay's figures but shows {} while the relay shows {}",
        node["sla"], relay_view["sla"]
    );
    assert_eq!(node["sla"]["color"], "green", "{}", node["sla"]);
}

/// Business hours open when they really do, whatever a device's clock says:
/// a device 3 h ahead shows the relay's due time (in its own frame), not one
/// computed from its wrong clock, which would fall outside the hours.
#[test]
fn a_device_three_hours_ahead_reads_business_hours_in_true_time() {
    let relay = Relay::start();
    let lead = relay.agent("lea", "lead");
    let ana = relay.agent("ana", "agent");
    relay.category("hardware");
    relay.sla("high", "30m", "1h");
    // Open two hours from the start of this UTC hour, every day: now is
    // inside, now + 3 h is not.
    let hour = (now_ms() / HOUR_MS) % 24;
    let end = hour + 2;
    let mut hours = vec![format!("mon-sun {hour:02}:00-{:02}:00", end.min(24))];
    if end > 24 {
        hours.push(format!("mon-sun 00:00-{:02}:00", end - 24));
    }
    let mut args = vec!["sla", "calendar", "--tz", "UTC"];
    for h in &hours {
        args.extend(["--hours", h.as_str()]);
    }
    relay.admin(&args);
    let ahead = Device::register_with_offset(&relay.url, &ana, Some("+3h"));
    let created = now_ms();
    let id = ahead.create("Opened in business hours", "high", "hardware");
    ahead.sync();

    let on_relay = &relay.tickets_by_id(&lead)[&id]["sla"];
    let relay_due = ms(&on_relay["first_response"]["due_at"]);
    assert_near("the relay's first response due", relay_due, created + HOUR_MS / 2);
    let shown = &ahead.show(&id)["sla"];
    assert_eq!(shown["color"], on_relay["color"], "device {shown}\nrelay {on_relay}");
    assert_near(
        "the device's first response due, in its frame",
        ms(&shown["first_response"]["due_at"]),
        relay_due + 3 * HOUR_MS,
    );
    assert_near(
        "the device's resolution due, in its frame",
        ms(&shown["resolution"]["due_at"]),
        ms(&on_relay["resolution"]["due_at"]) + 3 * HOUR_MS,
    );
}

/// SPEC §2 / issue: one fast clock must not drag every device's times. A
/// device 2 h ahead syncs; a device with a right clock that has seen its
/// stamps then creates a ticket and comments: what it shows (created_at,
/// the comment's time, its provisional SLA) is its own right time, not 2 h
/// in the future, while its edits still order after what it saw.
#[test]
fn a_fast_clock_does_not_drag_another_devices_times() {
    let relay = Relay::start();
    let lead = relay.agent("lea", "lead");
    let ana = relay.agent("ana", "agent");
    let bob = relay.agent("bob", "agent");
    relay.category("hardware");
    relay.sla("high", "2m", "8h");
    let fast = Device::register_with_offset(&relay.url, &ana, Some("+2h"));
    let right = Device::register(&relay.url, &bob);
    let first = fast.create("Made on a clock 2h fast", "high", "hardware");
    fast.run(&["status", &first, "in-progress"]).ok();
    fast.sync();
    right.sync();
    // The right device edits the fast device's ticket after seeing it: its
    // edit must win, whatever the clocks.
    right.run(&["status", &first, "resolved"]).ok();
    let started = now_ms();
    let mine = right.create("Made on a right clock", "high", "hardware");
    let shown = right.show(&mine);
    assert_near("created_at on the right device", ms(&shown["created_at"]), started);
    let fr = &shown["sla"]["first_response"];
    assert_near("provisional first-response due", ms(&fr["due_at"]), started + 2 * 60_000);
    assert_eq!(shown["sla"]["color"], "green", "a 2-minute target just started: {}", shown["sla"]);
    right.run(&["comment", &mine, "a comment"]).ok();
    let shown = right.show(&mine);
    assert_near("the comment's time", ms(&shown["comments"][0]["at"]), started);
    assert_eq!(right.show(&first)["status"], "resolved", "the edit made after seeing the fast one wins");
    right.sync();
    fast.sync();
    assert_eq!(fast.show(&first)["status"], "resolved", "and wins on the fast device too");
    let on_relay = &relay.tickets_by_id(&lead)[&mine];
    assert_near("created_at on the relay", ms(&on_relay["created_at"]), started);
}
