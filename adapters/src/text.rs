//! Text normalisation shared by every channel: NFC, trimming, control characters, phone numbers.

use unicode_normalization::UnicodeNormalization;

/// Trims, NFC-normalises and removes control characters other than newline and tab. A text of
/// nothing but white space and invisible format characters (zero-width space, BOM, word joiner:
/// category Cf) is empty: until 2026-12-07 `"\u{200b}\u{feff}"` passed every channel's emptiness
/// check and became a dispatched order about nothing.
pub fn clean_text(raw: &str) -> String {
    let s = clean_text_kept(raw);
    if s.chars().all(|c| c.is_whitespace() || is_format(c)) {
        return String::new();
    }
    s
}

/// A character of general category Cf (format: invisible, no text of its own), Unicode 15.
pub fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// [`clean_text`] without the emptiness rule.
fn clean_text_kept(raw: &str) -> String {
    // Nearly every text arrives already in NFC and without control characters; the quick check
    // answers that without building a copy (full normalisation was ~5 % of the request path's
    // CPU). `Maybe` and `No` take the full path.
    if unicode_normalization::is_nfc_quick(raw.chars()) == unicode_normalization::IsNormalized::Yes
        && !raw
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return raw.trim().to_string();
    }
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

/// Normalises a phone number: folds full-width characters to ASCII, drops spaces, dashes, dots,
/// brackets and a `+86`/`0086`/`86` country prefix. After `+86`/`0086`, a number that is not a
/// mobile number gets its trunk `0` back, so a landline has one identity however it was
/// written. `None` unless the rest is 3 to 20 digits.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let mut s: String = raw
        .chars()
        .map(fold_full_width)
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{3000}' | '\t'))
        .collect();
    if let Some(rest) = s.strip_prefix("+86").or_else(|| s.strip_prefix("0086")) {
        s = with_trunk_zero(rest);
    } else if s.len() == 13 && s.starts_with("861") {
        s = s[2..].to_string();
    }
    // A mobile with a trunk 0 in front (`013922223333`), as many PBXs present a mobile from
    // another city, is that mobile. Twelve digits `01[3-9]…` cannot be a landline: the only
    // area code starting `01` is Beijing's `010`, whose numbers are 11 digits with the 0.
    if s.len() == 12
        && s.starts_with("01")
        && matches!(s.as_bytes().get(2), Some(b'3'..=b'9'))
        && s.bytes().all(|b| b.is_ascii_digit())
    {
        s.remove(0);
    }
    if (3..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        Some(s)
    } else {
        None
    }
}

/// Chinese input methods type full-width digits, `＋`, `－` and brackets (`（０５７１）`); the
/// Halfwidth and Fullwidth Forms block mirrors ASCII `!`..`~` at a fixed offset.
pub(crate) fn fold_full_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// The national number after a `+86`/`0086` prefix, as it is dialled at home: a landline (an
/// area code, `10` for Beijing included) with the trunk `0` that the international form leaves
/// out; as is, the numbers dialled without one: mobiles and other `1…` numbers (`12345`),
/// the nationwide `400`/`800` numbers and the `95…`/`96…` service numbers.
fn with_trunk_zero(national: &str) -> String {
    let b = national.as_bytes();
    let beijing = national.starts_with("10") && b.len() >= 10;
    let no_trunk = (b.first() == Some(&b'1') && !beijing)
        || (b.len() == 10 && (national.starts_with("400") || national.starts_with("800")))
        || national.starts_with("95")
        || national.starts_with("96");
    if no_trunk || national.is_empty() || national.starts_with('0') {
        national.to_string()
    } else {
        format!("0{national}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Invisible format characters and white space alone are no text (until 2026-12-07 a
    /// zero-width space made an order); among visible text they are kept as they were.
    #[test]
    fn only_format_characters_and_white_space_are_empty() {
        for raw in [
            "\u{200b}\u{200b}\u{feff}",
            " \u{2060}\u{3000}\n",
            "\u{00ad}\u{200d}\t",
            "",
        ] {
            assert_eq!(clean_text(raw), "", "{raw:?}");
        }
        assert_eq!(clean_text("\u{200b}着火了 "), "\u{200b}着火了");
        assert_eq!(clean_text(" 路灯坏了"), "路灯坏了");
    }

    #[test]
    fn phone_numbers_are_normalised() {
        for (raw, want) in [
            ("13800000000", Some("13800000000")),
            ("+86 138-0000-0000", Some("13800000000")),
            ("0086 13800000000", Some("13800000000")),
            ("8613800000000", Some("13800000000")),
            ("(022) 2345-6789", Some("02223456789")),
            // Full-width digits, plus, minus and brackets, as Chinese input methods type them.
            ("１３８００１３８０００", Some("13800138000")),
            ("＋８６　１３８－００１３－８０００", Some("13800138000")),
            ("（０５７１）８８８８８８８８", Some("057188888888")),
            ("０５７１－８８８８８８８８", Some("057188888888")),
            ("１２３４５", Some("12345")),
            // A landline in international form is the same landline dialled at home.
            ("+86 571 88888888", Some("057188888888")),
            ("0086 571 88888888", Some("057188888888")),
            ("+86 10 12345678", Some("01012345678")),
            // Numbers dialled at home without a trunk 0 stay without one.
            ("+86 400 800 1234", Some("4008001234")),
            ("+86 800 810 8888", Some("8008108888")),
            ("+86 95588", Some("95588")),
            ("+86 12345", Some("12345")),
            ("+86 (0)571 88888888", Some("057188888888")),
            // A mobile with a trunk 0, as PBXs show one from another city, is that mobile;
            // Beijing landlines (010 + 8 digits) and other 12-digit landlines keep their 0.
            ("013922223333", Some("13922223333")),
            ("0139-2222-3333", Some("13922223333")),
            ("０１３９２２２２３３３３", Some("13922223333")),
            ("+86 013922223333", Some("13922223333")),
            ("019912345678", Some("19912345678")),
            ("01088888888", Some("01088888888")),
            ("010 8888 8888", Some("01088888888")),
            ("057188888888", Some("057188888888")),
            ("012345678901", Some("012345678901")),
            ("0139222233334", Some("0139222233334")),
            ("01392222333", Some("01392222333")),
            ("ａｂｃ", None),
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
    fn the_quick_path_gives_what_full_normalisation_gives() {
        // Texts that take the quick path (already NFC, no controls) and texts that must not:
        // decomposed accents, Hangul jamo, a combining mark after CJK, a lone combining mark,
        // compatibility characters (NFC keeps them), controls inside and at the edges.
        let cases = [
            "  小区门口路灯损坏，夜间出行不便  ",
            "plain ascii\twith tab\nand newline",
            "cafe\u{301}",
            "\u{1100}\u{1161}\u{11a8}",
            "路\u{302}灯",
            "\u{301}",
            "ｆｕｌｌｗｉｄｔｈ ①②",
            "\u{0}前\u{7}后\u{1b}",
            "\u{85}next line\u{2028}",
            "",
            "\u{3000}全角空格\u{3000}",
        ];
        for raw in cases {
            let full: String = raw
                .nfc()
                .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
                .collect();
            assert_eq!(clean_text(raw), full.trim(), "{raw:?}");
        }
    }

    #[test]
    fn bounded_counts_characters_not_bytes() {
        assert!(bounded("content", &"路".repeat(10), 10).is_ok());
        assert!(bounded("content", &"路".repeat(11), 10).is_err());
    }
}
