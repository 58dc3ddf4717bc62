//! Masking of personal data for logs, metrics and events (art. 11, 29).

use crate::IdentityKind;

/// Masks a phone number: keeps the first three and last four digits of a mobile number
/// (`138****0000`); shorter numbers keep only their last two.
pub fn mask_phone(p: &str) -> String {
    let chars: Vec<char> = p.chars().collect();
    let n = chars.len();
    if n >= 11 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}****{tail}")
    } else if n > 2 {
        let tail: String = chars[n - 2..].iter().collect();
        format!("{}{tail}", "*".repeat(n - 2))
    } else {
        "*".repeat(n)
    }
}

/// Masks an email: first character of the local part, then `***@domain`.
pub fn mask_email(e: &str) -> String {
    match e.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

/// Masks an opaque id (openid, uid): first four characters, `***`, last two.
pub fn mask_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 6 {
        return "***".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}***{tail}")
}

/// Masks a person's name: its first character stays, each other becomes `*` (`张三丰` →
/// `张**`, `Alice` → `A****`).
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// Masks a postal address whole: any part of it (a building and flat number) may identify a
/// household.
pub fn mask_address(address: &str) -> String {
    if address.is_empty() {
        String::new()
    } else {
        "***".to_string()
    }
}

/// Masks an IPv4 address's last octet (`203.0.113.*`) or an IPv6 address after its first
/// two groups.
pub fn mask_ip(ip: &str) -> String {
    if let Some((net, _)) = ip.rsplit_once('.') {
        format!("{net}.*")
    } else {
        let groups: Vec<&str> = ip.split(':').take(2).collect();
        format!("{}:*", groups.join(":"))
    }
}

/// Masks an identity value according to its kind.
pub fn mask_value(kind: IdentityKind, value: &str) -> String {
    match kind {
        IdentityKind::Phone => mask_phone(value),
        IdentityKind::Email => mask_email(value),
        IdentityKind::Wechat | IdentityKind::Weibo => mask_id(value),
        IdentityKind::Ip => mask_ip(value),
        IdentityKind::Cti => match value.split_once(':') {
            Some((profile, id)) => format!("{profile}:{}", mask_id(id)),
            None => mask_id(value),
        },
    }
}

/// What stands in for a value cut out of a message.
const REDACTED: &str = "`***`";

/// Masks personal data in free text from elsewhere (an API's error body) before it is logged
/// or stored: e-mail addresses as [`mask_email`]; runs of 7 or more digits (spaces or dashes
/// between groups count as part of the run, so `139 1234 5678` is caught too) keep the digits
/// [`mask_phone`] keeps; control characters become spaces, so the text stays one log line and
/// never carries a NUL into the store. Shorter numbers (statuses, counts, years) stay.
pub fn scrub_text(text: &str) -> String {
    scrub(text, false)
}

/// Shortest run of `[A-Za-z0-9_-]` taken for an opaque id by [`scrub_text_and_ids`]. WeChat
/// openids and unionids are 28 characters; words and field names this long are rare, and are
/// also left alone unless they mix letters and digits.
const ID_MIN_CHARS: usize = 16;

/// [`scrub_text`], and opaque ids masked as [`mask_id`]: runs of at least 16 ASCII letters,
/// digits, `_` or `-` that hold both a letter and a digit (WeChat openids such as
/// `oUpF8uMuAJO_M2pxb1Q9zNjWeS6o`, tokens, hashes). For text a remote API wrote about one of
/// our requests, which may echo the submitter's identity; an id without a digit is not caught,
/// so a caller that knows the identity should mask it first.
pub fn scrub_text_and_ids(text: &str) -> String {
    scrub(text, true)
}

