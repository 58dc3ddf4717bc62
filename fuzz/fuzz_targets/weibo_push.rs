//! Weibo pushes: the input is the JSON body of a push whose query carries a valid signature
//! (`sign(app_secret, timestamp, nonce)`, WeChat's algorithm with the App Secret; timestamp in
//! milliseconds), so every input reaches the JSON parser. Successful pushes also go through
//! `dedupe_key`, `to_submission` and `render_reply` (also with the input as the reply's text);
//! the input is also fed to `decode_data` and `parse_created_at`.
#![no_main]

use hotline_adapters::{wechat, weibo, Inbound};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "weibo-app-secret";
const TS_MS: &str = "1700000000123";
const NOW: i64 = 1_700_000_000;
const NONCE: &str = "57155157";

fuzz_target!(|data: &[u8]| {
    let acc = weibo::WeiboAccount::new(SECRET);
    let inbound = Inbound {
        query: format!(
            "signature={}&timestamp={TS_MS}&nonce={NONCE}",
            wechat::sign(&[SECRET, TS_MS, NONCE])
        ),
        headers: vec![("content-type".into(), "application/json".into())],
        body: data.to_vec(),
        now: NOW,
    };
    if let Ok(push) = weibo::parse_push(&acc, &inbound) {
        let _ = push.dedupe_key();
        let _ = push.to_submission("main");
        let _ = weibo::render_reply(&push, Some("已受理"));
        // Any reply text, however long, is cut to the documented limit (on a character
        // boundary, or the slicing would panic) and its data decodes back.
        let reply = weibo::render_reply(&push, Some(&String::from_utf8_lossy(data)));
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&reply) {
            let decoded = weibo::decode_data(v["data"].as_str().unwrap_or_default());
            assert!(decoded.is_ok(), "{reply}");
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = weibo::decode_data(&text);
    let _ = weibo::parse_created_at(&text);
});
