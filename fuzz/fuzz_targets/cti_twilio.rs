//! CTI `format = "twilio"`: the input is the form body of a voice webhook. The target decodes it
//! the way the adapter does and computes a valid `X-Twilio-Signature` over the public URL (plus
//! the fixed query) and those parameters, so every decodable input gets past the signature check
//! into the field mapping. Successful events go through `to_submission`; the input is also fed to
//! `twilio::check_fragment` and `twilio::port_variants`.
#![no_main]

use hotline_adapters::cti::{twilio, CtiFormat, CtiProfile};
use hotline_adapters::Inbound;
use libfuzzer_sys::fuzz_target;

const AUTH: &str = "test-auth-token";
const PUBLIC: &str = "https://gw.example.cn/cti/twilio/voice";
const QUERY: &str = "step=main";

fuzz_target!(|data: &[u8]| {
    let profile = CtiProfile {
        format: CtiFormat::Twilio,
        auth_token: AUTH.into(),
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
    let text = String::from_utf8_lossy(data);
    let _ = twilio::check_fragment(&text);
    let _ = twilio::port_variants(&text);
});