fn scrub(text: &str, ids: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let emails = email_spans(&chars);
    let mut next_email = emails.iter().peekable();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some(&&(start, end)) = next_email.peek() {
            if i == start {
                let email: String = chars[start..end].iter().collect();
                out.push_str(&mask_email(&email));
                next_email.next();
                i = end;
                continue;
            }
        }
        let c = chars[i];
        if ids && is_id_char(c) && (i == 0 || !is_id_char(chars[i - 1])) {
            // Like a digit run, an id ends before the next e-mail address.
            let limit = next_email.peek().map_or(chars.len(), |&&(start, _)| start);
            let end = chars[i..limit]
                .iter()
                .position(|c| !is_id_char(*c))
                .map_or(limit, |n| i + n);
            let token = &chars[i..end];
            if token.len() >= ID_MIN_CHARS
                && token.iter().any(char::is_ascii_digit)
                && token.iter().any(char::is_ascii_alphabetic)
            {
                out.push_str(&mask_id(&token.iter().collect::<String>()));
                i = end;
                continue;
            }
        }
        if c.is_ascii_digit() {
            // A run ends before the next e-mail address, so the two never overlap.
            let limit = next_email.peek().map_or(chars.len(), |&&(start, _)| start);
            let end = digit_run_end(&chars, i, limit);
            mask_digit_run(&chars[i..end], &mut out);
            i = end;
        } else {
            out.push(if c.is_control() { ' ' } else { c });
            i += 1;
        }
    }
    out
}

/// A character of an opaque id (base64url and the like).
fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

/// Where a run of digits starting at `start` ends: digits, and single spaces or dashes between
/// digits, up to `limit`.
fn digit_run_end(chars: &[char], start: usize, limit: usize) -> usize {
    let mut j = start;
    while j < limit {
        let separator = matches!(chars[j], ' ' | '-')
            && j > start
            && j + 1 < limit
            && chars[j + 1].is_ascii_digit();
        if !(chars[j].is_ascii_digit() || separator) {
            break;
        }
        j += 1;
    }
    j
}

/// Appends a digit run, masked when it holds 7 or more digits: the digits [`mask_phone`] keeps
/// stay (first three and last four of 11 or more, else the last two), the others become `*`;
/// separators stay.
fn mask_digit_run(run: &[char], out: &mut String) {
    let n = run.iter().filter(|c| c.is_ascii_digit()).count();
    if n < 7 {
        out.extend(run);
        return;
    }
    let mut k = 0;
    for &c in run {
        if !c.is_ascii_digit() {
            out.push(c);
            continue;
        }
        let keep = if n >= 11 {
            k < 3 || k >= n - 4
        } else {
            k >= n - 2
        };
        out.push(if keep { c } else { '*' });
        k += 1;
    }
}

