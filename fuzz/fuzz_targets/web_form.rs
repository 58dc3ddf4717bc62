//! Web portal form: `web::parse` with the JSON and urlencoded media types (undeclared and GBK),
//! `web::from_fields` on (key, value) pairs derived from the input (one pair per line, split at
//! the first `=`, not percent-decoded so keys and values can hold any character), and
//! `web::from_parts` on the same pairs as multipart bytes.
#![no_main]

use hotline_adapters::web;
use libfuzzer_sys::fuzz_target;

const IP: &str = "203.0.113.9";

fuzz_target!(|data: &[u8]| {
    let _ = web::parse(Some("application/json"), None, data, IP, 0);
    let _ = web::parse(Some("application/x-www-form-urlencoded"), None, data, IP, 0);
    let _ = web::parse(Some("application/x-www-form-urlencoded"), Some("gbk"), data, IP, 0);

    let text = String::from_utf8_lossy(data);
    let pairs: Vec<(String, String)> = text
        .split(['\n', '&'])
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    let parts = pairs
        .iter()
        .map(|(k, v)| web::Part {
            name: k.clone(),
            file: k.starts_with("file"),
            charset: None,
            value: v.as_bytes().to_vec(),
        })
        .collect();
    let _ = web::from_parts(parts, None, IP, 0);
    let _ = web::from_fields(pairs, IP, 0);
});
