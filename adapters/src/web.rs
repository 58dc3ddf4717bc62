//! The web portal form (`POST /v1/web/submissions`): JSON, urlencoded, or multipart fields.
//!
//! The HTTP layer reads multipart parts into `(name, value)` text fields (multipart needs a
//! streaming reader, which is I/O) and hands them to [`from_fields`]; JSON and urlencoded bodies
//! come here as bytes through [`parse`].

use crate::mask::redact_parser_message;
use crate::text::{bounded, clean_text, normalize_phone};
use crate::{
    AdapterError, Category, Channel, Contact, Identity, IdentityKind, Item, Location, Submission,
};
use serde::Deserialize;

/// Longest `content` (and item content) in characters.
pub const MAX_CONTENT_CHARS: usize = 4000;
/// Most structured items in one submission.
pub const MAX_ITEMS: usize = 20;
const MAX_SHORT: usize = 200;
const MAX_ADDRESS: usize = 500;

/// One structured item as sent by the page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    content: String,
    #[serde(default)]
    category: Option<String>,
}

/// The form as sent by the page (JSON names; the form encodings carry the same names).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForm {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lon: Option<f64>,
    #[serde(default)]
    confidential: Option<bool>,
    #[serde(default)]
    items: Option<Vec<RawItem>>,
    #[serde(default)]
    client_ref: Option<String>,
}

/// Parses a JSON or urlencoded body. `client_ip` is the submitter's address as the HTTP layer
/// established it (X-Forwarded-For only from trusted proxies); it is the identity when no phone
/// is given. `now` is the arrival time in unix seconds.
pub fn parse(
    media_type: Option<&str>,
    body: &[u8],
    client_ip: &str,
    now: i64,
) -> Result<Submission, AdapterError> {
    match media_type {
        Some("application/json") => {
            // Tell "not JSON at all" (400) from "JSON of the wrong shape" (422).
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(AdapterError::json)?;
            if !value.is_object() {
                return Err(AdapterError::InvalidField {
                    field: "body",
                    reason: "expected a JSON object".into(),
                });
            }
            let raw: RawForm = serde_json::from_value(value).map_err(shape_error)?;
            build(raw, client_ip, now)
        }
        Some("application/x-www-form-urlencoded") => {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(body).map_err(AdapterError::form)?;
            from_fields(pairs, client_ip, now)
        }
        Some(other) => Err(AdapterError::UnsupportedMediaType(other.to_string())),
        None => Err(AdapterError::UnsupportedMediaType(String::new())),
    }
}

fn shape_error(e: serde_json::Error) -> AdapterError {
    // serde's message names the field and the expected type; that is what a page developer needs.
    // It also quotes the submitted value (a phone number, say), which goes to the log: cut out.
    AdapterError::InvalidField {
        field: "body",
        reason: redact_parser_message(&e.to_string()),
    }
}

/// Builds a submission from text fields (urlencoded or multipart). Items may be sent as
/// `items` holding a JSON array, or as `items[N][content]` / `items[N][category]` pairs.
pub fn from_fields(
    pairs: Vec<(String, String)>,
    client_ip: &str,
    now: i64,
) -> Result<Submission, AdapterError> {
    let mut raw = RawForm::default();
    let mut indexed: Vec<(usize, Option<String>, Option<String>)> = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "content" => raw.content = Some(v),
            "name" => raw.name = Some(v),
            "phone" => raw.phone = Some(v),
            "email" => raw.email = Some(v),
            "category" => raw.category = Some(v),
            "address" => raw.address = Some(v),
            "client_ref" => raw.client_ref = Some(v),
            "lat" => raw.lat = parse_num("lat", &v)?,
            "lon" => raw.lon = parse_num("lon", &v)?,
            "confidential" => raw.confidential = Some(parse_bool(&v)?),
            "items" => {
                let items: Vec<RawItem> =
                    serde_json::from_str(&v).map_err(|e| AdapterError::InvalidField {
                        field: "items",
                        reason: redact_parser_message(&e.to_string()),
                    })?;
                raw.items = Some(items);
            }
            other => {
                let Some((idx, field)) = parse_item_key(other) else {
                    return Err(AdapterError::InvalidField {
                        field: "body",
                        reason: format!("unknown field `{}`", clean_text(other)),
                    });
                };
                if idx >= MAX_ITEMS {
                    return Err(too_many_items());
                }
                let slot = match indexed.iter_mut().find(|(i, _, _)| *i == idx) {
                    Some(slot) => slot,
                    None => {
                        indexed.push((idx, None, None));
                        let last = indexed.len() - 1;
                        &mut indexed[last]
                    }
                };
                match field {
                    ItemField::Content => slot.1 = Some(v),
                    ItemField::Category => slot.2 = Some(v),
                }
            }
        }
    }
    if !indexed.is_empty() {
        indexed.sort_by_key(|(i, _, _)| *i);
        let mut items = raw.items.take().unwrap_or_default();
        for (_, content, category) in indexed {
            items.push(RawItem {
                content: content.unwrap_or_default(),
                category,
            });
        }
        raw.items = Some(items);
    }
    build(raw, client_ip, now)
}

