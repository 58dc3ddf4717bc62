//! `format = "zammad"`: Zammad's generic CTI API, so any PBX that already pushes to Zammad can
//! push to the gateway unchanged (`POST /v1/cti/{profile}/{token}`).
//!
//! Request: JSON or `application/x-www-form-urlencoded` (arrays as `user[]`), fields `event`
//! (`newCall`, `answer`, `hangup`), `from`, `to`, `direction` (`in`/`out`), `callId`, `user`,
//! `queue`, `cause`, `answeringNumber`. The only authentication is the secret token in the path.
//!
//! Answer: `{}` (nothing to do), `{"action":"reject","reason":"busy"}`. A transfer is rendered as
//! the gateway's extension `{"action":"dial","number":"119"}` (Zammad itself only uses `dial` to
//! rewrite outbound caller ids); a spoken message cannot be expressed and falls back to `{}`.
//! An orphan `answer`/`hangup` (no `newCall` seen) is accepted like any other: PBXs reorder and
//! retry, and this module keeps no state anyway.

use super::{
    caller_identity, check_call_id, check_number, dedupe_key, non_phone_ref, token_matches,
    CallDecision, CallDirection, CallEvent, CallKind, SipNumberHosts,
};
use crate::{AdapterError, Inbound};
use serde_json::{json, Value};

/// Authenticates and parses one Zammad-style push. `path_token` is the `{token}` URL segment;
/// missing or different from `token`: `BadToken` (checked before the body is read).
/// `sip_hosts`: the SIP hosts whose callers' user part is their number (see [`SipNumberHosts`]).
pub fn parse(
    inbound: &Inbound,
    token: &str,
    path_token: Option<&str>,
    sip_hosts: &SipNumberHosts,
) -> Result<CallEvent, AdapterError> {
    // Compared even when absent, so both failures take the same time.
    if !token_matches(token, path_token.unwrap_or_default()) || path_token.is_none() {
        return Err(AdapterError::BadToken);
    }
    let fields = fields(inbound)?;
    let get = |name: &str| -> Option<String> {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };

    let event = get("event")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or(AdapterError::MissingField("event"))?;
    let direction = match get("direction").as_deref().map(str::trim) {
        None | Some("") => return Err(AdapterError::MissingField("direction")),
        Some("in") => CallDirection::Inbound,
        Some("out") => CallDirection::Outbound,
        // Zammad answers 422 "Invalid direction!"; the gateway maps InvalidField to 422 too.
        Some(other) => {
            return Err(AdapterError::InvalidField {
                field: "direction",
                // Masked before it is cut, like the generic format's details (until 2026-12-07
                // the caller's number put here was quoted as sent).
                reason: format!(
                    "Invalid direction! `{}` is not in or out",
                    crate::mask::scrub_text_and_ids(other)
                        .chars()
                        .take(32)
                        .collect::<String>()
                ),
            });
        }
    };
    let call_id = check_call_id("callId", get("callId"))?;
    let from = check_number("from", get("from"))?;
    let to = check_number("to", get("to"))?;
    let kind = match event.as_str() {
        "newCall" => CallKind::Started,
        "answer" => CallKind::Answered,
        "hangup" => {
            let cause = get("cause")
                .map(|c| c.trim().chars().take(64).collect::<String>())
                .filter(|c| !c.is_empty());
            // Zammad's hangup carries no duration. It was answered when an agent is named, or
            // when it ended by normal clearing (a caller who gives up while it rings is `cancel`).
            let answered = get("answeringNumber").is_some_and(|a| !a.trim().is_empty())
                || cause.as_deref() == Some("normalClearing");
            CallKind::Ended {
                duration_s: 0,
                answered,
                cause,
            }
        }
        other => {
            return Err(AdapterError::UnknownEvent(
                crate::mask::scrub_text_and_ids(other)
                    .chars()
                    .take(64)
                    .collect(),
            ))
        }
    };
    let party = match direction {
        CallDirection::Inbound => &from,
        CallDirection::Outbound => &to,
    };
    let caller = caller_identity(party, sip_hosts);
    let caller_ref = if caller.is_none() {
        non_phone_ref(party)
    } else {
        None
    };
    // Each of newCall/answer/hangup happens once per call: callId + event is the key.
    let dedupe_key = dedupe_key(&call_id, &kind, None);
    Ok(CallEvent {
        call_id,
        kind,
        direction,
        from,
        to,
        caller,
        caller_ref,
        at: inbound.now,
        dedupe_key,
    })
}

