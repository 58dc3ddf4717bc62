//! `format = "twilio"`: Twilio Programmable Voice webhooks, answered with TwiML. The same
//! vocabulary serves TwiML-compatible platforms (SignalWire, Telnyx TeXML).
//!
//! Request: a form POST per call step (`CallSid`, `From`, `To`, `CallStatus`, `Direction`, and
//! per step `Digits`, `SpeechResult`, `CallDuration`, `RecordingUrl`, `DialCallStatus`, ...),
//! signed in `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + every POST parameter's name
//! and value, sorted by name)). A number whose voice URL is set to method GET sends the same
//! parameters in the query string instead, signed as part of the URL (with no POST parameters);
//! a parameter is looked up in the body first, then in the query. The URL is the configured
//! public URL (never the one the proxy forwarded to) with the request's query string; like
//! twilio-python, the variant with the default port added or removed is accepted too, because
//! Twilio is not consistent about it.
//! A request that matches a Twilio *Webhooks Rule* is signed instead with the rule's SharedKey
//! secret (the profile's `shared_key_secret`) and the algorithm its settings header names
//! (`X-Twilio-Webhooks-Signature-Settings: key=...,algorithm=HMAC_SHA256`); only the hash
//! changes, the signed string is the same. Not supported (not used by voice webhooks): JSON
//! bodies with `bodySHA256`.
//!
//! Mapping of a request to a [`CallKind`], first match wins:
//! 1. `RecordingUrl` without `RecordingStatus` nor `DialCallStatus` (the `action` of a
//!    `<Record>`, i.e. voicemail, or a `transcribeCallback`): `Registered`, content =
//!    `TranscriptionText` or
//!    [`RECORDING_ONLY_CONTENT`], keyed by the recording, so both requests about one voicemail
//!    make one order (a transcription that comes after it is marked, for the gateway to send
//!    its words to that order); with `RecordingStatus` (a recording status callback, which carries no
//!    `CallStatus`): `Other("recording")`, so recording every call never turns every call into
//!    an order.
//! 2. `Digits` or `SpeechResult`: `Input`.
//! 3. `DialCallStatus` (the `action` of a `<Dial>`): `Other("dial")`, also when it carries
//!    the `RecordingUrl` of a `<Dial record=...>`: that is the recording of the call with the
//!    agent, not a voicemail, and the agent registers the call's matter.
//! 4. `CallStatus`: `queued`/`initiated`/`ringing` → `Started`; `in-progress`/`answered` →
//!    `Answered`; `completed`/`busy`/`no-answer`/`canceled`/`failed` → `Ended`; else `Other`.

use super::{
    caller_identity, check_call_id, check_digits, check_number, check_speech, check_url,
    dedupe_key, non_phone_ref, step_hash, CallDecision, CallDirection, CallEvent, CallKind,
    RegisteredOrder, SipNumberHosts, MAX_CONTENT, RECORDING_ONLY_CONTENT,
};
use crate::text::bounded;
use crate::{AdapterError, Inbound};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use quick_xml::events::Event;
use quick_xml::Reader;
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The XML declaration every answer starts with.
pub const XML_PROLOG: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
/// The `language` of every `<Say>`: the hotline speaks Mandarin (Twilio's code for the Polly
/// and Google Mandarin voices).
pub const SAY_LANGUAGE: &str = "cmn-CN";
/// The voice when a profile names none. Twilio's default voice (`man`) speaks no Chinese, and
/// an unsupported voice and language pair can make the `<Say>` fail: the emergency notice would
/// not be heard.
pub const DEFAULT_VOICE: &str = "Polly.Zhiyu";

/// The header a Webhooks Rule adds (lower case): which SharedKey and algorithm signed.
pub const SETTINGS_HEADER: &str = "x-twilio-webhooks-signature-settings";

/// The hash of a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `HMAC_SHA1`: every signature made with the account auth token, and the default.
    HmacSha1,
    /// `HMAC_SHA256`: a Webhooks Rule's setting.
    HmacSha256,
}

/// The algorithm a settings header names (`key=webhooks_sharedkey_...,algorithm=HMAC_SHA256`,
/// as twilio-python's `get_signature_algorithm` reads it): none named is `HMAC_SHA1`; a name
/// this gateway does not know is `None`, and the request is refused.
pub fn settings_algorithm(header: &str) -> Option<Algorithm> {
    let named = header.split(',').find_map(|part| {
        let (name, value) = part.split_once('=')?;
        (name.trim() == "algorithm" && !value.trim().is_empty()).then(|| value.trim())
    });
    match named.map(str::to_ascii_uppercase).as_deref() {
        None | Some("HMAC_SHA1") => Some(Algorithm::HmacSha1),
        Some("HMAC_SHA256") => Some(Algorithm::HmacSha256),
        Some(_) => None,
    }
}

/// The `X-Twilio-Signature` value of a request: base64(HMAC-SHA1(auth_token, url + for each
/// parameter sorted by name (then value) its name and value)). `url` is exactly the URL Twilio
/// requested, with its query string. Public so tests and interop checks (twilio-python's
/// `RequestValidator.compute_signature`) can cross-check it.
pub fn signature<K: AsRef<str>, V: AsRef<str>>(
    auth_token: &str,
    url: &str,
    params: &[(K, V)],
) -> String {
    signature_with(Algorithm::HmacSha1, auth_token, url, params)
}

/// As [`signature`], with the given hash and key (a Webhooks Rule's SharedKey secret).
pub fn signature_with<K: AsRef<str>, V: AsRef<str>>(
    algorithm: Algorithm,
    key: &str,
    url: &str,
    params: &[(K, V)],
) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    // Byte order of UTF-8 is code point order, which is what Python's sorted() uses.
    sorted.sort_unstable();
    let parts = std::iter::once(url.as_bytes()).chain(
        sorted
            .iter()
            .flat_map(|(k, v)| [k.as_bytes(), v.as_bytes()]),
    );
    let digest = match algorithm {
        Algorithm::HmacSha1 => mac::<Hmac<Sha1>>(key, parts),
        Algorithm::HmacSha256 => mac::<Hmac<Sha256>>(key, parts),
    };
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The MAC of `parts` under `key`.
fn mac<'a, M: Mac + hmac::digest::KeyInit>(
    key: &str,
    parts: impl Iterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes()) else {
        // Unreachable: HMAC takes keys of any length. An empty signature never verifies.
        return Vec::new();
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The URL Twilio signed: `public_url` without any query or fragment, plus `?query` when the
/// request had one. The request's own query is authoritative: it is what Twilio requested.
pub fn signed_url(public_url: &str, query: &str) -> String {
    let base = public_url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .trim();
    if query.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{query}")
    }
}

