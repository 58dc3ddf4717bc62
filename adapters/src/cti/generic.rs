//! `format = "generic"`: the gateway's own JSON contract for CTI platforms (CONTRACT.md,
//! "Telephony, format = generic").
//!
//! Request: `POST /v1/cti/{profile}` with `Authorization: Bearer <token>`, or
//! `POST /v1/cti/{profile}/{token}` for platforms that cannot set headers; JSON body
//! `{"event": "call.started|call.input|call.registered|call.ended|call.flagged", "call_id", "from",
//! "to", "at" (RFC 3339), ...}`. Extensions beyond the contract (all optional): event
//! `call.answered`; `direction` (`in`/`out`); `caller_ref` (the platform's stable id of a caller
//! whose number is withheld); `order.recording_url`; `answered` and `cause` on `call.ended`;
//! `at` as unix seconds, or as unix milliseconds (see [`MILLIS_ABOVE`]).
//!
//! Answer: `{"action": "continue"|"reject"|"transfer"|"say", "number", "text", "orders":
//! [{"number"}], "flag"}`, absent fields omitted.

use super::{
    caller_identity, check_call_id, check_digits, check_number, check_speech, check_url,
    dedupe_key, non_phone_ref, parse_rfc3339, step_hash, token_matches, CallDecision,
    CallDirection, CallEvent, CallKind, RegisteredOrder, SipNumberHosts, MAX_CONTENT,
};
use crate::text::bounded;
use crate::{AdapterError, Category, Inbound, Item};
use serde_json::{json, Map, Value};

/// Most matters one registration may carry; more is a client bug, not a citizen.
pub const MAX_ITEMS: usize = 20;

/// A numeric `at` above this is unix milliseconds, at or below it unix seconds. Platforms
/// written in Java or JavaScript send milliseconds (`System.currentTimeMillis()`,
/// `Date.now()`), and the two cannot be confused here: 10^11 seconds is the year 5138, while
/// 10^11 milliseconds is March 1973, before any platform that could call this gateway.
/// Accepting both is kinder than a 422, which a platform would meet on the ringing step.
pub const MILLIS_ABOVE: i64 = 100_000_000_000;

/// Largest numeric `at` taken (as milliseconds, the year 5138 again). Anything larger is
/// micro- or nanoseconds, whose scale this gateway does not guess: refused, naming `at`.
pub const MAX_MILLIS: i64 = 100_000_000_000_000;

/// Authenticates and parses one generic callback.
///
/// The token may come as `Authorization: Bearer <token>` or as `path_token` (the `{token}` URL
/// segment); one presented token that matches `token` is enough. Authentication happens before
/// the body is looked at, so an unauthenticated caller learns nothing about the format.
/// `sip_hosts`: the SIP hosts whose callers' user part is their number (see [`SipNumberHosts`]).
pub fn parse(
    inbound: &Inbound,
    token: &str,
    path_token: Option<&str>,
    sip_hosts: &SipNumberHosts,
) -> Result<CallEvent, AdapterError> {
    authenticate(inbound, token, path_token)?;
    if let Some(mt) = inbound.media_type() {
        if mt != "application/json" && !mt.ends_with("+json") {
            return Err(AdapterError::UnsupportedMediaType(mt));
        }
    }
    let value: Value = serde_json::from_slice(&inbound.body).map_err(AdapterError::json)?;
    let Value::Object(map) = value else {
        return Err(AdapterError::InvalidJson("expected a JSON object".into()));
    };
    parse_object(&map, inbound.now, sip_hosts)
}

