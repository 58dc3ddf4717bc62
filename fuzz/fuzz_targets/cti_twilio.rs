//! CTI `format = "twilio"`: the input is the form body of a voice webhook. The target decodes it
//! the way the adapter does and computes a valid `X-Twilio-Signature` over the public URL (plus
//! the fixed query) and those parameters, so every decodable input gets past the signature check
//! into the field mapping; then signed by a Webhooks Rule (HMAC-SHA256), and as the query of a
//! signed GET. Successful events go
//! through `to_submission`; the input is also fed to `twilio::check_fragment` and
//! `twilio::port_variants`.
#![no_main]

use hotline_adapters::cti::{twilio, CtiFormat, CtiProfile};
use hotline_adapters::Inbound;
use libfuzzer_sys::fuzz_target;

const AUTH: &str = "test-auth-token";
const PUBLIC: &str = "https://gw.example.cn/cti/twilio/voice";
const QUERY: &str = "step=main";
const SHARED: &str = "test-shared-key";

fuzz_target!(|data: &[u8]| {
    let profile = CtiProfile {
        format: CtiFormat::Twilio,
        auth_token: AUTH.into(),
        shared_key_secret: SHARED.into(),
        public_url: PUBLIC.into(),
        ..CtiProfile::default()
    };
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(data).unwrap_or_default();
    let sig = twilio::signature(AUTH, &twilio::signed_url(PUBLIC, QUERY), &params);
    let inbound = Inbound {
        query: QUERY.into(),
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("x-twilio-signature".into(), sig),
        ],
        body: data.to_vec(),
        now: 1_800_000_000,
    };
    if let Ok(ev) = profile.parse(&inbound, None) {
        let _ = ev.to_submission("twilio");
    }
    // The same post signed by a Webhooks Rule (its SharedKey, HMAC-SHA256, the settings header).
    let mut by_rule = inbound.clone();
    by_rule.headers[1].1 = twilio::signature_with(
        twilio::Algorithm::HmacSha256,
        SHARED,
        &twilio::signed_url(PUBLIC, QUERY),
        &params,
    );
    by_rule.headers.push((
        twilio::SETTINGS_HEADER.into(),
        "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256".into(),
    ));
    if let Ok(ev) = profile.parse(&by_rule, None) {
        let _ = ev.to_submission("twilio");
    }
    let text = String::from_utf8_lossy(data);
    let _ = twilio::settings_algorithm(&text);
    // The same input as a GET (a voice URL set to HTTP GET): every parameter in the query,
    // signed as part of the URL with no POST parameters.
    let query = format!("{QUERY}&{text}");
    let sig = twilio::signature::<&str, &str>(AUTH, &twilio::signed_url(PUBLIC, &query), &[]);
    let get = Inbound {
        query,
        headers: vec![("x-twilio-signature".into(), sig)],
        body: Vec::new(),
        now: 1_800_000_000,
    };
    if let Ok(ev) = profile.parse(&get, None) {
        let _ = ev.to_submission("twilio");
    }
    let _ = twilio::check_fragment(&text);
    let _ = twilio::port_variants(&text);
});