/// `url` and the twin Twilio may have signed instead, as twilio-python's validator tries: a URL
/// without a port also with the scheme's default (`https://h/p` → `https://h:443/p`), and a URL
/// with any port also without it (`https://h:8443/p` → `https://h/p`: for HTTPS callbacks
/// Twilio signs the URL without its port, so a gateway behind a non-default HTTPS port would
/// otherwise refuse every call).
pub fn port_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // The port is after the last ':' unless that ':' is inside an IPv6 literal `[...]`.
    let port_at = authority
        .rfind(':')
        .filter(|i| !authority.get(*i..).unwrap_or_default().contains(']'));
    match port_at {
        Some(i) => {
            let (host, _port) = authority.split_at(i);
            out.push(format!("{scheme}://{host}{tail}"));
        }
        None => out.push(format!("{scheme}://{authority}:{default}{tail}")),
    }
    out
}

/// Checks `X-Twilio-Signature` against `url` (and its default-port twin). Missing, malformed or
/// wrong: `BadSignature`. An empty auth token never verifies (a profile without one is closed).
pub fn verify_signature<K: AsRef<str>, V: AsRef<str>>(
    auth_token: &str,
    url: &str,
    params: &[(K, V)],
    header: Option<&str>,
) -> Result<(), AdapterError> {
    verify_signature_with(Algorithm::HmacSha1, auth_token, url, params, header)
}

/// As [`verify_signature`], with the given hash and key. An empty key never verifies.
pub fn verify_signature_with<K: AsRef<str>, V: AsRef<str>>(
    algorithm: Algorithm,
    key: &str,
    url: &str,
    params: &[(K, V)],
    header: Option<&str>,
) -> Result<(), AdapterError> {
    let presented = header.map(str::trim).unwrap_or_default();
    if key.is_empty() || presented.is_empty() {
        return Err(AdapterError::BadSignature);
    }
    // Every variant is computed and compared (no early exit), in constant time per compare.
    let ok = port_variants(url).iter().fold(false, |acc, u| {
        let expected = signature_with(algorithm, key, u, params);
        bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) | acc
    });
    if ok {
        Ok(())
    } else {
        Err(AdapterError::BadSignature)
    }
}