/// Checks the bearer or path token. Neither presented, or none matching: `BadToken`.
pub fn authenticate(
    inbound: &Inbound,
    token: &str,
    path_token: Option<&str>,
) -> Result<(), AdapterError> {
    let bearer = inbound.header("authorization").and_then(|v| {
        let (scheme, rest) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    let presented: Vec<&str> = bearer.into_iter().chain(path_token).collect();
    // Every presented token is compared (no short-circuit), so timing does not tell which one
    // failed.
    let ok = presented
        .iter()
        .fold(false, |acc, t| token_matches(token, t) | acc);
    if ok {
        Ok(())
    } else {
        Err(AdapterError::BadToken)
    }
}

fn parse_object(
    map: &Map<String, Value>,
    now: i64,
    sip_hosts: &SipNumberHosts,
) -> Result<CallEvent, AdapterError> {
    let event = opt_str(map, "event")?
        .filter(|s| !s.is_empty())
        .ok_or(AdapterError::MissingField("event"))?;
    let call_id = check_call_id("call_id", opt_str(map, "call_id")?)?;
    let from = check_number("from", opt_str(map, "from")?)?;
    let to = check_number("to", opt_str(map, "to")?)?;
    let direction = match opt_str(map, "direction")?.as_deref().map(str::trim) {
        None | Some("" | "in" | "inbound") => CallDirection::Inbound,
        Some("out" | "outbound") => CallDirection::Outbound,
        Some(other) => {
            return Err(AdapterError::InvalidField {
                field: "direction",
                reason: format!("`{}` is not in or out", quoted(other)),
            })
        }
    };
    // The raw `at` goes into step hashes: a retry carries the same string, whereas the
    // defaulted arrival time would differ between a push and its retry.
    let (at, at_raw) = match map.get("at") {
        None | Some(Value::Null) => (now, String::new()),
        Some(Value::String(s)) if s.trim().is_empty() => (now, String::new()),
        Some(Value::String(s)) => (
            parse_rfc3339(s).ok_or_else(|| AdapterError::InvalidField {
                field: "at",
                reason: "not an RFC 3339 date-time with offset".into(),
            })?,
            s.trim().to_string(),
        ),
        Some(Value::Number(n)) => (unix_seconds(n)?, n.to_string()),
        Some(_) => {
            return Err(AdapterError::InvalidField {
                field: "at",
                reason: "not a string".into(),
            })
        }
    };
    let at = sane_at(at, now);

    let (kind, step) = match event.trim() {
        "call.started" => (CallKind::Started, None),
        "call.answered" => (CallKind::Answered, None),
        "call.input" => {
            let digits = check_digits("digits", opt_str(map, "digits")?)?;
            let speech = check_speech("speech", opt_str(map, "speech")?)?;
            if digits.is_none() && speech.is_none() {
                return Err(AdapterError::MissingField("digits"));
            }
            let step = step_hash(&[
                &at_raw,
                digits.as_deref().unwrap_or_default(),
                speech.as_deref().unwrap_or_default(),
            ]);
            (CallKind::Input { digits, speech }, Some(step))
        }
        "call.registered" => {
            let order = match map.get("order") {
                None | Some(Value::Null) => return Err(AdapterError::MissingField("order")),
                Some(Value::Object(o)) => parse_order(o)?,
                Some(_) => {
                    return Err(AdapterError::InvalidField {
                        field: "order",
                        reason: "not an object".into(),
                    })
                }
            };
            let step = order_step(&at_raw, &order);
            (CallKind::Registered { order }, Some(step))
        }
        "call.ended" => {
            let duration_s = match map.get("duration_s") {
                None | Some(Value::Null) => 0,
                Some(v) => v.as_u64().ok_or_else(|| AdapterError::InvalidField {
                    field: "duration_s",
                    reason: "not a non-negative whole number".into(),
                })?,
            };
            let answered = opt_bool(map, "answered")?.unwrap_or(duration_s > 0);
            let cause = opt_str(map, "cause")?
                .map(|c| truncate(c.trim()))
                .filter(|c| !c.is_empty());
            (
                CallKind::Ended {
                    duration_s,
                    answered,
                    cause,
                },
                None,
            )
        }
        "call.flagged" => {
            let agent = required_text(map, "agent", 64)?;
            let reason = required_text(map, "reason", 500)?;
            let step = step_hash(&[&at_raw, &agent, &reason]);
            (CallKind::Flagged { agent, reason }, Some(step))
        }
        other => return Err(AdapterError::UnknownEvent(quoted(other))),
    };

    let party = match direction {
        CallDirection::Inbound => &from,
        CallDirection::Outbound => &to,
    };
    let caller = caller_identity(party, sip_hosts);
    let caller_ref = match opt_str(map, "caller_ref")?.map(|s| s.trim().to_string()) {
        Some(r) if !r.is_empty() => Some(check_call_id("caller_ref", Some(r))?),
        _ if caller.is_none() => non_phone_ref(party),
        _ => None,
    };
    let dedupe_key = dedupe_key(&call_id, &kind, step.as_deref());
    Ok(CallEvent {
        call_id,
        kind,
        direction,
        from,
        to,
        caller,
        caller_ref,
        at,
        dedupe_key,
    })
}

/// How far before its arrival a step's `at` is believed (seconds): a platform's retries and
/// queues span minutes to hours, and a week covers an outage of the gateway.
pub const AT_BEFORE: i64 = 7 * 86_400;
/// How far after its arrival a step's `at` is believed (seconds): a PBX clock a little ahead,
/// or a local time sent with the wrong offset (at most 14 hours off).
pub const AT_AHEAD: i64 = 86_400;

/// The platform's time when it is within [`AT_BEFORE`]/[`AT_AHEAD`] of the arrival time `now`,
/// else the arrival time. A well-formed but absurd `at` (`9999-12-31T23:59:59Z`, the year 1, a
/// PBX clock never set) is not refused: a call step already under way must still be answered
/// (an emergency said in it transferred, a registered matter made an order), and the order's
/// `received_at` would otherwise be a time dispatch cannot read (`+10000-01-01…`) or one that
/// makes it overdue on arrival.
fn sane_at(at: i64, now: i64) -> i64 {
    if at < now.saturating_sub(AT_BEFORE) || at > now.saturating_add(AT_AHEAD) {
        now
    } else {
        at
    }
}

/// A numeric `at` in unix seconds: whole seconds as they are, whole milliseconds (above
/// [`MILLIS_ABOVE`]) divided down; negative, fractional or finer values are refused.
fn unix_seconds(n: &serde_json::Number) -> Result<i64, AdapterError> {
    match n.as_i64() {
        Some(s) if (0..=MILLIS_ABOVE).contains(&s) => Ok(s),
        Some(ms) if ms > MILLIS_ABOVE && ms <= MAX_MILLIS => Ok(ms / 1000),
        _ => Err(AdapterError::InvalidField {
            field: "at",
            reason: "not whole unix seconds or milliseconds".into(),
        }),
    }
}

fn parse_order(o: &Map<String, Value>) -> Result<RegisteredOrder, AdapterError> {
    let content = bounded(
        "order.content",
        &opt_str(o, "content")?.unwrap_or_default(),
        MAX_CONTENT,
    )?;
    let category = category(opt_str(o, "category")?, "order.category")?;
    let items = match o.get("items") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.len() > MAX_ITEMS => {
            return Err(AdapterError::InvalidField {
                field: "order.items",
                reason: format!("more than {MAX_ITEMS} items"),
            })
        }
        Some(Value::Array(a)) => a.iter().map(parse_item).collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(AdapterError::InvalidField {
                field: "order.items",
                reason: "not an array".into(),
            })
        }
    };
    // Items alone are enough: the content is then their text, so the order is never empty.
    let content = if content.is_empty() {
        if items.is_empty() {
            return Err(AdapterError::MissingField("order.content"));
        }
        items
            .iter()
            .map(|i: &Item| i.content.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        content
    };
    Ok(RegisteredOrder {
        content,
        category,
        items,
        confidential: opt_bool(o, "confidential")?.unwrap_or(false),
        name: bounded("order.name", &opt_str(o, "name")?.unwrap_or_default(), 100)?,
        address: bounded(
            "order.address",
            &opt_str(o, "address")?.unwrap_or_default(),
            500,
        )?,
        recording_url: check_url("order.recording_url", opt_str(o, "recording_url")?)?,
        transcription: false,
    })
}

fn parse_item(v: &Value) -> Result<Item, AdapterError> {
    let Value::Object(o) = v else {
        return Err(AdapterError::InvalidField {
            field: "order.items",
            reason: "an item is not an object".into(),
        });
    };
    let content = bounded(
        "order.items.content",
        &opt_str(o, "content")?.unwrap_or_default(),
        MAX_CONTENT,
    )?;
    if content.is_empty() {
        return Err(AdapterError::MissingField("order.items.content"));
    }
    Ok(Item {
        content,
        category: category(opt_str(o, "category")?, "order.items.category")?,
    })
}

fn category(raw: Option<String>, field: &'static str) -> Result<Option<Category>, AdapterError> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => Category::parse(s)
            .map(Some)
            .ok_or_else(|| AdapterError::InvalidField {
                field,
                reason: format!("unknown category `{}`", quoted(s)),
            }),
    }
}