/// The body as name/value pairs, whichever encoding it came in. Array values (`user`) become
/// several pairs; `user[]` is folded into `user`.
fn fields(inbound: &Inbound) -> Result<Vec<(String, String)>, AdapterError> {
    let json = match inbound.media_type().as_deref() {
        Some("application/json") => true,
        Some("application/x-www-form-urlencoded") => false,
        Some(mt) if mt.ends_with("+json") => true,
        Some(mt) => return Err(AdapterError::UnsupportedMediaType(mt.to_string())),
        // No content type: Zammad's own controller accepts either, so look at the first byte.
        None => inbound
            .body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{'),
    };
    if json {
        json_fields(&inbound.body)
    } else {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&inbound.body).map_err(AdapterError::form)?;
        Ok(pairs
            .into_iter()
            .map(|(k, v)| match k.strip_suffix("[]") {
                Some(base) => (base.to_string(), v),
                None => (k, v),
            })
            .collect())
    }
}

fn json_fields(body: &[u8]) -> Result<Vec<(String, String)>, AdapterError> {
    let value: Value = serde_json::from_slice(body).map_err(AdapterError::json)?;
    let Value::Object(map) = value else {
        return Err(AdapterError::InvalidJson("expected a JSON object".into()));
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let scalar = |v: &Value| -> Option<String> {
            match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            }
        };
        match &v {
            Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    if let Some(s) = scalar(item) {
                        out.push((k.clone(), s));
                    }
                }
            }
            // Nested objects are not part of the API; ignored rather than refused, as Zammad
            // ignores fields it does not know.
            Value::Object(_) => {}
            other => {
                if let Some(s) = scalar(other) {
                    out.push((k.clone(), s));
                }
            }
        }
    }
    Ok(out)
}