/// The `[start, end)` char spans of things that look like e-mail addresses, in order and
/// disjoint. Each `@` is looked at once and scans stop at the neighbouring `@`s, so this is
/// linear in the text.
fn email_spans(chars: &[char]) -> Vec<(usize, usize)> {
    let local = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-');
    let domain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-');
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (at, _) in chars.iter().enumerate().filter(|(_, c)| **c == '@') {
        let floor = spans.last().map_or(0, |&(_, end)| end);
        if at < floor {
            continue;
        }
        let mut start = at;
        while start > floor && local(chars[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < chars.len() && domain(chars[end]) {
            end += 1;
        }
        // A sentence's full stop or a dash after the address is not part of it.
        while end > at + 1 && matches!(chars[end - 1], '.' | '-') {
            end -= 1;
        }
        let host = &chars[at + 1..end];
        let dotted = host.first().is_some_and(|c| *c != '.') && host.contains(&'.');
        if start < at && dotted {
            spans.push((start, end));
        }
    }
    spans
}

/// Removes the submitted value from a parser's error message (serde, serde_json,
/// serde_urlencoded, quick-xml) so it can go into a 4xx body and a log line: serde writes the
/// offending value in backticks or quotes (`invalid type: integer `13912345678`, expected a
/// string`), and that value may be a phone number or an e-mail address. What stays is what a
/// developer needs: the kind of value, what was expected, the field names of our own types, the
/// position. The result also goes through [`scrub_text`], in case a value got through unquoted.
pub fn redact_parser_message(msg: &str) -> String {
    // serde's own messages that name a field of our type, not something the client sent.
    const SCHEMA_NAMED: [&str; 2] = ["missing field `", "duplicate field `"];
    // serde's messages that start with the client's value; what follows the last `, expected`
    // (or `, there are no`) comes from our type's definition.
    const VALUE_FIRST: [&str; 4] = [
        "invalid type: ",
        "invalid value: ",
        "unknown variant ",
        "unknown field ",
    ];
    let redacted = if SCHEMA_NAMED.iter().any(|p| msg.starts_with(p)) {
        msg.to_string()
    } else if let Some(prefix) = VALUE_FIRST.iter().find(|p| msg.starts_with(**p)) {
        let rest = &msg[prefix.len()..];
        // The last occurrence: the client's value comes first and may contain the words.
        let cut = [", expected ", ", there are no "]
            .iter()
            .filter_map(|sep| rest.rfind(sep))
            .max()
            .or_else(|| rest.rfind(" at line "))
            .unwrap_or(rest.len());
        let (unexpected, tail) = rest.split_at(cut);
        format!("{prefix}{}{tail}", redact_unexpected(unexpected))
    } else {
        redact_quoted(msg)
    };
    scrub_text(&redacted)
}

/// serde's `Unexpected` as displayed: a kind (`integer`, `string`, `map`) and, for scalars, the
/// value in backticks or quotes. Keeps the kind, replaces the value.
fn redact_unexpected(unexpected: &str) -> String {
    let quote = unexpected.find(['`', '"']);
    let kind = &unexpected[..quote.unwrap_or(unexpected.len())];
    // Kinds are a few lower-case words; anything else is a value serde showed unquoted.
    let plain_kind = kind.len() <= 24 && kind.chars().all(|c| c.is_ascii_lowercase() || c == ' ');
    match (plain_kind, quote) {
        (true, Some(_)) => format!("{kind}{REDACTED}"),
        (true, None) => kind.to_string(),
        (false, _) => REDACTED.to_string(),
    }
}

/// Replaces every backtick-quoted span and every double-quoted string (backslash escapes
/// honoured, as Rust's `Debug` writes them) with a placeholder; an unclosed one runs to the end.
fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut chars = msg.chars();
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                for d in chars.by_ref() {
                    if d == '`' {
                        break;
                    }
                }
                out.push_str(REDACTED);
            }
            '"' => {
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str(REDACTED);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_first_character_and_addresses_nothing() {
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_name("Alice"), "A****");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_address("和平路12号3单元501"), "***");
        assert_eq!(mask_address(""), "");
    }

    #[test]
    fn masks_hide_the_middle() {
        assert_eq!(mask_phone("13800001234"), "138****1234");
        assert_eq!(mask_phone("12345"), "***45");
        assert_eq!(mask_email("alice@example.cn"), "a***@example.cn");
        assert_eq!(mask_id("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"), "oUpF***6o");
        assert_eq!(mask_ip("203.0.113.9"), "203.0.113.*");
        assert_eq!(mask_ip("2001:db8::1"), "2001:db8:*");
    }

    #[test]
    fn scrub_text_masks_numbers_and_addresses_in_free_text() {
        for (raw, want) in [
            (
                r#"{"error":"bad phone 13912345678","email":"alice@example.cn"}"#,
                r#"{"error":"bad phone 139****5678","email":"a***@example.cn"}"#,
            ),
            // Grouped numbers are one number; a landline with its area code too.
            ("call 139 1234 5678", "call 139 **** 5678"),
            ("or 022-2345-6789.", "or 022-****-6789."),
            ("fax 23456789", "fax ******89"),
            ("ID 110101199003071234", "ID 110***********1234"),
            ("路灯13912345678坏了", "路灯139****5678坏了"),
            // An address whose local part is a phone number is masked as an address.
            ("13912345678@qq.com", "1***@qq.com"),
            (
                "Mail bob.w+tag@mail.example.cn.",
                "Mail b***@mail.example.cn.",
            ),
            // Short numbers stay: statuses, counts, field lengths.
            (
                "HTTP 422: 3 fields, max 200, code 123456",
                "HTTP 422: 3 fields, max 200, code 123456",
            ),
            // Control characters become spaces: one log line, no NUL for the store.
            ("a\u{0}b\nc\td", "a b c d"),
            // Not addresses.
            (
                "user@localhost @ @x.cn a@.cn @@",
                "user@localhost @ @x.cn a@.cn @@",
            ),
            ("", ""),
        ] {
            assert_eq!(scrub_text(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn scrub_text_and_ids_masks_openids_too() {
        for (raw, want) in [
            (
                r#"{"error":"unknown submitter wechat:oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}"#,
                r#"{"error":"unknown submitter wechat:oUpF***6o"}"#,
            ),
            (
                "用户oUpF8uMuAJO_M2pxb1Q9zNjWeS6o不存在",
                "用户oUpF***6o不存在",
            ),
            // Numeric uids and phone numbers as scrub_text has them.
            (
                "weibo:5012345678 / 13912345678",
                "weibo:********78 / 139****5678",
            ),
            ("alice99@example.cn", "a***@example.cn"),
            // Field names, words and short tokens stay, even long ones without a digit.
            (
                "submitter_identity is invalid, code E1234, requestIdentifier",
                "submitter_identity is invalid, code E1234, requestIdentifier",
            ),
        ] {
            assert_eq!(scrub_text_and_ids(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn scrub_text_is_linear_on_hostile_input() {
        // Many `@`s and long digit runs: finishes at once and keeps no digit in the middle.
        let hostile = "a@".repeat(50_000) + &"9".repeat(100_000);
        let out = scrub_text(&hostile);
        assert!(out.ends_with("9999"));
        assert!(!out.contains("99999"));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // only deserialised, to get serde's messages
    struct Form {
        phone: Option<String>,
        count: Option<u32>,
        kind: Option<Kind>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Complaint,
    }

    fn serde_message(json: &str) -> String {
        match serde_json::from_str::<Form>(json) {
            Ok(f) => format!("parsed: {f:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parser_messages_keep_the_shape_and_lose_the_value() {
        for (json, want) in [
            (
                r#"{"phone": 13912345678}"#,
                "invalid type: integer `***`, expected a string at line 1 column 21",
            ),
            (
                r#"{"count": "alice@example.cn \" 13912345678"}"#,
                "invalid type: string `***`, expected u32 at line 1 column 43",
            ),
            (
                r#"{"kind": "13912345678, expected x"}"#,
                "unknown variant `***`, expected `complaint` at line 1 column 34",
            ),
            (
                r#"{"13912345678": 1}"#,
                "unknown field `***`, expected one of `phone`, `count`, `kind` at line 1 column 14",
            ),
            (
                r#"{"count": {}}"#,
                "invalid type: map, expected u32 at line 1 column 10",
            ),
            (
                r#"{"phone": "a", "phone": "b"}"#,
                "duplicate field `phone` at line 1 column 22",
            ),
            (
                r#"{"phone": "13912345678""#,
                "EOF while parsing an object at line 1 column 23",
            ),
        ] {
            let msg = serde_message(json);
            assert_eq!(redact_parser_message(&msg), want, "{msg}");
        }
        let missing = serde_json::from_str::<Missing>("{}")
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            redact_parser_message(&missing.to_string()),
            "missing field `content` at line 1 column 2"
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // only deserialised, to get serde's messages
    struct Missing {
        content: String,
    }

    #[test]
    fn other_parser_messages_lose_every_quoted_span() {
        for (msg, want) in [
            (
                "ill-formed document: expected `</a>`, but `</x13912345678>` was found",
                "ill-formed document: expected `***`, but `***` was found",
            ),
            (
                r#"Error while escaping: unrecognized entity "&bob@example.cn;" at 3"#,
                "Error while escaping: unrecognized entity `***` at 3",
            ),
            ("unclosed `13912345678", "unclosed `***`"),
            ("plain 13912345678 a@b.cn", "plain 139****5678 a***@b.cn"),
        ] {
            assert_eq!(redact_parser_message(msg), want, "{msg}");
        }
    }
}