/// The step discriminator of a registration: everything the agent typed, plus `at`.
fn order_step(at_raw: &str, o: &RegisteredOrder) -> String {
    let mut parts: Vec<&str> = vec![
        at_raw,
        &o.content,
        o.category.map(Category::as_str).unwrap_or_default(),
        if o.confidential { "1" } else { "0" },
        &o.name,
        &o.address,
        o.recording_url.as_deref().unwrap_or_default(),
    ];
    for i in &o.items {
        parts.push(&i.content);
        parts.push(i.category.map(Category::as_str).unwrap_or_default());
    }
    step_hash(&parts)
}

fn required_text(
    map: &Map<String, Value>,
    field: &'static str,
    max: usize,
) -> Result<String, AdapterError> {
    let s = bounded(field, &opt_str(map, field)?.unwrap_or_default(), max)?;
    if s.is_empty() {
        return Err(AdapterError::MissingField(field));
    }
    Ok(s)
}

/// A string field; numbers are taken as their decimal text (some PBXs send numeric call ids
/// and numbers). `null` is absent.
fn opt_str(map: &Map<String, Value>, field: &'static str) -> Result<Option<String>, AdapterError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(AdapterError::InvalidField {
            field,
            reason: "not a string".into(),
        }),
    }
}

fn opt_bool(map: &Map<String, Value>, field: &'static str) -> Result<Option<bool>, AdapterError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(AdapterError::InvalidField {
            field,
            reason: "not a boolean".into(),
        }),
    }
}

/// Bounds a value echoed into an error or a cause, so a hostile body cannot bloat logs.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A value the event could not take, as an error's detail quotes it: masked of numbers,
/// e-mail addresses and ids before it is cut (the detail goes into the 422 body and the
/// DEBUG log, and a misconfigured platform may put the caller's number in any field; until
/// 2026-12-07 it was quoted as sent).
fn quoted(s: &str) -> String {
    truncate(&crate::mask::scrub_text_and_ids(s))
}

