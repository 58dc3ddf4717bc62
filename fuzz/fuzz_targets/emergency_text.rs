//! What every citizen's text meets before it becomes an order: the emergency rules and the
//! second opinion (`check`, with its clauses and windows), on the input as lossy UTF-8. Then the
//! same bytes as an operator's `emergency-examples.jsonl`: parsed, and when they hold both kinds
//! of line, trained on and asked about themselves. `explain` must agree with `check`: a text
//! that is redirected has a trigger whose rule fires, and one that is not has none. The text is
//! also read as a status query (WeChat and Weibo texts are): a number of ASCII digits, and the
//! rest a tail of the text as sent.
#![no_main]

use hotline_adapters::query::{status_query, ORDER_NUMBER_DIGITS};
use hotline_gateway::pipeline::emergency::EmergencyRules;
use hotline_gateway::pipeline::second_opinion::{parse_examples, SecondOpinion};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static RULES: LazyLock<EmergencyRules> = LazyLock::new(EmergencyRules::builtin);
static MODEL: LazyLock<SecondOpinion> = LazyLock::new(SecondOpinion::builtin);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let redirected = RULES.check(&text).is_some();
    let fires = RULES.explain(&text).iter().any(|l| l.ends_with(": fires"));
    assert_eq!(redirected, fires);
    if let Some(s) = MODEL.check(&text) {
        assert!(s.score.is_finite() && ["110", "119", "120", "122"].contains(&s.number.as_str()));
    }
    if let Some(q) = status_query(&text) {
        assert!(ORDER_NUMBER_DIGITS.contains(&q.number.len()));
        assert!(q.number.bytes().all(|b| b.is_ascii_digit()));
        assert!(text.ends_with(&q.rest), "{:?} is not a tail of {text:?}", q.rest);
        assert!(!q.only || q.rest.trim().is_empty() || q.rest.chars().count() < text.chars().count());
    }
    if let Ok(examples) = parse_examples(&text) {
        if let Ok(m) = SecondOpinion::train(&examples, 0.0) {
            let (score, _) = m.score(&text);
            assert!(!score.is_nan());
        }
    }
});
