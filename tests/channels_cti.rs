//! The telephony (CTI) channel end to end: the real binary, a real dispatch-sim, real HTTP.
//! What belongs here: everything a telephony platform's callback can meet, in the three formats
//! (generic JSON, Zammad generic CTI, Twilio voice webhooks), from the answer the platform acts
//! on to the order's arrival at dispatch and the caller's record in the admin view.
//!
//! Twilio is played by an independent peer, `tests/peers/twilio_peer.py`, built on the PyPI
//! `twilio` package: its `RequestValidator` signs every request as Twilio's servers do and its
//! `VoiceResponse` builds the TwiML we expect; both documents are compared as parsed XML.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);
const DESK_TOKEN: &str = "t1";
const ZAMMAD_TOKEN: &str = "zt";
/// Where the Twilio profiles send a normal call on (`continue_twiml`).
const IVR: &str = "https://ivr.example.cn/main";
const TWILIO_AUTH: &str = "tw-auth-token-0123456789abcdef";
const TWILIO_SHARED: &str = "tw-webhooks-shared-key-secret";
const FIRE: &str = "我家着火了，有人被困";
const AT: &str = "2026-11-29T08:30:00+08:00";

/// Two generic profiles (transfer on and off) and a Zammad profile.
fn generic_profiles() -> String {
    format!(
        r#"
[channels.cti.desk]
format = "generic"
token = "{DESK_TOKEN}"
emergency_transfer = true

[channels.cti.quiet]
format = "generic"
token = "{DESK_TOKEN}"
emergency_transfer = false

[channels.cti.zm]
format = "zammad"
token = "{ZAMMAD_TOKEN}"
"#
    )
}

const LADDER: &str = r#"
[nuisance]
quota = 2
per = "1h"
warnings = 1
suspensions = ["1h", "24h"]
long_call = "10m"
"#;

/// POSTs raw bytes; returns (status, content type, body).
fn post_raw(
    url: &str,
    bearer: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String, String) {
    let mut req = client()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().unwrap_or_else(|e| panic!("post {url}: {e}"));
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ct, r.text().unwrap_or_default())
}

/// A generic event to `/v1/cti/{profile}` with the desk's bearer token; (status, JSON answer).
fn generic(gw: &Gateway, profile: &str, ev: &Value) -> (u16, Value) {
    let (status, ct, body) = post_raw(
        &format!("{}/v1/cti/{profile}", gw.url),
        Some(DESK_TOKEN),
        "application/json",
        ev.to_string().into_bytes(),
    );
    assert!(ct.starts_with("application/json"), "{ct}: {body}");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// A generic event that must be answered 200; its answer.
fn generic_ok(gw: &Gateway, profile: &str, ev: &Value) -> Value {
    let (status, answer) = generic(gw, profile, ev);
    assert_eq!(status, 200, "{ev} -> {answer}");
    answer
}

fn started(call: &str, from: &str) -> Value {
    json!({"event": "call.started", "call_id": call, "from": from, "to": "12345", "at": AT})
}

fn speech(call: &str, from: &str, text: &str) -> Value {
    json!({"event": "call.input", "call_id": call, "from": from, "to": "12345", "at": AT,
           "speech": text})
}

fn flagged(call: &str, from: &str, reason: &str) -> Value {
    json!({"event": "call.flagged", "call_id": call, "from": from, "to": "12345", "at": AT,
           "agent": "A017", "reason": reason})
}

fn ended(call: &str, from: &str, duration_s: u64) -> Value {
    json!({"event": "call.ended", "call_id": call, "from": from, "to": "12345", "at": AT,
           "duration_s": duration_s})
}

fn caller(gw: &Gateway, phone: &str) -> Value {
    gw.admin_get(&format!("/admin/v1/callers/phone:{phone}"))
}

fn suspend(gw: &Gateway, phone: &str, reason: &str) {
    let r = client()
        .put(format!(
            "{}/admin/v1/callers/phone:{phone}/suspension",
            gw.url
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"duration": "24h", "reason": reason}))
        .send()
        .unwrap_or_else(|e| panic!("admin put: {e}"));
    assert!(r.status().is_success(), "suspend: {}", r.status());
}

/// Waits for the outbox to drain and returns every first delivery the sim recorded.
fn settled_deliveries(gw: &Gateway, sim: &Sim) -> Vec<Value> {
    wait_until("an empty outbox", LONG, || {
        (gw.admin_get("/admin/v1/outbox")["depth"] == 0).then_some(())
    });
    sim.lines().into_iter().filter(is_first_delivery).collect()
}

fn assert_no_raw_numbers(gw: &Gateway, numbers: &[&str]) {
    let logs = gw.logs();
    assert!(!logs.is_empty(), "the gateway logs something");
    for n in numbers {
        assert!(!logs.contains(n), "raw caller number {n} in the logs");
    }
}

#[test]
fn generic_calls_continue_transfer_say_and_register_orders() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(
        free_port(),
        &dir.path().join("sim.jsonl"),
        &["--secret", "dispatch-secret"],
    );
    let gw = Gateway::start(dir.path(), &sim.url, &generic_profiles());
    let citizen = "13912340001";
    let dialled = "+86 139-1234-0001";

    // A normal caller rings: carry on, nothing to say, nothing to flag.
    let a = generic_ok(&gw, "desk", &started("call-1", dialled));
    assert_eq!(a, json!({"action": "continue"}));

    // Emergency speech: transfer to 119 where the profile transfers...
    let t = generic_ok(&gw, "desk", &speech("call-1", dialled, FIRE));
    assert_eq!(t["action"], "transfer", "{t}");
    assert_eq!(t["number"], "119", "{t}");
    let text = t["text"].as_str().unwrap_or_default().to_string();
    assert!(text.contains("119"), "the caller hears why: {t}");
    // ...and tell the caller to dial where it does not.
    let s = generic_ok(&gw, "quiet", &speech("call-2", "13912340002", FIRE));
    assert_eq!(s["action"], "say", "{s}");
    assert_eq!(s["text"], text.as_str(), "{s}");
    // The number to dial is carried as `transfer` carries it (left out until 2026-12-07).
    assert_eq!(s["number"], "119", "{s}");

    // IVR digits that the emergency rules name (check_digits: 120 = 医疗急救).
    let d = generic_ok(
        &gw,
        "desk",
        &json!({"event": "call.input", "call_id": "call-3", "from": "13912340003",
                "to": "12345", "at": AT, "digits": "120#"}),
    );
    assert_eq!(
        (d["action"].as_str(), d["number"].as_str()),
        (Some("transfer"), Some("120")),
        "{d}"
    );
    let d = generic_ok(
        &gw,
        "quiet",
        &json!({"event": "call.input", "call_id": "call-4", "from": "13912340003",
                "to": "12345", "at": AT, "digits": "110"}),
    );
    assert_eq!(d["action"], "say", "{d}");
    assert_eq!(d["number"], "110", "{d}");
    assert!(
        d["text"].as_str().unwrap_or_default().contains("110"),
        "{d}"
    );
    // Ordinary menu keys and ordinary speech carry on.
    let m = generic_ok(
        &gw,
        "desk",
        &json!({"event": "call.input", "call_id": "call-1", "from": dialled, "to": "12345",
                "at": "2026-11-29T08:30:05+08:00", "digits": "1"}),
    );
    assert_eq!(m, json!({"action": "continue"}));
    let m = generic_ok(
        &gw,
        "desk",
        &speech("call-1", dialled, "我想咨询一下公积金提取"),
    );
    assert_eq!(m, json!({"action": "continue"}));

    // The agent registers two matters for the caller; confidential, with a recording.
    let reg = json!({
        "event": "call.registered", "call_id": "call-1", "from": dialled, "to": "12345",
        "at": "2026-11-29T08:34:00+08:00", "agent": "A017",
        "order": {
            "content": "路灯坏了；井盖丢失", "category": "report", "confidential": true,
            "name": "王五", "address": "河西区友谊路2号",
            "recording_url": "https://rec.example.cn/call-1.wav",
            "items": [
                {"content": "友谊路2号门口路灯坏了一周", "category": "report"},
                {"content": "友谊路与平江道路口井盖丢失", "category": "help"}
            ]
        }
    });
    let r = generic_ok(&gw, "desk", &reg);
    assert_eq!(r["action"], "continue", "{r}");
    let numbers = numbers(&r);
    assert_eq!(numbers.len(), 2, "one order per item: {r}");
    assert!(
        r["text"].as_str().unwrap_or_default().contains(&numbers[0]),
        "{r}"
    );
    // The platform retries: the same answer, and no second order.
    let again = generic_ok(&gw, "desk", &reg);
    assert_eq!(again, r, "a retry gets the first answer");
    // So does a retry of the ringing.
    assert_eq!(
        generic_ok(&gw, "desk", &started("call-1", dialled)),
        json!({"action": "continue"})
    );

    let lines = settled_deliveries(&gw, &sim);
    let mut got = delivered_orders(&lines);
    got.sort();
    let mut want = numbers.clone();
    want.sort();
    assert_eq!(
        got, want,
        "exactly the registered orders reach dispatch; no redirect does"
    );
    for (i, n) in numbers.iter().enumerate() {
        let order = lines
            .iter()
            .find(|l| l["idempotency_key"] == n.as_str())
            .expect("delivered");
        assert_eq!(order["number"], n.as_str(), "{order}");
        assert_eq!(order["channel"], "cti", "{order}");
        assert_eq!(order["channel_ref"], "call-1", "{order}");
        assert_eq!(
            order["submitter"]["identity"],
            format!("phone:{citizen}"),
            "{order}"
        );
        assert_eq!(order["submitter"]["phone"], citizen, "{order}");
        assert_eq!(order["submitter"]["name"], "王五", "{order}");
        assert_eq!(order["confidential"], true, "{order}");
        assert_eq!(order["location"]["address"], "河西区友谊路2号", "{order}");
        assert_eq!(
            order["item"],
            json!({"index": i + 1, "count": 2}),
            "{order}"
        );
        assert_eq!(
            order["category"],
            ["report", "help"][i],
            "each item keeps its category: {order}"
        );
        let att = order["attachments"].as_array().expect("attachments");
        assert!(
            att.iter().any(
                |a| a["kind"] == "recording" && a["url"] == "https://rec.example.cn/call-1.wav"
            ),
            "the recording is attached: {order}"
        );
    }
    assert!(
        lines[0]["received_at"]
            .as_str()
            .unwrap_or_default()
            .ends_with("+08:00"),
        "{}",
        lines[0]
    );

    // The redirects are on the callers' records, with the rule's reason.
    let view = wait_until("the redirect on the caller's record", LONG, || {
        let v = caller(&gw, citizen);
        (v["redirects"].as_array().is_some_and(|r| !r.is_empty())).then_some(v)
    });
    assert_eq!(view["redirects"][0]["number"], "119", "{view}");
    assert_eq!(view["redirects"][0]["channel"], "cti", "{view}");
    assert!(
        view["warnings"].as_array().is_some_and(Vec::is_empty),
        "{view}"
    );
    assert!(view["suspension"].is_null(), "{view}");

    assert_no_raw_numbers(&gw, &[citizen, "13912340002", "13912340003"]);
}

