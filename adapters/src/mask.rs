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
/// or stored: e-mail addresses as [`mask_email`]; runs of 7 or more digits keep the digits
/// [`mask_phone`] keeps; control characters become spaces, so the text stays one log line and
/// never carries a NUL into the store. Shorter numbers (statuses, counts, years) stay.
///
/// Numbers are found as people write them: full-width digits, `＠`, `＋`, `－` and the
/// ideographic space (as Chinese input methods type them) are read as their ASCII forms, and a
/// run goes on across up to three spaces (`139 1234 5678`, `136　0000　0099`) or a dash between
/// groups, and across a `.` or `/` between groups of a phone number's shape (3 or 4 digits, then
/// 3 or 4, or the 7 or 8 of a local number, one of them at least 4, 10 digits or more in all:
/// `136.0000.0099`, `0571/87000001`); so dates and decimals (`2026.12.07`, `120.1551`), IP
/// addresses and versions keep their dots. A `，`, `、`, `_` or `·` joins such groups too when
/// the run begins like a phone number (`139，1234，5678`), and Chinese numerals are digits
/// (`一三九一二三四五六七八`, `幺三九…`, `零五七一…`; see `numeral`) since 2026-12-07. A date (`2026-12-07`, `2026/12/07`, `2026.12.07`) and an order number (12 to
/// 24 digits in one piece beginning with its day, as [`crate::query`] reads them) are not
/// personal data and stay readable.
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
/// our requests, which may echo the submitter's identity, and for text a person wrote about
/// another (a suspension's reason); an id without a digit is not caught, so a caller that knows
/// the identity should mask it first.
pub fn scrub_text_and_ids(text: &str) -> String {
    scrub(text, true)
}

/// What a character is read as when looking for numbers, addresses and ids: the Halfwidth and
/// Fullwidth Forms as their ASCII twins (`１`, `＠`, `＋`, `－`, `．`), the ideographic and the
/// no-break space as a space. Until 2026-12-07 only ASCII was looked at, and a phone number or
/// e-mail address typed full-width passed every mask.
fn fold(c: char) -> char {
    match c {
        '\u{3000}' | '\u{A0}' => ' ',
        _ => crate::text::fold_full_width(c),
    }
}

/// What a character is read as when looking for a run of digits, after [`fold`]: a Chinese
/// numeral as its digit (`〇`/`零` 0, `一`/`幺` 1, `二`/`两` 2, … `九` 9), as numbers are said
/// and as speech recognition writes them (`一三九一二三四五六七八`, `幺三九…`, a landline
/// `零五七一八七零零零零零一`). Until 2026-12-07 only ASCII and full-width digits were read,
/// and a number written in numerals passed every mask (the privacy review's F2). A run of
/// numerals is masked, like any run, only from 7 digits on ([`mask_digit_run`]), so words and
/// short numbers in numerals (`一二三号楼`, `三三两两`, `十二栋`: `十` is no digit) stay as
/// written; the status path masks house numbers in numerals on its own (`mask_house_numbers`).
/// Not used for e-mail addresses and dates, so a numeral before an address or a date is never
/// read into it.
fn numeral(c: char) -> char {
    // The numerals a status query's number may be said in are the same (`query::digit`).
    crate::query::digit(c).unwrap_or(c)
}

/// Separators taken between the groups of a phone number only (never of a date, a decimal, a
/// list of years), besides the dash and spaces taken between any groups: `.` and `/` (`136.0000.0099`,
/// `0571/87000001`), and, since 2026-12-07, `，` (folded to `,`), `、`, `_` and `·`
/// (`139，1234，5678`, `139_1234_5678`), which passed the mask before (the privacy review's F2).
fn phone_separator(c: char) -> bool {
    matches!(c, '.' | '/' | ',' | '、' | '_' | '·')
}

/// Separators of [`phone_separator`] new on 2026-12-07, which also join a run only when it
/// begins like a phone number: a mobile's first three digits (`1…`) or an area code (`0…`,
/// 3 or 4 digits). Lists are written with them (`1998、1999、2000年`, `1234，5678`), and a list
/// of years is no phone number.
fn list_separator(c: char) -> bool {
    matches!(c, ',' | '、' | '_' | '·')
}

