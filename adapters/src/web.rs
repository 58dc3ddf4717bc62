//! The web portal form (`POST /v1/web/submissions`): JSON, urlencoded, or multipart fields.
//!
//! The HTTP layer reads multipart parts into [`Part`]s (multipart needs a streaming reader,
//! which is I/O) and hands them to [`from_parts`]; JSON and urlencoded bodies come here as
//! bytes through [`parse`].
//!
//! A form refused for what a field holds (422) still says what the citizen wrote when its text
//! can be read: [`FormError::readable`], for the emergency rules, which must not be kept from a
//! person in danger by a typo in an optional field.

use crate::mask::{redact_parser_message, scrub_text};
use crate::text::{bounded, clean_text, normalize_phone};
use crate::{
    AdapterError, Attachment, AttachmentKind, Category, Channel, Contact, Identity, IdentityKind,
    Item, Location, Submission,
};
use encoding_rs::{Encoding, GB18030, UTF_8};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Longest `content` (and item content) in characters.
pub const MAX_CONTENT_CHARS: usize = 4000;
/// Most structured items in one submission.
pub const MAX_ITEMS: usize = 20;
/// Most attachment links in one submission.
pub const MAX_ATTACHMENTS: usize = 10;
/// Longest attachment URL in characters.
pub const MAX_URL_CHARS: usize = 2048;
const MAX_SHORT: usize = 200;
const MAX_ADDRESS: usize = 500;
/// Longest unknown field name quoted back in a refusal.
const MAX_SHOWN_NAME: usize = 64;

/// One structured item as sent by the page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    content: String,
    #[serde(default)]
    category: Option<String>,
}

/// One attachment link as sent by the page.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttachment {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    url: String,
}

/// The form as read, field by field. A field that cannot be read leaves its value out and
/// its error in `problem`, so the other fields (the text above all) are still there.
#[derive(Debug, Default)]
struct RawForm {
    content: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    category: Option<String>,
    address: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    confidential: Option<bool>,
    items: Option<Vec<RawItem>>,
    attachments: Option<Vec<RawAttachment>>,
    client_ref: Option<String>,
    /// The first field that could not be read.
    problem: Option<AdapterError>,
    /// Text sent in a field that is refused as sent (a repeated field, an item in a shape the
    /// gateway does not read): never an order, but heard by the emergency rules.
    unread: Vec<String>,
}

impl RawForm {
    /// Keeps `v`, or its error when it is the first.
    fn keep<T>(&mut self, v: Result<T, AdapterError>) -> Option<T> {
        match v {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem.get_or_insert(e);
                None
            }
        }
    }
}

/// Why a form was refused, and what of it could be read.
#[derive(Debug)]
pub struct FormError {
    /// The refusal.
    pub error: AdapterError,
    /// For a refusal of a field (422): the submission as far as it could be read (its text,
    /// items, identity and client_ref), for the emergency rules only; never for an order.
    /// `None` when the body could not be read at all or holds no text.
    pub readable: Option<Box<Submission>>,
}

impl From<AdapterError> for FormError {
    fn from(error: AdapterError) -> Self {
        FormError {
            error,
            readable: None,
        }
    }
}

/// One multipart part, as the HTTP layer read it.
#[derive(Debug, Clone, Default)]
pub struct Part {
    /// The `name` of its Content-Disposition.
    pub name: String,
    /// Whether the Content-Disposition has a `filename` (a file input), even an empty one.
    pub file: bool,
    /// The `charset` of the part's own Content-Type, if it has one.
    pub charset: Option<String>,
    /// Its bytes.
    pub value: Vec<u8>,
}

/// Parses a JSON or urlencoded body. `charset` is the Content-Type's `charset` parameter, if
/// any. `client_ip` is the submitter's address as the HTTP layer established it
/// (X-Forwarded-For only from trusted proxies); it is the identity when no phone is given.
/// `now` is the arrival time in unix seconds.
pub fn parse(
    media_type: Option<&str>,
    charset: Option<&str>,
    body: &[u8],
    client_ip: &str,
    now: i64,
) -> Result<Submission, FormError> {
    match media_type {
        // JSON is UTF-8 whatever the header says (RFC 8259 §8.1).
        Some("application/json") => {
            // Tell "not JSON at all" (400) from "JSON of the wrong shape" (422).
            let JsonTop(pairs) = serde_json::from_slice(body).map_err(AdapterError::json)?;
            let Some(pairs) = pairs else {
                return Err(AdapterError::InvalidField {
                    field: "body",
                    reason: "expected a JSON object".into(),
                }
                .into());
            };
            finish(from_json(pairs), client_ip, now)
        }
        Some("application/x-www-form-urlencoded") => {
            let fields = split_urlencoded(body)
                .into_iter()
                .map(|(k, v)| (k, v, None))
                .collect();
            from_fields(decode_fields(fields, charset)?, client_ip, now)
        }
        Some(other) => Err(AdapterError::UnsupportedMediaType(other.to_string()).into()),
        None => Err(AdapterError::UnsupportedMediaType(String::new()).into()),
    }
}

/// Builds a submission from multipart parts. `charset` is the request's Content-Type
/// `charset` parameter, if any. An empty file part (a file input left empty: `filename=""`
/// and no bytes) is skipped; a file with bytes is refused, as the gateway keeps links, never
/// media (pages upload elsewhere and send `attachments`).
pub fn from_parts(
    parts: Vec<Part>,
    charset: Option<&str>,
    client_ip: &str,
    now: i64,
) -> Result<Submission, FormError> {
    let mut file_sent = false;
    let mut fields = Vec::with_capacity(parts.len());
    for p in parts {
        if p.file {
            file_sent |= !p.value.is_empty();
            continue;
        }
        let own = p.charset.as_deref().and_then(form_encoding);
        fields.push((p.name.into_bytes(), p.value, own));
    }
    let pairs = decode_fields(fields, charset)?;
    let mut raw = read_fields(pairs);
    if file_sent {
        raw.keep::<()>(Err(AdapterError::InvalidField {
            field: "attachments",
            reason: "file uploads are not accepted here; send a link in `attachments`".into(),
        }));
    }
    finish(raw, client_ip, now)
}