enum ItemField {
    Content,
    Category,
}

/// `items[3][content]` -> (3, Content).
fn parse_item_key(k: &str) -> Option<(usize, ItemField)> {
    let rest = k.strip_prefix("items[")?;
    let (idx, rest) = rest.split_once(']')?;
    let idx: usize = idx.parse().ok()?;
    let field = match rest {
        "[content]" => ItemField::Content,
        "[category]" => ItemField::Category,
        _ => return None,
    };
    Some((idx, field))
}

fn too_many_items() -> AdapterError {
    AdapterError::InvalidField {
        field: "items",
        reason: format!("at most {MAX_ITEMS} items"),
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

fn parse_category(
    field: &'static str,
    v: Option<String>,
) -> Result<Option<Category>, AdapterError> {
    match v.as_deref().map(str::trim) {
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

fn build(raw: RawForm, client_ip: &str, now: i64) -> Result<Submission, AdapterError> {
    let mut items = Vec::new();
    for it in raw.items.unwrap_or_default() {
        if items.len() >= MAX_ITEMS {
            return Err(too_many_items());
        }
        let content = bounded("items.content", &it.content, MAX_CONTENT_CHARS)?;
        if content.is_empty() {
            return Err(AdapterError::MissingField("items.content"));
        }
        items.push(Item {
            content,
            category: parse_category("items.category", it.category)?,
        });
    }
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
    let client_ref = match raw.client_ref {
        Some(r) => {
            let r = bounded("client_ref", &r, 128)?;
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
        category: parse_category("category", raw.category)?,
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
        attachments: Vec::new(),
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

    fn json(body: &str) -> Result<Submission, AdapterError> {
        parse(Some("application/json"), body.as_bytes(), IP, 1_700_000_000)
    }

    /// One table, one helper: each body and the error code it must produce (or "ok").
    fn check(cases: &[(&str, &str)]) {
        for (body, want) in cases {
            let got = match json(body) {
                Ok(_) => "ok",
                Err(e) => e.code(),
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
        let reason = |e: AdapterError| match e {
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

    #[test]
    fn other_media_types_are_unsupported() {
        let e = parse(Some("text/plain"), b"hi", IP, 0).unwrap_err();
        assert_eq!(e.code(), "unsupported_media_type");
        let e = parse(None, b"hi", IP, 0).unwrap_err();
        assert_eq!(e.code(), "unsupported_media_type");
    }

    #[test]
    fn unknown_form_fields_and_too_many_items_are_refused() {
        let e = from_fields(
            vec![("content".into(), "x".into()), ("zz".into(), "1".into())],
            IP,
            0,
        )
        .unwrap_err();
        assert_eq!(e.code(), "invalid_field");
        let e = from_fields(vec![("items[99][content]".into(), "x".into())], IP, 0).unwrap_err();
        assert_eq!(e.code(), "invalid_field");
    }
}