#[test]
fn generic_ladder_flags_long_calls_quota_and_emergencies_bypass() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let extra = format!("{}{LADDER}", generic_profiles());
    let gw = Gateway::start(dir.path(), &sim.url, &extra);

    // Agent-flagged abuse weighs two: the first flag uses up the one reminder...
    let abuser = "13912340011";
    let f1 = generic_ok(&gw, "desk", &flagged("ab-1", abuser, "辱骂话务员"));
    assert_eq!(f1["action"], "continue", "{f1}");
    assert_eq!(f1["flag"], "warned", "{f1}");
    let view = caller(&gw, abuser);
    let warnings = view["warnings"].as_array().cloned().unwrap_or_default();
    assert!(!warnings.is_empty(), "{view}");
    assert!(
        warnings.iter().all(|w| w["channel"] == "cti"
            && w["evidence"]
                .as_str()
                .unwrap_or_default()
                .contains("辱骂话务员")),
        "{view}"
    );
    assert!(view["suspension"].is_null(), "{view}");
    // ...a retried flag is not a second offence...
    assert_eq!(
        generic_ok(&gw, "desk", &flagged("ab-1", abuser, "辱骂话务员")),
        f1
    );
    assert_eq!(
        caller(&gw, abuser)["warnings"].as_array().map(Vec::len),
        Some(warnings.len()),
        "a platform retry records nothing new"
    );
    assert!(caller(&gw, abuser)["suspension"].is_null());
    // ...and the second flag suspends.
    let note = "反复拨打骚扰，威胁邻居欧阳娜娜（朝阳区建国路88号1502室），自称13611112222";
    let f2 = generic_ok(&gw, "desk", &flagged("ab-2", abuser, note));
    assert_eq!(f2["action"], "reject", "{f2}");
    let view = caller(&gw, abuser);
    let reason = view["suspension"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.ends_with("话务员标记：威胁、骚扰"),
        "the kinds of offence are in the reason: {view}"
    );
    // The reason is read to the caller and published: it does not say which agent reported
    // the call, nor carry anything else the agent wrote (until 2026-12-07 it carried the note,
    // numbers masked: the neighbour's name and address).
    for private in ["A017", "欧阳", "建国路", "1502", "反复拨打"] {
        assert!(!reason.contains(private), "{private}: {view}");
        assert!(!f2.to_string().contains(private), "{private}: {f2}");
    }

    assert!(!f2.to_string().contains("A017"), "{f2}");
    assert!(view["suspension"]["until"].is_string(), "{view}");
    assert_eq!(view["suspensions"][0]["decided_by"], "rule", "{view}");
    // The agent's words are kept with the suspension, for operators and the police packet:
    // that flag records no reminder, and until 2026-12-07 they were then kept nowhere.
    let kept = format!("话务员A017标记：{note}");
    assert_eq!(view["suspension"]["evidence"], kept.as_str(), "{view}");
    assert_eq!(view["suspensions"][0]["evidence"], kept.as_str(), "{view}");
    let packet = gw.admin_get(&format!("/admin/v1/callers/phone:{abuser}/evidence"));
    assert_eq!(
        packet["records"][0]["suspensions"][0]["evidence"],
        kept.as_str(),
        "{packet}"
    );

    // The suspended caller rings: rejected, with the reason in `text`.
    let rj = generic_ok(&gw, "desk", &started("ab-3", abuser));
    assert_eq!(rj["action"], "reject", "{rj}");
    let text = rj["text"].as_str().unwrap_or_default();
    assert!(text.contains(&reason), "reason in text: {rj}");
    // Neither the caller nor anyone who types the caller's number into the web form is told
    // the evidence.
    let (status, web) = gw.submit(json!({"content": "小区路灯不亮", "phone": abuser}));
    assert_eq!(
        (status, web["status"].as_str()),
        (403, Some("suspended")),
        "{web}"
    );
    for private in ["A017", "欧阳", "建国路", "1502", "反复拨打", "evidence"] {
        assert!(!text.contains(private), "{private}: {rj}");
        assert!(!web.to_string().contains(private), "{private}: {web}");
    }
    assert!(
        text.contains("119"),
        "told emergencies still go through: {rj}"
    );
    // A retry of that ringing gets the same answer.
    assert_eq!(generic_ok(&gw, "desk", &started("ab-3", abuser)), rj);
    // An emergency from the suspended caller is still put through.
    let em = generic_ok(&gw, "desk", &speech("ab-3", abuser, FIRE));
    assert_eq!(
        (em["action"].as_str(), em["number"].as_str()),
        (Some("transfer"), Some("119")),
        "{em}"
    );
    let em = generic_ok(&gw, "quiet", &speech("ab-4", abuser, FIRE));
    assert_eq!(em["action"], "say", "{em}");
    // The hotline calling the suspended citizen back is not the citizen calling: not rejected,
    // and it does not count against the citizen.
    let out = json!({"event": "call.started", "call_id": "cb-1", "from": "12345", "to": abuser,
                     "direction": "out", "at": AT});
    assert_eq!(
        generic_ok(&gw, "desk", &out),
        json!({"action": "continue"}),
        "an outbound callback to a suspended citizen"
    );

    // A long call that registered a matter, and a short call, are no offence.
    let citizen = "13912340013";
    let reg = json!({"event": "call.registered", "call_id": "ok-1", "from": citizen,
                     "to": "12345", "at": AT,
                     "order": {"content": "小区二次供水水质发黄", "category": "complaint"}});
    let r = generic_ok(&gw, "desk", &reg);
    assert_eq!(numbers(&r).len(), 1, "{r}");
    assert_eq!(
        generic_ok(&gw, "desk", &ended("ok-1", citizen, 1500)),
        json!({"action": "continue"})
    );
    let brief = "13912340014";
    assert_eq!(
        generic_ok(&gw, "desk", &ended("sh-1", brief, 120)),
        json!({"action": "continue"})
    );
    // An unanswered call is recorded for call-back, not held against the caller.
    let missed = json!({"event": "call.ended", "call_id": "ms-1", "from": brief, "to": "12345",
                        "at": AT, "duration_s": 0, "answered": false, "cause": "cancel"});
    assert_eq!(
        generic_ok(&gw, "desk", &missed),
        json!({"action": "continue"})
    );
    for who in [citizen, brief] {
        let v = caller(&gw, who);
        assert!(v["warnings"].as_array().is_some_and(Vec::is_empty), "{v}");
    }

    // The quota counts ringing calls: two pass, the third is flagged for the agent desk, the
    // fourth (no reminders left) is rejected.
    let frequent = "13912340015";
    // Callbacks from the hotline come first and use none of the citizen's quota; a long one
    // is no offence either.
    for i in 1..=3 {
        let out = json!({"event": "call.started", "call_id": format!("cb-fq-{i}"), "from": "12345",
                         "to": frequent, "direction": "out", "at": AT});
        assert_eq!(generic_ok(&gw, "desk", &out), json!({"action": "continue"}));
    }
    let out_end = json!({"event": "call.ended", "call_id": "cb-fq-1", "from": "12345",
                         "to": frequent, "direction": "out", "at": AT, "duration_s": 2400});
    assert_eq!(
        generic_ok(&gw, "desk", &out_end),
        json!({"action": "continue"})
    );
    let v = caller(&gw, frequent);
    assert!(v["warnings"].as_array().is_some_and(Vec::is_empty), "{v}");
    let answers: Vec<Value> = (1..=4)
        .map(|i| generic_ok(&gw, "desk", &started(&format!("fq-{i}"), frequent)))
        .collect();
    assert_eq!(answers[0], json!({"action": "continue"}));
    assert_eq!(answers[1], json!({"action": "continue"}));
    assert_eq!(answers[2]["action"], "continue", "{}", answers[2]);
    assert_eq!(answers[2]["flag"], "over_quota", "{}", answers[2]);
    assert!(!answers[2]["text"].as_str().unwrap_or_default().is_empty());
    assert_eq!(answers[3]["action"], "reject", "{}", answers[3]);
    let view = caller(&gw, frequent);
    assert_eq!(view["warnings"].as_array().map(Vec::len), Some(1), "{view}");
    assert!(view["suspension"]["reason"].is_string(), "{view}");
    // A suspension over quota keeps the evidence its reminders carry (a ringing call's).
    assert_eq!(
        view["suspension"]["evidence"], view["warnings"][0]["evidence"],
        "{view}"
    );
    assert_eq!(view["suspension"]["evidence"], "来电", "{view}");

    // Only the registered matter reached dispatch; no redirect did.
    let lines = settled_deliveries(&gw, &sim);
    assert_eq!(delivered_orders(&lines), numbers(&r));

    assert_no_raw_numbers(&gw, &[abuser, citizen, brief, frequent]);
}

