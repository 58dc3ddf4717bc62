//! The maskers every text that leaves the gateway goes through (logs, events, mail, status
//! answers, dead letters): `scrub_text`, `scrub_text_and_ids`, the per-kind maskers and the
//! order-text masks of the status path and the relay (`order_text`), on the input as lossy
//! UTF-8. The input is split at its first NUL into a text and the "sent" order data the
//! order-text masks compare it with. No input may panic them (they slice by characters found
//! in runs of digits, numerals and separators), and masking only ever hides: a masked text is
//! never longer in characters than four times its input.
#![no_main]

use hotline_adapters::mask;
use hotline_adapters::IdentityKind;
use hotline_gateway::order_text::{mask_order_data, mask_order_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let all = String::from_utf8_lossy(data);
    let (text, sent) = all.split_once('\0').unwrap_or((&all, ""));
    let bound = 4 * text.chars().count() + 16;
    for masked in [
        mask::scrub_text(text),
        mask::scrub_text_and_ids(text),
        mask::redact_parser_message(text),
        mask_order_text(text, sent),
        mask_order_data(text, sent),
    ] {
        assert!(masked.chars().count() <= bound, "{text:?} -> {masked:?}");
    }
    for kind in [
        IdentityKind::Phone,
        IdentityKind::Wechat,
        IdentityKind::Weibo,
        IdentityKind::Email,
        IdentityKind::Ip,
    ] {
        let _ = mask::mask_value(kind, text);
    }
    let _ = (
        mask::mask_phone(text),
        mask::mask_email(text),
        mask::mask_id(text),
        mask::mask_name(text),
        mask::mask_address(text),
        mask::mask_ip(text),
    );
});
