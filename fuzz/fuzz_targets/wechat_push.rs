//! WeChat official-account pushes. Every input is used four ways:
//! 1. as the body of a plaintext-mode push with a valid `signature` (reaches the XML parser and
//!    `Push::from_fields`);
//! 2. as the body of a push to a safe-mode account; when the body has an `<Encrypt>` field the
//!    query also carries a valid `msg_signature` over it, so decryption is reached (the official
//!    V-C / V-D vectors in the corpus decrypt and reach the inner parser);
//! 3. as the *inner* (decrypted) message of a safe-mode push: the target encrypts it for the
//!    account and signs the envelope, so the inner XML parser sees fuzzed bytes;
//! 4. directly: `wechat::decrypt(&key, appid, text)` and `wechat::xml::parse(text)`.
//! Successful pushes also go through `dedupe_key`, `to_submission` and `render_reply`.
#![no_main]

use hotline_adapters::wechat::{self, xml, Push, WechatAccount};
use hotline_adapters::Inbound;
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "spamtest";
/// The AppID of Tencent's sample vectors V-C / V-D, so their `<Encrypt>` values decrypt.
const APPID: &str = "wx2c2769f8efd9abc2";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const TS: &str = "1700000000";
const NOW: i64 = 1_700_000_000;
const NONCE: &str = "298025754";

fn query(extra: &str) -> String {
    format!(
        "signature={}&timestamp={TS}&nonce={NONCE}&openid=oUser1{extra}",
        wechat::sign(&[TOKEN, TS, NONCE])
    )
}

fn inbound(query: String, body: Vec<u8>) -> Inbound {
    Inbound {
        query,
        headers: vec![("content-type".into(), "text/xml".into())],
        body,
        now: NOW,
    }
}

fn use_push(acc: &WechatAccount, push: &Push) {
    let _ = push.dedupe_key();
    let _ = push.to_submission("main");
    let _ = wechat::render_reply(acc, push, Some("已受理"), NOW, "n0nce", [7u8; 16]);
}

fuzz_target!(|data: &[u8]| {
    let plain = WechatAccount::new(TOKEN, APPID);
    let safe = WechatAccount::new(TOKEN, APPID).with_aes_key(AES_KEY);
    let Ok(Some(key)) = safe.aes_key() else {
        panic!("the sample EncodingAESKey must decode");
    };

    // 1. Plaintext mode.
    if let Ok(push) = wechat::parse_push(&plain, &inbound(query(""), data.to_vec())) {
        use_push(&plain, &push);
    }

    // 2. Safe/compatible mode with the fuzzed envelope.
    let text = String::from_utf8_lossy(data);
    let msg_sig = xml::parse(&xml::strip_illegal(&text))
        .ok()
        .and_then(|f| f.get("Encrypt").map(|e| wechat::sign(&[TOKEN, TS, NONCE, e.trim()])))
        .unwrap_or_default();
    let q = query(&format!("&encrypt_type=aes&msg_signature={msg_sig}"));
    if let Ok(push) = wechat::parse_push(&safe, &inbound(q.clone(), data.to_vec())) {
        use_push(&safe, &push);
    }
    // Same envelope to the plaintext account (no key configured).
    let _ = wechat::parse_push(&plain, &inbound(q, data.to_vec()));

    // 3. Fuzzed inner message inside a valid encrypted envelope.
    if let Ok(enc) = wechat::encrypt(&key, APPID, *b"0123456789abcdef", data) {
        let q = query(&format!(
            "&encrypt_type=aes&msg_signature={}",
            wechat::sign(&[TOKEN, TS, NONCE, &enc])
        ));
        let body = format!(
            "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
        );
        if let Ok(push) = wechat::parse_push(&safe, &inbound(q, body.into_bytes())) {
            use_push(&safe, &push);
        }
    }

    // 4. The decryptor and the XML reader on their own.
    let _ = wechat::decrypt(&key, APPID, &text);
    let _ = wechat::decrypt_raw(&key, &text);
    let _ = xml::parse(&text);
});