#[test]
fn generic_bad_requests_get_clear_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let extra = format!("{}{LADDER}", generic_profiles());
    let gw = Gateway::start(dir.path(), &sim.url, &extra);
    let who = "13912340021";
    let url = format!("{}/v1/cti/desk", gw.url);
    let json_ct = "application/json";
    let flag = flagged("bad-1", who, "测试").to_string().into_bytes();

    // Authentication comes first: refused requests record nothing.
    for (url, bearer) in [
        (url.clone(), Some("t2")),
        (url.clone(), None),
        (format!("{url}/wrong"), None),
        (format!("{}/v1/cti/zm/{DESK_TOKEN}", gw.url), None),
    ] {
        let (status, _, body) = post_raw(&url, bearer, json_ct, flag.clone());
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert_eq!(status, 401, "{url} {bearer:?}: {body}");
        assert_eq!(v["status"], "rejected", "{body}");
        assert!(
            !v["error"]["code"].as_str().unwrap_or_default().is_empty(),
            "{body}"
        );
    }
    let view = caller(&gw, who);
    assert!(
        view["warnings"].as_array().is_some_and(Vec::is_empty),
        "{view}"
    );
    // One matching token is enough: a right bearer next to a wrong path token...
    let (status, _, body) = post_raw(
        &format!("{url}/wrong"),
        Some(DESK_TOKEN),
        json_ct,
        flag.clone(),
    );
    assert_eq!(status, 200, "{body}");
    // ...and the path token alone.
    let (status, _, body) = post_raw(
        &format!("{url}/{DESK_TOKEN}"),
        None,
        json_ct,
        started("bad-2", who).to_string().into_bytes(),
    );
    assert_eq!((status, body.as_str()), (200, r#"{"action":"continue"}"#));
    let view = caller(&gw, who);
    let counted = view["warnings"].as_array().map(Vec::len).unwrap_or(0);
    assert!(counted > 0, "the authenticated flag counted: {view}");

    // Bad input.
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (json_ct, b"{not json".to_vec(), 400),
        (json_ct, b"[1,2]".to_vec(), 400),
        (json_ct, json!({"event": "call.exploded", "call_id": "x", "from": who}).to_string().into_bytes(), 422),
        (json_ct, json!({"call_id": "x", "from": who}).to_string().into_bytes(), 422),
        (json_ct, json!({"event": "call.started", "from": who}).to_string().into_bytes(), 422),
        (json_ct, json!({"event": "call.input", "call_id": "x", "from": who}).to_string().into_bytes(), 422),
        (json_ct, json!({"event": "call.registered", "call_id": "x", "from": who}).to_string().into_bytes(), 422),
        (json_ct, json!({"event": "call.registered", "call_id": "x", "from": who, "order": {"content": ""}}).to_string().into_bytes(), 422),
        (json_ct, json!({"event": "call.flagged", "call_id": "x", "from": who, "agent": "A1"}).to_string().into_bytes(), 422),
        (json_ct, json!({"event": "call.ended", "call_id": "x", "from": who, "duration_s": -5}).to_string().into_bytes(), 422),
        (json_ct, json!({"event": "call.started", "call_id": "x", "from": who, "at": "yesterday"}).to_string().into_bytes(), 422),
        ("text/plain", b"call.started".to_vec(), 415),
    ];
    for (ct, body, want) in cases {
        let shown = String::from_utf8_lossy(&body).to_string();
        let (status, rct, answer) = post_raw(&url, Some(DESK_TOKEN), ct, body);
        assert_eq!(status, want, "{shown} -> {answer}");
        assert!(rct.starts_with("application/json"), "{rct}");
        let v: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
        assert_eq!(v["status"], "rejected", "{answer}");
        assert!(
            !v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{answer}"
        );
    }
    // Oversized bodies are refused before they are read whole.
    let big = json!({"event": "call.started", "call_id": "x", "from": who,
                     "pad": "x".repeat(2 * 1024 * 1024)});
    let (status, _, answer) = post_raw(
        &url,
        Some(DESK_TOKEN),
        json_ct,
        big.to_string().into_bytes(),
    );
    assert_eq!(status, 413, "{answer}");

    // An unknown profile.
    let (status, _, answer) = post_raw(
        &format!("{}/v1/cti/nope", gw.url),
        Some(DESK_TOKEN),
        json_ct,
        started("x", who).to_string().into_bytes(),
    );
    assert_eq!(status, 404, "{answer}");

    // Nothing changed: the warnings are what the one good flag made, no suspension, no order.
    let view = caller(&gw, who);
    assert_eq!(
        view["warnings"].as_array().map(Vec::len),
        Some(counted),
        "{view}"
    );
    assert!(view["suspension"].is_null(), "{view}");
    assert!(settled_deliveries(&gw, &sim).is_empty());
    let health = client().get(format!("{}/healthz", gw.url)).send().unwrap();
    assert!(health.status().is_success());
    assert_no_raw_numbers(&gw, &[who]);
}

#[test]
fn zammad_new_calls_in_json_and_form_and_busy_for_suspended_callers() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &generic_profiles());
    let url = format!("{}/v1/cti/zm/{ZAMMAD_TOKEN}", gw.url);
    let c = client();
    let normal = "+8613912340031";
    let suspended = "+8613912340032";

    let zjson = |body: Value| -> (u16, String) {
        let r = c.post(&url).json(&body).send().expect("post");
        (r.status().as_u16(), r.text().unwrap_or_default())
    };
    let zform = |url: &str, pairs: &[(&str, &str)]| -> (u16, String) {
        let r = c.post(url).form(pairs).send().expect("post");
        (r.status().as_u16(), r.text().unwrap_or_default())
    };
    let as_json = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);

    // newCall, answer, hangup of a normal caller: nothing to do, `{}`.
    for (event, extra) in [
        (
            "newCall",
            json!({"user": ["Alice", "Bob"], "queue": "12345"}),
        ),
        ("answer", json!({"user": "Alice", "answeringNumber": "801"})),
        (
            "hangup",
            json!({"cause": "normalClearing", "answeringNumber": "801"}),
        ),
    ] {
        let mut body = json!({"event": event, "from": normal, "to": "12345",
                              "direction": "in", "callId": "zm-json-1"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, answer) = zjson(body);
        assert_eq!(status, 200, "{event}: {answer}");
        assert_eq!(as_json(&answer), json!({}), "{event}");
    }
    let (status, answer) = zform(
        &url,
        &[
            ("event", "newCall"),
            ("from", normal),
            ("to", "12345"),
            ("direction", "in"),
            ("callId", "zm-form-1"),
            ("user[]", "Alice"),
            ("user[]", "Bob"),
        ],
    );
    assert_eq!((status, as_json(&answer)), (200, json!({})), "{answer}");

    // A suspended caller: Zammad's busy rejection, in both encodings and on a retry.
    suspend(&gw, "13912340032", "多次恶意拨打");
    let busy = json!({"action": "reject", "reason": "busy"});
    let new_call = json!({"event": "newCall", "from": suspended, "to": "12345",
                          "direction": "in", "callId": "zm-json-2"});
    let (status, answer) = zjson(new_call.clone());
    assert_eq!((status, as_json(&answer)), (200, busy.clone()), "{answer}");
    let (status, answer) = zjson(new_call);
    assert_eq!(
        (status, as_json(&answer)),
        (200, busy.clone()),
        "retry: {answer}"
    );
    let (status, answer) = zform(
        &url,
        &[
            ("event", "newCall"),
            ("from", suspended),
            ("to", "12345"),
            ("direction", "in"),
            ("callId", "zm-form-2"),
        ],
    );
    assert_eq!((status, as_json(&answer)), (200, busy), "{answer}");

    // Wrong or missing path token: 401; a bad direction: 422 naming it.
    let pairs = [
        ("event", "newCall"),
        ("from", normal),
        ("to", "12345"),
        ("direction", "in"),
        ("callId", "zm-3"),
    ];
    let (status, answer) = zform(&format!("{}/v1/cti/zm/nope", gw.url), &pairs);
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = zform(&format!("{}/v1/cti/zm", gw.url), &pairs);
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = zform(
        &url,
        &[
            ("event", "newCall"),
            ("from", normal),
            ("to", "12345"),
            ("direction", "sideways"),
            ("callId", "zm-4"),
        ],
    );
    assert_eq!(status, 422, "{answer}");
    assert!(answer.contains("direction"), "{answer}");
    let (status, answer) = zjson(json!({"event": "transfer", "from": normal, "to": "12345",
                                        "direction": "in", "callId": "zm-5"}));
    assert_eq!(status, 422, "{answer}");

    // The normal caller's record is clean; the other one carries the operator's reason.
    let view = caller(&gw, "13912340031");
    assert!(
        view["suspension"].is_null() && view["warnings"].as_array().is_some_and(Vec::is_empty),
        "{view}"
    );
    let view = caller(&gw, "13912340032");
    assert_eq!(view["suspension"]["reason"], "多次恶意拨打", "{view}");
    assert!(settled_deliveries(&gw, &sim).is_empty());
    assert_no_raw_numbers(&gw, &["13912340031", "13912340032"]);
}

// ---------------------------------------------------------------------------------------------
// Twilio, through the PyPI `twilio` package.

/// Runs the Twilio peer with one request; its JSON answer.
fn twilio_peer(req: &Value) -> Value {
    let v = common::run_peer("twilio_peer.py", &["call"], req);
    assert_eq!(
        v["self_check"], true,
        "RequestValidator accepts its own signature: {v}"
    );
    v
}

/// Twilio's form parameters for a call step.
fn twilio_params(sid: &str, from: &str, status: &str, extra: &[(&str, &str)]) -> Value {
    let mut p = json!({
        "AccountSid": format!("AC{}", "0".repeat(32)),
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": status,
        "Direction": "inbound",
        "From": from,
        "Caller": from,
        "To": "+8602212345",
        "Called": "+8602212345",
        "FromCountry": "CN",
    });
    for (k, v) in extra {
        p[*k] = json!(v);
    }
    p
}

fn sid(n: u32) -> String {
    format!("CA{n:032x}")
}

/// Posts a signed step to a Twilio profile and checks the answer against the VoiceResponse
/// built from `expect`; returns the peer's answer.
struct Twilio<'a> {
    gw: &'a Gateway,
}

impl Twilio<'_> {
    fn call(
        &self,
        profile: &str,
        sign_base: &str,
        query: &str,
        params: Value,
        expect: Value,
    ) -> Value {
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        twilio_peer(&json!({
            "auth_token": TWILIO_AUTH,
            "sign_url": format!("{sign_base}{q}"),
            "post_url": format!("{}/v1/cti/{profile}{q}", self.gw.url),
            "params": params,
            "expect": expect,
        }))
    }

    /// As `call`, and asserts a 200 TwiML answer structurally equal to the expectation.
    fn twiml(
        &self,
        profile: &str,
        sign_base: &str,
        query: &str,
        params: Value,
        expect: Value,
    ) -> Value {
        let v = self.call(profile, sign_base, query, params, expect);
        assert_eq!(v["status"], 200, "{v}");
        let ct = v["content_type"].as_str().unwrap_or_default();
        assert!(ct.contains("xml"), "TwiML content type: {ct}");
        assert!(!v["got"].is_null(), "the answer is XML: {}", v["body"]);
        assert_eq!(
            v["got"], v["want"],
            "gateway answered {}\nVoiceResponse builds {}",
            v["body"], v["want_xml"]
        );
        v
    }
}

