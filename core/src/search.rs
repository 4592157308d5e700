//! Search text: one normalisation for what is indexed and what is asked,
//! so that `wifi` finds `Wi-Fi` and `cafe` finds `Café` on every end.
//!
//! Text is decomposed (NFKD), combining marks are dropped, letters are
//! lower-cased, punctuation and symbols are removed (joining what they
//! separated: `Wi-Fi` is `wifi`) and runs of white space become one space.
//! What is left holds only letters, digits and single spaces, so a
//! normalised query has nothing a SQL `LIKE` pattern would read as a
//! wildcard.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The most a ticket's search text holds, in bytes: the subject first, then
/// the description, the customer's name and the comments until it is full.
pub const SEARCH_TEXT_BYTES_MAX: usize = 64 * 1024;

/// Separates the subject from the rest in a search text. Never produced by
/// [`normalize`], so its first position tells a subject match from others.
pub const SUBJECT_END: char = '|';

/// The searchable form of a text.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if !c.is_alphanumeric() {
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The words of a query, normalised: a ticket matches when its search text
/// holds every one of them.
pub fn query_words(query: &str) -> Vec<String> {
    normalize(query).split(' ').filter(|w| !w.is_empty()).map(str::to_string).collect()
}

/// A ticket's search text: its normalised subject, [`SUBJECT_END`], then
/// its description, customer name and comments, within
/// [`SEARCH_TEXT_BYTES_MAX`].
pub fn search_text<'a>(subject: &str, rest: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = normalize(subject);
    truncate(&mut out, SEARCH_TEXT_BYTES_MAX.saturating_sub(2));
    out.push(' ');
    out.push(SUBJECT_END);
    for part in rest {
        if out.len() >= SEARCH_TEXT_BYTES_MAX {
            break;
        }
        let n = normalize(part);
        if n.is_empty() {
            continue;
        }
        out.push(' ');
        out.push_str(&n);
    }
    truncate(&mut out, SEARCH_TEXT_BYTES_MAX);
    out
}

/// The search text of a stored ticket object (its JSON as indexed), for
/// stores that re-index without loading documents.
pub fn search_text_of_json(view_json: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(view_json).map_err(|e| format!("stored ticket: {e}"))?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let mut rest = vec![text(&v["description"]), text(&v["conversation"]["customer"])];
    if let Some(comments) = v["comments"].as_array() {
        rest.extend(comments.iter().map(|c| text(&c["body"])));
    }
    Ok(search_text(v["subject"].as_str().unwrap_or_default(), rest.iter().map(String::as_str)))
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &str) {
        assert_eq!(normalize(text), expected, "{text:?}");
    }

    #[test]
    fn case_accents_and_punctuation_are_ignored() {
        check("Wi-Fi", "wifi");
        check("Café", "cafe");
        check("CAFÉ crème", "cafe creme");
        check("  Printer,   jammed!\n\tagain ", "printer jammed again");
        check("ﬁle №5", "file no5");
        check("Ærø Straße", "ærø straße");
        check("100% _done_ \\o/", "100 done o");
        check("---", "");
        check("", "");
    }

    #[test]
    fn query_words_are_normalised_and_never_wildcards() {
        assert_eq!(query_words(" Wi-Fi  café "), ["wifi", "cafe"]);
        assert_eq!(query_words("%_\\"), Vec::<String>::new());
    }

    #[test]
    fn the_subject_comes_first_and_the_rest_after_the_separator() {
        let t = search_text("Wi-Fi down", ["Café on 3rd floor", "", "Ana Núñez", "tried rebooting"]);
        assert_eq!(t, "wifi down | cafe on 3rd floor ana nunez tried rebooting");
        assert!(t.find("wifi") < t.find(SUBJECT_END));
        assert!(t.find("nunez") > t.find(SUBJECT_END));
    }

    #[test]
    fn search_text_is_bounded() {
        let long = "a".repeat(SEARCH_TEXT_BYTES_MAX * 2);
        assert!(search_text(&long, [long.as_str()]).len() <= SEARCH_TEXT_BYTES_MAX);
        let accents = "é".repeat(SEARCH_TEXT_BYTES_MAX);
        assert!(search_text("s", [accents.as_str(), "tail"]).len() <= SEARCH_TEXT_BYTES_MAX);
    }

    #[test]
    fn stored_json_gives_the_same_text() {
        let json = r#"{"id":"x","subject":"Wi-Fi","description":"Café","conversation":{"channel":"c","customer":"Zoë"},
            "comments":[{"id":"1","author":"a","at":"t","body":"Rebooted"}]}"#;
        assert_eq!(search_text_of_json(json), Ok("wifi | cafe zoe rebooted".to_string()));
        assert!(search_text_of_json("not json").is_err());
    }
}
