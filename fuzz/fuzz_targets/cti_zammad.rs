//! CTI `format = "zammad"`: the input is the body of a push with the right path token, sent as
//! JSON, as urlencoded and with no content type (sniffed), so every input reaches the field
//! parser. Successful events go through `to_submission`.
#![no_main]

use hotline_adapters::cti::{CtiFormat, CtiProfile};
use hotline_adapters::Inbound;
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "zammad-path-token";

fuzz_target!(|data: &[u8]| {
    let profile = CtiProfile {
        format: CtiFormat::Zammad,
        token: TOKEN.into(),
        ..CtiProfile::default()
    };
    for ct in [
        Some("application/json"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let inbound = Inbound {
            query: String::new(),
            headers: ct
                .map(|c| vec![("content-type".to_string(), c.to_string())])
                .unwrap_or_default(),
            body: data.to_vec(),
            now: 1_795_912_200,
        };
        if let Ok(ev) = profile.parse(&inbound, Some(TOKEN)) {
            let _ = ev.to_submission("pbx");
        }
    }
});
