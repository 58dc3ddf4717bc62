//! CTI `format = "generic"`: the input is the JSON body of a callback with a correct
//! `Authorization: Bearer` header (and, separately, a correct path token without a content type),
//! so every input reaches the JSON parser. Successful events go through `to_submission`.
#![no_main]

use hotline_adapters::cti::{CtiFormat, CtiProfile};
use hotline_adapters::Inbound;
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "generic-s3cret-token";

fuzz_target!(|data: &[u8]| {
    let profile = CtiProfile {
        format: CtiFormat::Generic,
        token: TOKEN.into(),
        ..CtiProfile::default()
    };
    let with_bearer = Inbound {
        query: String::new(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), format!("Bearer {TOKEN}")),
        ],
        body: data.to_vec(),
        now: 1_795_912_200,
    };
    if let Ok(ev) = profile.parse(&with_bearer, None) {
        let _ = ev.to_submission("pbx");
    }
    let path_only = Inbound {
        headers: Vec::new(),
        ..with_bearer
    };
    if let Ok(ev) = profile.parse(&path_only, Some(TOKEN)) {
        let _ = ev.to_submission("pbx");
    }
});