/// Renders a decision as the generic JSON answer. Empty optional parts are omitted.
pub fn render(decision: &CallDecision) -> String {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    match decision {
        CallDecision::Continue { orders, text, flag } => {
            put("action", json!("continue"));
            if !orders.is_empty() {
                let list: Vec<Value> = orders.iter().map(|n| json!({ "number": n })).collect();
                put("orders", Value::Array(list));
            }
            if let Some(t) = text.as_deref().filter(|t| !t.is_empty()) {
                put("text", json!(t));
            }
            if let Some(f) = flag.as_deref().filter(|f| !f.is_empty()) {
                put("flag", json!(f));
            }
        }
        CallDecision::Reject { text } => {
            put("action", json!("reject"));
            put("text", json!(text));
        }
        CallDecision::Transfer { number, text } => {
            put("action", json!("transfer"));
            put("number", json!(number));
            put("text", json!(text));
        }
        CallDecision::Say { number, text } => {
            put("action", json!("say"));
            // The number to dial, as `transfer` carries it: a desk can show or dial it for the
            // caller (the contract's answer has `number`; until 2026-12-07 `say` left it out).
            put("number", json!(number));
            put("text", json!(text));
        }
    }
    Value::Object(m).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Category, IdentityKind};

    const TOKEN: &str = "gen-token-1";

    fn inbound(body: &str) -> Inbound {
        Inbound {
            query: String::new(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("authorization".into(), format!("Bearer {TOKEN}")),
            ],
            body: body.as_bytes().to_vec(),
            now: 1_800_000_000,
        }
    }

    fn ok(body: &str) -> CallEvent {
        match parse(&inbound(body), TOKEN, None, &SipNumberHosts::NONE) {
            Ok(ev) => ev,
            Err(e) => panic!("{body}: {e}"),
        }
    }

    fn err(body: &str) -> AdapterError {
        match parse(&inbound(body), TOKEN, None, &SipNumberHosts::NONE) {
            Ok(ev) => panic!("{body} parsed as {ev:?}"),
            Err(e) => e,
        }
    }

    /// One row per event kind: body and the kind expected.
    #[test]
    fn every_event_kind_parses() {
        let cases: Vec<(&str, CallKind)> = vec![
            (
                r#"{"event":"call.started","call_id":"c1","from":"13800138000","to":"12345","at":"2026-11-29T08:30:00+08:00"}"#,
                CallKind::Started,
            ),
            (
                r#"{"event":"call.answered","call_id":"c1","from":"13800138000"}"#,
                CallKind::Answered,
            ),
            (
                r#"{"event":"call.input","call_id":"c1","from":"13800138000","digits":"1#"}"#,
                CallKind::Input {
                    digits: Some("1#".into()),
                    speech: None,
                },
            ),
            (
                r#"{"event":"call.input","call_id":"c1","from":"13800138000","speech":" 着火了 "}"#,
                CallKind::Input {
                    digits: None,
                    speech: Some("着火了".into()),
                },
            ),
            (
                r#"{"event":"call.registered","call_id":"c1","from":"13800138000","order":{"content":"噪音扰民","category":"complaint"}}"#,
                CallKind::Registered {
                    order: RegisteredOrder {
                        content: "噪音扰民".into(),
                        category: Some(Category::Complaint),
                        ..RegisteredOrder::default()
                    },
                },
            ),
            (
                r#"{"event":"call.ended","call_id":"c1","from":"13800138000","duration_s":95}"#,
                CallKind::Ended {
                    duration_s: 95,
                    answered: true,
                    cause: None,
                },
            ),
            (
                r#"{"event":"call.ended","call_id":"c1","from":"13800138000","duration_s":0,"cause":"busy"}"#,
                CallKind::Ended {
                    duration_s: 0,
                    answered: false,
                    cause: Some("busy".into()),
                },
            ),
            (
                r#"{"event":"call.ended","call_id":"c1","from":"13800138000"}"#,
                CallKind::Ended {
                    duration_s: 0,
                    answered: false,
                    cause: None,
                },
            ),
            (
                r#"{"event":"call.flagged","call_id":"c1","from":"13800138000","agent":"a007","reason":"辱骂话务员"}"#,
                CallKind::Flagged {
                    agent: "a007".into(),
                    reason: "辱骂话务员".into(),
                },
            ),
        ];
        for (body, kind) in cases {
            let ev = ok(body);
            assert_eq!(ev.kind, kind, "{body}");
            assert_eq!(ev.call_id, "c1");
            assert_eq!(ev.direction, CallDirection::Inbound);
            assert_eq!(
                ev.caller.as_ref().map(|i| (i.kind, i.value.as_str())),
                Some((IdentityKind::Phone, "13800138000"))
            );
            assert!(ev.dedupe_key.starts_with(&format!("c1:{}", ev.kind.tag())));
        }
    }

    /// Parses `body` arriving at `now`.
    fn ok_at(body: &str, now: i64) -> CallEvent {
        let mut i = inbound(body);
        i.now = now;
        match parse(&i, TOKEN, None, &SipNumberHosts::NONE) {
            Ok(ev) => ev,
            Err(e) => panic!("{body}: {e}"),
        }
    }

    #[test]
    fn at_is_parsed_or_defaults_to_arrival() {
        // 2026-11-29T08:30:00+08:00, arriving a minute later.
        let now = 1_795_912_260;
        let ev = ok_at(
            r#"{"event":"call.started","call_id":"c1","at":"2026-11-29T08:30:00+08:00"}"#,
            now,
        );
        assert_eq!(ev.at, 1_795_912_200);
        let ev = ok_at(
            r#"{"event":"call.started","call_id":"c1","at":1795912200}"#,
            now,
        );
        assert_eq!(ev.at, 1_795_912_200);
        let ev = ok(r#"{"event":"call.started","call_id":"c1"}"#);
        assert_eq!(ev.at, 1_800_000_000);
        let ev = ok(r#"{"event":"call.started","call_id":"c1","at":""}"#);
        assert_eq!(ev.at, 1_800_000_000);
    }

    /// A well-formed `at` far from the arrival time is a platform's clock gone wrong: the step
    /// is taken, at its arrival time, so `received_at` stays a readable RFC 3339 time near it.
    #[test]
    fn an_absurd_at_is_replaced_by_the_arrival_time() {
        let now = 1_800_000_000;
        for at in [
            r#""9999-12-31T23:59:59Z""#,
            r#""0001-01-01T00:00:00Z""#,
            "99999999999",
            "1",
            // Just outside the window, either side.
            &(now + AT_AHEAD + 1).to_string(),
            &(now - AT_BEFORE - 1).to_string(),
        ] {
            let body = format!(r#"{{"event":"call.started","call_id":"c1","at":{at}}}"#);
            assert_eq!(ok_at(&body, now).at, now, "{at}");
        }
        // Within it: the platform's time, a day ahead or a week behind at most.
        for at in [now + AT_AHEAD, now - AT_BEFORE, now - 3600] {
            let body = format!(r#"{{"event":"call.started","call_id":"c1","at":{at}}}"#);
            assert_eq!(ok_at(&body, now).at, at);
        }
    }

    #[test]
    fn a_numeric_at_in_milliseconds_is_taken_as_milliseconds() {
        // `Date.now()` of 2026-11-29T08:30:00.123+08:00: that moment, not the year 58,900.
        let ev = ok_at(
            r#"{"event":"call.started","call_id":"c1","at":1795912200123}"#,
            1_795_912_260,
        );
        assert_eq!(ev.at, 1_795_912_200);
        // Either unit at the edge: 10^11 seconds, and the first millisecond count above it
        // (each arriving when it says, so the window keeps it).
        let ev = ok_at(
            r#"{"event":"call.started","call_id":"c1","at":100000000000}"#,
            100_000_000_000,
        );
        assert_eq!(ev.at, 100_000_000_000);
        let ev = ok_at(
            r#"{"event":"call.started","call_id":"c1","at":100000000001}"#,
            100_000_000,
        );
        assert_eq!(ev.at, 100_000_000);
        // Microseconds, fractions and times before 1970 are refused, naming `at`.
        for at in ["1795912200123456", "1795912200.5", "-1"] {
            let body = format!(r#"{{"event":"call.started","call_id":"c1","at":{at}}}"#);
            assert!(
                matches!(err(&body), AdapterError::InvalidField { field: "at", .. }),
                "{at}"
            );
        }
    }

    /// The review's events (2026-12-07): a value the gateway could not take was quoted as sent
    /// in the 422 body and the DEBUG log, and a platform had put the caller's number in it.
    #[test]
    fn a_refused_value_is_quoted_masked() {
        for (body, shown, raw) in [
            (
                r#"{"event":"call.started","call_id":"d1","from":"13844445555","direction":"来电13844445555"}"#,
                "`来电138****5555` is not in or out",
                "13844445555",
            ),
            (
                r#"{"event":"call.registered","call_id":"d2","from":"13844445556","order":{"content":"噪音","category":"投诉人１３８４４４４５５５６ zhou@qq.com"}}"#,
                "unknown category `投诉人１３８****５５５６ z***@qq.com`",
                "zhou@",
            ),
            (
                r#"{"event":"call.13844445557","call_id":"d3"}"#,
                "unknown event `call.138****5557`",
                "13844445557",
            ),
        ] {
            let detail = err(body).to_string();
            assert!(detail.contains(shown) && !detail.contains(raw), "{detail}");
        }
    }

    /// Bad bodies and the error each must give.
    #[test]
    fn bad_bodies_give_typed_errors() {
        let inv = |field: &'static str| move |e: &AdapterError| matches!(e, AdapterError::InvalidField { field: f, .. } if *f == field);
        type Check = Box<dyn Fn(&AdapterError) -> bool>;
        let cases: Vec<(&str, Check)> = vec![
            (
                "{not json",
                Box::new(|e| matches!(e, AdapterError::InvalidJson(_))),
            ),
            ("", Box::new(|e| matches!(e, AdapterError::InvalidJson(_)))),
            (
                "[1,2]",
                Box::new(|e| matches!(e, AdapterError::InvalidJson(_))),
            ),
            (
                r#"{"call_id":"c1"}"#,
                Box::new(|e| *e == AdapterError::MissingField("event")),
            ),
            (
                r#"{"event":"","call_id":"c1"}"#,
                Box::new(|e| *e == AdapterError::MissingField("event")),
            ),
            (
                r#"{"event":"call.started"}"#,
                Box::new(|e| *e == AdapterError::MissingField("call_id")),
            ),
            (
                r#"{"event":"call.started","call_id":"  "}"#,
                Box::new(|e| *e == AdapterError::MissingField("call_id")),
            ),
            (
                r#"{"event":"call.exploded","call_id":"c1"}"#,
                Box::new(|e| *e == AdapterError::UnknownEvent("call.exploded".into())),
            ),
            (
                r#"{"event":"call.input","call_id":"c1"}"#,
                Box::new(|e| *e == AdapterError::MissingField("digits")),
            ),
            (
                r#"{"event":"call.input","call_id":"c1","digits":"12x"}"#,
                Box::new(inv("digits")),
            ),
            (
                r#"{"event":"call.registered","call_id":"c1"}"#,
                Box::new(|e| *e == AdapterError::MissingField("order")),
            ),
            (
                r#"{"event":"call.registered","call_id":"c1","order":"x"}"#,
                Box::new(inv("order")),
            ),
            (
                r#"{"event":"call.registered","call_id":"c1","order":{"content":"  "}}"#,
                Box::new(|e| *e == AdapterError::MissingField("order.content")),
            ),
            (
                r#"{"event":"call.registered","call_id":"c1","order":{"content":"x","category":"gossip"}}"#,
                Box::new(inv("order.category")),
            ),
            (
                r#"{"event":"call.registered","call_id":"c1","order":{"content":"x","items":{}}}"#,
                Box::new(inv("order.items")),
            ),
            (
                r#"{"event":"call.registered","call_id":"c1","order":{"items":[{"content":""}]}}"#,
                Box::new(|e| *e == AdapterError::MissingField("order.items.content")),
            ),
            (
                r#"{"event":"call.registered","call_id":"c1","order":{"content":"x","recording_url":"ftp://r"}}"#,
                Box::new(inv("order.recording_url")),
            ),
            (
                r#"{"event":"call.registered","call_id":"c1","order":{"content":"x","confidential":"yes"}}"#,
                Box::new(inv("confidential")),
            ),
            (
                r#"{"event":"call.ended","call_id":"c1","duration_s":-3}"#,
                Box::new(inv("duration_s")),
            ),
            (
                r#"{"event":"call.flagged","call_id":"c1","reason":"r"}"#,
                Box::new(|e| *e == AdapterError::MissingField("agent")),
            ),
            (
                r#"{"event":"call.flagged","call_id":"c1","agent":"a"}"#,
                Box::new(|e| *e == AdapterError::MissingField("reason")),
            ),
            (
                r#"{"event":"call.started","call_id":"c1","at":"yesterday"}"#,
                Box::new(inv("at")),
            ),
            (
                r#"{"event":"call.started","call_id":"c1","at":true}"#,
                Box::new(inv("at")),
            ),
            (
                r#"{"event":"call.started","call_id":"c 1"}"#,
                Box::new(inv("call_id")),
            ),
            (
                r#"{"event":"call.started","call_id":{"a":1}}"#,
                Box::new(inv("call_id")),
            ),
            (
                r#"{"event":"call.started","call_id":"c1","direction":"sideways"}"#,
                Box::new(inv("direction")),
            ),
        ];
        for (body, check) in cases {
            let e = err(body);
            assert!(check(&e), "{body}: got {e:?}");
        }
        let long = format!(
            r#"{{"event":"call.registered","call_id":"c1","order":{{"content":"{}"}}}}"#,
            "路".repeat(MAX_CONTENT + 1)
        );
        assert!(matches!(
            err(&long),
            AdapterError::InvalidField {
                field: "order.content",
                ..
            }
        ));
        let items: Vec<String> = (0..=MAX_ITEMS)
            .map(|i| format!(r#"{{"content":"m{i}"}}"#))
            .collect();
        let many = format!(
            r#"{{"event":"call.registered","call_id":"c1","order":{{"items":[{}]}}}}"#,
            items.join(",")
        );
        assert!(matches!(
            err(&many),
            AdapterError::InvalidField {
                field: "order.items",
                ..
            }
        ));
    }

    #[test]
    fn auth_by_bearer_or_path_token() {
        let body = r#"{"event":"call.started","call_id":"c1"}"#;
        let with_headers = |h: Vec<(&str, &str)>| Inbound {
            headers: h
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            ..Inbound::default()
        };
        // (headers, path token, configured token, accepted?)
        type Case<'a> = (Vec<(&'a str, &'a str)>, Option<&'a str>, &'a str, bool);
        let cases: Vec<Case> = vec![
            (
                vec![("authorization", "Bearer gen-token-1")],
                None,
                TOKEN,
                true,
            ),
            (
                vec![("authorization", "bearer   gen-token-1 ")],
                None,
                TOKEN,
                true,
            ),
            (vec![], Some("gen-token-1"), TOKEN, true),
            (
                vec![("authorization", "Bearer wrong")],
                Some("gen-token-1"),
                TOKEN,
                true,
            ),
            (vec![("authorization", "Bearer wrong")], None, TOKEN, false),
            (
                vec![("authorization", "Basic Z2VuLXRva2VuLTE=")],
                None,
                TOKEN,
                false,
            ),
            (vec![("authorization", "gen-token-1")], None, TOKEN, false),
            (vec![], Some("wrong"), TOKEN, false),
            (vec![], None, TOKEN, false),
            (vec![], Some(""), "", false),
            (vec![("authorization", "Bearer ")], None, "", false),
        ];
        for (headers, path, configured, want) in cases {
            let desc = format!("{headers:?} {path:?} {configured:?}");
            let got = parse(
                &with_headers(headers),
                configured,
                path,
                &SipNumberHosts::NONE,
            );
            if want {
                assert!(got.is_ok(), "{desc}: {got:?}");
            } else {
                assert_eq!(got, Err(AdapterError::BadToken), "{desc}");
            }
        }
    }

    #[test]
    fn auth_is_checked_before_the_body() {
        let mut i = inbound("{not json");
        i.headers.retain(|(k, _)| k != "authorization");
        assert_eq!(
            parse(&i, TOKEN, None, &SipNumberHosts::NONE),
            Err(AdapterError::BadToken)
        );
    }

    #[test]
    fn media_type_must_be_json_when_given() {
        let mut i = inbound(r#"{"event":"call.started","call_id":"c1"}"#);
        i.headers[0].1 = "application/x-www-form-urlencoded".into();
        assert!(matches!(
            parse(&i, TOKEN, None, &SipNumberHosts::NONE),
            Err(AdapterError::UnsupportedMediaType(_))
        ));
        i.headers[0].1 = "application/json; charset=utf-8".into();
        assert!(parse(&i, TOKEN, None, &SipNumberHosts::NONE).is_ok());
        i.headers.remove(0);
        assert!(parse(&i, TOKEN, None, &SipNumberHosts::NONE).is_ok());
    }

    #[test]
    fn anonymous_callers_have_no_phone_identity() {
        for from in [
            r#""from":"anonymous","#,
            r#""from":"unknown","#,
            r#""from":"+266696687","#,
            r#""from":"","#,
            r#""from":"12","#,
            "",
        ] {
            let ev = ok(&format!(
                r#"{{"event":"call.started",{from}"call_id":"c1"}}"#
            ));
            assert_eq!(ev.caller, None, "{from}");
            assert_eq!(ev.caller_ref, None, "{from}");
        }
        let ev = ok(
            r#"{"event":"call.started","call_id":"c1","from":"anonymous","caller_ref":"vendor-77"}"#,
        );
        assert_eq!(
            (ev.caller, ev.caller_ref.as_deref()),
            (None, Some("vendor-77"))
        );
        let ev = ok(r#"{"event":"call.started","call_id":"c1","from":"sip:bob@pbx.example.cn"}"#);
        assert_eq!(ev.caller_ref.as_deref(), Some("sip:bob@pbx.example.cn"));
    }

    #[test]
    fn outbound_calls_identify_the_called_citizen() {
        let ev = ok(
            r#"{"event":"call.started","call_id":"c1","direction":"out","from":"12345","to":"+86 139 0000 0000"}"#,
        );
        assert_eq!(ev.direction, CallDirection::Outbound);
        assert_eq!(ev.caller.map(|i| i.value), Some("13900000000".to_string()));
    }

    #[test]
    fn dedupe_keys_are_stable_for_retries_and_distinct_per_event() {
        let bodies = [
            r#"{"event":"call.started","call_id":"c1","at":"2026-11-29T08:30:00Z"}"#,
            r#"{"event":"call.answered","call_id":"c1","at":"2026-11-29T08:30:02Z"}"#,
            r#"{"event":"call.input","call_id":"c1","digits":"1","at":"2026-11-29T08:30:05Z"}"#,
            r#"{"event":"call.input","call_id":"c1","digits":"2","at":"2026-11-29T08:30:05Z"}"#,
            r#"{"event":"call.input","call_id":"c1","digits":"1","at":"2026-11-29T08:30:09Z"}"#,
            r#"{"event":"call.input","call_id":"c1","speech":"查询进度","at":"2026-11-29T08:30:09Z"}"#,
            r#"{"event":"call.registered","call_id":"c1","order":{"content":"a"},"at":"2026-11-29T08:31:00Z"}"#,
            r#"{"event":"call.registered","call_id":"c1","order":{"content":"b"},"at":"2026-11-29T08:31:00Z"}"#,
            r#"{"event":"call.registered","call_id":"c1","order":{"content":"a","confidential":true},"at":"2026-11-29T08:31:00Z"}"#,
            r#"{"event":"call.flagged","call_id":"c1","agent":"a1","reason":"r"}"#,
            r#"{"event":"call.ended","call_id":"c1","duration_s":60}"#,
            r#"{"event":"call.started","call_id":"c2","at":"2026-11-29T08:30:00Z"}"#,
        ];
        let keys: Vec<String> = bodies.iter().map(|b| ok(b).dedupe_key).collect();
        for (i, a) in keys.iter().enumerate() {
            for b in keys.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
        // A retry is identical, whatever its arrival time or key order.
        let mut retry = inbound(
            r#"{"at":"2026-11-29T08:31:00Z","order":{"content":"a"},"call_id":"c1","event":"call.registered"}"#,
        );
        retry.now += 30;
        assert_eq!(
            parse(&retry, TOKEN, None, &SipNumberHosts::NONE)
                .map(|e| e.dedupe_key)
                .ok(),
            Some(keys[6].clone())
        );
        assert_eq!(keys[0], "c1:started");
        assert_eq!(keys[10], "c1:ended");
    }

    #[test]
    fn registered_order_with_items_confidential_and_recording() {
        let ev = ok(
            r#"{"event":"call.registered","call_id":"c9","from":"+8613800138000","to":"12345",
            "at":"2027-01-15T15:30:00+08:00",
            "order":{"content":"","category":"举报","confidential":true,"name":" 李四 ","address":"和平路1号",
                     "recording_url":"https://rec.example.cn/c9.wav",
                     "items":[{"content":"路灯坏了","category":"report"},{"content":"井盖丢失"}]}}"#,
        );
        let Some(sub) = ev.to_submission("pbx") else {
            panic!("registered must give a submission")
        };
        assert_eq!(sub.content, "路灯坏了\n井盖丢失");
        assert_eq!(sub.category, Some(Category::Report));
        assert_eq!(
            sub.items,
            vec![
                Item {
                    content: "路灯坏了".into(),
                    category: Some(Category::Report)
                },
                Item {
                    content: "井盖丢失".into(),
                    category: None
                },
            ]
        );
        assert!(sub.confidential);
        assert_eq!(sub.contact.name, "李四");
        assert_eq!(sub.contact.phone, "13800138000");
        assert_eq!(sub.identity.to_string(), "phone:13800138000");
        assert_eq!(sub.location.address, "和平路1号");
        assert_eq!(sub.attachments.len(), 1);
        assert_eq!(sub.attachments[0].url, "https://rec.example.cn/c9.wav");
        assert_eq!(sub.received_at, 1_799_998_200);
        assert_eq!(sub.channel_ref, "c9");
        assert_eq!(sub.dedupe_key.as_deref(), Some(ev.dedupe_key.as_str()));
    }

    #[test]
    fn every_decision_renders() {
        let cases: Vec<(CallDecision, Value)> = vec![
            (CallDecision::proceed(), json!({"action":"continue"})),
            (
                CallDecision::Continue {
                    orders: vec!["2026112901000123".into(), "2026112901000124".into()],
                    text: Some("已为您登记".into()),
                    flag: Some("over_quota".into()),
                },
                json!({"action":"continue","orders":[{"number":"2026112901000123"},{"number":"2026112901000124"}],
                       "text":"已为您登记","flag":"over_quota"}),
            ),
            (
                CallDecision::Continue {
                    orders: vec![],
                    text: Some(String::new()),
                    flag: None,
                },
                json!({"action":"continue"}),
            ),
            (
                CallDecision::Reject {
                    text: "您的来电已被暂停受理至12月1日".into(),
                },
                json!({"action":"reject","text":"您的来电已被暂停受理至12月1日"}),
            ),
            (
                CallDecision::Transfer {
                    number: "119".into(),
                    text: "正在为您转接119".into(),
                },
                json!({"action":"transfer","number":"119","text":"正在为您转接119"}),
            ),
            (
                CallDecision::Say {
                    number: "120".into(),
                    text: "请挂机后拨打120 \"急救\"".into(),
                },
                json!({"action":"say","number":"120","text":"请挂机后拨打120 \"急救\""}),
            ),
        ];
        for (d, want) in cases {
            let body = render(&d);
            let got: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            assert_eq!(got, want, "{d:?} -> {body}");
        }
    }
}
