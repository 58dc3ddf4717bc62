//! Text normalisation shared by every channel: NFC, trimming, control characters, phone numbers.

use unicode_normalization::UnicodeNormalization;

/// Trims, NFC-normalises and removes control characters other than newline and tab.
/// Returns the text and whether it is within `max_chars` characters.
pub fn clean_text(raw: &str) -> String {
    let nfc: String = raw
        .nfc()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    nfc.trim().to_string()
}

/// Cleans a text field and checks its length in characters.
pub fn bounded(
    field: &'static str,
    raw: &str,
    max_chars: usize,
) -> Result<String, crate::AdapterError> {
    let s = clean_text(raw);
    let n = s.chars().count();
    if n > max_chars {
        return Err(crate::AdapterError::InvalidField {
            field,
            reason: format!("longer than {max_chars} characters ({n})"),
        });
    }
    Ok(s)
}

/// Normalises a phone number: drops spaces, dashes, dots, brackets and a `+86`/`0086`/`86`
/// country prefix on mobile numbers. `None` unless the rest is 3 to 20 digits.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let mut s: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{3000}' | '\t'))
        .collect();
    if let Some(rest) = s.strip_prefix("+86") {
        s = rest.to_string();
    } else if let Some(rest) = s.strip_prefix("0086") {
        s = rest.to_string();
    } else if s.len() == 13 && s.starts_with("861") {
        s = s[2..].to_string();
    }
    if (3..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        Some(s)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_normalised() {
        for (raw, want) in [
            ("13800000000", Some("13800000000")),
            ("+86 138-0000-0000", Some("13800000000")),
            ("0086 13800000000", Some("13800000000")),
            ("8613800000000", Some("13800000000")),
            ("(022) 2345-6789", Some("02223456789")),
            ("12345", Some("12345")),
            ("abc", None),
            ("", None),
            ("+86", None),
            ("1".repeat(21).as_str(), None),
        ] {
            assert_eq!(normalize_phone(raw).as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn text_is_trimmed_nfc_and_without_controls() {
        // "e" + combining acute becomes the precomposed é; NUL and BEL vanish, newline stays.
        assert_eq!(clean_text("  cafe\u{301}\u{0}\u{7}\nok  "), "caf\u{e9}\nok");
    }

    #[test]
    fn bounded_counts_characters_not_bytes() {
        assert!(bounded("content", &"路".repeat(10), 10).is_ok());
        assert!(bounded("content", &"路".repeat(11), 10).is_err());
    }
}