/// A span of text found before the scan: masked, or kept whole.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Span {
    Email,
    Date,
}

fn scrub(text: &str, ids: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    // Matched on the folded text; what is not masked is written as it came.
    let folded: Vec<char> = chars.iter().map(|c| fold(*c)).collect();
    // Read for digit runs only: numerals as digits ([`numeral`]); most texts hold none, and
    // are not copied again.
    let digits: std::borrow::Cow<[char]> = if folded.iter().any(|c| numeral(*c) != *c) {
        folded.iter().map(|c| numeral(*c)).collect()
    } else {
        std::borrow::Cow::Borrowed(&folded)
    };
    let spans = spans(&folded);
    let mut next_span = spans.iter().peekable();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some(&&(start, end, kind)) = next_span.peek() {
            if i == start {
                match kind {
                    Span::Email => {
                        let address: String = folded[start..end].iter().collect();
                        // `(at)` or `[at]` written for the `@`: no local part holds a bracket.
                        let address = match address.find(['(', '[']) {
                            Some(p) if !address.contains('@') => {
                                format!("{}@{}", &address[..p], &address[p + 4..])
                            }
                            _ => address,
                        };
                        out.push_str(&mask_email(&address))
                    }
                    Span::Date => out.extend(&chars[start..end]),
                }
                next_span.next();
                i = end;
                continue;
            }
        }
        // Like a digit run, an id ends before the next e-mail address or date, so the two
        // never overlap.
        let limit = next_span
            .peek()
            .map_or(chars.len(), |&&(start, _, _)| start);
        let c = folded[i];
        if ids && is_id_char(c) && (i == 0 || !is_id_char(folded[i - 1])) {
            let end = folded[i..limit]
                .iter()
                .position(|c| !is_id_char(*c))
                .map_or(limit, |n| i + n);
            let token = &folded[i..end];
            if token.len() >= ID_MIN_CHARS
                && token.iter().any(char::is_ascii_digit)
                && token.iter().any(char::is_ascii_alphabetic)
            {
                out.push_str(&mask_id(&token.iter().collect::<String>()));
                i = end;
                continue;
            }
        }
        if digits[i].is_ascii_digit() {
            let end = digit_run_end(&digits, i, limit);
            if is_order_number(&digits, i, end) {
                out.extend(&chars[i..end]);
            } else {
                mask_digit_run(&chars[i..end], &digits[i..end], &mut out);
            }
            i = end;
        } else {
            out.push(if chars[i].is_control() { ' ' } else { chars[i] });
            i += 1;
        }
    }
    out
}

/// A character of an opaque id (base64url and the like).
fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