/// Renders a decision as Zammad's JSON answer.
pub fn render(decision: &CallDecision) -> String {
    match decision {
        // Zammad has no way to carry order numbers, texts or agent flags.
        CallDecision::Continue { .. } | CallDecision::Say { .. } => "{}".to_string(),
        // `busy` is the only reason Zammad emits; the PBX plays a busy tone.
        CallDecision::Reject { .. } => json!({"action": "reject", "reason": "busy"}).to_string(),
        CallDecision::Transfer { number, .. } => {
            json!({"action": "dial", "number": number}).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "zm-path-token";

    fn form(body: &str) -> Inbound {
        Inbound {
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: body.as_bytes().to_vec(),
            now: 1_800_000_000,
            ..Inbound::default()
        }
    }

    fn json_in(body: &str) -> Inbound {
        Inbound {
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            now: 1_800_000_000,
            ..Inbound::default()
        }
    }

    fn ok(i: &Inbound) -> CallEvent {
        match parse(i, TOKEN, Some(TOKEN), &SipNumberHosts::NONE) {
            Ok(ev) => ev,
            Err(e) => panic!("{:?}: {e}", String::from_utf8_lossy(&i.body)),
        }
    }

    #[test]
    fn every_event_in_both_encodings() {
        let cases: Vec<(Inbound, CallKind, &str)> = vec![
            (
                form("event=newCall&from=493055571600&to=4930600000000&direction=in&callId=4711&user%5B%5D=Alice&user%5B%5D=Bob&queue=helpdesk"),
                CallKind::Started,
                "4711:started",
            ),
            (
                json_in(r#"{"event":"newCall","from":"493055571600","to":"4930600000000","direction":"in","callId":"4711","user":["Alice","Bob"]}"#),
                CallKind::Started,
                "4711:started",
            ),
            (
                form("event=answer&from=493055571600&to=4930600000000&direction=in&callId=4711&user=Alice&answeringNumber=4930600000001"),
                CallKind::Answered,
                "4711:answered",
            ),
            (
                json_in(r#"{"event":"answer","from":"493055571600","to":"4930600000000","direction":"in","callId":4711,"user":"Alice"}"#),
                CallKind::Answered,
                "4711:answered",
            ),
            (
                form("event=hangup&from=493055571600&to=4930600000000&direction=in&callId=4711&cause=normalClearing&answeringNumber=4930600000001"),
                CallKind::Ended { duration_s: 0, answered: true, cause: Some("normalClearing".into()) },
                "4711:ended",
            ),
            (
                json_in(r#"{"event":"hangup","from":"493055571600","to":"4930600000000","direction":"in","callId":"4711","cause":"cancel"}"#),
                CallKind::Ended { duration_s: 0, answered: false, cause: Some("cancel".into()) },
                "4711:ended",
            ),
            (
                // No content type: sniffed.
                Inbound { headers: vec![], ..json_in(r#" {"event":"newCall","from":"02214710334","to":"1","direction":"in","callId":"x"}"#) },
                CallKind::Started,
                "x:started",
            ),
            (
                Inbound { headers: vec![], ..form("event=newCall&from=02214710334&to=1&direction=in&callId=x") },
                CallKind::Started,
                "x:started",
            ),
        ];
        for (i, kind, key) in cases {
            let ev = ok(&i);
            assert_eq!(ev.kind, kind, "{:?}", String::from_utf8_lossy(&i.body));
            assert_eq!(ev.dedupe_key, key);
            assert_eq!(ev.at, 1_800_000_000);
            assert_eq!(ev.direction, CallDirection::Inbound);
            assert!(ev.caller.is_some());
        }
    }

    #[test]
    fn fields_map_to_the_event() {
        let ev = ok(&form(
            "event=newCall&from=%2B86%20138%200013%208000&to=12345&direction=in&callId=abc-1",
        ));
        assert_eq!(ev.call_id, "abc-1");
        assert_eq!(ev.from, "+86 138 0013 8000");
        assert_eq!(ev.to, "12345");
        assert_eq!(
            ev.caller.map(|i| i.to_string()),
            Some("phone:13800138000".into())
        );
    }

    #[test]
    fn outbound_calls_identify_the_called_party() {
        let ev = ok(&json_in(
            r#"{"event":"newCall","from":"12345","to":"13900000000","direction":"out","callId":"o1","user":"Alice"}"#,
        ));
        assert_eq!(ev.direction, CallDirection::Outbound);
        assert_eq!(ev.caller.map(|i| i.value), Some("13900000000".into()));
    }

    #[test]
    fn anonymous_callers() {
        for from in ["anonymous", "", "unknown", "%2B266696687", "1"] {
            let body = format!("event=newCall&from={from}&to=12345&direction=in&callId=a1");
            let ev = ok(&form(&body));
            assert_eq!(ev.caller, None, "{from}");
        }
        let ev = ok(&form("event=newCall&to=12345&direction=in&callId=a1"));
        assert_eq!((ev.from.as_str(), ev.caller), ("", None));
    }

    #[test]
    fn bad_requests_give_typed_errors() {
        let cases: Vec<(Inbound, AdapterError)> = vec![
            (
                form("from=1&to=2&direction=in&callId=c"),
                AdapterError::MissingField("event"),
            ),
            (
                form("event=newCall&from=1&to=2&callId=c"),
                AdapterError::MissingField("direction"),
            ),
            (
                form("event=newCall&from=1&to=2&direction=in"),
                AdapterError::MissingField("callId"),
            ),
            (
                form("event=ringing&from=1&to=2&direction=in&callId=c"),
                AdapterError::UnknownEvent("ringing".into()),
            ),
            (
                json_in("{\"event\":"),
                AdapterError::InvalidJson(String::new()),
            ),
            (json_in("[]"), AdapterError::InvalidJson(String::new())),
            (
                Inbound {
                    headers: vec![("content-type".into(), "text/plain".into())],
                    ..form("event=newCall")
                },
                AdapterError::UnsupportedMediaType("text/plain".into()),
            ),
        ];
        for (i, want) in cases {
            let got = parse(&i, TOKEN, Some(TOKEN), &SipNumberHosts::NONE);
            let same_variant = matches!(
                (&got, &want),
                (
                    Err(AdapterError::InvalidJson(_)),
                    AdapterError::InvalidJson(_)
                )
            ) || got.as_ref().err() == Some(&want);
            assert!(
                same_variant,
                "{:?}: {got:?}",
                String::from_utf8_lossy(&i.body)
            );
        }
    }

    #[test]
    fn bad_direction_is_an_invalid_field() {
        for (dir, enc) in [("inbound", "form"), ("both", "form"), ("IN", "json")] {
            let i = if enc == "form" {
                form(&format!(
                    "event=newCall&from=1&to=2&direction={dir}&callId=c"
                ))
            } else {
                json_in(&format!(
                    r#"{{"event":"newCall","from":"1","to":"2","direction":"{dir}","callId":"c"}}"#
                ))
            };
            let got = parse(&i, TOKEN, Some(TOKEN), &SipNumberHosts::NONE);
            assert!(
                matches!(&got, Err(AdapterError::InvalidField { field: "direction", reason }) if reason.starts_with("Invalid direction!")),
                "{dir}: {got:?}"
            );
        }
    }

    /// The review's push (2026-12-07): the caller's number in `direction` was quoted in the
    /// 422 body and the DEBUG log as sent.
    #[test]
    fn a_refused_value_is_quoted_masked() {
        let got = parse(
            &form("event=newCall&from=8613855556666&to=2&direction=8613855556666&callId=zz1"),
            TOKEN,
            Some(TOKEN),
            &SipNumberHosts::NONE,
        );
        let Err(e) = got else { panic!("{got:?}") };
        let detail = e.to_string();
        assert!(
            detail.contains("`861******6666` is not in or out")
                && !detail.contains("8613855556666"),
            "{detail}"
        );
        let got = parse(
            &form("event=ring13855556666&from=1&to=2&direction=in&callId=zz2"),
            TOKEN,
            Some(TOKEN),
            &SipNumberHosts::NONE,
        );
        assert!(
            matches!(&got, Err(AdapterError::UnknownEvent(e)) if e == "ring138****6666"),
            "{got:?}"
        );
    }

    #[test]
    fn token_in_path_is_required_and_checked_first() {
        let good = form("event=newCall&from=1&to=2&direction=in&callId=c");
        let garbage = json_in("{oops");
        for (i, configured, path, want_ok) in [
            (&good, TOKEN, Some(TOKEN), true),
            (&good, TOKEN, Some("zm-path-tokeN"), false),
            (&good, TOKEN, Some(""), false),
            (&good, TOKEN, None, false),
            (&good, "", Some(""), false),
            (&good, "", None, false),
            (&garbage, TOKEN, None, false),
        ] {
            let got = parse(i, configured, path, &SipNumberHosts::NONE);
            if want_ok {
                assert!(got.is_ok(), "{path:?}: {got:?}");
            } else {
                assert_eq!(got, Err(AdapterError::BadToken), "{configured:?} {path:?}");
            }
        }
    }

    #[test]
    fn retried_push_has_the_same_dedupe_key() {
        let a = ok(&form(
            "event=hangup&from=1&to=2&direction=in&callId=c7&cause=busy",
        ));
        let mut retry = json_in(
            r#"{"callId":"c7","event":"hangup","direction":"in","from":"1","to":"2","cause":"busy"}"#,
        );
        retry.now += 20;
        let b = ok(&retry);
        assert_eq!(a.dedupe_key, b.dedupe_key);
        let other = ok(&form("event=answer&from=1&to=2&direction=in&callId=c7"));
        assert_ne!(a.dedupe_key, other.dedupe_key);
    }

    #[test]
    fn decisions_render_as_zammad_answers() {
        let cases: Vec<(CallDecision, Value)> = vec![
            (CallDecision::proceed(), json!({})),
            (
                CallDecision::Continue {
                    orders: vec!["1".into()],
                    text: Some("t".into()),
                    flag: Some("over_quota".into()),
                },
                json!({}),
            ),
            (
                CallDecision::Reject {
                    text: "暂停受理".into(),
                },
                json!({"action":"reject","reason":"busy"}),
            ),
            (
                CallDecision::Transfer {
                    number: "119".into(),
                    text: "转接119".into(),
                },
                json!({"action":"dial","number":"119"}),
            ),
            (
                CallDecision::Say {
                    number: "120".into(),
                    text: "请拨打120".into(),
                },
                json!({}),
            ),
        ];
        for (d, want) in cases {
            let body = render(&d);
            let got: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            assert_eq!(got, want, "{d:?}");
        }
    }
}
