//! Human durations for SLA targets and clock offsets: `90s`, `45m`,
//! `3min`, `4h`, `2d`, `1h30m`, `1h 30m`, `90sec`, `2hours`, `1day`. This is
//! the one parser; everything that takes a duration goes through it.
//!
//! Parsing is strict on purpose: a target is typed once by an admin and then
//! decides colors for every ticket, so anything that could be a typo
//! (`1h1h`, `30m1h`, `1h30`, `-5m`, `0s`) is refused rather than guessed,
//! and so is a bare number (`2`: seconds? minutes?).

use crate::error::InputError;

/// Longest text accepted, so that a pasted blob is refused before any work.
pub const DURATION_TEXT_BYTES_MAX: usize = 64;

/// Units from largest to smallest with their spellings; a duration must use
/// them in this order, each at most once.
const UNITS: [(&[&str], u64); 4] = [
    (&["d", "day", "days"], 86_400),
    (&["h", "hr", "hrs", "hour", "hours"], 3_600),
    (&["m", "min", "mins", "minute", "minutes"], 60),
    (&["s", "sec", "secs", "second", "seconds"], 1),
];

/// Parses a duration into whole seconds.
///
/// Accepts one or more `<digits><unit>` parts, units in decreasing order and
/// each at most once, optionally separated by spaces (not inside a part:
/// `2 hours` is refused, as `TICKETS_CLOCK_OFFSET` always did). Units are
/// lower case: `d`/`day`/`days`,
/// `h`/`hr`/`hrs`/`hour`/`hours`, `m`/`min`/`mins`/`minute`/`minutes`,
/// `s`/`sec`/`secs`/`second`/`seconds`. A duration of zero is refused: as an
/// SLA target it would breach every ticket at creation, which is never what
/// was meant.
pub fn parse_duration(s: &str) -> Result<u64, InputError> {
    let bad = || InputError::BadDuration(s.to_string());
    let text = s.trim();
    if text.is_empty() || text.len() > DURATION_TEXT_BYTES_MAX {
        return Err(bad());
    }
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut total: u64 = 0;
    // Index into UNITS of the next unit allowed; enforces decreasing order
    // and at most one use of each unit.
    let mut next_unit = 0;
    while at < bytes.len() {
        let digits_start = at;
        let mut value: u64 = 0;
        while let Some(d) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
            value = value.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))).ok_or_else(bad)?;
            at += 1;
        }
        // A unit with no number in front of it (`h`, `1h m`) is refused.
        if at == digits_start {
            return Err(bad());
        }
        let word_start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_lowercase) {
            at += 1;
        }
        // A number with no unit (`90`, `1h30`) is ambiguous: refused.
        let word = &text[word_start..at];
        let offset = UNITS[next_unit..].iter().position(|(names, _)| names.contains(&word)).ok_or_else(bad)?;
        let (_, unit_secs) = UNITS[next_unit + offset];
        next_unit += offset + 1;
        total = value.checked_mul(unit_secs).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        while bytes.get(at) == Some(&b' ') {
            at += 1;
        }
    }
    if total == 0 {
        return Err(bad());
    }
    Ok(total)
}

/// Formats seconds for people: `45s`, `1h 30m`, `2d 4h`, `0s`.
///
/// Every non-zero unit is shown, so the text is exact and parses back to the
/// same number with [`parse_duration`].
pub fn format_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_string();
    }
    let mut rest = secs;
    let mut parts = Vec::new();
    for (names, unit_secs) in UNITS {
        let n = rest / unit_secs;
        rest %= unit_secs;
        if n > 0 {
            parts.push(format!("{n}{}", names[0]));
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(text: &str, expected: Option<u64>) {
        let got = parse_duration(text);
        match expected {
            Some(secs) => assert_eq!(got, Ok(secs), "parsing {text:?}"),
            None => assert_eq!(got, Err(InputError::BadDuration(text.to_string())), "parsing {text:?}"),
        }
    }

    #[test]
    fn parse_accepts() {
        check("90s", Some(90));
        check("45m", Some(2_700));
        check("3min", Some(180));
        check("4h", Some(14_400));
        check("2d", Some(172_800));
        check("1h30m", Some(5_400));
        check("1h 30m", Some(5_400));
        check("90sec", Some(90));
        check("2hours", Some(7_200));
        check("1day", Some(86_400));
        check("1hr 5mins 3secs", Some(3_903));
        check("1hour", Some(3_600));
        check("10minutes", Some(600));
        check("1second", Some(1));
        check("  2d 4h  ", Some(187_200));
        check("1d2h3m4s", Some(93_784));
        check("1h0m", Some(3_600));
        check("007m", Some(420));
        check("18446744073709551615s", Some(u64::MAX));
    }

    #[test]
    fn parse_refuses() {
        check("", None);
        check("   ", None);
        // A bare number needs a unit: `2` could be seconds or minutes.
        check("0", None);
        check("2", None);
        check("90", None);
        check("0s", None);
        check("0h0m", None);
        check("h", None);
        check("min", None);
        check("1h m", None);
        check("1h30", None);
        check("-5m", None);
        check("+5m", None);
        check("1.5h", None);
        check("4H", None);
        check("1w", None);
        check("1month", None);
        check("2hourss", None);
        check("5 m", None);
        check("2 hours", None);
        check("1h1h", None);
        check("1hour 1h", None);
        check("30m1h", None);
        check("1h,30m", None);
        check("1h\t30m", None);
        check("18446744073709551616s", None);
        check("213503982334602d", None);
        check("213503982334601d 24h", None);
        check(&format!("{}s", "1".repeat(64)), None);
    }

    #[test]
    fn format_examples() {
        for (secs, text) in
            [(0, "0s"), (45, "45s"), (60, "1m"), (5_400, "1h 30m"), (187_200, "2d 4h"), (93_784, "1d 2h 3m 4s")]
        {
            assert_eq!(format_duration(secs), text, "formatting {secs}");
        }
    }

    proptest! {
        #[test]
        fn format_parses_back(secs in 1u64..) {
            prop_assert_eq!(parse_duration(&format_duration(secs)), Ok(secs));
        }

        #[test]
        fn parse_never_panics(text in "[0-9dhms +-]{0,30}") {
            let _ = parse_duration(&text);
        }
    }
}