#[test]
fn twilio_webhooks_signed_by_request_validator_get_twiml() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}/v1/cti/tw");
    // Behind a proxy: Twilio calls the public https URL, the proxy forwards to loopback.
    let proxied = "https://hotline.example.cn/v1/cti/tw2";
    let extra = format!(
        r#"{}
[channels.cti.tw]
format = "twilio"
auth_token = "{TWILIO_AUTH}"
public_url = "{public}"
emergency_transfer = false
continue_twiml = "<Redirect>{IVR}</Redirect>"

[channels.cti.tw2]
format = "twilio"
auth_token = "{TWILIO_AUTH}"
shared_key_secret = "{TWILIO_SHARED}"
public_url = "{proxied}"
emergency_transfer = true
continue_twiml = "<Redirect>{IVR}</Redirect>"
"#,
        generic_profiles()
    );
    let config = write_config(dir.path(), port, &sim.url, &extra);
    let gw = Gateway::start_with(config, port);
    let tw = Twilio { gw: &gw };
    let normal = "+8613912340041";
    let caller_in_danger = "+8613912340042";
    let suspended = "+8613912340043";

    // The citizen-facing notice is the same on every channel: take it from the generic profile.
    let notice = |speech_text: &str| -> String {
        let a = generic_ok(
            &gw,
            "quiet",
            &speech("ref-call", "13912340049", speech_text),
        );
        assert_eq!(a["action"], "say", "{a}");
        a["text"].as_str().unwrap_or_default().to_string()
    };
    let fire_notice = notice(FIRE);

    // A normal caller rings: the profile's continuation carries the call on to the IVR (an
    // empty document would end the call).
    let v = tw.twiml(
        "tw",
        &public,
        "",
        twilio_params(&sid(1), normal, "ringing", &[]),
        json!([["redirect", {"url": IVR}]]),
    );
    assert_eq!(
        v["got"]["children"].as_array().map(Vec::len),
        Some(1),
        "{v}"
    );
    // The same ringing again (a retry) gets the same document.
    tw.twiml(
        "tw",
        &public,
        "",
        twilio_params(&sid(1), normal, "ringing", &[]),
        json!([["redirect", {"url": IVR}]]),
    );
    // An ordinary menu choice on a step URL with a query (signed with it): carry on.
    tw.twiml(
        "tw",
        &public,
        "step=menu",
        twilio_params(&sid(1), normal, "in-progress", &[("Digits", "1")]),
        json!([["redirect", {"url": IVR}]]),
    );

    // Emergency speech where transfer is off: say (in Mandarin) and hang up.
    tw.twiml(
        "tw",
        &public,
        "step=speech",
        twilio_params(
            &sid(2),
            caller_in_danger,
            "in-progress",
            &[("SpeechResult", FIRE), ("Confidence", "0.91")],
        ),
        json!([["say", {"message": fire_notice, "voice": "Polly.Zhiyu", "language": "cmn-CN"}], ["hangup", {}]]),
    );
    // Emergency IVR digits where transfer is off.
    let police_notice = {
        let a = generic_ok(
            &gw,
            "quiet",
            &json!({"event": "call.input", "call_id": "ref-2", "from": "13912340049",
                    "to": "12345", "at": AT, "digits": "110"}),
        );
        a["text"].as_str().unwrap_or_default().to_string()
    };
    assert!(police_notice.contains("110"), "{police_notice}");
    tw.twiml(
        "tw",
        &public,
        "step=menu",
        twilio_params(
            &sid(3),
            caller_in_danger,
            "in-progress",
            &[("Digits", "110")],
        ),
        json!([["say", {"message": police_notice, "voice": "Polly.Zhiyu", "language": "cmn-CN"}], ["hangup", {}]]),
    );
    // Emergency speech where transfer is on (the proxied profile, signed on the public https
    // URL with the default port spelled out, which Twilio sometimes does): notice, then <Dial>.
    let v = tw.twiml(
        "tw2",
        "https://hotline.example.cn:443/v1/cti/tw2",
        "step=speech",
        twilio_params(&sid(4), caller_in_danger, "in-progress", &[("SpeechResult", FIRE)]),
        json!([["say", {"message": fire_notice, "voice": "Polly.Zhiyu", "language": "cmn-CN"}], ["dial", {"number": "119"}]]),
    );
    let children = v["got"]["children"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        children
            .last()
            .map(|c| (c["name"].clone(), c["text"].clone())),
        Some((json!("Dial"), json!("119")))
    );
    // Words the second opinion strongly doubts (a question about last year's crash), on the
    // same transferring profile: the notice with the number, then the call goes on (no <Dial>,
    // no <Hangup>). The notice is the generic profile's text for the same words.
    let doubted = DOUBTED;
    let advised = generic_ok(&gw, "desk", &speech("ref-3", "13912340049", doubted));
    assert_eq!(advised["flag"], "possible_emergency", "{advised}");
    let advice = advised["text"].as_str().unwrap_or_default().to_string();
    assert!(advice.contains("拨打122"), "{advice}");
    tw.twiml(
        "tw2",
        "https://hotline.example.cn:443/v1/cti/tw2",
        "step=speech",
        twilio_params(&sid(10), normal, "in-progress", &[("SpeechResult", doubted)]),
        json!([["say", {"message": advice, "voice": "Polly.Zhiyu", "language": "cmn-CN"}], ["redirect", {"url": IVR}]]),
    );

    // A number whose voice URL is set to GET: the same step in the signed query.
    let get_step = |params: Value, tamper: bool| {
        twilio_peer(&json!({
            "auth_token": TWILIO_AUTH, "method": "GET", "tamper": tamper,
            "sign_url": format!("{proxied}?step=speech"),
            "post_url": format!("{}/v1/cti/tw2?step=speech", gw.url),
            "params": params,
            "expect": [["say", {"message": fire_notice, "voice": "Polly.Zhiyu", "language": "cmn-CN"}], ["dial", {"number": "119"}]],
        }))
    };
    let fire_by_get = twilio_params(
        &sid(8),
        caller_in_danger,
        "in-progress",
        &[("SpeechResult", FIRE)],
    );
    let v = get_step(fire_by_get.clone(), false);
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["got"], v["want"], "{v}");
    let v = get_step(fire_by_get, true);
    assert_eq!(v["status"], 403, "a query changed after signing: {v}");
    // A Webhooks Rule signs with its SharedKey secret and HMAC-SHA256 (and says so in a
    // header); the profile that has the secret takes it, the one without refuses it.
    let by_rule = |profile: &str, sign: &str, secret: &str| {
        twilio_peer(&json!({
            "auth_token": TWILIO_AUTH, "rule": {"secret": secret, "algorithm": "HMAC_SHA256"},
            "sign_url": format!("{sign}?step=speech"),
            "post_url": format!("{}/v1/cti/{profile}?step=speech", gw.url),
            "params": twilio_params(&sid(9), caller_in_danger, "in-progress", &[("SpeechResult", FIRE)]),
            "expect": [["say", {"message": fire_notice, "voice": "Polly.Zhiyu", "language": "cmn-CN"}], ["dial", {"number": "119"}]],
        }))
    };
    let v = by_rule("tw2", proxied, TWILIO_SHARED);
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["got"], v["want"], "{v}");
    let v = by_rule("tw2", proxied, TWILIO_AUTH);
    assert_eq!(
        v["status"], 403,
        "the rule's header, the auth token's key: {v}"
    );
    let v = by_rule("tw", &public, TWILIO_SHARED);
    assert_eq!(v["status"], 403, "no shared key on this profile: {v}");

    // Only a Twilio profile takes GET.
    let resp = client()
        .get(format!("{}/v1/cti/quiet?event=call.started", gw.url))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");

    // A suspended caller rings: <Reject> is the first (and only) verb.
    suspend(&gw, "13912340043", "多次恶意拨打");
    for profile_url in [("tw", public.as_str()), ("tw2", proxied)] {
        let (profile, url) = profile_url;
        let v = tw.twiml(
            profile,
            url,
            "",
            twilio_params(&sid(5), suspended, "ringing", &[]),
            json!([["reject", {"reason": "rejected"}]]),
        );
        assert_eq!(v["got"]["children"][0]["name"], "Reject", "{v}");
    }
    // The suspended caller's emergency is still put through.
    tw.twiml(
        "tw2",
        proxied,
        "step=speech",
        twilio_params(&sid(5), suspended, "in-progress", &[("SpeechResult", FIRE)]),
        json!([["say", {"message": fire_notice, "voice": "Polly.Zhiyu", "language": "cmn-CN"}], ["dial", {"number": "119"}]]),
    );

    // A voicemail recording becomes an order with the recording attached; the caller hears
    // the order number.
    let v = tw.call(
        "tw",
        &public,
        "step=voicemail",
        twilio_params(
            &sid(6),
            normal,
            "completed",
            &[
                (
                    "RecordingUrl",
                    "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1",
                ),
                ("RecordingSid", "RE1"),
                ("RecordingDuration", "42"),
                ("TranscriptionText", "小区门口的路灯坏了一个月了"),
            ],
        ),
        Value::Null,
    );
    assert_eq!(v["status"], 200, "{v}");
    let verbs = v["got"]["children"].as_array().cloned().unwrap_or_default();
    // The order number is said, then the call goes on as the profile says.
    assert_eq!(verbs.len(), 2, "{v}");
    assert_eq!(verbs[0]["name"], "Say", "{v}");
    assert_eq!(verbs[1]["name"], "Redirect", "{v}");
    assert_eq!(verbs[0]["attrs"]["language"], "cmn-CN", "{v}");
    assert_eq!(verbs[0]["attrs"]["voice"], "Polly.Zhiyu", "{v}");
    let said = verbs[0]["text"].as_str().unwrap_or_default().to_string();
    let lines = wait_until("the voicemail order at dispatch", LONG, || {
        let l = sim.lines();
        (!delivered_orders(&l).is_empty()).then_some(l)
    });
    let order = lines.iter().find(|l| is_order(l)).expect("an order line");
    assert!(
        said.contains(order["number"].as_str().unwrap_or("?")),
        "the number is read out: {said}"
    );
    assert_eq!(order["channel"], "cti", "{order}");
    assert_eq!(order["channel_ref"], sid(6), "{order}");
    assert_eq!(
        order["submitter"]["identity"], "phone:13912340041",
        "{order}"
    );
    assert_eq!(order["content"], "小区门口的路灯坏了一个月了", "{order}");
    assert_eq!(order["attachments"][0]["kind"], "recording", "{order}");
    assert_eq!(
        order["attachments"][0]["url"],
        "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1",
        "{order}"
    );

    // Forged requests: 403, and nothing happens.
    let forged = [
        // Tampered after signing.
        json!({"auth_token": TWILIO_AUTH, "sign_url": format!("{public}?step=menu"),
               "post_url": format!("{}/v1/cti/tw?step=menu", gw.url), "tamper": true,
               "params": twilio_params(&sid(7), normal, "in-progress", &[("Digits", "11")])}),
        // Signed with another account's token.
        json!({"auth_token": "someone-else", "sign_url": public,
               "post_url": format!("{}/v1/cti/tw", gw.url),
               "params": twilio_params(&sid(7), suspended, "ringing", &[])}),
        // Signed for another URL (a replay against another profile).
        json!({"auth_token": TWILIO_AUTH, "sign_url": format!("{public}?step=other"),
               "post_url": format!("{}/v1/cti/tw?step=menu", gw.url),
               "params": twilio_params(&sid(7), normal, "in-progress", &[("SpeechResult", FIRE)])}),
    ];
    for req in forged {
        let v = twilio_peer(&req);
        assert_eq!(v["status"], 403, "{v}");
        assert!(v["got"].is_null(), "no TwiML for a forged request: {v}");
    }
    // No signature at all.
    let (status, _, body) = post_raw(
        &format!("{}/v1/cti/tw", gw.url),
        None,
        "application/x-www-form-urlencoded",
        b"CallSid=CA1&CallStatus=ringing&From=%2B8613912340041".to_vec(),
    );
    assert_eq!(status, 403, "{body}");

    // The redirects are on record; only the voicemail reached dispatch.
    let view = wait_until("the Twilio redirects on record", LONG, || {
        let v = caller(&gw, "13912340042");
        (v["redirects"].as_array().map(Vec::len) >= Some(5)).then_some(v)
    });
    assert!(
        view["redirects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["channel"] == "cti"),
        "{view}"
    );
    let lines = settled_deliveries(&gw, &sim);
    assert_eq!(lines.len(), 1, "only the voicemail: {lines:?}");
    assert_no_raw_numbers(&gw, &["13912340041", "13912340042", "13912340043"]);
}

