//! Text from people made harmless for a terminal.
//!
//! A subject, a comment, a customer's name or a relay's message may hold
//! escape sequences: OSC 52 writes the clipboard, OSC 8 hides where a link
//! goes, CSI 2J clears the screen, and bidirectional overrides make text
//! read differently from what it is. Every text the CLI prints that came
//! from a person goes through [`safe`], which shows each such character as
//! a visible escape (`\u{1b}`) instead of sending it. `--json` output is
//! never passed through here: it stays exact (JSON escapes control
//! characters itself).

use std::borrow::Cow;

/// Whether `c` would steer a terminal rather than show as a character:
/// C0 controls except newline and tab, DEL, C1 controls, and the
/// bidirectional embeddings, overrides and isolates.
fn steers(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character that could steer a terminal shown as
/// `\u{XX}`; borrowed when there is none (the common case).
pub fn safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(steers) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if steers(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn escapes_show_as_text() {
        let cases = [
            ("plain subject", "plain subject"),
            ("two\nlines\tand a tab", "two\nlines\tand a tab"),
            ("\x1b]52;c;aGk=\x07", "\\u{1b}]52;c;aGk=\\u{7}"),
            ("\x1b[2J", "\\u{1b}[2J"),
            (
                "\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\",
                "\\u{1b}]8;;http://evil\\u{1b}\\click\\u{1b}]8;;\\u{1b}\\",
            ),
            ("a\rb\u{7f}c\u{9b}d", "a\\u{d}b\\u{7f}c\\u{9b}d"),
            ("\u{202e}txt.exe", "\\u{202e}txt.exe"),
            ("x\u{2066}y\u{2069}", "x\\u{2066}y\\u{2069}"),
            ("Café ☕ 東京", "Café ☕ 東京"),
        ];
        for (input, shown) in cases {
            assert_eq!(safe(input), shown, "for {input:?}");
        }
    }

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(safe("nothing to do"), std::borrow::Cow::Borrowed(_)));
    }
}