/// Verifies and parses one Twilio voice webhook. `public_url` is the profile's `public_url`
/// (the URL configured at Twilio, without query); `shared_key` the SharedKey secret of the
/// Webhooks Rule that signs it, if any (empty: a request naming one is refused); `sip_hosts` the
/// SIP hosts whose callers' user part is their number (see [`SipNumberHosts`]: a call to a
/// Twilio SIP Domain comes `From` whatever the registered endpoint or guest chose).
pub fn parse(
    inbound: &Inbound,
    auth_token: &str,
    shared_key: &str,
    public_url: &str,
    sip_hosts: &SipNumberHosts,
) -> Result<CallEvent, AdapterError> {
    if let Some(mt) = inbound.media_type() {
        if mt != "application/x-www-form-urlencoded" {
            return Err(AdapterError::UnsupportedMediaType(mt));
        }
    }
    let params: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&inbound.body).map_err(AdapterError::form)?;
    // A Webhooks Rule's settings header: its SharedKey and algorithm signed, not the auth token.
    let (algorithm, key) = match inbound.header(SETTINGS_HEADER).map(str::trim) {
        Some(settings) if !settings.is_empty() => (
            settings_algorithm(settings).ok_or(AdapterError::BadSignature)?,
            shared_key,
        ),
        _ => (Algorithm::HmacSha1, auth_token),
    };
    verify_signature_with(
        algorithm,
        key,
        &signed_url(public_url, &inbound.query),
        &params,
        inbound.header("x-twilio-signature"),
    )?;
    // A voice URL configured with method GET carries every parameter in the query, which the
    // signature covers as part of the URL. A POST's own parameters come first.
    // (A query that does not decode adds nothing: the fields it lacks are named as missing.)
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(&inbound.query).unwrap_or_default();
    let get = |name: &str| -> Option<String> {
        params
            .iter()
            .chain(&query)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.trim().is_empty())
    };

    let call_id = check_call_id("CallSid", get("CallSid"))?;
    let from = check_number("From", get("From").or_else(|| get("Caller")))?;
    let to = check_number("To", get("To").or_else(|| get("Called")))?;
    // Recording status and transcription callbacks carry no CallStatus (nor From/To): Twilio's
    // `<Record>` and `<Recording>` pages list what they send.
    let recording_callback = get("RecordingStatus").is_some() || get("TranscriptionSid").is_some();
    let status = match get("CallStatus") {
        Some(s) => s.trim().to_ascii_lowercase(),
        None if recording_callback => String::new(),
        None => return Err(AdapterError::MissingField("CallStatus")),
    };
    let direction = match get("Direction") {
        Some(d) if d.trim().starts_with("outbound") => CallDirection::Outbound,
        _ => CallDirection::Inbound,
    };

    // The `action` of a `<Dial record=...>` carries the recording of the whole call next to
    // `DialCallStatus`; taking it for a voicemail made an order of every recorded call.
    let dial_action = get("DialCallStatus").is_some();
    let recording_url = if dial_action {
        None
    } else {
        check_url("RecordingUrl", get("RecordingUrl"))?
    };
    let kind = if let Some(url) = recording_url {
        if get("RecordingStatus").is_some() {
            CallKind::Other("recording".into())
        } else {
            // `Digits` here is the key that ended the recording (or `hangup`): not input.
            let text = bounded(
                "TranscriptionText",
                &get("TranscriptionText").unwrap_or_default(),
                MAX_CONTENT,
            )?;
            // A transcribeCallback (it names its transcription) with words in it.
            let transcription = !text.is_empty() && get("TranscriptionSid").is_some();
            let content = if text.is_empty() {
                RECORDING_ONLY_CONTENT.to_string()
            } else {
                text
            };
            CallKind::Registered {
                order: RegisteredOrder {
                    content,
                    recording_url: Some(url),
                    transcription,
                    ..RegisteredOrder::default()
                },
            }
        }
    } else {
        let digits = check_digits("Digits", get("Digits"))?;
        let speech = check_speech("SpeechResult", get("SpeechResult"))?;
        if digits.is_some() || speech.is_some() {
            CallKind::Input { digits, speech }
        } else if dial_action {
            CallKind::Other("dial".into())
        } else {
            match status.as_str() {
                "queued" | "initiated" | "ringing" => CallKind::Started,
                "in-progress" | "answered" => CallKind::Answered,
                "completed" | "busy" | "no-answer" | "canceled" | "failed" => {
                    let duration_s = match get("CallDuration") {
                        None => 0,
                        Some(d) => {
                            d.trim()
                                .parse::<u64>()
                                .map_err(|_| AdapterError::InvalidField {
                                    field: "CallDuration",
                                    reason: "not a whole number of seconds".into(),
                                })?
                        }
                    };
                    CallKind::Ended {
                        duration_s,
                        answered: status == "completed",
                        cause: Some(status.clone()),
                    }
                }
                other => CallKind::Other(other.chars().take(32).collect()),
            }
        }
    };

    // Started and Ended happen once per call. Other steps are told apart by the step URL's
    // query (give each `<Gather action>` its own `?step=`) and by what the step carried; a
    // retry carries the same, so it gets the same key.
    let step = match &kind {
        CallKind::Started | CallKind::Ended { .. } => None,
        // One voicemail, one key: the `<Record action>` request and a `transcribeCallback`
        // about the same recording differ in everything but the recording, and must not make
        // two orders. (The first to arrive makes the order; a transcription arriving after it
        // is sent to that order as a supplement, see `RegisteredOrder::transcription`.)
        CallKind::Registered { .. } => {
            let recording = get("RecordingSid")
                .or_else(|| get("RecordingUrl"))
                .unwrap_or_default();
            Some(step_hash(&["voicemail", &recording]))
        }
        _ => {
            let mut parts: Vec<String> = vec![inbound.query.clone()];
            for name in [
                "CallStatus",
                "Digits",
                "SpeechResult",
                "RecordingSid",
                "RecordingUrl",
                "RecordingStatus",
                "DialCallSid",
                "DialCallStatus",
                "SequenceNumber",
            ] {
                parts.push(get(name).unwrap_or_default());
            }
            let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            Some(step_hash(&refs))
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
    let dedupe_key = dedupe_key(&call_id, &kind, step.as_deref());
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

/// Escapes text for XML content and attribute values, dropping characters XML 1.0 cannot carry
/// at all (control characters other than tab, newline and carriage return).
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

fn say(text: &str, voice: &str) -> String {
    format!(
        r#"<Say voice="{}" language="{SAY_LANGUAGE}">{}</Say>"#,
        escape_xml(voice),
        escape_xml(text)
    )
}

/// What an ordinary call is handed to when the profile sets no `continue_twiml`: Twilio's
/// queue `12345`, where agents take calls from (an empty document would end the call).
pub const DEFAULT_CONTINUE: &str = "<Enqueue>12345</Enqueue>";

/// Renders a decision as a TwiML document.
///
/// - `Continue`: the text (if any) as `<Say>`, then `continue_twiml` verbatim (trusted config,
///   checked at load with [`check_fragment`]); empty means an empty `<Response>`, which lets the
///   call end or carry on with what Twilio runs next.
/// - `Reject`: `<Reject reason="rejected"/>` and nothing else. Twilio only rejects without
///   answering (and billing) when `<Reject>` is the first verb, and a `<Say>` would have to come
///   first, so the reason is not spoken; the gateway logs it instead.
/// - `Transfer`: the notice as `<Say>` (so the caller knows why the line changes), then
///   `<Dial>number</Dial>`.
/// - `Say`: `<Say>` then `<Hangup/>`.
///
/// Every `<Say>` speaks Mandarin in `voice` (empty: [`DEFAULT_VOICE`]).
pub fn render(decision: &CallDecision, continue_twiml: &str, voice: &str) -> String {
    let voice = if voice.trim().is_empty() {
        DEFAULT_VOICE
    } else {
        voice.trim()
    };
    let say = |text: &str| say(text, voice);
    let inner = match decision {
        CallDecision::Continue { text, .. } => {
            let mut s = text
                .as_deref()
                .filter(|t| !t.trim().is_empty())
                .map(&say)
                .unwrap_or_default();
            s.push_str(continue_twiml.trim());
            s
        }
        CallDecision::Reject { .. } => r#"<Reject reason="rejected"/>"#.to_string(),
        CallDecision::Transfer { number, text } => {
            let notice = if text.trim().is_empty() {
                String::new()
            } else {
                say(text)
            };
            format!("{notice}<Dial>{}</Dial>", escape_xml(number.trim()))
        }
        CallDecision::Say { text, .. } => format!("{}<Hangup/>", say(text)),
    };
    format!("{XML_PROLOG}<Response>{inner}</Response>")
}

/// Checks a continuation fragment from the config: well-formed XML elements that can sit inside
/// `<Response>` (no declaration, DOCTYPE or processing instruction, balanced tags). Call it at
/// config load so a typo fails `check-config` instead of every call.
pub fn check_fragment(fragment: &str) -> Result<(), AdapterError> {
    let doc = format!("<Response>{fragment}</Response>");
    let mut reader = Reader::from_str(&doc);
    let mut depth: usize = 0;
    let mut closed = false;
    loop {
        let ev = reader.read_event().map_err(AdapterError::xml)?;
        match ev {
            Event::Eof => break,
            _ if closed => {
                return Err(AdapterError::InvalidXml(
                    "the fragment closes </Response>".into(),
                ))
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| AdapterError::InvalidXml("unbalanced end tag".into()))?;
                closed = depth == 0;
            }
            Event::Decl(_) | Event::DocType(_) | Event::PI(_) => {
                return Err(AdapterError::InvalidXml(
                    "declarations, DOCTYPE and processing instructions are not allowed".into(),
                ))
            }
            Event::Text(t) => {
                t.unescape().map_err(AdapterError::xml)?;
            }
            _ => {}
        }
    }
    if depth != 0 || !closed {
        return Err(AdapterError::InvalidXml("unclosed element".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdentityKind;

    const AUTH: &str = "test-auth-token";
    const PUBLIC: &str = "https://gw.example.cn/cti/twilio/voice";

    fn base_params() -> Vec<(String, String)> {
        [
            ("AccountSid", format!("AC{}", "0".repeat(32))),
            ("ApiVersion", "2010-04-01".into()),
            ("CallSid", format!("CA{}", "1".repeat(32))),
            ("CallStatus", "ringing".into()),
            ("Direction", "inbound".into()),
            ("From", "+8613800138000".into()),
            ("To", "+8657112345".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// A request as Twilio would send it, signed over `signed_as` (default: the public URL
    /// with the query).
    fn request(params: &[(String, String)], query: &str, signed_as: Option<&str>) -> Inbound {
        let url = signed_as
            .map(str::to_string)
            .unwrap_or_else(|| signed_url(PUBLIC, query));
        let body = serde_urlencoded::to_string(params).unwrap_or_default();
        Inbound {
            query: query.to_string(),
            headers: vec![
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("x-twilio-signature".into(), signature(AUTH, &url, params)),
            ],
            body: body.into_bytes(),
            now: 1_800_000_000,
        }
    }

    fn with(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut p = base_params();
        for (k, v) in extra {
            p.retain(|(pk, _)| pk != k);
            p.push((k.to_string(), v.to_string()));
        }
        p
    }

    fn ok(i: &Inbound) -> CallEvent {
        match parse(i, AUTH, "", PUBLIC, &SipNumberHosts::NONE) {
            Ok(ev) => ev,
            Err(e) => panic!("{:?}: {e}", String::from_utf8_lossy(&i.body)),
        }
    }

    #[test]
    fn a_get_request_carries_its_parameters_in_the_signed_query() {
        let query = serde_urlencoded::to_string(with(&[
            ("CallStatus", "in-progress"),
            ("SpeechResult", "救命"),
        ]))
        .unwrap_or_default();
        let get = |q: &str, signed_as: &str| Inbound {
            query: q.to_string(),
            headers: vec![(
                "x-twilio-signature".into(),
                signature::<&str, &str>(AUTH, signed_as, &[]),
            )],
            body: Vec::new(),
            now: 1_800_000_000,
        };
        let ev = ok(&get(&query, &signed_url(PUBLIC, &query)));
        assert_eq!(ev.call_id, format!("CA{}", "1".repeat(32)));
        assert_eq!(
            ev.kind,
            CallKind::Input {
                digits: None,
                speech: Some("救命".into())
            }
        );
        assert_eq!(ev.from, "+8613800138000");
        // The query is the signed part: a parameter changed after signing is a forgery.
        let forged = query.replace("in-progress", "ringing");
        assert_eq!(
            parse(
                &get(&forged, &signed_url(PUBLIC, &query)),
                AUTH,
                "",
                PUBLIC,
                &SipNumberHosts::NONE
            )
            .err(),
            Some(AdapterError::BadSignature)
        );
        // A POST's own parameter wins over one of the same name in its (signed) query.
        let post = request(
            &with(&[("CallStatus", "in-progress")]),
            "CallStatus=ringing",
            None,
        );
        assert_eq!(ok(&post).kind, CallKind::Answered);
    }

    /// The example request of Twilio's security documentation (auth token `12345`).
    const DOCS_PARAMS: [(&str, &str); 5] = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ];
    const DOCS_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    #[test]
    fn webhooks_rules_sign_with_their_shared_key_and_algorithm() {
        // twilio-python 9.13's RequestValidator("12345").compute_signature(url, params,
        // "HMAC_SHA256") on the docs' example: only the hash differs from the SHA-1 vector.
        let (params, url) = (DOCS_PARAMS, DOCS_URL);
        assert_eq!(
            signature_with(Algorithm::HmacSha256, "12345", url, &params),
            "Rmm4Vzj+Ky7JGoWXMCsZDZuHDszLr9xvdbvitrDr4/M="
        );
        for (header, want) in [
            (
                "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
                Some(Algorithm::HmacSha256),
            ),
            (
                " key = k , algorithm = hmac_sha256 ",
                Some(Algorithm::HmacSha256),
            ),
            ("algorithm=HMAC_SHA1", Some(Algorithm::HmacSha1)),
            ("key=webhooks_sharedkey_1", Some(Algorithm::HmacSha1)),
            ("key=k,algorithm=HMAC_SHA512", None),
        ] {
            assert_eq!(settings_algorithm(header), want, "{header}");
        }

        const SHARED: &str = "shared-key-secret";
        let p = base_params();
        let signed = |algorithm, key: &str, settings: Option<&str>| {
            let mut i = request(&p, "", None);
            i.headers.retain(|(k, _)| k != "x-twilio-signature");
            let sig = signature_with(algorithm, key, &signed_url(PUBLIC, ""), &p);
            i.headers.push(("x-twilio-signature".into(), sig));
            if let Some(v) = settings {
                i.headers.push((SETTINGS_HEADER.into(), v.into()));
            }
            i
        };
        let rule = Some("key=webhooks_sharedkey_1,algorithm=HMAC_SHA256");
        let ok =
            |i: &Inbound| parse(i, AUTH, SHARED, PUBLIC, &SipNumberHosts::NONE).map(|ev| ev.kind);
        assert_eq!(
            ok(&signed(Algorithm::HmacSha256, SHARED, rule)),
            Ok(CallKind::Started)
        );
        // The rule's header with the auth token's signature, or with no shared key set up, or
        // naming an unknown algorithm: refused. Without the header the auth token still signs.
        let bad = Err(AdapterError::BadSignature);
        assert_eq!(ok(&signed(Algorithm::HmacSha256, AUTH, rule)), bad);
        assert_eq!(ok(&signed(Algorithm::HmacSha1, AUTH, rule)), bad);
        let no_key = signed(Algorithm::HmacSha256, SHARED, rule);
        assert_eq!(
            parse(&no_key, AUTH, "", PUBLIC, &SipNumberHosts::NONE).map(|e| e.kind),
            bad
        );
        let unknown = Some("key=k,algorithm=HMAC_SHA512");
        assert_eq!(ok(&signed(Algorithm::HmacSha256, SHARED, unknown)), bad);
        assert_eq!(
            ok(&signed(Algorithm::HmacSha1, AUTH, None)),
            Ok(CallKind::Started)
        );
        assert_eq!(ok(&signed(Algorithm::HmacSha256, SHARED, None)), bad);
    }

    #[test]
    fn official_twilio_docs_vector() {
        let (params, url) = (DOCS_PARAMS, DOCS_URL);
        assert_eq!(
            signature("12345", url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        // Order of the pairs as given does not matter.
        let mut reversed = params;
        reversed.reverse();
        assert_eq!(
            signature("12345", url, &reversed),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert!(
            verify_signature("12345", url, &params, Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")).is_ok()
        );
    }

    #[test]
    fn own_vectors_with_port_and_query() {
        let p = base_params();
        for (url, params, want) in [
            (
                PUBLIC.to_string(),
                p.clone(),
                "9PG0dxIz81TCjwcQMshFEHtAEeo=",
            ),
            (
                "https://gw.example.cn:443/cti/twilio/voice".to_string(),
                p.clone(),
                "N76fYLPn8ERNT4ztKkfqEV7ddwE=",
            ),
            (
                format!("{PUBLIC}?step=menu"),
                with(&[("Digits", "1")]),
                "omm/nvJ1X7/DUZklDlZcDXC1PiE=",
            ),
        ] {
            assert_eq!(signature(AUTH, &url, &params), want, "{url}");
        }
    }

    #[test]
    fn port_variants_add_or_remove_only_the_default_port() {
        for (url, want) in [
            (
                "https://h.cn/p?q=1",
                vec!["https://h.cn/p?q=1", "https://h.cn:443/p?q=1"],
            ),
            (
                "https://h.cn:443/p",
                vec!["https://h.cn:443/p", "https://h.cn/p"],
            ),
            ("http://h.cn/p", vec!["http://h.cn/p", "http://h.cn:80/p"]),
            ("http://h.cn:80", vec!["http://h.cn:80", "http://h.cn"]),
            (
                "https://h.cn:8443/p",
                vec!["https://h.cn:8443/p", "https://h.cn/p"],
            ),
            (
                "https://h.cn:80/p",
                vec!["https://h.cn:80/p", "https://h.cn/p"],
            ),
            (
                "https://[2001:db8::1]/p",
                vec!["https://[2001:db8::1]/p", "https://[2001:db8::1]:443/p"],
            ),
            (
                "https://[2001:db8::1]:443/p",
                vec!["https://[2001:db8::1]:443/p", "https://[2001:db8::1]/p"],
            ),
            ("ftp://h.cn/p", vec!["ftp://h.cn/p"]),
            ("not a url", vec!["not a url"]),
        ] {
            assert_eq!(port_variants(url), want, "{url}");
        }
    }

    #[test]
    fn signed_url_takes_the_request_query() {
        assert_eq!(signed_url(PUBLIC, ""), PUBLIC);
        assert_eq!(
            signed_url(PUBLIC, "step=menu"),
            format!("{PUBLIC}?step=menu")
        );
        assert_eq!(
            signed_url(&format!("{PUBLIC}?old=1#frag"), "step=menu"),
            format!("{PUBLIC}?step=menu")
        );
    }

    /// Signatures the endpoint must accept (signed over which URL, request query) or refuse.
    #[test]
    fn signature_checks_on_requests() {
        let p = base_params();
        let cases: Vec<(&str, Inbound, bool)> = vec![
            ("public url", request(&p, "", None), true),
            (
                "signed with :443",
                request(&p, "", Some("https://gw.example.cn:443/cti/twilio/voice")),
                true,
            ),
            (
                "with query",
                request(&with(&[("Digits", "1")]), "step=menu", None),
                true,
            ),
            (
                "query not signed",
                request(&p, "step=menu", Some(PUBLIC)),
                false,
            ),
            (
                "other host",
                request(&p, "", Some("https://evil.example/cti/twilio/voice")),
                false,
            ),
            (
                "non-default port",
                request(&p, "", Some("https://gw.example.cn:8443/cti/twilio/voice")),
                false,
            ),
            (
                "http instead of https",
                request(&p, "", Some("http://gw.example.cn/cti/twilio/voice")),
                false,
            ),
        ];
        for (name, i, want) in cases {
            let got = parse(&i, AUTH, "", PUBLIC, &SipNumberHosts::NONE);
            if want {
                assert!(got.is_ok(), "{name}: {got:?}");
            } else {
                assert_eq!(got, Err(AdapterError::BadSignature), "{name}");
            }
        }
        // A gateway behind a non-default HTTPS port: Twilio signs the URL without the port
        // (twilio-python's validator accepts both forms).
        let on_8443 = "https://gw.example.cn:8443/cti/twilio/voice";
        for signed_as in [PUBLIC, on_8443] {
            let got = parse(
                &request(&p, "", Some(signed_as)),
                AUTH,
                "",
                on_8443,
                &SipNumberHosts::NONE,
            );
            assert!(got.is_ok(), "{signed_as}: {got:?}");
        }
        let other = "https://gw.example.cn:9443/cti/twilio/voice";
        let got = parse(
            &request(&p, "", Some(other)),
            AUTH,
            "",
            on_8443,
            &SipNumberHosts::NONE,
        );
        assert_eq!(got, Err(AdapterError::BadSignature), "another port");
    }

    #[test]
    fn tampered_missing_or_unkeyed_signatures_are_refused() {
        let good = request(&base_params(), "", None);
        // Tampered body: a different caller.
        let mut tampered = good.clone();
        tampered.body = String::from_utf8_lossy(&good.body)
            .replace("13800138000", "13900139000")
            .into_bytes();
        // Missing and garbage headers.
        let mut missing = good.clone();
        missing.headers.retain(|(k, _)| k != "x-twilio-signature");
        let mut garbage = good.clone();
        garbage.headers[1].1 = "not-base64!".into();
        let mut empty = good.clone();
        empty.headers[1].1 = String::new();
        for (name, i, token) in [
            ("tampered", &tampered, AUTH),
            ("missing", &missing, AUTH),
            ("garbage", &garbage, AUTH),
            ("empty", &empty, AUTH),
            ("other token", &good, "another-token"),
            ("no token configured", &good, ""),
        ] {
            assert_eq!(
                parse(i, token, "", PUBLIC, &SipNumberHosts::NONE),
                Err(AdapterError::BadSignature),
                "{name}"
            );
        }
        assert!(parse(&good, AUTH, "", PUBLIC, &SipNumberHosts::NONE).is_ok());
    }

    #[test]
    fn statuses_and_steps_map_to_kinds() {
        let cases: Vec<(Vec<(&str, &str)>, CallKind)> = vec![
            (vec![("CallStatus", "ringing")], CallKind::Started),
            (vec![("CallStatus", "queued")], CallKind::Started),
            (vec![("CallStatus", "in-progress")], CallKind::Answered),
            (
                vec![("CallStatus", "in-progress"), ("Digits", "1")],
                CallKind::Input {
                    digits: Some("1".into()),
                    speech: None,
                },
            ),
            (
                vec![
                    ("CallStatus", "in-progress"),
                    ("SpeechResult", "我家着火了"),
                    ("Confidence", "0.9"),
                ],
                CallKind::Input {
                    digits: None,
                    speech: Some("我家着火了".into()),
                },
            ),
            (
                vec![
                    ("CallStatus", "in-progress"),
                    ("Digits", "12#"),
                    ("SpeechResult", "yes"),
                ],
                CallKind::Input {
                    digits: Some("12#".into()),
                    speech: Some("yes".into()),
                },
            ),
            (
                vec![("CallStatus", "completed"), ("CallDuration", "42")],
                CallKind::Ended {
                    duration_s: 42,
                    answered: true,
                    cause: Some("completed".into()),
                },
            ),
            (
                vec![("CallStatus", "busy")],
                CallKind::Ended {
                    duration_s: 0,
                    answered: false,
                    cause: Some("busy".into()),
                },
            ),
            (
                vec![("CallStatus", "no-answer"), ("CallDuration", "0")],
                CallKind::Ended {
                    duration_s: 0,
                    answered: false,
                    cause: Some("no-answer".into()),
                },
            ),
            (
                vec![("CallStatus", "canceled")],
                CallKind::Ended {
                    duration_s: 0,
                    answered: false,
                    cause: Some("canceled".into()),
                },
            ),
            (
                vec![("CallStatus", "failed")],
                CallKind::Ended {
                    duration_s: 0,
                    answered: false,
                    cause: Some("failed".into()),
                },
            ),
            (
                vec![
                    ("CallStatus", "in-progress"),
                    ("DialCallStatus", "completed"),
                    ("DialCallSid", "CA2"),
                ],
                CallKind::Other("dial".into()),
            ),
            (
                vec![("CallStatus", "paused")],
                CallKind::Other("paused".into()),
            ),
            (
                vec![
                    ("CallStatus", "completed"),
                    ("RecordingUrl", "https://api.twilio.com/rec/RE1"),
                    ("Digits", "hangup"),
                ],
                CallKind::Registered {
                    order: RegisteredOrder {
                        content: RECORDING_ONLY_CONTENT.into(),
                        recording_url: Some("https://api.twilio.com/rec/RE1".into()),
                        ..RegisteredOrder::default()
                    },
                },
            ),
            (
                vec![
                    ("CallStatus", "completed"),
                    ("RecordingUrl", "https://api.twilio.com/rec/RE1"),
                    ("TranscriptionText", " 小区停水三天了 "),
                ],
                CallKind::Registered {
                    order: RegisteredOrder {
                        content: "小区停水三天了".into(),
                        recording_url: Some("https://api.twilio.com/rec/RE1".into()),
                        ..RegisteredOrder::default()
                    },
                },
            ),
            (
                vec![
                    ("RecordingUrl", "https://api.twilio.com/rec/RE1"),
                    ("RecordingStatus", "completed"),
                ],
                CallKind::Other("recording".into()),
            ),
        ];
        for (extra, kind) in cases {
            let ev = ok(&request(&with(&extra), "", None));
            assert_eq!(ev.kind, kind, "{extra:?}");
            assert_eq!(ev.call_id, format!("CA{}", "1".repeat(32)));
            assert_eq!(ev.to, "+8657112345");
            assert_eq!(ev.at, 1_800_000_000);
            assert_eq!(
                ev.caller.as_ref().map(|i| (i.kind, i.value.as_str())),
                Some((IdentityKind::Phone, "13800138000"))
            );
        }
    }

    #[test]
    fn bad_fields_give_typed_errors() {
        let cases: Vec<(Vec<(String, String)>, AdapterError)> = vec![
            (
                base_params()
                    .into_iter()
                    .filter(|(k, _)| k != "CallSid")
                    .collect(),
                AdapterError::MissingField("CallSid"),
            ),
            (
                base_params()
                    .into_iter()
                    .filter(|(k, _)| k != "CallStatus")
                    .collect(),
                AdapterError::MissingField("CallStatus"),
            ),
        ];
        for (params, want) in cases {
            assert_eq!(
                parse(
                    &request(&params, "", None),
                    AUTH,
                    "",
                    PUBLIC,
                    &SipNumberHosts::NONE
                ),
                Err(want)
            );
        }
        for (extra, field) in [
            (vec![("Digits", "1; drop")], "Digits"),
            (
                vec![("CallStatus", "completed"), ("CallDuration", "-1")],
                "CallDuration",
            ),
            (
                vec![("RecordingUrl", "javascript:alert(1)")],
                "RecordingUrl",
            ),
            (vec![("CallSid", "CA 1")], "CallSid"),
        ] {
            let got = parse(
                &request(&with(&extra), "", None),
                AUTH,
                "",
                PUBLIC,
                &SipNumberHosts::NONE,
            );
            assert!(
                matches!(&got, Err(AdapterError::InvalidField { field: f, .. }) if *f == field),
                "{extra:?}: {got:?}"
            );
        }
        let mut json = request(&base_params(), "", None);
        json.headers[0].1 = "application/json".into();
        assert!(matches!(
            parse(&json, AUTH, "", PUBLIC, &SipNumberHosts::NONE),
            Err(AdapterError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn anonymous_and_client_callers() {
        for from in [
            "+266696687",
            "+7378742833",
            "+86282452253",
            "anonymous",
            "Restricted",
            "",
        ] {
            let ev = ok(&request(&with(&[("From", from)]), "", None));
            assert_eq!(
                (ev.caller.clone(), ev.caller_ref.clone()),
                (None, None),
                "{from}"
            );
            assert_eq!(ev.from, from);
        }
        let ev = ok(&request(&with(&[("From", "client:alice")]), "", None));
        assert_eq!(
            (ev.caller, ev.caller_ref.as_deref()),
            (None, Some("client:alice"))
        );
        // Legacy alias when From is absent.
        let p: Vec<(String, String)> = with(&[("Caller", "+8613900139000")])
            .into_iter()
            .filter(|(k, _)| k != "From")
            .collect();
        let ev = ok(&request(&p, "", None));
        assert_eq!(ev.caller.map(|i| i.value), Some("13900139000".into()));
    }

    #[test]
    fn outbound_legs_identify_the_called_party() {
        let ev = ok(&request(
            &with(&[
                ("Direction", "outbound-api"),
                ("From", "+8657112345"),
                ("To", "+8613700137000"),
            ]),
            "",
            None,
        ));
        assert_eq!(ev.direction, CallDirection::Outbound);
        assert_eq!(ev.caller.map(|i| i.value), Some("13700137000".into()));
    }

    #[test]
    fn dedupe_keys_per_step() {
        let sid = format!("CA{}", "1".repeat(32));
        let key = |extra: &[(&str, &str)], query: &str| {
            ok(&request(&with(extra), query, None)).dedupe_key
        };
        let started = key(&[], "");
        assert_eq!(started, format!("{sid}:started"));
        assert_eq!(
            key(&[("CallStatus", "completed"), ("CallDuration", "9")], ""),
            format!("{sid}:ended")
        );
        let menu1 = key(
            &[("CallStatus", "in-progress"), ("Digits", "1")],
            "step=menu",
        );
        let menu1_retry = {
            let mut i = request(
                &with(&[("CallStatus", "in-progress"), ("Digits", "1")]),
                "step=menu",
                None,
            );
            i.now += 15;
            ok(&i).dedupe_key
        };
        assert_eq!(menu1, menu1_retry);
        let others = [
            key(
                &[("CallStatus", "in-progress"), ("Digits", "2")],
                "step=menu",
            ),
            key(
                &[("CallStatus", "in-progress"), ("Digits", "1")],
                "step=sub",
            ),
            key(
                &[("CallStatus", "in-progress"), ("SpeechResult", "1")],
                "step=menu",
            ),
            key(&[("CallStatus", "in-progress")], ""),
            key(&[("CallStatus", "in-progress")], "step=menu"),
            started.clone(),
        ];
        for o in &others {
            assert_ne!(&menu1, o);
        }
        assert_ne!(others[3], others[4]);
        assert!(menu1.starts_with(&format!("{sid}:input:")));
    }

    #[test]
    fn recording_callbacks_are_taken_and_one_voicemail_is_one_order() {
        // A recordingStatusCallback, with exactly the parameters Twilio documents for it.
        let status_cb: Vec<(String, String)> = [
            ("AccountSid", format!("AC{}", "0".repeat(32))),
            ("CallSid", format!("CA{}", "1".repeat(32))),
            ("RecordingSid", "RE9".to_string()),
            ("RecordingUrl", "https://api.twilio.com/rec/RE9".into()),
            ("RecordingStatus", "completed".into()),
            ("RecordingDuration", "42".into()),
            ("RecordingChannels", "1".into()),
            (
                "RecordingStartTime",
                "Wed, 02 Dec 2026 08:00:00 +0000".into(),
            ),
            ("RecordingSource", "RecordVerb".into()),
            ("RecordingTrack", "inbound".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let ev = ok(&request(&status_cb, "", None));
        assert_eq!(ev.kind, CallKind::Other("recording".into()));
        // The `<Record action>` request, then the transcription of the same recording.
        let action = ok(&request(
            &with(&[
                ("CallStatus", "completed"),
                ("RecordingUrl", "https://api.twilio.com/rec/RE9"),
                ("RecordingSid", "RE9"),
                ("RecordingDuration", "42"),
                ("Digits", "hangup"),
            ]),
            "step=voicemail",
            None,
        ));
        let transcript = ok(&request(
            &with(&[
                ("CallStatus", "completed"),
                ("RecordingUrl", "https://api.twilio.com/rec/RE9"),
                ("RecordingSid", "RE9"),
                ("TranscriptionSid", "TR1"),
                ("TranscriptionStatus", "completed"),
                ("TranscriptionText", "路灯坏了"),
            ]),
            "step=transcribed",
            None,
        ));
        assert!(matches!(action.kind, CallKind::Registered { .. }));
        assert_eq!(action.dedupe_key, transcript.dedupe_key);
        // The transcription says it is one, so its words can follow an order made already.
        let order = |ev: &CallEvent| match &ev.kind {
            CallKind::Registered { order } => (order.content.clone(), order.transcription),
            other => panic!("{other:?}"),
        };
        assert_eq!(order(&action), (RECORDING_ONLY_CONTENT.into(), false));
        assert_eq!(order(&transcript), ("路灯坏了".into(), true));
    }

    #[test]
    fn a_recorded_dials_action_is_not_a_voicemail() {
        // The `action` of `<Dial record="record-from-answer" action=...>` after the agent's
        // leg ended: what Twilio documents for it, with the recording of the call.
        let ev = ok(&request(
            &with(&[
                ("CallStatus", "in-progress"),
                ("DialCallStatus", "completed"),
                ("DialCallSid", "CA9"),
                ("DialCallDuration", "312"),
                ("DialBridged", "true"),
                ("RecordingUrl", "https://api.twilio.com/rec/RE7"),
                ("RecordingSid", "RE7"),
                ("RecordingDuration", "311"),
            ]),
            "step=dialled",
            None,
        ));
        assert_eq!(ev.kind, CallKind::Other("dial".into()));
        assert_eq!(
            ev.to_submission("tw"),
            None,
            "no order from a recorded call"
        );
    }

    #[test]
    fn voicemail_becomes_a_submission_with_the_recording() {
        let ev = ok(&request(
            &with(&[
                ("CallStatus", "completed"),
                ("RecordingUrl", "https://api.twilio.com/rec/RE9"),
                ("RecordingSid", "RE9"),
            ]),
            "step=voicemail",
            None,
        ));
        let Some(sub) = ev.to_submission("tw") else {
            panic!("voicemail must give a submission")
        };
        assert_eq!(sub.identity.to_string(), "phone:13800138000");
        assert_eq!(sub.attachments.len(), 1);
        assert_eq!(sub.attachments[0].url, "https://api.twilio.com/rec/RE9");
        assert_eq!(sub.content, RECORDING_ONLY_CONTENT);
    }

    /// Text and attributes of a TwiML document, as a real XML parser reads them.
    fn elements(xml: &str) -> Vec<String> {
        let mut r = Reader::from_str(xml);
        let mut out = Vec::new();
        loop {
            match r.read_event() {
                Ok(Event::Eof) => break,
                Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                    let mut s = String::from_utf8_lossy(e.name().as_ref()).to_string();
                    for a in e.attributes().flatten() {
                        let v = a
                            .unescape_value()
                            .map(|v| v.to_string())
                            .unwrap_or_default();
                        s.push_str(&format!(" {}={v}", String::from_utf8_lossy(a.key.as_ref())));
                    }
                    out.push(s);
                }
                Ok(Event::Text(t)) => {
                    out.push(format!("text:{}", t.unescape().unwrap_or_default()))
                }
                Ok(_) => {}
                Err(e) => panic!("{xml}: {e}"),
            }
        }
        out
    }

    #[test]
    fn every_decision_renders_as_twiml() {
        let redirect = "<Redirect>https://ivr.example/main</Redirect>";
        let cases: Vec<(CallDecision, &str, &str)> = vec![
            (CallDecision::proceed(), "", "<Response></Response>"),
            (
                CallDecision::proceed(),
                redirect,
                "<Response><Redirect>https://ivr.example/main</Redirect></Response>",
            ),
            (
                CallDecision::Continue {
                    orders: vec!["2026112901000123".into()],
                    text: Some("您今天来电次数较多".into()),
                    flag: Some("over_quota".into()),
                },
                redirect,
                r#"<Response><Say voice="Polly.Zhiyu" language="cmn-CN">您今天来电次数较多</Say><Redirect>https://ivr.example/main</Redirect></Response>"#,
            ),
            (
                CallDecision::Reject {
                    text: "暂停受理至12月1日".into(),
                },
                redirect,
                r#"<Response><Reject reason="rejected"/></Response>"#,
            ),
            (
                CallDecision::Transfer {
                    number: "119".into(),
                    text: "正在为您转接119".into(),
                },
                redirect,
                r#"<Response><Say voice="Polly.Zhiyu" language="cmn-CN">正在为您转接119</Say><Dial>119</Dial></Response>"#,
            ),
            (
                CallDecision::Transfer {
                    number: "120".into(),
                    text: String::new(),
                },
                "",
                "<Response><Dial>120</Dial></Response>",
            ),
            (
                CallDecision::Say {
                    number: "120".into(),
                    text: "请挂机后拨打120".into(),
                },
                redirect,
                r#"<Response><Say voice="Polly.Zhiyu" language="cmn-CN">请挂机后拨打120</Say><Hangup/></Response>"#,
            ),
        ];
        for (d, cont, want) in cases {
            let got = render(&d, cont, "");
            assert_eq!(got, format!("{XML_PROLOG}{want}"), "{d:?}");
            // And it is well-formed for a real parser.
            elements(&got);
        }
    }

    #[test]
    fn say_text_is_escaped() {
        let nasty = "A&B <Hangup/> \"q\" 'a' ]]> \u{0}\u{7}end\n";
        let xml = render(
            &CallDecision::Say {
                number: "119".into(),
                text: nasty.into(),
            },
            "",
            "",
        );
        assert!(!xml.contains("<Hangup/> \""));
        assert_eq!(
            elements(&xml),
            vec![
                "Response".to_string(),
                "Say voice=Polly.Zhiyu language=cmn-CN".into(),
                "text:A&B <Hangup/> \"q\" 'a' ]]> end\n".into(),
                "Hangup".into(),
            ]
        );
        let xml = render(
            &CallDecision::Transfer {
                number: "119</Dial><Play>x".into(),
                text: String::new(),
            },
            "",
            "",
        );
        assert_eq!(
            elements(&xml),
            vec![
                "Response".to_string(),
                "Dial".into(),
                "text:119</Dial><Play>x".into()
            ]
        );
    }

    #[test]
    fn every_say_speaks_mandarin_in_the_profiles_voice() {
        let d = CallDecision::Say {
            number: "120".into(),
            text: "请挂机后拨打120".into(),
        };
        assert!(render(&d, "", "").contains(r#"<Say voice="Polly.Zhiyu" language="cmn-CN">"#));
        let google = render(&d, "", "Google.cmn-CN-Standard-A");
        assert!(
            google.contains(r#"voice="Google.cmn-CN-Standard-A""#),
            "{google}"
        );
        let odd = render(&d, "", r#"x"><Hangup/><Say voice="y"#);
        assert_eq!(elements(&odd).len(), 4, "a voice cannot add verbs: {odd}");
    }

    #[test]
    fn continuation_fragments_are_checked() {
        for (frag, ok) in [
            ("", true),
            (
                "<Redirect>https://ivr.example/main?a=1&amp;b=2</Redirect>",
                true,
            ),
            (
                r#"<Gather input="dtmf speech" action="/v1/cti/tw?step=menu"><Say voice="Polly.Zhiyu" language="cmn-CN">请按1</Say></Gather><Hangup/>"#,
                true,
            ),
            ("<Redirect>https://ivr.example/main", false),
            ("<Redirect>x</Say>", false),
            ("</Response><Response>", false),
            ("a & b", false),
            (r#"<?xml version="1.0"?><Hangup/>"#, false),
            ("<!DOCTYPE x><Hangup/>", false),
        ] {
            assert_eq!(check_fragment(frag).is_ok(), ok, "{frag}");
        }
    }
}