#[test]
fn withheld_numbers_are_throttled_only_by_the_platforms_stable_id() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        &format!("{}{LADDER}", generic_profiles()),
    );
    let call = |n: u32, caller_ref: Option<&str>| {
        let mut ev = started(
            &format!("anon-{n}-{}", caller_ref.unwrap_or("none")),
            "anonymous",
        );
        if let Some(r) = caller_ref {
            ev["caller_ref"] = json!(r);
        }
        generic_ok(&gw, "desk", &ev)["action"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // No stable id: never throttled, however often.
    let free: Vec<String> = (0..6).map(|n| call(n, None)).collect();
    assert!(free.iter().all(|a| a == "continue"), "{free:?}");
    // With a stable id, the ladder applies to it.
    let laddered: Vec<String> = (0..4).map(|n| call(n, Some("sip-user-42"))).collect();
    assert_eq!(laddered, ["continue", "continue", "continue", "reject"]);
    let view = gw.admin_get("/admin/v1/callers/cti:desk:sip-user-42");
    assert!(view["suspension"]["until"].is_string(), "{view}");
    assert!(
        !gw.logs().contains("sip-user-42"),
        "the stable id is masked in logs"
    );
}

/// A profile trusting only its trunk's SIP host, and one that names none (the default).
fn sip_profiles() -> String {
    format!(
        r#"
[channels.cti.trunk]
format = "generic"
token = "{DESK_TOKEN}"
sip_number_hosts = ["TRUNK.example.cn", "10.0.0.5"]

[channels.cti.open]
format = "generic"
token = "{DESK_TOKEN}"
"#
    )
}

/// The review of 2026-12-07, reproduced against the release binary: eight `call.started` from
/// `sip:13600003333@attacker.example` made `phone:13600003333` and got the real line rejected
/// at ringing. A SIP caller id from a host the profile does not list is the platform's id for
/// that caller, throttled on its own; the number's line is untouched.
#[test]
fn a_sip_caller_id_from_a_host_not_listed_never_suspends_that_number() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &sip_profiles());
    for (profile, from) in [
        ("trunk", "sip:13600003333@attacker.example"),
        (
            "open",
            "sip:+8613600003333@attacker.example:5060;transport=udp",
        ),
    ] {
        let answers: Vec<String> = (0..8)
            .map(|n| {
                generic_ok(&gw, profile, &started(&format!("{profile}-sip-{n}"), from))["action"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        // The address itself is laddered as any caller (the default quota and reminders).
        assert_eq!(
            answers.last().map(String::as_str),
            Some("reject"),
            "{answers:?}"
        );
    }
    // The real line rings through, on both profiles, and has nothing on record.
    for profile in ["trunk", "open"] {
        let real = generic_ok(
            &gw,
            profile,
            &started(&format!("real-{profile}"), "+8613600003333"),
        );
        assert_eq!(real["action"], "continue", "{real}");
    }
    let view = caller(&gw, "13600003333");
    assert!(view["suspension"].is_null(), "{view}");
    // The suspensions fell on the addresses, each the platform's id for that caller.
    for (profile, from) in [
        ("trunk", "sip:13600003333@attacker.example"),
        (
            "open",
            "sip:+8613600003333@attacker.example:5060;transport=udp",
        ),
    ] {
        let own = gw.admin_get(&format!("/admin/v1/callers/cti:{profile}:{from}"));
        assert!(own["suspension"]["until"].is_string(), "{own}");
    }
    assert_no_raw_numbers(&gw, &["13600003333"]);
}

/// The hotline's own trunk puts the phone network's caller id in the SIP user part: from a
/// listed host (any case, with a port and parameters) it is that phone number, whose quota and
/// suspension hold for the number's plain calls as well.
#[test]
fn a_sip_caller_id_from_a_listed_host_is_the_phone_number() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &sip_profiles());
    let from = "\"市民\" <sip:13600004444@trunk.EXAMPLE.cn:5060;transport=udp>";
    let answers: Vec<String> = (0..8)
        .map(|n| {
            generic_ok(&gw, "trunk", &started(&format!("trunk-{n}"), from))["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        answers.last().map(String::as_str),
        Some("reject"),
        "{answers:?}"
    );
    let view = caller(&gw, "13600004444");
    assert!(view["suspension"]["until"].is_string(), "{view}");
    let real = generic_ok(&gw, "open", &started("real", "+8613600004444"));
    assert_eq!(real["action"], "reject", "{real}");
    assert_no_raw_numbers(&gw, &["13600004444"]);
}

#[test]
fn ivr_status_query_answers_the_orders_status() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &generic_profiles());
    let reg = json!({"event": "call.registered", "call_id": "st-1", "from": "13755550001",
                     "order": {"content": "路灯坏了"}});
    let number = numbers(&generic_ok(&gw, "desk", &reg)).remove(0);
    wait_until("the order at dispatch", LONG, || {
        delivered_orders(&sim.lines())
            .contains(&number)
            .then_some(())
    });
    let ask = json!({"event": "call.input", "call_id": "st-2", "from": "13755550002",
                     "digits": format!("*{number}#")});
    let a = generic_ok(&gw, "desk", &ask);
    assert_eq!(a["action"], "continue", "{a}");
    assert!(a["text"].as_str().unwrap().contains(&number), "{a}");
    assert_eq!(
        delivered_orders(&sim.lines()).len(),
        1,
        "a query makes no order"
    );
}

/// A matter the rules would redirect and the second opinion strongly doubts (the insurer of
/// last year's crash), said by a caller and registered by an agent: neither is transferred.
#[test]
fn speech_and_registrations_the_second_opinion_doubts_stay_with_12345() {
    let text = DOUBTED;
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &generic_profiles());
    // Said by the caller in the IVR: told the number in case the danger is now, and kept on
    // the line for an agent instead of being transferred away; the platform's retry of the
    // event gets the same answer. A sure emergency is still transferred.
    let said = generic_ok(&gw, "desk", &speech("dq-1", "13755550011", text));
    assert_eq!(
        (said["action"].as_str(), said["flag"].as_str()),
        (Some("continue"), Some("possible_emergency")),
        "{said}"
    );
    assert!(
        said["text"].as_str().is_some_and(|t| t.contains("拨打122")),
        "{said}"
    );
    let again = generic_ok(&gw, "desk", &speech("dq-1", "13755550011", text));
    assert_eq!(again, said);
    let fire = generic_ok(&gw, "desk", &speech("dq-3", "13755550013", FIRE));
    assert_eq!(fire["action"], "transfer", "{fire}");
    let reg = json!({"event": "call.registered", "call_id": "dq-2", "from": "13755550012",
                     "agent": "A017", "order": {"content": text}});
    let r = generic_ok(&gw, "desk", &reg);
    assert_eq!(r["action"], "continue", "{r}");
    let number = numbers(&r).remove(0);
    let order = sim.wait_order(&number);
    assert_eq!(order["emergency_review"]["by"], "rules", "{order}");
    assert_eq!(order["emergency_review"]["number"], "122", "{order}");
}

/// An IVR step that carries both a status query's keys and emergency speech: a caller who
/// began to ask about an order and then said the house is on fire is transferred, not read an
/// order's status.
#[test]
fn an_emergency_said_with_status_query_digits_is_transferred() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &generic_profiles());
    let step = json!({"event": "call.input", "call_id": "st-em", "from": "13755550021",
                      "to": "12345", "at": AT, "digits": "*2026112901000123#",
                      "speech": "着火了，快救人"});
    let a = generic_ok(&gw, "desk", &step);
    assert_eq!(
        (a["action"].as_str(), a["number"].as_str()),
        (Some("transfer"), Some("119")),
        "{a}"
    );
    // Where the profile does not transfer, the caller is told to dial 119 instead.
    let q = generic_ok(&gw, "quiet", &step);
    assert_eq!(q["action"], "say", "{q}");
    assert!(q["text"].as_str().is_some_and(|t| t.contains("119")), "{q}");
}