/// Where a run of digits starting at `start` ends, up to `limit`: its groups of digits and the
/// separators between them (see [`scrub_text`]). An order number is a run of its own: it is
/// never joined to the digits around it.
fn digit_run_end(f: &[char], start: usize, limit: usize) -> usize {
    let group = |from: usize| {
        f[from..limit]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut len = group(start);
    let mut end = start + len;
    if is_order_number(f, start, end) {
        return end;
    }
    // Whether the run begins like a phone number (see [`list_separator`]).
    let phone_start = match f[start] {
        '1' => len == 3,
        '0' => (3..=4).contains(&len),
        _ => false,
    };
    // Where the run ended before its first phone-only separator, and how many digits it has.
    let mut before_dot: Option<usize> = None;
    let mut digits = len;
    loop {
        let (gap, sep) = match f.get(end) {
            Some(&c) if c == '-' || phone_separator(c) => (1, c),
            Some(' ') => (
                f[end..limit]
                    .iter()
                    .take(4)
                    .take_while(|c| **c == ' ')
                    .count(),
                ' ',
            ),
            _ => break,
        };
        if gap > 3 || end + gap >= limit {
            break;
        }
        let next = end + gap;
        let next_len = group(next);
        if next_len == 0 || is_order_number(f, next, next + next_len) {
            break;
        }
        // A dot or slash joins only a phone number's groups, not a date's, a decimal's or an
        // IP address's; a comma, `、`, `_` or `·` only those of a run that begins like one.
        let phone_like = (3..=4).contains(&len)
            && ((3..=4).contains(&next_len) || (7..=8).contains(&next_len))
            && (len == 4 || next_len >= 4);
        if phone_separator(sep) {
            if !phone_like || (list_separator(sep) && !phone_start) {
                break;
            }
            before_dot.get_or_insert(end);
        }
        end = next + next_len;
        len = next_len;
        digits += next_len;
    }
    // A dotted number shorter than a phone number with its area code is more likely a decimal
    // (`120.1551`, `8700.0001`) than a local number written with a dot.
    match before_dot {
        Some(at) if digits < 10 => at,
        _ => end,
    }
}

/// Whether `f[start..end]` is an order number: digits in one piece, as many as an order number
/// has, beginning with its day; not a number dialled abroad (`+20…`).
fn is_order_number(f: &[char], start: usize, end: usize) -> bool {
    let digits: String = f[start..end].iter().collect();
    crate::query::ORDER_NUMBER_DIGITS.contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && crate::query::dated(&digits)
        && (start == 0 || f[start - 1] != '+')
}

/// Appends a digit run (`run` as written, `folded` as read), masked when it holds 7 or more
/// digits: the digits [`mask_phone`] keeps stay (first three and last four of 11 or more, else
/// the last two), the others become `*`; separators stay.
fn mask_digit_run(run: &[char], folded: &[char], out: &mut String) {
    let n = folded.iter().filter(|c| c.is_ascii_digit()).count();
    if n < 7 {
        out.extend(run);
        return;
    }
    let mut k = 0;
    for (&c, f) in run.iter().zip(folded) {
        if !f.is_ascii_digit() {
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

/// The e-mail addresses and dates of the (folded) text as `[start, end)` char spans, in order
/// and disjoint.
fn spans(f: &[char]) -> Vec<(usize, usize, Span)> {
    let emails = email_spans(f);
    let mut spans = Vec::with_capacity(emails.len());
    let mut emails = emails.into_iter().peekable();
    let mut i = 0;
    while i < f.len() {
        if let Some(&(start, end)) = emails.peek() {
            if i >= start {
                spans.push((start, end, Span::Email));
                emails.next();
                i = end;
                continue;
            }
        }
        match date_end(f, i) {
            Some(end) if emails.peek().is_none_or(|&(start, _)| end <= start) => {
                spans.push((i, end, Span::Date));
                i = end;
            }
            _ => i += 1,
        }
    }
    spans
}

/// The end of a date starting at `i`: a year of this century or the last (four digits), a
/// month and a day, with the same `-`, `.` or `/` between them, and no digit on either side
/// (nor a group of digits joined to it in front, as in a phone number `0571-2012-1212`).
fn date_end(f: &[char], i: usize) -> Option<usize> {
    let digit = |k: usize| f.get(k).is_some_and(char::is_ascii_digit);
    let joined_in_front = i >= 2 && matches!(f[i - 1], '-' | '.' | '/') && digit(i - 2);
    if !digit(i) || (i > 0 && digit(i - 1)) || joined_in_front {
        return None;
    }
    let number = |from: usize, most: usize| {
        let n = f[from.min(f.len())..]
            .iter()
            .take(most + 1)
            .take_while(|c| c.is_ascii_digit())
            .count();
        let value: String = f[from..from + n].iter().collect();
        (1..=most)
            .contains(&n)
            .then(|| (value.parse::<u32>().unwrap_or(0), from + n))
    };
    let (year, at) = number(i, 4)?;
    let sep = *f.get(at)?;
    if at - i != 4 || !(1900..=2099).contains(&year) || !matches!(sep, '-' | '.' | '/') {
        return None;
    }
    let (month, at) = number(at + 1, 2)?;
    if f.get(at) != Some(&sep) || !(1..=12).contains(&month) {
        return None;
    }
    let (day, end) = number(at + 1, 2)?;
    (1..=31).contains(&day).then_some(end)
}

/// The length of the at-sign at `k`: `@` (one character), or `(at)` / `[at]` in any case
/// (four), as people write an address to keep it from address harvesters
/// (`zhang.san(at)example.com`); read since 2026-12-07, when the privacy review found such an
/// address shown in the clear in a status answer.
fn at_sign(chars: &[char], k: usize) -> Option<usize> {
    match chars.get(k..k + 4) {
        _ if chars[k] == '@' => Some(1),
        Some([open, a, t, close])
            if matches!((open, close), ('(', ')') | ('[', ']'))
                && a.eq_ignore_ascii_case(&'a')
                && t.eq_ignore_ascii_case(&'t') =>
        {
            Some(4)
        }
        _ => None,
    }
}

/// The `[start, end)` char spans of things that look like e-mail addresses, in order and
/// disjoint. Each at-sign ([`at_sign`]) is looked at once and scans stop at the neighbouring
/// ones, so this is linear in the text.
fn email_spans(chars: &[char]) -> Vec<(usize, usize)> {
    let local = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-');
    let domain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-');
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let signs = (0..chars.len()).filter_map(|k| at_sign(chars, k).map(|len| (k, len)));
    for (at, len) in signs {
        let floor = spans.last().map_or(0, |&(_, end)| end);
        if at < floor {
            continue;
        }
        let mut start = at;
        while start > floor && local(chars[start - 1]) {
            start -= 1;
        }
        let mut end = at + len;
        while end < chars.len() && domain(chars[end]) {
            end += 1;
        }
        // A sentence's full stop or a dash after the address is not part of it.
        while end > at + len && matches!(chars[end - 1], '.' | '-') {
            end -= 1;
        }
        let host = &chars[at + len..end];
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

    /// The review's forms (2026-12-07): full-width digits and `＠` as Chinese input methods
    /// type them, and numbers grouped with dots, two spaces or the ideographic space, all passed
    /// the mask into suspension reasons and dead letters.
    #[test]
    fn numbers_and_addresses_are_masked_however_they_are_typed() {
        for (raw, want) in [
            (
                "来电人报出自己手机１３６００００００９９，反复辱骂",
                "来电人报出自己手机１３６****００９９，反复辱骂",
            ),
            (
                "来电人留下邮箱 victim.name＠qq.com 并辱骂",
                "来电人留下邮箱 v***@qq.com 并辱骂",
            ),
            ("邮箱ｄｌ．ｕｓｅｒ＠ｑｑ．ｃｏｍ，", "邮箱d***@qq.com，"),
            ("号码 136.0000.0099 反复骚扰", "号码 136.****.0099 反复骚扰"),
            (
                "号码 136  0000  0099 反复骚扰",
                "号码 136  ****  0099 反复骚扰",
            ),
            (
                "号码 136　0000　0099 反复骚扰",
                "号码 136　****　0099 反复骚扰",
            ),
            (
                "＋８６　１３８－００１３－８０００",
                "＋８６　１**－****－８０００",
            ),
            ("电话0571.8700.0001", "电话057*.****.0001"),
            ("电话0571/87000001", "电话057*/****0001"),
            (
                "固话（０５７１）８７００００１１",
                "固话（０５７１）******１１",
            ),
            // Two numbers written side by side stay two numbers.
            ("13800138000/13900139000", "138****8000/139****9000"),
        ] {
            assert_eq!(scrub_text(raw), want, "{raw:?}");
        }
        assert_eq!(
            scrub_text_and_ids("本人手机１３６００００００１１，邮箱 self＠163.com，微信号 oZz9AbCdEfGhIjKlMnOpQrStUvWx"),
            "本人手机１３６****００１１，邮箱 s***@163.com，微信号 oZz9***Wx"
        );
    }

    /// The privacy review's F2 (2026-12-07): numbers in Chinese numerals (as said, and as
    /// speech recognition writes them) and numbers split by `，`, `、`, `_` or `·` passed the
    /// mask into the status answer, suspension reasons and dead letters.
    #[test]
    fn numbers_in_numerals_or_split_by_commas_and_underscores_are_masked() {
        for (raw, want) in [
            ("电话一三九一二三四五六七八，", "电话一三九****五六七八，"),
            ("幺三九幺二三四五六七八", "幺三九****五六七八"),
            ("两三九〇〇〇〇五六七八", "两三九****五六七八"),
            (
                "联系电话零五七一八七零零零零零一",
                "联系电话零五七*****零零零一",
            ),
            ("号码一三九 一二三四 五六七八", "号码一三九 **** 五六七八"),
            ("备用电话139，1234，5678", "备用电话139，****，5678"),
            ("电话139、1234、5678。", "电话139、****、5678。"),
            ("139_1234_5678", "139_****_5678"),
            ("139·1234·5678", "139·****·5678"),
            ("0571，87000001", "057*，****0001"),
            ("一三九，一二三四，五六七八", "一三九，****，五六七八"),
            ("手机139一二三四5678", "手机139****5678"),
            // Seven numerals are a local number, as seven digits are.
            ("八七零零零零一", "*****零一"),
        ] {
            assert_eq!(scrub_text(raw), want, "{raw:?}");
        }
        assert_eq!(
            scrub_text_and_ids("微信号zhangsan_13912345678，电话一三九一二三四五六七八"),
            "微信号zhan***78，电话一三九****五六七八"
        );
    }

    /// `(at)` or `[at]` for the `@`, full-width brackets too: the review's status text showed
    /// `zhang.san(at)example.com` (2026-12-07). Brackets without an address around them stay.
    #[test]
    fn addresses_written_with_at_in_brackets_are_masked() {
        for (raw, want) in [
            ("邮箱zhang.san(at)example.com，", "邮箱z***@example.com，"),
            (
                "mail: Li.Si[AT]mail.example.cn.",
                "mail: L***@mail.example.cn.",
            ),
            ("邮箱wang（at）qq.com", "邮箱w***@qq.com"),
            (
                "look (at) this, a(at)b, x(at).cn",
                "look (at) this, a(at)b, x(at).cn",
            ),
        ] {
            assert_eq!(scrub_text(raw), want, "{raw:?}");
        }
    }

    /// What F2's numerals and separators must not mask: words and short numbers in numerals,
    /// lists of numbers and years, money, order numbers and dates in any of those forms.
    #[test]
    fn numerals_and_lists_that_are_no_phone_number_stay() {
        for text in [
            "一二三号楼",
            "三三两两，一五一十，十二栋，二〇二六年十二月七日",
            "第1、2、3、4、5、6、7条",
            "2019、2020、2021、2022年连续四年",
            "1998、1999、2000年",
            "共1234，5678元",
            "金额1,234,567元",
            "工单2026120707784681、2026120707784682已合并",
            "工单二〇二六一二〇七〇七七八四六八一",
            "v1_2_3, file_2026_12_07",
        ] {
            assert_eq!(scrub_text_and_ids(text), text);
        }
    }

    /// What is not personal data stays readable: order numbers (a dead letter's text, a status
    /// from dispatch), dates and times, decimals, IP addresses, versions, short numbers.
    #[test]
    fn order_numbers_dates_and_decimals_stay_readable() {
        for text in [
            "工单2026120707784681已存在",
            "重复工单：2026120707784681、2026120707784682",
            "工单 ２０２６１２０７０７７８４６８１ 已办结",
            "已于2026-12-07办结",
            "预计2026/12/10前办结，2026.12.07 10:30已派单",
            "updated 2026-12-07T10:00:00+08:00",
            "位置 30.2741,120.1551，面积 1234.5678 平方米，圆周率 3.1415",
            "来自 192.168.100.200，版本 1.2.3，第 2/3 页，HTTP 422，2026年12月7日",
        ] {
            assert_eq!(scrub_text_and_ids(text), text);
        }
        // An order number is never joined to the phone number beside it, nor it to the order.
        assert_eq!(
            scrub_text("工单 2026120707784681 13812345678"),
            "工单 2026120707784681 138****5678"
        );
        // A phone or ID number is no order number, even one that begins like a date, and a
        // number dialled abroad is none either.
        for (raw, want) in [
            ("ID 110101199003071234", "ID 110***********1234"),
            ("tel +201207123456", "tel +201*****3456"),
            ("电话 20261207", "电话 ******07"),
            ("0571-2012-1212", "057*-****-1212"),
        ] {
            assert_eq!(scrub_text(raw), want, "{raw:?}");
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