/// Builds a submission from decoded text fields (urlencoded or multipart). Items may be sent
/// as `items` holding a JSON array, or as `items[N][content]` / `items[N][category]` pairs;
/// attachments as `attachments` holding a JSON array, or `attachments[N][url]` /
/// `attachments[N][kind]` pairs. Fields the gateway does not know are ignored: a browser posts
/// its submit button's name, `_charset_`, a CSRF token, and a page cannot always leave them out.
pub fn from_fields(
    pairs: Vec<(String, String)>,
    client_ip: &str,
    now: i64,
) -> Result<Submission, FormError> {
    finish(read_fields(pairs), client_ip, now)
}

/// The encoding a form names (`charset` parameter, `_charset_` field, a part's Content-Type):
/// any WHATWG label; a label for UTF-16 or the replacement encoding reads as UTF-8, as
/// browsers never send a form in those. `None` for a label nobody knows.
fn form_encoding(label: &str) -> Option<&'static Encoding> {
    Encoding::for_label(label.trim().trim_matches('"').as_bytes()).map(Encoding::output_encoding)
}

/// Splits an urlencoded body into its percent-decoded bytes (`+` is a space). The bytes are
/// decoded as text afterwards, in the form's encoding: percent escapes stand for bytes of it.
fn split_urlencoded(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let unescape = |s: &[u8]| -> Vec<u8> {
        let spaced: Vec<u8> = s
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&spaced).collect()
    };
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (unescape(&p[..i]), unescape(&p[i + 1..])),
            None => (unescape(p), Vec::new()),
        })
        .collect()
}

/// Decodes form fields as text. The encoding: a field's own (a multipart part's charset),
/// else the Content-Type's `charset`, else the `_charset_` field browsers fill in, else
/// UTF-8, strictly, for the whole form; a form that is not UTF-8 and declares nothing is read
/// as GB18030 (which holds GB2312 and GBK: the pages of Chinese portals that are not UTF-8
/// are these, and browsers do not declare the charset of a form) when every field decodes
/// without error. Anything else is refused (`invalid_utf8`): a text decoded with
/// replacement characters is a matter lost under a 202.
fn decode_fields(
    fields: Vec<(Vec<u8>, Vec<u8>, Option<&'static Encoding>)>,
    charset: Option<&str>,
) -> Result<Vec<(String, String)>, AdapterError> {
    let declared = charset.and_then(form_encoding).or_else(|| {
        fields
            .iter()
            .find(|(k, _, _)| k.as_slice() == b"_charset_")
            .and_then(|(_, v, _)| std::str::from_utf8(v).ok())
            .and_then(form_encoding)
    });
    // Only the fields without a charset of their own tell the form's.
    let all_utf8 = || {
        fields
            .iter()
            .filter(|(_, _, own)| own.is_none())
            .all(|(k, v, _)| std::str::from_utf8(k).is_ok() && std::str::from_utf8(v).is_ok())
    };
    let form = match declared {
        Some(e) => e,
        None if all_utf8() => UTF_8,
        None => GB18030,
    };
    let decode = |enc: &'static Encoding, b: Vec<u8>| -> Result<String, AdapterError> {
        if enc == UTF_8 {
            // No copy for the common case.
            return String::from_utf8(b).map_err(|_| AdapterError::InvalidUtf8);
        }
        enc.decode_without_bom_handling_and_without_replacement(&b)
            .map(std::borrow::Cow::into_owned)
            .ok_or(AdapterError::InvalidUtf8)
    };
    fields
        .into_iter()
        .map(|(k, v, own)| {
            let enc = own.unwrap_or(form);
            Ok((decode(enc, k)?, decode(enc, v)?))
        })
        .collect()
}

/// One JSON field, read as its type, or a refusal naming the field (not the value: see
/// [`redact_parser_message`]).
fn json_field<T: DeserializeOwned>(
    field: &'static str,
    v: serde_json::Value,
) -> Result<Option<T>, AdapterError> {
    serde_json::from_value(v).map_err(|e| AdapterError::InvalidField {
        field,
        reason: redact_parser_message(&e.to_string()),
    })
}

/// A JSON body's top level: its members in order, every one of them, a repeated key too
/// (`serde_json::Value` keeps only the last, and until 2026-12-07
/// `{"content":"<fire>","content":"<lamp>"}` was an order about the lamp and no redirect);
/// `None` for a body that is JSON but no object.
struct JsonTop(Option<Vec<(String, serde_json::Value)>>);