/// A store that cannot be opened (a damaged file at start-up) serves emergencies only, and a
/// telephone call must still get through to the IVR: the step's retry record that cannot be
/// written is no reason to answer 503, on which Twilio hangs up.
#[test]
fn a_broken_store_still_carries_twilio_calls_to_the_ivr_and_emergencies_to_119() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}/v1/cti/tw");
    let extra = format!(
        r#"{}{LADDER}
[channels.cti.tw]
format = "twilio"
auth_token = "{TWILIO_AUTH}"
public_url = "{public}"
emergency_transfer = true
continue_twiml = "<Redirect>{IVR}</Redirect>"
"#,
        generic_profiles()
    );
    // A damaged SQLite file is how a store breaks here, whatever backend the suite runs on;
    // every backend that cannot be opened is served by the same broken store.
    let node = NodeConfig {
        storage: services::storage_toml_for("sqlite", dir.path()),
        ..NodeConfig::default()
    };
    let config = node.write(dir.path(), port, "", &extra);
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/gateway.db"), vec![0x5au8; 16384]).unwrap();
    let gw = Gateway::start_with(config, port);
    let ready: Value = client()
        .get(format!("{}/readyz", gw.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(ready["store_error"], "store_unavailable", "{ready}");
    let tw = Twilio { gw: &gw };
    let citizen = "+8613912340061";

    // Ringing: on to the IVR. Also past the quota (2 an hour here), whose reminder cannot be
    // recorded either.
    for n in 61..=64 {
        tw.twiml(
            "tw",
            &public,
            "",
            twilio_params(&sid(n), citizen, "ringing", &[]),
            json!([["redirect", {"url": IVR}]]),
        );
    }
    // An ordinary menu choice: carry on.
    tw.twiml(
        "tw",
        &public,
        "step=menu",
        twilio_params(&sid(61), citizen, "in-progress", &[("Digits", "1")]),
        json!([["redirect", {"url": IVR}]]),
    );
    // Fire: the notice naming 119, then the transfer.
    let notice = generic_ok(&gw, "quiet", &speech("ref-b", "13912340069", "着火了"));
    assert_eq!(notice["action"], "say", "{notice}");
    let notice = notice["text"].as_str().unwrap_or_default().to_string();
    assert!(notice.contains("119"), "{notice}");
    tw.twiml(
        "tw",
        &public,
        "step=speech",
        twilio_params(
            &sid(61),
            citizen,
            "in-progress",
            &[("SpeechResult", "着火了")],
        ),
        json!([["say", {"message": notice, "voice": "Polly.Zhiyu", "language": "cmn-CN"}], ["dial", {"number": "119"}]]),
    );
    // A voicemail whose words name a fire (the caller may still be on the line after `#`),
    // and an agent's registration of one: their orders cannot be stored, so the number to
    // dial is said (TwiML, never a JSON 503 on which Twilio hangs up), and the agent desk
    // gets the flag (until 2026-12-07 both answered 503).
    let advice = "如果危险正在发生，请立即挂机拨打119；其他事项请不要挂机，正在为您转接人工服务。";
    tw.twiml(
        "tw",
        &public,
        "step=voicemail",
        twilio_params(
            &sid(65),
            citizen,
            "in-progress",
            &[
                ("RecordingUrl", "https://api.twilio.com/rec/REd1"),
                ("RecordingSid", "REd1"),
                ("TranscriptionText", "我家着火了，火很大，快来人"),
            ],
        ),
        json!([["say", {"message": advice, "voice": "Polly.Zhiyu", "language": "cmn-CN"}], ["redirect", {"url": IVR}]]),
    );
    let reg = json!({"event": "call.registered", "call_id": "ref-r", "from": "13912340068",
                     "to": "12345", "at": AT, "agent": "A017",
                     "order": {"content": "楼下饭店着火了，火很大，有人被困"}});
    let r = generic_ok(&gw, "desk", &reg);
    assert_eq!(
        (r["action"].as_str(), r["flag"].as_str()),
        (Some("continue"), Some("possible_emergency")),
        "{r}"
    );
    assert!(r["text"].as_str().is_some_and(|t| t.contains("119")), "{r}");
    // A routine registration still answers 503: nothing was stored.
    let (status, _) = generic(
        &gw,
        "desk",
        &json!({"event": "call.registered", "call_id": "ref-q", "from": "13912340068",
                "to": "12345", "at": AT, "order": {"content": "小区路灯坏了"}}),
    );
    assert_eq!(status, 503);
    // The lost records are logged without the number, and counted.
    assert!(
        gw.logs().contains("without its retry record"),
        "{}",
        gw.logs()
    );
    assert_no_raw_numbers(&gw, &["13912340061"]);
    assert!(
        gw.metrics().contains("hotline_cti_unremembered_total"),
        "counted in /metrics"
    );
}

/// Agents often save a call's matter after the caller hung up: a long call whose matter is
/// registered after its end is no offence (art. 32 is about occupying the line for nothing).
#[test]
fn a_long_call_whose_matter_is_registered_after_the_hang_up_is_no_offence() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        &format!("{}{LADDER}", generic_profiles()),
    );
    let citizen = "13912340071";
    let a = generic_ok(&gw, "desk", &started("late-1", citizen));
    assert_eq!(a, json!({"action": "continue"}));
    // 33 minutes, well past `long_call` (10 min here), and nothing registered yet.
    let e = generic_ok(&gw, "desk", &ended("late-1", citizen, 2000));
    assert_eq!(
        e,
        json!({"action": "continue"}),
        "not warned at the hang-up"
    );
    let reg = json!({"event": "call.registered", "call_id": "late-1", "from": citizen,
                     "to": "12345", "at": AT, "agent": "A017",
                     "order": {"content": "小区电梯长期故障，物业推诿不修", "category": "complaint"}});
    let r = generic_ok(&gw, "desk", &reg);
    assert_eq!(numbers(&r).len(), 1, "{r}");
    let view = caller(&gw, citizen);
    assert!(
        view["warnings"].as_array().is_some_and(Vec::is_empty),
        "{view}"
    );
    assert!(view["suspension"].is_null(), "{view}");
}

/// A long call with no matter registered within the grace after it ended counts, once: a
/// reminder with the call's length as evidence.
#[test]
fn a_long_call_with_no_matter_counts_once_the_grace_is_over() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    // Long calls from 3 s, so the grace (never longer than that) is over within the test.
    let ladder = LADDER.replace("long_call = \"10m\"", "long_call = \"3s\"");
    assert_ne!(ladder, LADDER);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        &format!("{}{ladder}", generic_profiles()),
    );
    let lingerer = "13912340012";
    assert_eq!(
        generic_ok(&gw, "desk", &started("lg-1", lingerer))["action"],
        "continue"
    );
    let e = generic_ok(&gw, "desk", &ended("lg-1", lingerer, 900));
    assert_eq!(e, json!({"action": "continue"}), "{e}");
    // The retried hangup gets the same answer, and starts no second count.
    assert_eq!(generic_ok(&gw, "desk", &ended("lg-1", lingerer, 900)), e);
    let view = wait_until("the long call counted", LONG, || {
        let v = caller(&gw, lingerer);
        (v["warnings"].as_array().map(Vec::len) == Some(1)).then_some(v)
    });
    assert_eq!(view["warnings"][0]["channel"], "cti", "{view}");
    assert!(
        view["warnings"][0]["evidence"]
            .as_str()
            .unwrap_or_default()
            .contains("15分钟"),
        "{view}"
    );
    assert!(view["suspension"].is_null(), "{view}");
    // The next one suspends, and the suspension keeps that call's evidence.
    generic_ok(&gw, "desk", &started("lg-2", lingerer));
    generic_ok(&gw, "desk", &ended("lg-2", lingerer, 1200));
    let view = wait_until("the second long call's suspension", LONG, || {
        let v = caller(&gw, lingerer);
        v["suspension"].is_object().then_some(v)
    });
    assert_eq!(
        view["suspension"]["evidence"], "通话20分钟未登记诉求",
        "{view}"
    );
    assert_no_raw_numbers(&gw, &[lingerer]);
}

/// A gateway with a Twilio profile `tw` (after the TOML `before`) and the public URL its
/// requests are signed for.
fn twilio_gateway(dir: &Path, sim: &Sim, before: &str) -> (Gateway, String) {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}/v1/cti/tw");
    let extra = format!(
        r#"{before}
[channels.cti.tw]
format = "twilio"
auth_token = "{TWILIO_AUTH}"
public_url = "{public}"
continue_twiml = "<Redirect>{IVR}</Redirect>"
"#
    );
    let config = write_config(dir, port, &sim.url, &extra);
    (Gateway::start_with(config, port), public)
}

/// A Twilio profile with only the keys the contract names starts, and an ordinary call waits in
/// the agents' queue (`<Enqueue>12345</Enqueue>`) rather than being hung up on. Until
/// 2026-12-07 the unnamed `continue_twiml` was required: such a config stopped every channel.
#[test]
fn a_twilio_profile_with_only_the_contracts_keys_queues_an_ordinary_call() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}/v1/cti/tw");
    let extra = format!(
        "[channels.cti.tw]\nformat = \"twilio\"\nauth_token = \"{TWILIO_AUTH}\"\n\
         public_url = \"{public}\"\nemergency_transfer = true\n"
    );
    let gw = Gateway::start_with(write_config(dir.path(), port, &sim.url, &extra), port);
    let tw = Twilio { gw: &gw };
    tw.twiml(
        "tw",
        &public,
        "",
        twilio_params(&sid(7001), "+8613912340071", "ringing", &[]),
        json!([["enqueue", {"name": "12345"}]]),
    );
}

/// Two voicemails from one number, each with nothing but its recording: two orders, each with
/// its own recording. (Both carry the same placeholder text, and the second was taken for a
/// repeat of the first: a contact without the recording.)
#[test]
fn a_second_recording_only_voicemail_is_an_order_with_its_own_recording() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let (gw, public) = twilio_gateway(dir.path(), &sim, "");
    let tw = Twilio { gw: &gw };
    let recording =
        |n: u32| format!("https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE{n}");
    for n in [1, 2] {
        let url = recording(n);
        let v = tw.call(
            "tw",
            &public,
            "step=voicemail",
            twilio_params(
                &sid(60 + n),
                "+8613912340061",
                "completed",
                &[
                    ("RecordingUrl", url.as_str()),
                    ("RecordingSid", &format!("RE{n}")),
                    ("RecordingDuration", "30"),
                ],
            ),
            Value::Null,
        );
        assert_eq!(v["status"], 200, "{v}");
    }
    let lines = wait_until("two voicemail orders at dispatch", LONG, || {
        let l = sim.lines();
        (delivered_orders(&l).len() >= 2).then_some(l)
    });
    let urls: Vec<&str> = lines
        .iter()
        .filter(|l| is_order(l))
        .filter_map(|o| o["attachments"][0]["url"].as_str())
        .collect();
    assert!(
        urls.contains(&recording(1).as_str()) && urls.contains(&recording(2).as_str()),
        "each recording reached dispatch with its order: {urls:?}"
    );
}

/// The ladder with long calls from 3 s, so the grace after a hang-up (never longer than that)
/// is over within a test.
fn quick_long_calls() -> String {
    let ladder = LADDER.replace("long_call = \"10m\"", "long_call = \"3s\"");
    assert_ne!(ladder, LADDER);
    ladder
}

/// Waits until `phone` has `n` warnings; the caller view.
fn wait_warnings(gw: &Gateway, phone: &str, n: usize) -> Value {
    wait_until(&format!("{n} warning(s) for {phone}"), LONG, || {
        let v = caller(gw, phone);
        (v["warnings"].as_array().map(Vec::len) == Some(n)).then_some(v)
    })
}

fn no_warnings(gw: &Gateway, phone: &str) {
    let view = caller(gw, phone);
    assert!(
        view["warnings"].as_array().is_some_and(Vec::is_empty) && view["suspension"].is_null(),
        "{phone}: {view}"
    );
}

/// A call that named an emergency is no long-call offence (art. 32 is about occupying the
/// line, not about a fire or a heart attack): a transferred call's platform duration includes
/// the leg to 120, and a caller told to dial (doubted speech) stayed on for an agent. Both are
/// judged at the same moment as an ordinary long call, which does count.
#[test]
fn a_long_call_that_named_an_emergency_is_no_offence() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        &format!("{}{}", generic_profiles(), quick_long_calls()),
    );
    let (transferred, keyed, advised, idle) =
        ("13988880001", "13988880002", "13988880003", "13988880004");
    let a = generic_ok(
        &gw,
        "desk",
        &speech("em-1", transferred, "我妈突然晕倒了没有呼吸"),
    );
    assert_eq!(
        (a["action"].as_str(), a["number"].as_str()),
        (Some("transfer"), Some("120")),
        "{a}"
    );
    let k = json!({"event": "call.input", "call_id": "em-2", "from": keyed, "to": "12345",
                   "at": AT, "digits": "110"});
    assert_eq!(generic_ok(&gw, "desk", &k)["action"], "transfer");
    let d = generic_ok(&gw, "desk", &speech("em-3", advised, DOUBTED));
    assert_eq!(d["flag"], "possible_emergency", "{d}");
    for (call, phone) in [
        ("em-1", transferred),
        ("em-2", keyed),
        ("em-3", advised),
        ("em-4", idle),
    ] {
        assert_eq!(
            generic_ok(&gw, "desk", &ended(call, phone, 2400)),
            json!({"action": "continue"})
        );
    }
    // The ordinary long call, ended last, counts; by then the others have been judged.
    let view = wait_warnings(&gw, idle, 1);
    assert!(
        view["warnings"][0]["evidence"]
            .as_str()
            .unwrap_or_default()
            .contains("40分钟"),
        "{view}"
    );
    for phone in [transferred, keyed, advised] {
        no_warnings(&gw, phone);
    }
    assert_no_raw_numbers(&gw, &[transferred, keyed, advised, idle]);
}

