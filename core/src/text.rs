//! The one rule for text that crosses an edge (a webhook, a push, the app's
//! form, an import, a query string): it must be text every backend can
//! store.
//!
//! Rust strings are valid UTF-8, so an unpaired surrogate never reaches
//! here (a JSON `"\ud800"` is refused by the JSON reader itself). What is
//! left is U+0000: SQLite keeps it, PostgreSQL refuses it in `text` and
//! `jsonb`, so a NUL that got in on one backend would stop every later
//! write of its ticket on the other. Each edge either refuses such text
//! ([`check`], with a code) or, where refusing would lose what a person
//! said (a customer's chat message), replaces it ([`normalise`]).

use std::borrow::Cow;

/// What replaces a character no backend can store: U+FFFD, the mark for
/// "a character was here that could not be kept".
pub const REPLACEMENT: char = '\u{FFFD}';

/// Text with a character that a backend cannot store, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} holds a character that cannot be stored (U+{code:04X} at byte {at})")]
pub struct Unstorable {
    pub what: String,
    pub code: u32,
    pub at: usize,
}

/// The characters no backend stores.
fn unstorable(c: char) -> bool {
    c == '\0'
}

/// Whether `s` can be stored on every backend; `what` names the text in the
/// error ("subject", "query parameter 'search'").
pub fn check(what: &str, s: &str) -> Result<(), Unstorable> {
    match s.char_indices().find(|&(_, c)| unstorable(c)) {
        Some((at, c)) => Err(Unstorable { what: what.to_string(), code: u32::from(c), at }),
        None => Ok(()),
    }
}

/// `s` with every character no backend stores replaced by [`REPLACEMENT`]
/// (borrowed when there is none, the usual case).
pub fn normalise(s: &str) -> Cow<'_, str> {
    if s.chars().any(unstorable) {
        Cow::Owned(s.chars().map(|c| if unstorable(c) { REPLACEMENT } else { c }).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// Every string (keys included) of a JSON value normalised in place, so a
/// delivery from a chat tool keeps its words and loses only what no
/// backend can hold.
pub fn normalise_json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if let Cow::Owned(n) = normalise(s) {
                *s = n;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise_json),
        Value::Object(map) => {
            if map.keys().any(|k| k.chars().any(unstorable)) {
                let old = std::mem::take(map);
                for (k, mut item) in old {
                    normalise_json(&mut item);
                    map.insert(normalise(&k).into_owned(), item);
                }
            } else {
                map.values_mut().for_each(normalise_json);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_and_normalise_agree() {
        let cases: &[(&str, Option<usize>, &str)] = &[
            ("plain", None, "plain"),
            ("", None, ""),
            ("é ✓ 🙂 \t\n", None, "é ✓ 🙂 \t\n"),
            ("a\0b", Some(1), "a\u{FFFD}b"),
            ("\0", Some(0), "\u{FFFD}"),
            ("ab\0\0", Some(2), "ab\u{FFFD}\u{FFFD}"),
            // A backslash and the letters of an escape are ordinary text.
            ("\\u0000", None, "\\u0000"),
        ];
        for &(input, at, normalised) in cases {
            assert_eq!(check("t", input).err().map(|e| e.at), at, "{input:?}");
            assert_eq!(normalise(input), normalised, "{input:?}");
            assert!(check("t", &normalise(input)).is_ok());
        }
        let e = check("subject", "x\0").expect_err("refused");
        assert_eq!(e.to_string(), "subject holds a character that cannot be stored (U+0000 at byte 1)");
    }

    #[test]
    fn json_is_normalised_everywhere() {
        let mut v: serde_json::Value =
            serde_json::from_str(r#"{"a\u0000":["x\u0000",{"k":"\u0000"}],"n":1,"ok":"fine"}"#).expect("json");
        normalise_json(&mut v);
        let text = v.to_string();
        assert!(!text.contains("\\u0000"), "{text}");
        assert_eq!(v["a\u{FFFD}"][0], "x\u{FFFD}");
        assert_eq!(v["a\u{FFFD}"][1]["k"], "\u{FFFD}");
        assert_eq!(v["ok"], "fine");
    }
}