impl<'de> Deserialize<'de> for JsonTop {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> serde::de::Visitor<'de> for Top {
            type Value = JsonTop;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<JsonTop, A::Error> {
                let mut pairs = Vec::new();
                while let Some(kv) = m.next_entry::<String, serde_json::Value>()? {
                    pairs.push(kv);
                }
                Ok(JsonTop(Some(pairs)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<JsonTop, A::Error> {
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(JsonTop(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<JsonTop, E> {
                Ok(JsonTop(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<JsonTop, E> {
                Ok(JsonTop(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<JsonTop, E> {
                Ok(JsonTop(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<JsonTop, E> {
                Ok(JsonTop(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<JsonTop, E> {
                Ok(JsonTop(None))
            }
            fn visit_unit<E>(self) -> Result<JsonTop, E> {
                Ok(JsonTop(None))
            }
        }
        d.deserialize_any(Top)
    }
}

/// The text a JSON value holds for the emergency rules: a string, or the `content` of each
/// item of an array.
fn texts_of(v: serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(t) => vec![t],
        serde_json::Value::Array(list) => list
            .into_iter()
            .filter_map(|mut i| match i["content"].take() {
                serde_json::Value::String(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads a JSON object field by field, so that one bad field leaves the others readable.
/// Unknown fields are refused: a JSON client is a program, whose typo is better caught. A
/// field sent twice is refused too (422 `invalid_field` naming it), every value of it heard
/// by the emergency rules.
fn from_json(pairs: Vec<(String, serde_json::Value)>) -> RawForm {
    let mut raw = RawForm::default();
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in pairs {
        if seen.contains(&k) {
            if let Some(field) = known_form_field(&k) {
                raw.keep::<()>(Err(repeated(field)));
                raw.unread.extend(texts_of(v));
                continue;
            }
        } else {
            seen.push(k.clone());
        }
        match k.as_str() {
            "content" => raw.content = raw.keep(json_field("content", v)).flatten(),
            "name" => raw.name = raw.keep(json_field("name", v)).flatten(),
            "phone" => raw.phone = raw.keep(json_field("phone", v)).flatten(),
            "email" => raw.email = raw.keep(json_field("email", v)).flatten(),
            "category" => raw.category = raw.keep(json_field("category", v)).flatten(),
            "address" => raw.address = raw.keep(json_field("address", v)).flatten(),
            "lat" => raw.lat = raw.keep(json_field("lat", v)).flatten(),
            "lon" => raw.lon = raw.keep(json_field("lon", v)).flatten(),
            "confidential" => raw.confidential = raw.keep(json_field("confidential", v)).flatten(),
            "items" => raw.items = raw.keep(json_field("items", v)).flatten(),
            "attachments" => raw.attachments = raw.keep(json_field("attachments", v)).flatten(),
            "client_ref" => raw.client_ref = raw.keep(json_field("client_ref", v)).flatten(),
            other => {
                raw.keep::<()>(Err(AdapterError::InvalidField {
                    field: "body",
                    reason: format!("unknown field `{}`", shown_name(other)),
                }));
            }
        }
    }
    raw
}

/// A field name the client sent, fit to quote back in a refusal and a log line: cleaned,
/// cut short, and with anything like a phone number or e-mail address masked.
fn shown_name(name: &str) -> String {
    let name: String = clean_text(name).chars().take(MAX_SHOWN_NAME).collect();
    scrub_text(&name)
}

/// The fields of an urlencoded or multipart form, read leniently (see [`RawForm`]).
///
/// Two refusals (422 `invalid_field`, naming the field), each keeping the text for the
/// emergency rules. Until 2026-12-07 both were dropped silently under a 202:
/// - a field of ours sent twice (`content=…&content=…`): the last one won, and an emergency in
///   the first was never heard;
/// - `items`/`attachments` keys in a shape other than `items[N][content|category]` /
///   `attachments[N][url|kind]` (`items[][content]`, `items[0].content`, `items[-1][content]`):
///   the citizen's matters became no order at all. The PHP and Rails shapes are refused rather
///   than read: `items[][content]=a&items[][category]=help` is one item to Rails and two to PHP,
///   and a page author who sees the 422 once writes the indices.
fn read_fields(pairs: Vec<(String, String)>) -> RawForm {
    let mut raw = RawForm::default();
    let mut items: Vec<(usize, RawItem)> = Vec::new();
    let mut links: Vec<(usize, RawAttachment)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in pairs {
        if let Some(field) = known_form_field(&k) {
            let at = place(&k);
            if seen.contains(&at) {
                raw.keep::<()>(Err(repeated(field)));
                raw.unread.push(v);
                continue;
            }
            seen.push(at);
        }
        match k.as_str() {
            "content" => raw.content = Some(v),
            "name" => raw.name = Some(v),
            "phone" => raw.phone = Some(v),
            "email" => raw.email = Some(v),
            "category" => raw.category = Some(v),
            "address" => raw.address = Some(v),
            "client_ref" => raw.client_ref = Some(v),
            "lat" => raw.lat = raw.keep(parse_num("lat", &v)).flatten(),
            "lon" => raw.lon = raw.keep(parse_num("lon", &v)).flatten(),
            "confidential" => raw.confidential = raw.keep(parse_bool(&v)),
            "items" => raw.items = raw.keep(json_list("items", &v)).flatten(),
            "attachments" => raw.attachments = raw.keep(json_list("attachments", &v)).flatten(),
            other => match parse_indexed(other) {
                Some(("items", idx, field @ ("content" | "category"))) if idx < MAX_ITEMS => {
                    let item = slot(&mut items, idx, || RawItem {
                        content: String::new(),
                        category: None,
                    });
                    match field {
                        "content" => item.content = v,
                        _ => item.category = Some(v),
                    }
                }
                Some(("attachments", idx, field @ ("url" | "kind"))) if idx < MAX_ATTACHMENTS => {
                    let link = slot(&mut links, idx, RawAttachment::default);
                    match field {
                        "url" => link.url = v,
                        _ => link.kind = Some(v),
                    }
                }
                Some(("items", idx, _)) if idx >= MAX_ITEMS => {
                    raw.keep::<()>(Err(too_many("items", MAX_ITEMS)));
                }
                Some(("attachments", idx, _)) if idx >= MAX_ATTACHMENTS => {
                    raw.keep::<()>(Err(too_many("attachments", MAX_ATTACHMENTS)));
                }
                // Anything else (a submit button, `_charset_`, a CSRF token) is not ours,
                // unless it is meant as an item or a link.
                _ => {
                    if let Some(field) = list_key(other) {
                        raw.keep::<()>(Err(AdapterError::InvalidField {
                            field,
                            reason: format!(
                                "`{}` is not {field}[N][{}] (N from 0)",
                                shown_name(other),
                                if field == "items" {
                                    "content|category"
                                } else {
                                    "url|kind"
                                }
                            ),
                        }));
                        raw.unread.push(v);
                    }
                }
            },
        }
    }
    if !items.is_empty() {
        items.sort_by_key(|(i, _)| *i);
        let mut all = raw.items.take().unwrap_or_default();
        all.extend(items.into_iter().map(|(_, it)| it));
        raw.items = Some(all);
    }
    if !links.is_empty() {
        links.sort_by_key(|(i, _)| *i);
        let mut all = raw.attachments.take().unwrap_or_default();
        all.extend(links.into_iter().map(|(_, a)| a));
        raw.attachments = Some(all);
    }
    raw
}

/// A JSON array sent in one form field; `None` for a field left blank, as an empty `lat` is no
/// position: a page's hidden input that its script fills only when there are items. Until
/// 2026-12-07 a blank `items` was refused (422, "EOF while parsing"), though a form may leave
/// out any field it has nothing for, and the OpenAPI document said so.
fn json_list<T: DeserializeOwned>(
    field: &'static str,
    v: &str,
) -> Result<Option<Vec<T>>, AdapterError> {
    if v.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(v)
        .map(Some)
        .map_err(|e| AdapterError::InvalidField {
            field,
            reason: redact_parser_message(&e.to_string()),
        })
}

/// The entry for index `idx`, made by `new` when there is none yet.
fn slot<T>(list: &mut Vec<(usize, T)>, idx: usize, new: impl FnOnce() -> T) -> &mut T {
    let at = match list.iter().position(|(i, _)| *i == idx) {
        Some(at) => at,
        None => {
            list.push((idx, new()));
            list.len() - 1
        }
    };
    &mut list[at].1
}

/// `items[3][content]` -> ("items", 3, "content").
fn parse_indexed(k: &str) -> Option<(&str, usize, &str)> {
    let (list, rest) = k.split_once('[')?;
    let (idx, rest) = rest.split_once(']')?;
    let field = rest.strip_prefix('[')?.strip_suffix(']')?;
    Some((list, idx.parse().ok()?, field))
}

/// The form field of ours a key names, once: a plain field, or one place of an indexed item
/// or link (`items[0][content]`), so that each may be sent once. `None` for anything else.
fn known_form_field(k: &str) -> Option<&'static str> {
    const PLAIN: [&str; 12] = [
        "content",
        "name",
        "phone",
        "email",
        "category",
        "address",
        "client_ref",
        "lat",
        "lon",
        "confidential",
        "items",
        "attachments",
    ];
    if let Some(f) = PLAIN.iter().find(|f| **f == k) {
        return Some(f);
    }
    match parse_indexed(k) {
        Some(("items", _, "content" | "category")) => Some("items"),
        Some(("attachments", _, "url" | "kind")) => Some("attachments"),
        _ => None,
    }
}

/// Whether `name` is one of the form's own text fields (`content`, `phone`, `items[0][content]`,
/// …; see [`from_fields`]): a multipart part so named, without a file name and labelled
/// `application/octet-stream`, is text while its bytes read as text ([`reads_as_text`]); the
/// HTTP layer decides which names and types.
pub fn is_form_field(name: &str) -> bool {
    known_form_field(name).is_some()
}

/// Whether the bytes of a multipart part labelled `application/octet-stream` read as text: as
/// UTF-8, or in the encoding `charset` names (the part's own, else the request's). Without a
/// charset, UTF-8 only: the GB18030 guess [`from_parts`] makes for an undeclared form that is
/// not UTF-8 would read most photos as text too.
pub fn reads_as_text(value: &[u8], charset: Option<&str>) -> bool {
    std::str::from_utf8(value).is_ok()
        || charset.and_then(form_encoding).is_some_and(|e| {
            e.decode_without_bom_handling_and_without_replacement(value)
                .is_some()
        })
}

/// Whether `charset` (as [`reads_as_text`] takes it) leaves UTF-8 the only reading: none,
/// UTF-8, or a label nobody knows.
pub fn utf8_only(charset: Option<&str>) -> bool {
    charset.and_then(form_encoding).is_none_or(|e| e == UTF_8)
}

/// A key as one place of the form: an indexed key with its index as a number
/// (`items[01][content]` is `items[1][content]`), any other as it is.
fn place(k: &str) -> String {
    match parse_indexed(k) {
        Some((list, idx, field)) => format!("{list}[{idx}][{field}]"),
        None => k.to_string(),
    }
}

/// `items` or `attachments` for a key that is meant as one of them (`items[…`, `items.…`)
/// but is not in the shape the gateway reads.
fn list_key(k: &str) -> Option<&'static str> {
    ["items", "attachments"].into_iter().find(|list| {
        k.strip_prefix(list)
            .is_some_and(|rest| rest.starts_with('[') || rest.starts_with('.'))
    })
}

/// A field of ours sent more than once (which of the values would be the citizen's?).
fn repeated(field: &'static str) -> AdapterError {
    AdapterError::InvalidField {
        field,
        reason: "sent more than once".into(),
    }
}

fn too_many(field: &'static str, max: usize) -> AdapterError {
    AdapterError::InvalidField {
        field,
        reason: format!("at most {max}"),
    }
}

fn parse_num(field: &'static str, v: &str) -> Result<Option<f64>, AdapterError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<f64>()
        .map(Some)
        .map_err(|_| AdapterError::InvalidField {
            field,
            reason: "not a number".into(),
        })
}

fn parse_bool(v: &str) -> Result<bool, AdapterError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" | "" => Ok(false),
        _ => Err(AdapterError::InvalidField {
            field: "confidential",
            reason: "not a boolean".into(),
        }),
    }
}

fn parse_category(field: &'static str, v: Option<&str>) -> Result<Option<Category>, AdapterError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => Category::parse(s)
            .map(Some)
            .ok_or(AdapterError::InvalidField {
                field,
                reason: "one of consultation, help, complaint, report, suggestion, praise".into(),
            }),
    }
}

fn coordinate(
    field: &'static str,
    v: Option<f64>,
    limit: f64,
) -> Result<Option<f64>, AdapterError> {
    match v {
        Some(x) if !x.is_finite() || x.abs() > limit => Err(AdapterError::InvalidField {
            field,
            reason: format!("must be within ±{limit}"),
        }),
        other => Ok(other),
    }
}

/// An attachment link: an http(s) URL with a host, of a kind a page can send.
fn attachment(a: &RawAttachment) -> Result<Attachment, AdapterError> {
    let invalid = |reason: &str| AdapterError::InvalidField {
        field: "attachments",
        reason: reason.into(),
    };
    let kind = match a.kind.as_deref().map(str::trim).unwrap_or("") {
        "" | "link" => AttachmentKind::Link,
        "image" => AttachmentKind::Image,
        "voice" => AttachmentKind::Voice,
        "video" => AttachmentKind::Video,
        "file" => AttachmentKind::File,
        _ => return Err(invalid("kind is one of image, voice, video, file, link")),
    };
    let url = a.url.trim();
    if url.chars().count() > MAX_URL_CHARS {
        return Err(invalid(&format!(
            "url longer than {MAX_URL_CHARS} characters"
        )));
    }
    let rest = ["http://", "https://"].iter().find_map(|scheme| {
        url.get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
            .map(|_| &url[scheme.len()..])
    });
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    let clean = !url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'));
    match host {
        // `user:password@host`: credentials would travel on to dispatch and its logs.
        Some(h) if h.contains('@') => Err(invalid("url must not carry a user name or password")),
        Some(h) if !h.is_empty() && clean => Ok(Attachment {
            kind,
            url: url.to_string(),
            media_id: String::new(),
        }),
        _ => Err(invalid("url must be an http or https URL")),
    }
}

/// The form, read, or its first problem.
fn finish(mut raw: RawForm, client_ip: &str, now: i64) -> Result<Submission, FormError> {
    let result = match raw.problem.take() {
        Some(e) => Err(e),
        None => build(&raw, client_ip, now),
    };
    result.map_err(|error| FormError {
        readable: readable(&raw, client_ip, now).map(Box::new),
        error,
    })
}

/// What a refused form says, for the emergency rules: its text and items however long, and
/// who sent it (the phone when it is one, else the address). `None` without any text.
fn readable(raw: &RawForm, client_ip: &str, now: i64) -> Option<Submission> {
    let items: Vec<Item> = raw
        .items
        .iter()
        .flatten()
        .map(|i| Item {
            content: clean_text(&i.content),
            category: None,
        })
        .chain(raw.unread.iter().map(|t| Item {
            content: clean_text(t),
            category: None,
        }))
        .filter(|i| !i.content.is_empty())
        .collect();
    let content = clean_text(raw.content.as_deref().unwrap_or_default());
    if content.is_empty() && items.is_empty() {
        return None;
    }
    let identity = raw
        .phone
        .as_deref()
        .and_then(normalize_phone)
        .map(|p| Identity::new(IdentityKind::Phone, p))
        .unwrap_or_else(|| Identity::new(IdentityKind::Ip, client_ip));
    let mut sub = Submission::new(Channel::Web, identity, now, content);
    sub.items = items;
    sub.client_ref = raw
        .client_ref
        .as_deref()
        .and_then(|r| bounded("client_ref", r, 128).ok())
        .filter(|r| !r.is_empty());
    Some(sub)
}

fn build(raw: &RawForm, client_ip: &str, now: i64) -> Result<Submission, AdapterError> {
    let raw_items = raw.items.as_deref().unwrap_or_default();
    if raw_items.len() > MAX_ITEMS {
        return Err(too_many("items", MAX_ITEMS));
    }
    let mut items = Vec::with_capacity(raw_items.len());
    for it in raw_items {
        let content = bounded("items.content", &it.content, MAX_CONTENT_CHARS)?;
        if content.is_empty() {
            return Err(AdapterError::MissingField("items.content"));
        }
        items.push(Item {
            content,
            category: parse_category("items.category", it.category.as_deref())?,
        });
    }
    let raw_links = raw.attachments.as_deref().unwrap_or_default();
    if raw_links.len() > MAX_ATTACHMENTS {
        return Err(too_many("attachments", MAX_ATTACHMENTS));
    }
    let attachments = raw_links
        .iter()
        .map(attachment)
        .collect::<Result<Vec<_>, _>>()?;
    let mut content = bounded(
        "content",
        raw.content.as_deref().unwrap_or_default(),
        MAX_CONTENT_CHARS,
    )?;
    if content.is_empty() {
        // A page that sends only items still has a matter: the items, joined, are the content.
        if items.is_empty() {
            return Err(AdapterError::MissingField("content"));
        }
        content = items
            .iter()
            .map(|i| i.content.as_str())
            .collect::<Vec<_>>()
            .join("\n");
    }
    let phone_raw = bounded("phone", raw.phone.as_deref().unwrap_or_default(), 40)?;
    let phone = if phone_raw.is_empty() {
        String::new()
    } else {
        normalize_phone(&phone_raw).ok_or(AdapterError::InvalidField {
            field: "phone",
            reason: "not a phone number".into(),
        })?
    };
    let email = bounded("email", raw.email.as_deref().unwrap_or_default(), MAX_SHORT)?;
    if !email.is_empty() && !plausible_email(&email) {
        return Err(AdapterError::InvalidField {
            field: "email",
            reason: "not an email address".into(),
        });
    }
    let client_ref = match raw.client_ref.as_deref() {
        Some(r) => {
            let r = bounded("client_ref", r, 128)?;
            (!r.is_empty()).then_some(r)
        }
        None => None,
    };
    let identity = if phone.is_empty() {
        Identity::new(IdentityKind::Ip, client_ip)
    } else {
        Identity::new(IdentityKind::Phone, phone.clone())
    };
    let (lat, lon) = position(
        coordinate("lat", raw.lat, 90.0)?,
        coordinate("lon", raw.lon, 180.0)?,
    );
    Ok(Submission {
        channel: Channel::Web,
        account: String::new(),
        channel_ref: client_ref.clone().unwrap_or_default(),
        dedupe_key: None,
        identity,
        received_at: now,
        content,
        category: parse_category("category", raw.category.as_deref())?,
        items,
        contact: Contact {
            name: bounded("name", raw.name.as_deref().unwrap_or_default(), MAX_SHORT)?,
            phone,
            email: email.to_ascii_lowercase(),
        },
        location: Location {
            address: bounded(
                "address",
                raw.address.as_deref().unwrap_or_default(),
                MAX_ADDRESS,
            )?,
            lat,
            lon,
        },
        attachments,
        confidential: raw.confidential.unwrap_or(false),
        client_ref,
    })
}

/// A position needs both coordinates: one alone is a page's mistake, and dispatch would get a
/// point with no place, so it is dropped (not refused: the text may be an emergency, and a
/// refusal here would come before the rules). `0, 0` is the contract's template value, which
/// pages copy; it lies in the Gulf of Guinea, so it is read as no position.
fn position(lat: Option<f64>, lon: Option<f64>) -> (Option<f64>, Option<f64>) {
    match (lat, lon) {
        (Some(a), Some(o)) if a == 0.0 && o == 0.0 => (None, None),
        (Some(a), Some(o)) => (Some(a), Some(o)),
        _ => (None, None),
    }
}

fn plausible_email(e: &str) -> bool {
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !e
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: &str = "203.0.113.9";

    fn json(body: &str) -> Result<Submission, FormError> {
        parse(
            Some("application/json"),
            None,
            body.as_bytes(),
            IP,
            1_700_000_000,
        )
    }

    /// The refusal's code and field, and what of the form the emergency rules hear.
    fn refused(r: Result<Submission, FormError>) -> (&'static str, String, String) {
        let e = r.err().unwrap_or_else(|| panic!("accepted"));
        let field = match &e.error {
            AdapterError::InvalidField { field, .. } | AdapterError::MissingField(field) => {
                field.to_string()
            }
            _ => String::new(),
        };
        let heard = e
            .readable
            .map(|s| {
                let mut t = vec![s.content];
                t.extend(s.items.into_iter().map(|i| i.content));
                t.join("|")
            })
            .unwrap_or_default();
        (e.error.code(), field, heard)
    }

    /// Items and links in a shape other than `items[N][content|category]` are refused, naming
    /// the list, their text heard (until 2026-12-07 dropped under a 202: the matters made no
    /// order).
    #[test]
    fn items_and_links_in_other_shapes_are_refused_and_heard() {
        for key in [
            "items[][content]",
            "items[0].content",
            "items.0.content",
            "items[-1][content]",
            "items[99999999999999999999][content]",
            "items[0][text]",
            "items[0][content][x]",
            "items[a][content]",
        ] {
            let body = format!(
                "content=%E4%B8%A4%E4%BB%B6%E4%BA%8B&{}=%E7%9D%80%E7%81%AB",
                key
            );
            assert_eq!(
                refused(form(None, &body)),
                ("invalid_field", "items".into(), "两件事|着火".into()),
                "{key}"
            );
        }
        for key in [
            "attachments[][url]",
            "attachments[0].url",
            "attachments[x][url]",
        ] {
            let body = format!("content=x&{key}=https%3A%2F%2Fexample.gov.cn%2F1.jpg");
            let (code, field, _) = refused(form(None, &body));
            assert_eq!(
                (code, field.as_str()),
                ("invalid_field", "attachments"),
                "{key}"
            );
        }
        // The shapes the gateway reads, and names that are not ours, still pass.
        let s = form(
            None,
            "content=x&items[0][content]=a&items[1][content]=b&itemsx=1&submit=go",
        )
        .unwrap();
        assert_eq!(s.items.len(), 2);
    }

    /// A field of ours sent twice is refused, naming it, with every value heard by the
    /// emergency rules (until 2026-12-07 the last won, an emergency in the first unheard).
    #[test]
    fn a_repeated_field_is_refused_and_every_value_heard() {
        let r = json(r#"{"content":"楼下着火了","content":"路灯坏了"}"#);
        assert_eq!(
            refused(r),
            (
                "invalid_field",
                "content".into(),
                "楼下着火了|路灯坏了".into()
            )
        );
        let r = json(r#"{"content":"x","phone":"13900001111","phone":"13900002222"}"#);
        let (code, field, _) = refused(r);
        assert_eq!((code, field.as_str()), ("invalid_field", "phone"));
        let r = form(None, "content=%E7%9D%80%E7%81%AB&content=lamp");
        assert_eq!(
            refused(r),
            ("invalid_field", "content".into(), "着火|lamp".into())
        );
        let r = form(None, "content=x&items[0][content]=a&items[00][content]=b");
        let (code, field, heard) = refused(r);
        assert_eq!((code, field.as_str()), ("invalid_field", "items"));
        assert!(heard.contains('a') && heard.contains('b'), "{heard}");
        // Unknown names may repeat (checkboxes, submit buttons).
        assert!(form(None, "content=x&tag=1&tag=2").is_ok());
        assert_eq!(refused(json("[1,2]")).0, "invalid_field");
        assert_eq!(refused(json("\"x\"")).0, "invalid_field");
    }

    /// Invisible characters alone are no content, on JSON and forms alike.
    #[test]
    fn content_of_invisible_characters_only_is_missing() {
        let (code, field, _) = refused(json(r#"{"content":"\u200b\u200b\ufeff"}"#));
        assert_eq!((code, field.as_str()), ("missing_field", "content"));
        let (code, field, _) = refused(form(None, "content=%E2%80%8B%E2%81%A0"));
        assert_eq!((code, field.as_str()), ("missing_field", "content"));
    }

    /// One table, one helper: each body and the error code it must produce (or "ok").
    fn check(cases: &[(&str, &str)]) {
        for (body, want) in cases {
            let got = match json(body) {
                Ok(_) => "ok",
                Err(e) => e.error.code(),
            };
            assert_eq!(got, *want, "body: {body}");
        }
    }

    /// The contract's template sends `"lat": 0.0, "lon": 0.0`; a page that copies it has no
    /// position, not one in the Gulf of Guinea.
    #[test]
    fn a_half_or_template_zero_position_is_no_position() {
        let s = json(r#"{"content":"路灯坏了","lat":0.0,"lon":0.0}"#).unwrap();
        assert_eq!((s.location.lat, s.location.lon), (None, None));
        let s = json(r#"{"content":"路灯坏了","lat":39.1,"lon":0.0}"#).unwrap();
        assert_eq!((s.location.lat, s.location.lon), (Some(39.1), Some(0.0)));
        // One coordinate alone is no place: dropped, and the text still heard (it may be an
        // emergency, which a refusal here would turn away before the rules).
        for body in [
            r#"{"content":"楼下着火了","lat":39.1}"#,
            r#"{"content":"楼下着火了","lon":117.2}"#,
        ] {
            let s = json(body).unwrap();
            assert_eq!((s.location.lat, s.location.lon), (None, None), "{body}");
        }
    }

    #[test]
    fn json_bodies_are_accepted_or_refused_with_a_code() {
        check(&[
            (r#"{"content":"路灯坏了"}"#, "ok"),
            (r#"{"content":"  "}"#, "missing_field"),
            (r#"{}"#, "missing_field"),
            (r#"{"content":42}"#, "invalid_field"),
            (r#"[1,2]"#, "invalid_field"),
            (r#"{"content":"x","extra":1}"#, "invalid_field"),
            (r#"{"content":"x","category":"nonsense"}"#, "invalid_field"),
            (r#"{"content":"x","phone":"call me"}"#, "invalid_field"),
            (r#"{"content":"x","email":"nope"}"#, "invalid_field"),
            (r#"{"content":"x","lat":91}"#, "invalid_field"),
            (
                r#"{"content":"x","items":[{"content":""}]}"#,
                "missing_field",
            ),
            (
                r#"{"items":[{"content":"a"},{"content":"b","category":"help"}]}"#,
                "ok",
            ),
            (r#"{"content":"#, "invalid_json"),
            ("not json", "invalid_json"),
        ]);
        let long = format!(r#"{{"content":"{}"}}"#, "字".repeat(MAX_CONTENT_CHARS + 1));
        check(&[(long.as_str(), "invalid_field")]);
    }

    #[test]
    fn refusals_name_the_field_and_type_but_not_the_value() {
        let reason = |e: FormError| match e.error {
            AdapterError::InvalidField { reason, .. } => reason,
            other => panic!("expected invalid_field, got {other:?}"),
        };
        let e = json(r#"{"content":"x","phone":13912345678}"#).unwrap_err();
        let r = reason(e);
        assert!(
            r.contains("integer") && r.contains("expected a string"),
            "{r}"
        );
        assert!(!r.contains("13912345678") && !r.contains("5678"), "{r}");
        let e = json(r#"{"content":"x","email":["alice@example.cn"]}"#).unwrap_err();
        let r = reason(e);
        assert!(r.contains("sequence") && !r.contains("alice"), "{r}");
        let e = from_fields(
            vec![("items".into(), r#"[{"content":13912345678}]"#.into())],
            IP,
            0,
        )
        .unwrap_err();
        let r = reason(e);
        assert!(r.contains("integer") && !r.contains("1391234"), "{r}");
    }

    #[test]
    fn identity_is_the_phone_when_given_else_the_ip() {
        let s = json(r#"{"content":"噪音扰民","phone":"+86 138-0000-0000"}"#).unwrap();
        assert_eq!(s.identity.to_string(), "phone:13800000000");
        assert_eq!(s.contact.phone, "13800000000");
        let s = json(r#"{"content":"噪音扰民"}"#).unwrap();
        assert_eq!(s.identity.to_string(), "ip:203.0.113.9");
    }

    #[test]
    fn urlencoded_carries_the_same_names_and_indexed_items() {
        let body = "content=%E8%B7%AF%E7%81%AF&category=complaint&confidential=on\
                    &items%5B1%5D%5Bcontent%5D=b&items%5B0%5D%5Bcontent%5D=a&lat=39.1&lon=117.2";
        let s = parse(
            Some("application/x-www-form-urlencoded"),
            None,
            body.as_bytes(),
            IP,
            0,
        )
        .unwrap();
        assert_eq!(s.content, "路灯");
        assert_eq!(s.category, Some(Category::Complaint));
        assert!(s.confidential);
        let contents: Vec<_> = s.items.iter().map(|i| i.content.as_str()).collect();
        assert_eq!(contents, ["a", "b"]);
        assert_eq!(s.location.lat, Some(39.1));
    }

    /// A blank `items` or `attachments` field is none (a hidden input the page's script did not
    /// fill): the form is heard by its `content`; one holding no JSON array is still refused.
    #[test]
    fn blank_items_and_attachments_fields_are_none() {
        let form = |body: &str| {
            parse(
                Some("application/x-www-form-urlencoded"),
                None,
                body.as_bytes(),
                IP,
                0,
            )
        };
        let s = form("content=%E8%B7%AF%E7%81%AF&items=&attachments=+").unwrap();
        assert_eq!((s.content.as_str(), s.items.len()), ("路灯", 0));
        assert!(s.attachments.is_empty());
        let e = form("content=%E8%B7%AF%E7%81%AF&items=x").unwrap_err();
        assert_eq!(e.error.code(), "invalid_field");
        let e = form("items=").unwrap_err();
        assert_eq!(e.error.code(), "missing_field");
    }

    #[test]
    fn other_media_types_are_unsupported() {
        let e = parse(Some("text/plain"), None, b"hi", IP, 0).unwrap_err();
        assert_eq!(e.error.code(), "unsupported_media_type");
        let e = parse(None, None, b"hi", IP, 0).unwrap_err();
        assert_eq!(e.error.code(), "unsupported_media_type");
    }

    /// A browser posts its submit button's name (and `_charset_`, a CSRF token): a form
    /// field the gateway does not know is left out, not refused. Too many items still are, and
    /// (since 2026-12-07) an item field the gateway does not read (`items[0][colour]`): a
    /// misspelt `items[0][contnet]` was a matter dropped under a 202.
    #[test]
    fn unknown_form_fields_are_ignored_and_too_many_items_refused() {
        let s = from_fields(
            vec![
                ("content".into(), "x".into()),
                ("submit".into(), "提交".into()),
                ("_charset_".into(), "UTF-8".into()),
            ],
            IP,
            0,
        )
        .unwrap();
        assert_eq!((s.content.as_str(), s.items.len()), ("x", 0));
        let e = from_fields(vec![("items[99][content]".into(), "x".into())], IP, 0).unwrap_err();
        assert_eq!(e.error.code(), "invalid_field");
    }

    /// `s` in GBK, percent-escaped as a GBK page's browser posts it.
    fn gbk_escaped(s: &str) -> String {
        let (bytes, _, bad) = GB18030.encode(s);
        assert!(!bad);
        bytes.iter().map(|b| format!("%{b:02X}")).collect()
    }

    fn form(charset: Option<&str>, body: &str) -> Result<Submission, FormError> {
        parse(
            Some("application/x-www-form-urlencoded"),
            charset,
            body.as_bytes(),
            IP,
            0,
        )
    }

    /// A GBK page posts GBK bytes, declared or not: read as such, never as U+FFFD junk.
    /// Bytes that are text in no encoding are refused, as multipart refuses them.
    #[test]
    fn urlencoded_text_is_read_in_its_charset() {
        let fire = "楼下着火了，火很大，有人被困";
        let body = format!("content={}&phone=13900000600", gbk_escaped(fire));
        for charset in [Some("gb2312"), Some("GBK"), Some("\"gb18030\""), None] {
            let s = form(charset, &body).unwrap();
            assert_eq!(s.content, fire, "{charset:?}");
        }
        // The `_charset_` field a browser fills in, anywhere in the form.
        let s = form(None, &format!("{body}&_charset_=gbk")).unwrap();
        assert_eq!(s.content, fire);
        // UTF-8 stays UTF-8, `+` is a space, and an escape is a byte of the charset.
        let s = form(None, "content=%E8%B7%AF%E7%81%AF+%E5%9D%8F%E4%BA%86").unwrap();
        assert_eq!(s.content, "路灯 坏了");
        let s = form(Some("utf-8"), "content=%E8%B7%AF%E7%81%AF").unwrap();
        assert_eq!(s.content, "路灯");
        // Declared UTF-8, sent GBK: refused, not guessed.
        let e = form(Some("utf-8"), &body).unwrap_err();
        assert_eq!(e.error.code(), "invalid_utf8");
        // Neither UTF-8 nor GB18030 (0xFF is no GB18030 byte).
        let e = form(None, "content=%FF%FF").unwrap_err();
        assert_eq!(e.error.code(), "invalid_utf8");
        // JSON is UTF-8 whatever the header says (GBK 下 here).
        let e = parse(
            Some("application/json"),
            Some("gbk"),
            b"{\"content\":\"\xcf\xc2\"}",
            IP,
            0,
        )
        .unwrap_err();
        assert_eq!(e.error.code(), "invalid_json");
    }

    #[test]
    fn multipart_text_is_read_in_its_charset_and_empty_file_inputs_are_skipped() {
        let fire = "楼下着火了";
        let (gbk, _, _) = GB18030.encode(fire);
        let part = |name: &str, value: &[u8]| Part {
            name: name.into(),
            value: value.to_vec(),
            ..Part::default()
        };
        let empty_file = Part {
            name: "photo".into(),
            file: true,
            ..Part::default()
        };
        let s = from_parts(vec![part("content", &gbk), empty_file.clone()], None, IP, 0).unwrap();
        assert_eq!(s.content, fire);
        let own = Part {
            charset: Some("gbk".into()),
            ..part("content", &gbk)
        };
        let s = from_parts(vec![own.clone()], Some("utf-8"), IP, 0).unwrap();
        assert_eq!(s.content, fire);
        // A part in a charset of its own says nothing of the others': UTF-8 stays UTF-8.
        let s = from_parts(vec![own, part("name", "张三".as_bytes())], None, IP, 0).unwrap();
        assert_eq!(
            (s.content.as_str(), s.contact.name.as_str()),
            (fire, "张三")
        );
        let e = from_parts(vec![part("content", &gbk)], Some("utf-8"), IP, 0).unwrap_err();
        assert_eq!(e.error.code(), "invalid_utf8");
        // A file with bytes is refused, with the text readable for the emergency rules.
        let photo = Part {
            value: b"\xff\xd8\xff".to_vec(),
            ..empty_file
        };
        let e = from_parts(vec![part("content", &gbk), photo], None, IP, 0).unwrap_err();
        assert_eq!(e.error.code(), "invalid_field");
        assert_eq!(e.readable.map(|s| s.content).as_deref(), Some(fire));
    }

    /// A refused field leaves the text readable (for the emergency rules), with the identity
    /// the form would have had; a body that is not a form at all leaves nothing.
    #[test]
    fn a_refused_field_leaves_the_text_readable() {
        let cases = [
            (
                r#"{"content":"楼下着火了","email":"zhang@qq"}"#,
                "ip:203.0.113.9",
            ),
            (
                r#"{"content":"楼下着火了","phone":"138-0000-000x"}"#,
                "ip:203.0.113.9",
            ),
            (
                r#"{"content":"楼下着火了","category":"其他","phone":"13900000001"}"#,
                "phone:13900000001",
            ),
            (r#"{"content":"楼下着火了","lat":"39,9"}"#, "ip:203.0.113.9"),
            (r#"{"content":"楼下着火了","extra":1}"#, "ip:203.0.113.9"),
        ];
        for (body, who) in cases {
            let e = json(body).unwrap_err();
            assert_eq!(e.error.code(), "invalid_field", "{body}");
            let r = e
                .readable
                .unwrap_or_else(|| panic!("nothing readable: {body}"));
            assert_eq!(
                (r.content.as_str(), r.identity.to_string().as_str()),
                ("楼下着火了", who)
            );
        }
        let name = "张".repeat(201);
        let e = from_fields(
            vec![
                ("lat".into(), "39,9".into()),
                ("name".into(), name),
                ("items[0][content]".into(), "有人被困".into()),
            ],
            IP,
            0,
        )
        .unwrap_err();
        let r = e.readable.unwrap();
        assert_eq!(
            (r.content.as_str(), r.items[0].content.as_str()),
            ("", "有人被困")
        );
        assert!(json(r#"{"content":5,"email":"x"}"#)
            .unwrap_err()
            .readable
            .is_none());
        assert!(json("{oops").unwrap_err().readable.is_none());
    }

    #[test]
    fn attachments_are_links_in_every_encoding() {
        let s = json(
            r#"{"content":"路面塌陷","attachments":[{"kind":"image","url":"https://img.example.cn/a.jpg"},{"url":"HTTP://example.cn"}]}"#,
        )
        .unwrap();
        let got: Vec<_> = s
            .attachments
            .iter()
            .map(|a| (a.kind, a.url.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (AttachmentKind::Image, "https://img.example.cn/a.jpg"),
                (AttachmentKind::Link, "HTTP://example.cn"),
            ]
        );
        let s = from_fields(
            vec![
                ("content".into(), "x".into()),
                ("attachments[1][url]".into(), "https://b.example.cn/".into()),
                ("attachments[0][url]".into(), "https://a.example.cn/".into()),
                ("attachments[0][kind]".into(), "video".into()),
            ],
            IP,
            0,
        )
        .unwrap();
        let got: Vec<_> = s
            .attachments
            .iter()
            .map(|a| (a.kind, a.url.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (AttachmentKind::Video, "https://a.example.cn/"),
                (AttachmentKind::Link, "https://b.example.cn/"),
            ]
        );
        let s = from_fields(
            vec![
                ("content".into(), "x".into()),
                (
                    "attachments".into(),
                    r#"[{"url":"https://a.example.cn/x"}]"#.into(),
                ),
            ],
            IP,
            0,
        )
        .unwrap();
        assert_eq!(s.attachments.len(), 1);
        let many = format!(
            r#"{{"content":"x","attachments":[{}]}}"#,
            [r#"{"url":"https://a.cn/"}"#; MAX_ATTACHMENTS + 1].join(",")
        );
        let long = format!(
            r#"{{"content":"x","attachments":[{{"url":"https://a.cn/{}"}}]}}"#,
            "a".repeat(MAX_URL_CHARS)
        );
        check(&[
            (
                r#"{"content":"x","attachments":[{"url":"javascript:alert(1)"}]}"#,
                "invalid_field",
            ),
            (
                r#"{"content":"x","attachments":[{"url":"ftp://a.cn/x"}]}"#,
                "invalid_field",
            ),
            (
                r#"{"content":"x","attachments":[{"url":"https:///x"}]}"#,
                "invalid_field",
            ),
            (
                r#"{"content":"x","attachments":[{"url":"https://a.cn/x y"}]}"#,
                "invalid_field",
            ),
            (
                r#"{"content":"x","attachments":[{"url":"https://user:pw@a.cn/x"}]}"#,
                "invalid_field",
            ),
            (
                r#"{"content":"x","attachments":[{"kind":"recording","url":"https://a.cn/"}]}"#,
                "invalid_field",
            ),
            (
                r#"{"content":"x","attachments":[{"url":"https://a.cn/","media_id":"m"}]}"#,
                "invalid_field",
            ),
            (many.as_str(), "invalid_field"),
            (long.as_str(), "invalid_field"),
        ]);
    }
}