/// Twilio hotlines have no `call.registered`: agents register through a generic profile with
/// the call's `CallSid`. That registration excuses the Twilio call's length.
#[test]
fn a_twilio_call_registered_through_the_generic_profile_is_no_offence() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let (gw, public) = twilio_gateway(
        dir.path(),
        &sim,
        &format!("{}{}", generic_profiles(), quick_long_calls()),
    );
    let tw = Twilio { gw: &gw };
    let (registered, idle) = ("13977770001", "13977770002");
    for (n, phone) in [(71, registered), (72, idle)] {
        tw.twiml(
            "tw",
            &public,
            "",
            twilio_params(&sid(n), &format!("+86{phone}"), "ringing", &[]),
            json!([["redirect", {"url": IVR}]]),
        );
    }
    let reg = json!({"event": "call.registered", "call_id": sid(71), "from": registered,
                     "to": "12345", "agent": "A017",
                     "order": {"content": "小区电梯长期故障，物业推诿不修"}});
    let r = generic_ok(&gw, "desk", &reg);
    assert_eq!(numbers(&r).len(), 1, "{r}");
    for (n, phone) in [(71, registered), (72, idle)] {
        let v = tw.call(
            "tw",
            &public,
            "",
            twilio_params(
                &sid(n),
                &format!("+86{phone}"),
                "completed",
                &[("CallDuration", "3600")],
            ),
            Value::Null,
        );
        assert_eq!(v["status"], 200, "{v}");
    }
    wait_warnings(&gw, idle, 1);
    no_warnings(&gw, registered);
}

/// An agent's registration that names an emergency among its matters: every matter is an
/// order (the agent, not a caller in danger, is on the line, often after the hang-up), the one
/// naming the emergency marked for urgent review, and the desk is told (flag and text).
#[test]
fn a_registration_naming_an_emergency_makes_every_order_and_marks_that_one() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &generic_profiles());
    let reg = json!({"event": "call.registered", "call_id": "reg-em-1", "from": "13711113333",
                     "to": "12345", "at": AT, "agent": "A017",
                     "order": {"content": "反映两件事", "items": [
                         {"content": "小区门口路灯坏了一个月"},
                         {"content": "邻居家着火了，浓烟很大"}]}});
    let r = generic_ok(&gw, "desk", &reg);
    assert_eq!(
        (r["action"].as_str(), r["flag"].as_str()),
        (Some("continue"), Some("possible_emergency")),
        "{r}"
    );
    assert!(
        r["text"].as_str().is_some_and(
            |t| t.starts_with("您反映的情况可能是紧急情况：如果危险正在发生，请立即拨打119。")
        ),
        "{r}"
    );
    let orders = numbers(&r);
    assert_eq!(orders.len(), 2, "{r}");
    let light = sim.wait_order(&orders[0]);
    let fire = sim.wait_order(&orders[1]);
    assert!(light["emergency_review"].is_null(), "{light}");
    assert_eq!(fire["emergency_review"]["number"], "119", "{fire}");
    assert_eq!(fire["emergency_review"]["by"], "rules", "{fire}");
    assert!(fire["emergency_review"]["rule"].is_string(), "{fire}");
    // A retry gets the same answer and makes no more orders.
    assert_eq!(generic_ok(&gw, "desk", &reg), r);
    // The whole text naming it: its order is made and marked.
    let one = json!({"event": "call.registered", "call_id": "reg-em-2", "from": "13711113334",
                     "to": "12345", "at": AT, "agent": "A017",
                     "order": {"content": "市民反映：楼道里有人晕倒了，没有呼吸，同时反映楼道灯坏了"}});
    let r = generic_ok(&gw, "desk", &one);
    assert_eq!(
        (r["action"].as_str(), r["flag"].as_str()),
        (Some("continue"), Some("possible_emergency")),
        "{r}"
    );
    let marked: Vec<Value> = numbers(&r).iter().map(|n| sim.wait_order(n)).collect();
    assert!(
        marked
            .iter()
            .any(|o| o["emergency_review"]["number"] == "120"),
        "{marked:?}"
    );
    // Not one of them is a redirect on the callers' records.
    for phone in ["13711113333", "13711113334"] {
        let v = caller(&gw, phone);
        assert!(v["redirects"].as_array().is_some_and(Vec::is_empty), "{v}");
    }
}

/// Keys pressed are never doubted: 110 keyed in the step whose speech the second opinion
/// doubts is transferred, not hidden behind the speech's advice.
#[test]
fn emergency_keys_are_transferred_even_with_doubted_speech() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &generic_profiles());
    let step = json!({"event": "call.input", "call_id": "dd-2", "from": "13655556666",
                      "to": "12345", "at": AT, "speech": DOUBTED, "digits": "110"});
    let a = generic_ok(&gw, "desk", &step);
    assert_eq!(
        (a["action"].as_str(), a["number"].as_str()),
        (Some("transfer"), Some("110")),
        "{a}"
    );
}

/// A mobile presented with a trunk 0 (`013922223333`, how many PBXs show one from another
/// city) is the same caller: a suspension of 13922223333 rejects it.
#[test]
fn a_mobile_with_a_trunk_zero_is_the_same_caller() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &generic_profiles());
    suspend(&gw, "13922223333", "多次恶意拨打");
    let url = format!("{}/v1/cti/zm/{ZAMMAD_TOKEN}", gw.url);
    for from in ["013922223333", "13922223333", "8613922223333"] {
        let r = client()
            .post(&url)
            .form(&[
                ("event", "newCall"),
                ("from", from),
                ("to", "12345"),
                ("direction", "in"),
                ("callId", &format!("tz-{from}")),
            ])
            .send()
            .expect("post");
        let body: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(
            body,
            json!({"action": "reject", "reason": "busy"}),
            "{from}"
        );
    }
}

/// A call the hotline rejected (a suspended caller) is no missed call to return: the hangup
/// after the rejection is neither counted nor logged for call-back; a real missed call is.
#[test]
fn a_rejected_call_is_not_a_missed_call_for_call_back() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &generic_profiles());
    suspend(&gw, "13922220001", "多次恶意拨打");
    let url = format!("{}/v1/cti/zm/{ZAMMAD_TOKEN}", gw.url);
    let zam = |pairs: &[(&str, &str)]| -> Value {
        let r = client().post(&url).form(pairs).send().expect("post");
        assert_eq!(r.status().as_u16(), 200);
        r.json().unwrap_or(Value::Null)
    };
    let call = |from: &str, id: &str| {
        let started = zam(&[
            ("event", "newCall"),
            ("from", from),
            ("to", "12345"),
            ("direction", "in"),
            ("callId", id),
        ]);
        zam(&[
            ("event", "hangup"),
            ("from", from),
            ("to", "12345"),
            ("direction", "in"),
            ("callId", id),
            ("cause", "busy"),
        ]);
        started
    };
    assert_eq!(
        call("13922220001", "rj-1"),
        json!({"action": "reject", "reason": "busy"})
    );
    assert_eq!(call("13922220002", "rj-2"), json!({}));
    let metrics = gw.metrics();
    assert!(
        metrics.contains("hotline_missed_calls_total{profile=\"zm\"} 1\n"),
        "only the real missed call counts: {}",
        metrics
            .lines()
            .filter(|l| l.contains("missed"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        gw.logs()
            .matches("Missed call recorded for call-back")
            .count(),
        1
    );
}

/// An agent's abuse flag is answered with a reminder worded for it (no "submitted too often,
/// try again in a minute"), and the suspension that follows names the offence, not the quota.
#[test]
fn an_abuse_flag_is_reminded_and_suspended_in_its_own_words() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        &format!("{}{LADDER}", generic_profiles()),
    );
    let abuser = "13922220011";
    let w = generic_ok(&gw, "desk", &flagged("fl-1", abuser, "辱骂话务员"));
    assert_eq!(
        (w["action"].as_str(), w["flag"].as_str()),
        (Some("continue"), Some("warned")),
        "{w}"
    );
    let text = w["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("您的行为已被记录") && !text.contains("频繁") && !text.contains("分钟后再试"),
        "{w}"
    );
    let s = generic_ok(&gw, "desk", &flagged("fl-2", abuser, "再次辱骂"));
    assert_eq!(s["action"], "reject", "{s}");
    let text = s["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("扰乱热线秩序")
            && text.contains("话务员标记：辱骂")
            && !text.contains("再次")
            && !text.contains("重复占用"),
        "{s}"
    );
    let reason = caller(&gw, abuser)["suspension"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.starts_with("扰乱热线秩序"), "{reason}");
}

/// A voicemail's transcription, which Twilio sends after the recording made the order, reaches
/// that order at dispatch as a supplement with the caller's words; its retry adds nothing.
#[test]
fn a_late_voicemail_transcription_reaches_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let (gw, public) = twilio_gateway(dir.path(), &sim, "");
    let tw = Twilio { gw: &gw };
    let url = "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE81";
    let caller_no = "+8613912340081";
    let action = tw.call(
        "tw",
        &public,
        "step=voicemail",
        twilio_params(
            &sid(81),
            caller_no,
            "completed",
            &[
                ("RecordingUrl", url),
                ("RecordingSid", "RE81"),
                ("RecordingDuration", "20"),
            ],
        ),
        Value::Null,
    );
    assert_eq!(action["status"], 200, "{action}");
    let order = wait_until("the voicemail's order", LONG, || {
        sim.lines().into_iter().find(is_order)
    });
    assert_eq!(
        order["content"],
        hotline_adapters::cti::RECORDING_ONLY_CONTENT,
        "{order}"
    );
    // The transcribeCallback: Twilio's parameters for it (no CallStatus).
    let transcription = json!({
        "AccountSid": format!("AC{}", "0".repeat(32)),
        "CallSid": sid(81),
        "From": caller_no,
        "To": "+8602212345",
        "RecordingSid": "RE81",
        "RecordingUrl": url,
        "TranscriptionSid": "TR81",
        "TranscriptionStatus": "completed",
        "TranscriptionText": "我家楼下的下水道堵了",
        "TranscriptionType": "fast",
    });
    for _ in 0..2 {
        let v = tw.call(
            "tw",
            &public,
            "step=transcribed",
            transcription.clone(),
            Value::Null,
        );
        assert_eq!(v["status"], 200, "{v}");
    }
    let contact = wait_until("the transcription at dispatch", LONG, || {
        sim.lines().into_iter().find(is_contact)
    });
    assert_eq!(contact["contact_for"], order["number"], "{contact}");
    assert_eq!(contact["kind"], "supplement", "{contact}");
    assert_eq!(contact["content"], "我家楼下的下水道堵了", "{contact}");
    assert_eq!(settled_deliveries(&gw, &sim).len(), 1, "one order");
    let lines = sim.lines();
    assert_eq!(
        lines.iter().filter(|l| is_contact(l)).count(),
        1,
        "{lines:?}"
    );
}

