//! Agent, team and category names as the relay takes them from its
//! operator: in Unicode NFC (so one name has one spelling), and never
//! confusable with a name already there. `lеa` with a Cyrillic `е` shows as
//! "lea" everywhere; beside an agent `lea` it would let one person pass for
//! another, so it is refused, naming the name it resembles. Two names are
//! confusable when their Unicode skeletons (UTS #39, the `unicode-security`
//! crate) are equal, compared without case (`Lea` beside `lea` is refused
//! too). Above the storage seam: the same on SQLite and PostgreSQL.

use unicode_normalization::UnicodeNormalization;
use unicode_security::confusable_detection::skeleton;

/// A name refused because it looks like one already there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} name '{name}'{shown} looks like the existing {kind} '{existing}'")]
pub struct Confusable {
    pub kind: &'static str,
    pub name: String,
    /// The name's characters beyond ASCII, spelled out (` (l, U+0435, a)`),
    /// since on screen the two look alike.
    shown: String,
    pub existing: String,
}

/// `name` in NFC.
pub fn nfc(name: &str) -> String {
    name.nfc().collect()
}

/// What `name` looks like: its UTS #39 skeleton, without case.
fn looks(name: &str) -> String {
    skeleton(&nfc(name).to_lowercase()).collect()
}

/// `name` spelled out character by character when it holds any beyond
/// ASCII.
fn spelled(name: &str) -> String {
    if name.is_ascii() {
        return String::new();
    }
    let chars: Vec<String> =
        name.chars().map(|c| if c.is_ascii() { c.to_string() } else { format!("U+{:04X}", c as u32) }).collect();
    format!(" ({})", chars.join(", "))
}

/// `name` (already checked for shape) in NFC, unless it is confusable
/// with one of `existing` other than itself.
pub fn check_new<'a>(
    kind: &'static str,
    name: &str,
    existing: impl IntoIterator<Item = &'a str>,
) -> Result<String, Confusable> {
    let name = nfc(name);
    let mine = looks(&name);
    for other in existing {
        if nfc(other) != name && looks(other) == mine {
            return Err(Confusable { kind, shown: spelled(&name), name, existing: other.to_string() });
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, existing: &[&str], expected: Result<&str, &str>) {
        let got = check_new("agent", name, existing.iter().copied());
        match (got, expected) {
            (Ok(n), Ok(e)) => assert_eq!(n, e, "{name:?}"),
            (Err(c), Err(e)) => assert_eq!(c.existing, e, "{name:?}"),
            (got, expected) => panic!("{name:?} beside {existing:?}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn look_alikes_are_refused_and_names_are_nfc() {
        check("lea", &["bob"], Ok("lea"));
        check("l\u{435}a", &["lea"], Err("lea"));
        check("lea", &["l\u{435}a"], Err("l\u{435}a"));
        check("Lea", &["lea"], Err("lea"));
        check("rn", &["m"], Err("m"));
        check("paypa1", &["paypal"], Err("paypal"));
        // The same name is not a look-alike of itself (an existing team).
        check("lea", &["lea"], Ok("lea"));
        // NFD in, NFC out; and the NFC of an existing name is that name.
        check("Cafe\u{301}", &["bob"], Ok("Caf\u{e9}"));
        check("Cafe\u{301}", &["Caf\u{e9}"], Ok("Caf\u{e9}"));
        check("lea\u{200b}", &["lea"], Err("lea"));
    }

    #[test]
    fn the_refusal_spells_the_name_out() {
        let e = check_new("agent", "l\u{435}a", ["lea"]).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(e, "agent name 'l\u{435}a' (l, U+0435, a) looks like the existing agent 'lea'");
    }
}