/// A platform clock gone wrong (`9999-12-31T23:59:59Z`, the year 1) does not refuse a call
/// step: it is taken at its arrival, and the order's `received_at` is a readable RFC 3339
/// time of today, not `+10000-01-01…`.
#[test]
fn an_absurd_at_is_taken_as_the_arrival_time() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &generic_profiles());
    let now = chrono::Utc::now();
    for (i, at) in ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"]
        .iter()
        .enumerate()
    {
        let reg = json!({"event": "call.registered", "call_id": format!("at-{i}"),
                         "from": format!("1391234009{i}"), "to": "12345", "at": at,
                         "agent": "A017", "order": {"content": format!("小区{i}号楼电梯长期故障")}});
        let r = generic_ok(&gw, "desk", &reg);
        let order = sim.wait_order(&numbers(&r)[0]);
        let received = order["received_at"].as_str().unwrap_or_default();
        let t = chrono::DateTime::parse_from_rfc3339(received)
            .unwrap_or_else(|e| panic!("{at}: received_at {received}: {e}"));
        assert!(
            (t.with_timezone(&chrono::Utc) - now).num_seconds().abs() < 600,
            "{at}: {received}"
        );
    }
}

/// A stranger types a citizen's number into the web form until the form suspends it (review
/// finding F2): the typed phone is a claim, never verified, so that suspension holds on the
/// web form only. The citizen's own calls ring through with their whole quota (generic and
/// Zammad), while the web form under that number stays refused and an emergency on it is
/// still redirected; the operators' view says where the suspension holds. An operator's
/// suspension still stops every channel. Until 2026-12-07 the web form's suspension was the
/// number's: its calls were rejected at ringing (`reject`, Zammad `busy`), with no number heard.
#[test]
fn a_suspension_earned_on_the_web_form_under_a_typed_phone_does_not_stop_its_calls() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let extra = format!("{}{LADDER}", generic_profiles());
    let gw = Gateway::start(dir.path(), &sim.url, &extra);
    let victim = "13200000001";

    // Quota 2, one reminder: the third post is reminded, the fourth suspended.
    let matters = [
        "小区垃圾桶三天没人清运，气味很大",
        "希望增加社区公交线路的班次",
        "公园的健身器材坏了很久没人修",
        "图书馆周末开放时间太短，建议延长",
    ];
    let statuses: Vec<u16> = matters
        .iter()
        .map(|m| gw.submit(json!({"content": m, "phone": victim})).0)
        .collect();
    assert_eq!(statuses, [202, 202, 429, 403]);

    // The citizen's real calls: carried on, with the quota of the phone's own (two calls, and
    // a third with its own reminder on Zammad), not spent or suspended by the form.
    for n in 1..=2 {
        let a = generic_ok(&gw, "desk", &started(&format!("victim-{n}"), victim));
        assert_eq!(a["action"], "continue", "call {n}: {a}");
    }
    let r = client()
        .post(format!("{}/v1/cti/zm/{ZAMMAD_TOKEN}", gw.url))
        .json(&json!({"event": "newCall", "from": victim, "to": "12345",
                      "direction": "in", "callId": "victim-zm"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let zm: Value = r.json().unwrap_or(Value::Null);
    assert_ne!(zm["action"], "reject", "Zammad: {zm}");

    // The web form under that number stays refused; an emergency on it is still redirected.
    let (s, b) = gw.submit(json!({"content": "第五次：小区路灯不亮了", "phone": victim}));
    assert_eq!(s, 403, "{b}");
    let (s, b) = gw.submit(json!({"content": "楼下饭店着火了，火很大，有人被困", "phone": victim}));
    assert_eq!(
        (s, b["redirect"]["number"].as_str()),
        (200, Some("119")),
        "{b}"
    );

    // The operators see the web form's suspension and where it holds.
    let view = caller(&gw, victim);
    assert_eq!(view["suspension"]["scope"], "web", "{view}");
    assert_eq!(view["suspension"]["decided_by"], "rule-web", "{view}");

    // An operator's suspension holds everywhere, as before.
    suspend(&gw, victim, "多次恶意拨打");
    let a = generic_ok(&gw, "desk", &started("victim-9", victim));
    assert_eq!(a["action"], "reject", "{a}");
    let view = caller(&gw, victim);
    assert_eq!(view["suspension"]["scope"], "all", "{view}");
    assert_no_raw_numbers(&gw, &[victim]);
}

/// The privacy review's F6 (2026-12-07): a platform that builds its call ids from the caller's
/// number and address had them logged as sent (`call=in-13955556666-zhang.san@example.com`,
/// INFO). The caller's value is masked in the call id as WeChat and Weibo mask theirs, and any
/// other number or address in it too, also for a withheld number; an opaque id stays readable.
#[test]
fn call_ids_are_logged_with_the_callers_number_and_address_masked() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &generic_profiles());
    let missed = |call: &str, from: &str| {
        json!({"event": "call.ended", "call_id": call, "from": from, "to": "12345", "at": AT,
               "duration_s": 0, "answered": false, "cause": "cancel"})
    };
    for (call, from) in [
        ("in-13955556666-zhang.san@example.com", "13955556666"),
        ("anon-13800001111-一三九一二三四五六七八", "anonymous"),
        ("0f3c2a9e-5b7d-4e21-9c8a-d41e6b2f7a53", "13955556667"),
    ] {
        assert_eq!(
            generic_ok(&gw, "desk", &missed(call, from)),
            json!({"action": "continue"})
        );
    }
    let lines: Vec<String> = wait_until("three missed calls logged", LONG, || {
        let lines: Vec<String> = gw
            .logs()
            .lines()
            .filter(|l| l.contains("Missed call recorded for call-back"))
            .map(str::to_string)
            .collect();
        (lines.len() == 3).then_some(lines)
    });
    let logs = lines.join("\n");
    for raw in [
        "13955556666",
        "zhang.san",
        "13800001111",
        "一三九一二三四五六七八",
    ] {
        assert!(!logs.contains(raw), "{raw} in the log: {logs}");
    }
    // The number joins the address's local part, and a number joins the next across a dash
    // (as `scrub_text` reads them): masked, each keeping what a masked number keeps.
    for masked in [
        "in-139****6***@example.com",
        "anon-138********-*******五六七八",
        "0f3c2a9e-5b7d-4e21-9c8a-d41e6b2f7a53",
    ] {
        assert!(logs.contains(masked), "{masked} not in the log: {logs}");
    }
}

/// Status queries keyed in the IVR count against `web.lookup_quota` per caller, as the chat
/// channels' do per sender (until 2026-12-07 nothing counted them): past it the caller hears
/// the wait instead of a status, and the call goes on; another caller is answered.
#[test]
fn ivr_status_queries_are_capped_per_caller() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        &format!(
            "{}\n[web]\nlookup_quota = 2\n[nuisance]\nquota = 2\n",
            generic_profiles()
        ),
    );
    let reg = json!({"event": "call.registered", "call_id": "sq-1", "from": "13755550101",
                     "order": {"content": "路灯坏了"}});
    let number = numbers(&generic_ok(&gw, "desk", &reg)).remove(0);
    wait_until("the order at dispatch", LONG, || {
        delivered_orders(&sim.lines())
            .contains(&number)
            .then_some(())
    });
    let ask = |call: &str, from: &str| {
        let ev = json!({"event": "call.input", "call_id": call, "from": from,
                        "digits": format!("*{number}#")});
        let a = generic_ok(&gw, "desk", &ev);
        assert_eq!(a["action"], "continue", "{a}");
        a["text"].as_str().unwrap_or_default().to_string()
    };
    assert!(ask("sq-2", "13755550102").contains(&number));
    assert!(ask("sq-3", "13755550102").contains(&number));
    let said = ask("sq-4", "13755550102");
    assert!(
        said.contains("查询过于频繁") && !said.contains(&number),
        "{said}"
    );
    assert!(ask("sq-5", "13755550103").contains(&number));
}

/// A web submitter's phone is typed, and anyone may type anyone's. Until 2026-12-07 repeats
/// were looked for by identity alone, so (the twenty-second session's review, F1) a stranger
/// typing a caller's number and a paraphrase of the caller's confidential report was told
/// "duplicate" with the report's number and category, and their text went to dispatch as the
/// caller's contact on it; and a stranger's made-up web order under a number swallowed that
/// number's later call about the same thing (no order; a contact on the stranger's order, with
/// its made-up address). Repeats now match only orders of the same origin: the verified
/// channels' among themselves, the web form's among its own from the same address.
#[test]
fn a_typed_phone_and_the_numbers_calls_never_repeat_each_others_orders() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &generic_profiles());
    let report = "举报幸福小区5栋102室的住户在楼顶违章搭建，已经好几个月了";
    let reg = json!({"event": "call.registered", "call_id": "tp-1", "from": "13912345678",
                     "order": {"content": report, "category": "report", "confidential": true}});
    let called = numbers(&generic_ok(&gw, "desk", &reg)).remove(0);
    sim.wait_order(&called);
    // The stranger on the web form: a new order, told nothing of the caller's.
    let (s, b) = gw.submit(json!({"content": report, "phone": "13912345678"}));
    assert_eq!((s, b["status"].as_str()), (202, Some("accepted")), "{b}");
    let typed = numbers(&b).remove(0);
    assert_ne!(typed, called, "{b}");
    assert!(!b.to_string().contains(&called), "{b}");
    sim.wait_order(&typed);
    // A made-up web order under another number, then that number's real call about the same
    // matter: the call makes an order of its own.
    let lamp = "小区门口的路灯坏了，晚上很黑，请尽快修复";
    let (s, b) = gw.submit(json!({"content": lamp, "phone": "13700001111"}));
    assert_eq!(s, 202, "{b}");
    let made_up = numbers(&b).remove(0);
    let reg = json!({"event": "call.registered", "call_id": "tp-2", "from": "13700001111",
                     "order": {"content": lamp}});
    let a = generic_ok(&gw, "desk", &reg);
    let real = numbers(&a).remove(0);
    assert_ne!(real, made_up, "{a}");
    sim.wait_order(&real);
    // The caller's own repeat by phone is still one (the verified channels among themselves).
    let reg = json!({"event": "call.registered", "call_id": "tp-3", "from": "13700001111",
                     "order": {"content": lamp}});
    assert_eq!(numbers(&generic_ok(&gw, "desk", &reg)), vec![real.clone()]);
    let contacts: Vec<String> = sim
        .lines()
        .iter()
        .filter(|l| is_contact(l))
        .filter_map(|l| l["contact_for"].as_str().map(String::from))
        .collect();
    assert!(
        !contacts.contains(&called) && !contacts.contains(&made_up),
        "{contacts:?}"
    );
}
