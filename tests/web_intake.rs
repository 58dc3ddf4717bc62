//! The web form end to end: the real binary, a real dispatch-sim, real HTTP.
//! What belongs here: everything a citizen's web submission can meet, from the answer to the
//! order's arrival at dispatch.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

#[test]
fn accepted_orders_reach_dispatch_once_signed_and_keyed() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(
        free_port(),
        &dir.path().join("sim.jsonl"),
        &["--secret", "dispatch-secret"],
    );
    let gw = Gateway::start(dir.path(), &sim.url, "");

    let (status, body) = gw.submit(json!({
        "content": "小区门口路灯坏了一个月了", "phone": "+86 138-0013-8000",
        "name": "张三", "category": "complaint", "address": "和平区南京路1号",
        "lat": 39.12, "lon": 117.2, "confidential": true
    }));
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    assert!(body["message"].as_str().unwrap().contains("工单号"));
    let n1 = numbers(&body);
    assert_eq!(n1.len(), 1);
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y%m%d")
        .to_string();
    assert!(
        n1[0].starts_with(&format!("{today}07")),
        "date + node id: {}",
        n1[0]
    );
    assert!(n1[0].bytes().all(|b| b.is_ascii_digit()));

    // urlencoded and multipart carry the same names.
    let r = client()
        .post(format!("{}/v1/web/submissions", gw.url))
        .form(&[("content", "公交站牌倒了"), ("category", "report")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let n2 = numbers(&r.json().unwrap());
    let form = reqwest::blocking::multipart::Form::new()
        .text("content", "建议增设公共自行车停放点")
        .text("category", "suggestion");
    let r = client()
        .post(format!("{}/v1/web/submissions", gw.url))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let n3 = numbers(&r.json().unwrap());

    let mut want: Vec<String> = [n1.clone(), n2, n3].concat();
    want.sort();
    let lines = wait_until("three orders at dispatch", LONG, || {
        let l = sim.lines();
        (delivered_orders(&l).len() >= 3).then_some(l)
    });
    let mut got = delivered_orders(&lines);
    got.sort();
    assert_eq!(
        got, want,
        "every accepted order arrives, keyed by its number"
    );
    assert!(lines.iter().all(is_first_delivery), "nothing twice");
    let order = lines
        .iter()
        .find(|l| l["idempotency_key"] == n1[0].as_str())
        .unwrap();
    assert_eq!(order["number"], n1[0].as_str());
    assert_eq!(order["channel"], "web");
    assert_eq!(order["category"], "complaint");
    assert_eq!(order["confidential"], true);
    assert_eq!(order["submitter"]["identity"], "phone:13800138000");
    assert_eq!(order["location"]["address"], "和平区南京路1号");
    assert_eq!(order["item"], json!({"index": 1, "count": 1}));
    assert!(order["received_at"].as_str().unwrap().ends_with("+08:00"));

    // The admin view of the outbox drains to zero.
    wait_until("an empty outbox", LONG, || {
        (gw.admin_get("/admin/v1/outbox")["depth"] == 0).then_some(())
    });

    // Status for the submitter: no personal data.
    let r = client()
        .get(format!("{}/v1/orders/{}", gw.url, n1[0]))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().unwrap();
    assert!(text.contains("processing"), "{text}");
    assert!(
        !text.contains("13800138000") && !text.contains("张三"),
        "{text}"
    );
    let r = client()
        .get(format!("{}/v1/orders/2026010199999999", gw.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Logs mask the phone number.
    assert!(!gw.logs().contains("13800138000"), "phone number in logs");
}

#[test]
fn bad_input_gets_a_clear_answer_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "");
    let c = client();
    let url = format!("{}/v1/web/submissions", gw.url);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "application/json",
            b"{not json".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "application/json",
            br#"{"name":"x"}"#.to_vec(),
            422,
            "missing_field",
        ),
        (
            "application/json",
            br#"{"content":""}"#.to_vec(),
            422,
            "missing_field",
        ),
        (
            "application/json",
            br#"{"content":123}"#.to_vec(),
            422,
            "invalid_field",
        ),
        (
            "application/json",
            br#"{"content":"x","confidential":"maybe"}"#.to_vec(),
            422,
            "invalid_field",
        ),
        (
            "application/json",
            br#"{"content":"x","category":"rant"}"#.to_vec(),
            422,
            "invalid_field",
        ),
        (
            "application/json",
            vec![b'"'; 70_000],
            413,
            "body_too_large",
        ),
        (
            "text/plain",
            b"hello".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "application/json",
            b"{\"content\":\"\xff\xfe\"}".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "application/x-www-form-urlencoded",
            b"content=x&lat=north".to_vec(),
            422,
            "invalid_field",
        ),
        // Bytes that are text in no encoding (0xFF is no GB18030 byte either).
        (
            "application/x-www-form-urlencoded",
            b"content=%FF%FF".to_vec(),
            400,
            "invalid_utf8",
        ),
        // Deep nesting, within the body limit: refused at the parser's depth limit, at the
        // top and inside a field, never a stack overflow.
        ("application/json", vec![b'['; 20_000], 400, "invalid_json"),
        (
            "application/json",
            format!(
                r#"{{"content":"x","name":{}1{}}}"#,
                r#"{"a":"#.repeat(5_000),
                "}".repeat(5_000)
            )
            .into_bytes(),
            400,
            "invalid_json",
        ),
    ];
    for (ct, body, want_status, want_code) in cases {
        let r = c
            .post(&url)
            .header("content-type", ct)
            .body(body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json().unwrap();
        assert_eq!(status, want_status, "{ct} -> {v}");
        assert_eq!(v["status"], "rejected", "{v}");
        assert_eq!(v["error"]["code"], want_code, "{v}");
        assert!(!v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty());
    }
    // A file part, named to climb out of a folder: refused (the gateway keeps links, never
    // files, so no name ever becomes a path).
    let form = reqwest::blocking::multipart::Form::new()
        .text("content", "附件：现场照片")
        .part(
            "photo",
            reqwest::blocking::multipart::Part::bytes(b"\xff\xd8\xff".to_vec())
                .file_name("../../../etc/cron.d/x.jpg"),
        );
    let r = c.post(&url).multipart(form).send().unwrap();
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("invalid_field")),
        "{v}"
    );
    // Unknown route: JSON 404.
    let r = c.get(format!("{}/nope", gw.url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // Nothing stored, nothing dispatched; the server is still healthy.
    let outbox = gw.admin_get("/admin/v1/outbox");
    assert_eq!(outbox["depth"], 0, "{outbox}");
    assert!(sim.lines().is_empty());
    assert_eq!(
        c.get(format!("{}/readyz", gw.url))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[test]
fn items_split_and_client_ref_replays_the_first_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "");
    let body = json!({
        "content": "两件事", "phone": "13900000001", "client_ref": "page-42",
        "items": [{"content": "楼道灯不亮", "category": "help"},
                  {"content": "垃圾站清运不及时", "category": "complaint"}]
    });
    let (s1, b1) = gw.submit(body.clone());
    assert_eq!(s1, 202, "{b1}");
    let n = numbers(&b1);
    assert_eq!(n.len(), 2, "one order per item");
    assert_eq!(b1["orders"][0]["category"], "help");
    assert_eq!(b1["orders"][1]["category"], "complaint");
    let (s2, b2) = gw.submit(body.clone());
    assert!(s2 == 202 || s2 == 200, "{b2}");
    assert_eq!(
        numbers(&b2),
        n,
        "a resubmission with the same client_ref gets the same orders"
    );
    // A page that keeps its client_ref for a new text naming an emergency gets the number to
    // dial, not the earlier orders (art. 17); then the first answer still stands for a resend.
    let (s3, b3) = gw.submit(json!({
        "content": "楼下饭店着火了，有人被困", "phone": "13900000001", "client_ref": "page-42"
    }));
    assert_eq!(s3, 200, "{b3}");
    assert_eq!(b3["status"], "redirected", "{b3}");
    assert_eq!(b3["redirect"]["number"], "119", "{b3}");
    let (_, b4) = gw.submit(body);
    assert_eq!(numbers(&b4), n, "{b4}");
    let lines = wait_until("two orders at dispatch", LONG, || {
        let l = sim.lines();
        (delivered_orders(&l).len() >= 2).then_some(l)
    });
    assert_eq!(delivered_orders(&lines).len(), 2, "no third order");
    let items: Vec<_> = lines.iter().map(|l| l["item"].clone()).collect();
    assert!(items.contains(&json!({"index": 1, "count": 2})));
    assert!(items.contains(&json!({"index": 2, "count": 2})));
    let sid: Vec<_> = lines.iter().map(|l| l["submission_id"].clone()).collect();
    assert_eq!(sid[0], sid[1], "items share their submission id");
    // What the citizen wrote besides the items reaches dispatch with each order.
    let context: Vec<_> = lines
        .iter()
        .map(|l| l["submission_content"].clone())
        .collect();
    assert_eq!(context, [json!("两件事"), json!("两件事")], "{lines:?}");
}

/// A gateway whose dispatch (on `port`) is down, and the numbers of the `n` orders it has
/// accepted, each from a caller of its own (all from loopback: the cap per address is raised
/// above the 600 a test sends).
fn orders_while_dispatch_is_down(
    dir: &std::path::Path,
    port: u16,
    n: usize,
) -> (Gateway, Vec<String>) {
    let gw = Gateway::start(
        dir,
        &format!("http://127.0.0.1:{port}"),
        "[web]\naddress_quota = 1000\n",
    );
    let mut want = Vec::new();
    for i in 0..n {
        let (s, b) = gw.submit(
            json!({"content": format!("第{i}件事：井盖缺失"), "phone": format!("1390000{i:04}")}),
        );
        assert_eq!(s, 202, "{b}");
        want.extend(numbers(&b));
    }
    (gw, want)
}

/// Waits until dispatch-sim has as many orders as `want` names, asserts they are exactly those,
/// and returns the sim's lines.
fn each_delivered(sim: &Sim, want: &mut [String]) -> Vec<serde_json::Value> {
    let lines = wait_until(
        &format!("all {} orders at dispatch", want.len()),
        Duration::from_secs(60),
        || {
            let l = sim.lines();
            (delivered_orders(&l).len() >= want.len()).then_some(l)
        },
    );
    let mut got = delivered_orders(&lines);
    got.sort();
    want.sort();
    assert_eq!(got, want);
    lines
}

#[test]
fn a_dispatch_outage_delays_but_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = dir.path().join("sim.jsonl");
    // Dispatch is down when the orders come in.
    let (gw, mut want) = orders_while_dispatch_is_down(dir.path(), port, 20);
    wait_until("the breaker to open", LONG, || {
        (gw.admin_get("/admin/v1/outbox")["breaker_open"] == true).then_some(())
    });
    assert_eq!(gw.admin_get("/admin/v1/outbox")["depth"], 20);
    // Dispatch comes back, flapping: a third of its answers are 503s.
    let sim = Sim::start(port, &out, &["--fail-rate", "0.3"]);
    let lines = each_delivered(&sim, &mut want);
    assert!(
        lines.iter().all(is_first_delivery),
        "nothing delivered twice under the same key"
    );
    wait_until("the outbox to drain", LONG, || {
        let o = gw.admin_get("/admin/v1/outbox");
        (o["depth"] == 0 && o["breaker_open"] == false).then_some(())
    });
}

/// Orders queued by a clock that was ahead (a VM's wrong RTC at boot, corrected by NTP; an
/// operator's typo) are delivered once the clock is right again, not after the step, and the
/// outbox's age shows the step: until 2026-12-07 their retry times 30 days ahead (and on
/// PostgreSQL a claim 30 days long) held them that long, unseen, with `oldest_age_s` 0. The
/// rows are left as such a clock leaves them, while the gateway is stopped.
#[test]
fn orders_queued_by_a_clock_that_was_ahead_are_delivered_when_it_is_right_again() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut gw, mut want) = orders_while_dispatch_is_down(dir.path(), port, 2);
    assert!(gw.terminate(), "{}", gw.logs());
    let ahead_ms = chrono::Utc::now().timestamp_millis() + 30 * 24 * 3_600_000;
    let ahead_s = ahead_ms / 1000;
    let mut sql = format!(
        "UPDATE outbox SET created_at = {ahead_s}, next_at_ms = {ahead_ms} WHERE key = '{}';",
        want[0]
    );
    if services::test_backend() == "postgres" {
        sql += &format!(
            "UPDATE outbox SET created_at = {ahead_s}, lease_until_ms = {ahead_ms} \
             WHERE key = '{}';",
            want[1]
        );
    } else {
        sql += &format!(
            "UPDATE outbox SET created_at = {ahead_s}, next_at_ms = {ahead_ms} \
             WHERE key = '{}';",
            want[1]
        );
    }
    services::store_sql(dir.path(), &sql);
    let gw = Gateway::start_with(gw.config.clone(), gw.port());
    let age = gw.admin_get("/admin/v1/outbox")["oldest_age_s"].as_i64();
    assert!(
        age.is_some_and(|a| a < -29 * 24 * 3600),
        "the oldest order was queued 30 days ahead of this clock: {age:?}"
    );
    let sim = Sim::start(port, &dir.path().join("sim.jsonl"), &[]);
    each_delivered(&sim, &mut want);
    assert!(
        gw.logs().contains("a clock step back"),
        "said in the log: {}",
        gw.logs()
    );
}

#[test]
fn a_dispatch_slower_than_the_timeout_gets_each_order_again_only_under_its_key() {
    // The core records each order, then answers after the gateway has given up on it (a 300 ms
    // time-out against answers 1.5 s late). The gateway cannot know the order arrived: it must
    // send it again under the same key (never a new one), park nothing as dead, open the
    // breaker, and take the core's 409 for a delivery once the core answers in time.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = dir.path().join("sim.jsonl");
    let mut sim = Sim::start(port, &out, &["--answer-late-ms", "1500"]);
    let gw_port = free_port();
    let node = NodeConfig {
        storage: services::storage_toml(dir.path()),
        dispatch: "timeout = \"300ms\"".into(),
        ..NodeConfig::default()
    };
    let config = node.write(dir.path(), gw_port, &sim.url, "");
    let gw = Gateway::start_with(config, gw_port);
    let mut want = Vec::new();
    for i in 0..5 {
        let (s, b) = gw.submit(
            json!({"content": format!("第{i}件事：路灯不亮"), "phone": format!("1391111{i:04}")}),
        );
        assert_eq!(s, 202, "{b}");
        want.extend(numbers(&b));
    }
    want.sort();
    wait_until("every order recorded by the slow core", LONG, || {
        let mut got = delivered_orders(&sim.lines());
        got.sort();
        (got == want).then_some(())
    });
    wait_until("the breaker to open on time-outs", LONG, || {
        (gw.admin_get("/admin/v1/outbox")["breaker_open"] == true).then_some(())
    });
    let o = gw.admin_get("/admin/v1/outbox");
    assert_eq!(
        o["depth"], 5,
        "no answer came in time, so none is delivered: {o}"
    );
    assert_eq!(o["dead"], 0, "a time-out is not a refusal: {o}");

    // The core answers in time again (and still knows the keys it recorded).
    sim.stop();
    let sim = Sim::start(port, &out, &[]);
    wait_until("the outbox to drain", LONG, || {
        let o = gw.admin_get("/admin/v1/outbox");
        (o["depth"] == 0 && o["breaker_open"] == false).then_some(())
    });
    assert_eq!(gw.admin_get("/admin/v1/outbox")["dead"], 0);
    let lines = sim.lines();
    let mut firsts = delivered_orders(&lines);
    firsts.sort();
    assert_eq!(firsts, want, "each order taken once");
    for key in &want {
        let repeats = lines
            .iter()
            .filter(|l| is_repeat(l) && l["idempotency_key"] == key.as_str())
            .count();
        assert!(repeats >= 1, "{key} was sent again after its time-out");
    }
    assert!(
        lines
            .iter()
            .filter(|l| is_order(l))
            .all(|l| want.iter().any(|k| l["idempotency_key"] == k.as_str())),
        "nothing sent under another key"
    );
}

#[test]
fn a_backlog_of_several_rounds_is_delivered_once_each() {
    // More orders than one relay round (256), queued while dispatch is down. Each round's
    // results are written in the background, 16 at a time, while the next round is sent: the
    // next round must skip what is still being written, or those orders go out twice.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = dir.path().join("sim.jsonl");
    let (gw, mut want) = orders_while_dispatch_is_down(dir.path(), port, 600);
    let sim = Sim::start(port, &out, &[]);
    each_delivered(&sim, &mut want);
    // Every result recorded: nothing is left to be sent again.
    wait_until("the outbox to drain", LONG, || {
        (gw.admin_get("/admin/v1/outbox")["depth"] == 0).then_some(())
    });
    let twice = sim.lines().iter().filter(|l| is_repeat(l)).count();
    assert_eq!(twice, 0, "orders sent again under their key");
}

#[test]
fn permanent_refusals_park_as_dead_letters_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = dir.path().join("sim.jsonl");
    let mut sim = Sim::start(port, &out, &["--reject-rate", "1"]);
    let gw = Gateway::start(dir.path(), &sim.url, "");
    let (s, b) = gw.submit(json!({"content": "噪音扰民，晚上施工"}));
    assert_eq!(s, 202);
    let n = numbers(&b).remove(0);
    let outbox = wait_until("a dead letter", LONG, || {
        let o = gw.admin_get("/admin/v1/outbox");
        (o["dead"] == 1).then_some(o)
    });
    assert_eq!(outbox["dead_letters"][0]["key"], n.as_str());
    assert!(outbox["dead_letters"][0]["last_error"]
        .as_str()
        .unwrap()
        .contains("400"));
    // The citizen, who heard nothing, sends the matter again: dispatch never took the first
    // order, so this is a new one, not a repeat merged into a dead letter (art. 17(5)).
    let (s, again) = gw.submit(json!({"content": "噪音扰民，晚上施工"}));
    assert_eq!(
        (s, again["status"].as_str()),
        (202, Some("accepted")),
        "{again}"
    );
    assert_ne!(numbers(&again), std::slice::from_ref(&n));
    // Wrong token: refused.
    let r = client()
        .post(format!("{}/admin/v1/outbox/dead/{n}/retry", gw.url))
        .bearer_auth("wrong")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    sim.stop();
    let sim = Sim::start(port, &out, &[]);
    let r = client()
        .post(format!("{}/admin/v1/outbox/dead/{n}/retry", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    wait_until("the replayed order at dispatch", LONG, || {
        delivered_orders(&sim.lines()).contains(&n).then_some(())
    });
    let r = client()
        .post(format!("{}/admin/v1/outbox/dead/{n}/retry", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "no longer a dead letter");
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_order() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let port = free_port();
    let config = write_config(dir.path(), port, &sim.url, "[nuisance]\nquota = 100000\n");
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    for round in 0..3 {
        let mut gw = Gateway::start_with(config.clone(), port);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let url = format!("{}/v1/web/submissions", gw.url);
                let acked = acked.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let c = client();
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 2000 {
                        i += 1;
                        // A distinct submitter per request: the same text from one person
                        // would (rightly) be answered as a repeat, not a new order.
                        let body = json!({
                            "content": format!("round {round} worker {w} matter {i}: 路面坑洼"),
                            "phone": format!("13{round}{w}{i:07}"),
                        });
                        let Ok(r) = c.post(&url).json(&body).send() else {
                            break;
                        };
                        if r.status().as_u16() == 202 {
                            if let Ok(v) = r.json::<serde_json::Value>() {
                                acked.lock().unwrap().extend(numbers(&v));
                            }
                        }
                    }
                })
            })
            .collect();
        // Kill once a good number of orders were acknowledged in this round.
        let base = acked.lock().unwrap().len();
        wait_until("acknowledged orders under load", LONG, || {
            (acked.lock().unwrap().len() >= base + 150).then_some(())
        });
        gw.kill9();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in workers {
            let _ = w.join();
        }
    }
    // A last start delivers whatever the killed processes had not.
    let _gw = Gateway::start_with(config, port);
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 450);
    let lines = wait_until(
        "every acknowledged order at dispatch",
        Duration::from_secs(90),
        || {
            let l = sim.lines();
            let got: std::collections::HashSet<String> = delivered_orders(&l).into_iter().collect();
            acked.iter().all(|n| got.contains(n)).then_some(l)
        },
    );
    let unique: std::collections::HashSet<_> = acked.iter().collect();
    assert_eq!(
        unique.len(),
        acked.len(),
        "order numbers are unique across restarts"
    );
    eprintln!(
        "kill -9 x3: acked {} lost 0, redelivered (harmless, same key) {}",
        acked.len(),
        lines.iter().filter(|l| is_repeat(l)).count()
    );
}

/// What one client saw while the gateway shut down under it.
#[derive(Default)]
struct Seen {
    /// Order numbers answered with a 202.
    acked: Vec<String>,
    /// Answers other than a 202 with order numbers: (status, body).
    other: Vec<(u16, String)>,
}

#[test]
fn sigterm_under_load_finishes_in_flight_requests_and_stores_nothing_unanswered() {
    stop_under_load("TERM");
}

/// Ctrl-C (SIGINT) stops the gateway as gracefully as SIGTERM: actix-server makes SIGINT a
/// forced stop, which dropped requests in flight, some of them already committed (stored
/// without their 202) on SQLite.
#[test]
fn sigint_under_load_finishes_in_flight_requests_and_stores_nothing_unanswered() {
    stop_under_load("INT");
}

/// Sixteen clients post while the gateway is stopped with `signal`: every request it took is
/// answered, and dispatch ends up with exactly the acknowledged orders.
fn stop_under_load(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let port = free_port();
    // Groups committed at most every 50 ms (on SQLite): each request waits for its group that
    // long, so whenever the SIGTERM lands most of the clients' requests are between their
    // commit and their answer, the moment a shutdown that drops connections gets wrong.
    let node = NodeConfig {
        storage: format!(
            "{}\ncommit_interval = \"50ms\"",
            services::storage_toml(dir.path())
        ),
        ..NodeConfig::default()
    };
    let config = node.write(dir.path(), port, &sim.url, "[nuisance]\nquota = 100000\n");
    let mut gw = Gateway::start_with(config.clone(), port);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let url = format!("{}/v1/web/submissions", gw.url);
            let seen = seen.clone();
            std::thread::spawn(move || {
                let c = client();
                // Until the gateway stops answering: a refused or reset connection is a request
                // it never took, the only way a client may go without an answer.
                for i in 0..20_000 {
                    let body = json!({
                        "content": format!("worker {w} matter {i}: 路灯不亮"),
                        "phone": format!("139{w:02}{i:06}"),
                    });
                    let Ok(r) = c.post(&url).json(&body).send() else {
                        break;
                    };
                    let status = r.status().as_u16();
                    let text = r.text().unwrap_or_default();
                    let v: serde_json::Value =
                        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                    let mut seen = seen.lock().unwrap();
                    match numbers(&v) {
                        n if status == 202 && !n.is_empty() => seen.acked.extend(n),
                        _ => seen.other.push((status, text)),
                    }
                }
            })
        })
        .collect();
    wait_until("acknowledged orders under load", LONG, || {
        (seen.lock().unwrap().acked.len() >= 300).then_some(())
    });
    // SIGTERM while sixteen clients keep posting: the gateway stops taking connections, answers
    // every request it took, and exits 0 (actix's shutdown_timeout bounds the wait at 30 s).
    assert!(
        gw.stop_with(signal),
        "SIG{signal} under load exits 0: {}",
        gw.logs()
    );
    for w in workers {
        w.join().unwrap();
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        seen.other.is_empty(),
        "every answer during the shutdown was a 202 with its orders: {:?}\nthe gateway's warnings:\n{}",
        &seen.other[..seen.other.len().min(5)],
        gw.logs()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // A new start delivers what the stopped relay had not. Dispatch then holds exactly the
    // acknowledged orders: none lost, and none that was stored without its answer reaching the
    // client (a request cut off after its commit would show up here as an unacknowledged order).
    let _gw = Gateway::start_with(config, port);
    let acked: std::collections::HashSet<String> = seen.acked.iter().cloned().collect();
    assert_eq!(acked.len(), seen.acked.len(), "order numbers are unique");
    let delivered = wait_until(
        "every acknowledged order at dispatch",
        Duration::from_secs(90),
        || {
            let got: std::collections::HashSet<String> =
                delivered_orders(&sim.lines()).into_iter().collect();
            acked.is_subset(&got).then_some(got)
        },
    );
    let unanswered: Vec<_> = delivered.difference(&acked).collect();
    assert!(
        unanswered.is_empty(),
        "orders stored whose 202 never reached the client: {unanswered:?}"
    );
    eprintln!(
        "SIG{signal} under load: acked {}, lost 0, stored without an answer 0",
        acked.len()
    );
}

/// A submitter over quota sends the same page (its `client_ref`) twice at once, a
/// double-click: both copies get the same refusal and ONE reminder is recorded; once the hold
/// (`PAGE_REFUSAL_HOLD`, 10 s) has passed the page is heard afresh, refused again and counted.
/// On SQLite until 2026-12-07 the copy was refused and counted again (two reminders for one
/// page, a suspension one click sooner); PostgreSQL held the refusal already. The wait for
/// the hold is a wait until the page is heard afresh, the page sent again meanwhile: every
/// answer before that is the held refusal, so a copy is never counted within it.
#[test]
fn a_pages_copy_within_the_hold_gets_its_refusal_and_is_not_counted_again() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        "[nuisance]\nquota = 1\nwarnings = 3\nper = \"1h\"\nsuspensions = [\"1h\"]\n",
    );
    let phone = "13700000071";
    let warnings = || {
        let view = gw.admin_get(&format!("/admin/v1/callers/phone:{phone}"));
        view["warnings"].as_array().map(Vec::len)
    };
    let (s, b) = gw.submit(json!({"content": "小区停车难", "phone": phone}));
    assert_eq!(s, 202, "{b}");
    let page = json!({"content": "路灯坏了一个星期", "phone": phone, "client_ref": "dbl-click-1"});
    let (s, refused) = gw.submit(page.clone());
    assert_eq!(
        (s, refused["warnings_left"].as_u64()),
        (429, Some(2)),
        "{refused}"
    );
    // The double-click: the same refusal, word for word, and no second reminder.
    let (s, again) = gw.submit(page.clone());
    assert_eq!((s, &again), (429, &refused));
    assert_eq!(warnings(), Some(1), "one reminder for one page");
    // After the hold, heard afresh: refused again (still over quota) and counted.
    let afresh = wait_until("the page heard afresh after the hold", LONG, || {
        let (s, b) = gw.submit(page.clone());
        assert_eq!(s, 429, "{b}");
        (b != refused).then_some(b)
    });
    assert_eq!(afresh["warnings_left"], 1, "{afresh}");
    assert_eq!(warnings(), Some(2));
}

#[test]
fn ladder_over_the_web_warns_suspends_and_lets_emergencies_through() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        "[nuisance]\nquota = 3\nwarnings = 2\nper = \"1h\"\nsuspensions = [\"1h\", \"24h\"]\n",
    );
    let phone = "13700000007";
    let mut seen = Vec::new();
    for i in 0..6 {
        let (s, b) = gw.submit(json!({"content": format!("第{i}次：小区停车难"), "phone": phone}));
        seen.push((s, b));
    }
    let statuses: Vec<u16> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [202, 202, 202, 429, 429, 403], "{seen:?}");
    assert_eq!(seen[3].1["warnings_left"], 1);
    assert_eq!(seen[4].1["warnings_left"], 0);
    assert!(seen[3].1["retry_after"].as_u64().unwrap() > 0);
    let susp = &seen[5].1;
    assert_eq!(susp["status"], "suspended");
    assert!(chrono::DateTime::parse_from_rfc3339(susp["until"].as_str().unwrap()).is_ok());
    assert!(!susp["reason"].as_str().unwrap().is_empty());
    assert!(susp["message"].as_str().unwrap().contains("110"));

    // The page sent again while suspended: still refused.
    let page = json!({"content": "第9次：小区停车难", "phone": phone, "client_ref": "page-9"});
    let (s, _) = gw.submit(page.clone());
    assert_eq!(s, 403);

    // An emergency from the suspended person is still redirected.
    let (s, b) = gw.submit(json!({"content": "楼下饭店着火了，火很大，有人被困", "phone": phone}));
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "redirected");
    assert_eq!(b["redirect"]["number"], "119");

    // The operator's view, then a lift restores service.
    let view = gw.admin_get(&format!("/admin/v1/callers/phone:{phone}"));
    assert_eq!(view["identity"], format!("phone:{phone}"));
    assert_eq!(view["warnings"].as_array().unwrap().len(), 2, "{view}");
    // One suspension, one `until`, written the same way to the person and to the operator: in
    // the hotline's time zone (Asia/Shanghai by default).
    assert_eq!(view["suspension"]["until"], susp["until"], "{view}");
    assert!(
        susp["until"].as_str().unwrap().ends_with("+08:00"),
        "{susp}"
    );
    // Earned on the web form under a typed phone: it holds on the web form only (F2).
    assert_eq!(view["suspensions"][0]["decided_by"], "rule-web");
    assert_eq!(view["suspensions"][0]["scope"], "web");
    let r = client()
        .delete(format!(
            "{}/admin/v1/callers/phone:{phone}/suspension",
            gw.url
        ))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // The lift reset the warnings that count; the evidence packet still shows that the
    // person was reminded twice before the suspension (art. 32).
    let view = gw.admin_get(&format!("/admin/v1/callers/phone:{phone}"));
    assert_eq!(view["warnings"].as_array().map(Vec::len), Some(0), "{view}");
    let packet = gw.admin_get(&format!("/admin/v1/callers/phone:{phone}/evidence"));
    let warned = packet["records"][0]["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(warned.len(), 2, "{packet}");
    assert!(warned.iter().all(|w| w["before_reset"] == true), "{packet}");
    let (s, _) = gw.submit(json!({"content": "解除后：路灯不亮", "phone": phone}));
    assert_eq!(s, 202);
    // The page refused before the lift, sent again with its client_ref: heard afresh.
    let (s, b) = gw.submit(page);
    assert_eq!(s, 202, "{b}");

    // A length that is no length, or longer than ten years, is refused: it would suspend no
    // one, or tell the person a date in 1970.
    for duration in ["0s", "400000000000y", "11y"] {
        let r = client()
            .put(format!(
                "{}/admin/v1/callers/phone:13600000006/suspension",
                gw.url
            ))
            .bearer_auth(ADMIN)
            .json(&json!({"duration": duration, "reason": "测试"}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{duration}");
        let b: serde_json::Value = r.json().unwrap();
        assert_eq!(b["error"]["code"], "invalid_duration", "{duration}: {b}");
    }
    let (s, _) = gw.submit(json!({"content": "尚未暂停：井盖松动", "phone": "13600000006"}));
    assert_eq!(s, 202);

    // An operator's suspension, with reason, survives a restart of the gateway.
    let r = client()
        .put(format!(
            "{}/admin/v1/callers/phone:13600000006/suspension",
            gw.url
        ))
        .bearer_auth(ADMIN)
        // As `curl -d` sends it: JSON under a form content type is still JSON.
        .header("content-type", "application/x-www-form-urlencoded")
        .body(json!({"duration": "24h", "reason": "多次辱骂话务员"}).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let put: serde_json::Value = r.json().unwrap();
    assert_eq!(put["reason"], "多次辱骂话务员", "{put}");
    // The web form's phone is typed: it is refused with fixed words, not the operator's
    // (see `a_typed_phone_under_an_operators_suspension_is_not_told_its_reason`).
    let (s, b) = gw.submit(json!({"content": "测试", "phone": "13600000006"}));
    assert_eq!(
        (s, b["reason"].as_str()),
        (403, Some(typed_phone_reason())),
        "{b}"
    );
    assert_eq!(put["until"], b["until"], "{put} {b}");

    // A reason is what the person hears and what events and mail carry: a phone number in it
    // is masked.
    let r = client()
        .put(format!(
            "{}/admin/v1/callers/phone:13600000008/suspension",
            gw.url
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"duration": "1h", "reason": "多次骚扰，回拨13800138000无人接"}))
        .send()
        .unwrap();
    let put: serde_json::Value = r.json().unwrap();
    let reason = put["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("多次骚扰") && !reason.contains("13800138000"),
        "{put}"
    );
    // Typed full-width, or a WeChat id: masked too (until 2026-12-07 both were kept).
    let r = client()
        .put(format!(
            "{}/admin/v1/callers/phone:13600000011/suspension",
            gw.url
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"duration": "1h",
                      "reason": "本人手机１３６００００００１１，邮箱 self＠163.com，微信号 oZz9AbCdEfGhIjKlMnOpQrStUvWx"}))
        .send()
        .unwrap();
    let put: serde_json::Value = r.json().unwrap();
    assert_eq!(
        put["reason"], "本人手机１３６****００１１，邮箱 s***@163.com，微信号 oZz9***Wx",
        "{put}"
    );
}

#[test]
fn a_redirect_the_second_opinion_doubts_is_an_order_for_urgent_review() {
    use hotline_gateway::pipeline::{second_opinion::DEFAULT_DOUBT, RuleSet};
    let rules = RuleSet::load(None, Some(0.4)).unwrap();
    assert_eq!(rules.emergency.check(DOUBTED).unwrap().number, "122");
    let (score, _) = rules.second_opinion.as_ref().unwrap().score(DOUBTED);
    assert!(score < DEFAULT_DOUBT, "{score}");

    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        "[nuisance]\nquota = 1\nwarnings = 1\nper = \"1h\"\nsuspensions = [\"1h\"]\n",
    );
    let phone = "13700000031";
    let (s, b) = gw.submit(json!({"content": DOUBTED, "phone": phone}));
    assert_eq!((s, b["status"].as_str()), (202, Some("accepted")), "{b}");
    assert_urgent_review(&b, "122");
    let number = b["orders"][0]["number"].as_str().unwrap().to_string();
    let order = sim.wait_order(&number);
    let review = &order["emergency_review"];
    assert_eq!(
        (
            review["number"].as_str(),
            review["by"].as_str(),
            review["rule"].as_str()
        ),
        (Some("122"), Some("rules"), Some("traffic")),
        "{order}"
    );
    assert!(
        review["score"].as_f64().is_some_and(|s| s < DEFAULT_DOUBT),
        "{order}"
    );

    // Like an emergency it was not counted (quota 1: the next matter is still heard) and is
    // never refused: over quota, the same text is still taken.
    let (s, b) = gw.submit(json!({"content": "小区门口路灯不亮", "phone": phone}));
    assert_eq!(s, 202, "{b}");
    let (s, b) = gw.submit(json!({"content": "小区门口井盖松动", "phone": phone}));
    assert_eq!(s, 429, "{b}");
    // The same words are the order already made (since 2026-12-07; before, a second order):
    // a repeat of it, still with the number to dial first.
    let page = json!({"content": DOUBTED, "phone": phone, "client_ref": "doubted-page-1"});
    let (s, b) = gw.submit(page.clone());
    assert_eq!(
        (s, b["status"].as_str(), &b["orders"][0]["number"]),
        (200, Some("duplicate"), &json!(number)),
        "{b}"
    );
    assert_urgent_review(&b, "122");
    // The page sent again gets its first answer, and is not doubted (counted) a second time.
    let (s, again) = gw.submit(page);
    assert_eq!(
        (s, &again["orders"][0]["number"]),
        (200, &b["orders"][0]["number"]),
        "{again}"
    );

    // A suspended sender's message would not be heard as an order: the rules' redirect stands.
    gw.suspend("phone:13700000032", "1h", "测试");
    let (s, b) = gw.submit(json!({"content": DOUBTED, "phone": "13700000032"}));
    assert_eq!(
        (s, b["redirect"]["number"].as_str()),
        (200, Some("122")),
        "{b}"
    );
    // Operators see how often the model overrules which rule: twice here, neither the page's
    // resubmission nor the suspended sender's text.
    let doubted = gw
        .metrics()
        .lines()
        .find(|l| {
            l.starts_with("hotline_emergency_doubted_total{") && l.contains("rule=\"traffic\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap_or_default().to_string());
    assert_eq!(doubted.as_deref(), Some("2"));
    drop(gw);

    // `rules.second_opinion_doubt = -inf` keeps every redirect.
    let dir2 = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir2.path(),
        &sim.url,
        "[rules]\nsecond_opinion_doubt = -inf\n",
    );
    let (s, b) = gw.submit(json!({"content": DOUBTED, "phone": "13700000033"}));
    assert_eq!((s, b["status"].as_str()), (200, Some("redirected")), "{b}");
    assert_eq!(b["redirect"]["number"], "122", "{b}");
}

#[test]
fn linked_identities_share_one_ladder_and_evidence_covers_both() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        "[nuisance]\nquota = 2\nwarnings = 1\nper = \"1h\"\n",
    );
    let (a, b) = ("13811110001", "13811110002");
    let r = client()
        .put(format!("{}/admin/v1/callers/phone:{b}/link", gw.url))
        .bearer_auth(ADMIN)
        .json(&json!({"to": format!("phone:{a}")}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Two numbers, one person: the quota of 2 is shared.
    let (s1, _) = gw.submit(json!({"content": "甲号码：路灯坏了", "phone": a}));
    let (s2, _) = gw.submit(json!({"content": "乙号码：井盖丢了", "phone": b}));
    let (s3, w) = gw.submit(json!({"content": "乙号码：又一件事情要反映", "phone": b}));
    let (s4, _) = gw.submit(json!({"content": "甲号码：再反映一件事", "phone": a}));
    assert_eq!([s1, s2, s3, s4], [202, 202, 429, 403], "{w}");
    let view = gw.admin_get(&format!("/admin/v1/callers/phone:{b}"));
    assert_eq!(view["ladder_of"], format!("phone:{a}"));
    assert!(view["suspension"]["until"].is_string(), "{view}");
    // The evidence packet holds both numbers' contacts, unmasked, with the basis named.
    let r = client()
        .get(format!("{}/admin/v1/callers/phone:{a}/evidence", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let packet: serde_json::Value = r.json().unwrap();
    let text = packet.to_string();
    assert!(
        text.contains("甲号码：路灯坏了") && text.contains("乙号码：井盖丢了"),
        "{text}"
    );
    assert!(text.contains("第三十二条"));
    assert_eq!(packet["records"].as_array().unwrap().len(), 2);
    // Without the token, nothing.
    let r = client()
        .get(format!("{}/admin/v1/callers/phone:{a}/evidence", gw.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// An operator's suspension may carry a private `note` beside its public `reason`: the note is
/// the suspension's `evidence` in the caller view and the evidence packet, and nobody else
/// reads it (not the web form's 403 for that number, not the PUT's own answer).
#[test]
fn an_operators_note_on_a_suspension_is_kept_for_operators_only() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "");
    let phone = "13811110011";
    let put = |body: serde_json::Value| {
        let r = client()
            .put(format!(
                "{}/admin/v1/callers/phone:{phone}/suspension",
                gw.url
            ))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().unwrap_or_default(),
        )
    };
    let note = "来电人威胁邻居欧阳娜娜（朝阳区建国路88号1502室），见录音20261207-0931";
    // A note past its bound is refused, and nothing is suspended.
    let (s, b) =
        put(json!({"duration": "24h", "reason": "扰乱热线秩序", "note": "长".repeat(2001)}));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("invalid_note")),
        "{b}"
    );
    assert!(gw.admin_get(&format!("/admin/v1/callers/phone:{phone}"))["suspension"].is_null());
    let (s, b) = put(json!({"duration": "24h", "reason": "扰乱热线秩序", "note": note}));
    assert_eq!(s, 200, "{b}");
    let view = gw.admin_get(&format!("/admin/v1/callers/phone:{phone}"));
    assert_eq!(view["suspension"]["evidence"], note, "{view}");
    assert_eq!(view["suspension"]["reason"], "扰乱热线秩序", "{view}");
    let packet = gw.admin_get(&format!("/admin/v1/callers/phone:{phone}/evidence"));
    assert_eq!(
        packet["records"][0]["suspensions"][0]["evidence"], note,
        "{packet}"
    );
    let (status, web) = gw.submit(json!({"content": "小区路灯不亮", "phone": phone}));
    assert_eq!(
        (status, web["status"].as_str()),
        (403, Some("suspended")),
        "{web}"
    );
    for private in ["欧阳", "建国路", "录音"] {
        assert!(!web.to_string().contains(private), "{private}: {web}");
        assert!(!b.to_string().contains(private), "{private}: {b}");
    }
    // Without a note (the body as before 2026-12-07): no evidence.
    let other = "13811110012";
    gw.suspend(&format!("phone:{other}"), "1h", "测试");
    let view = gw.admin_get(&format!("/admin/v1/callers/phone:{other}"));
    assert_eq!(view["suspension"]["evidence"], "", "{view}");
}

/// A link's target is an identity as every admin path's is: a malformed one (an e-mail with a
/// second `@`) is refused 422 `invalid_identity` naming the field, and nothing is linked.
/// Until 2026-12-07 any value with an `@` was an e-mail identity, and the link was made.
#[test]
fn a_link_to_a_malformed_identity_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "");
    let link = |to: &str| {
        let r = client()
            .put(format!(
                "{}/admin/v1/callers/phone:13811110021/link",
                gw.url
            ))
            .bearer_auth(ADMIN)
            .json(&json!({"to": to}))
            .send()
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().unwrap_or_default(),
        )
    };
    for bad in [
        "email:zhang.san@example.comx@@",
        "email:zhang.san@",
        "fax:123",
        "phone:12",
    ] {
        let (s, b) = link(bad);
        assert_eq!(
            (s, b["error"]["code"].as_str(), b["error"]["field"].as_str()),
            (422, Some("invalid_identity"), Some("to")),
            "{bad}: {b}"
        );
        assert!(!b.to_string().contains(bad), "the value is not echoed: {b}");
    }
    let view = gw.admin_get("/admin/v1/callers/phone:13811110021");
    assert_eq!(view["ladder_of"], "phone:13811110021", "{view}");
    // The same malformed e-mail in the path is no identity either.
    let r = client()
        .get(format!(
            "{}/admin/v1/callers/email:zhang.san@example.comx@@",
            gw.url
        ))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // A well-formed e-mail links.
    let (s, b) = link("email:Zhang.San@example.com");
    assert_eq!(
        (s, b["ladder_of"].as_str()),
        (200, Some("email:zhang.san@example.com")),
        "{b}"
    );
}

/// A person who opens every message with the same introduction (where they live, "我反映一个
/// 问题") and then tells another matter is heard: a new order, not a contact on the first one.
/// Until 2026-12-07 the introduction made the two texts alike past the threshold, and the second
/// matter reached dispatch only as a contact on the first order. The same matter told again
/// with the introduction is still a repeat.
#[test]
fn a_shared_introduction_does_not_make_a_new_matter_a_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "");
    let phone = "13622220101";
    let intro = "您好，我是和平区南京路幸福里小区3号楼2单元的居民，我姓张，我反映一个问题：";
    let (s, b) = gw.submit(json!({"content": format!("{intro}楼门口的路灯坏了"), "phone": phone}));
    assert_eq!(s, 202, "{b}");
    let first = numbers(&b);
    let (s, b) = gw.submit(json!({"content": format!("{intro}楼下的井盖丢了"), "phone": phone}));
    assert_eq!(s, 202, "{b}");
    assert_ne!(numbers(&b), first, "{b}");
    let (s, b) =
        gw.submit(json!({"content": format!("{intro}楼门口的路灯坏了！"), "phone": phone}));
    assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")), "{b}");
    assert_eq!(numbers(&b), first);
    wait_until("two orders at dispatch", LONG, || {
        (delivered_orders(&sim.lines()).len() == 2).then_some(())
    });
}

/// A self-introduction ending in a comma, which a person opens every message with, does not
/// make a new matter a repeat either: two web submissions from one phone, each "您好，我是…的居
/// 民，电话…，" and then another matter, are two orders at dispatch. Until 2026-12-07's
/// twenty-second session only an introduction ending in a colon was set aside, and the second
/// matter reached dispatch as a contact on the first order. The same matter sent again after the
/// same introduction with another last clause is still a repeat: the matter's shared clauses
/// are judged, not its last clause alone.
#[test]
fn a_shared_introduction_ending_in_a_comma_does_not_make_a_new_matter_a_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "");
    let phone = "13622220102";
    let intro = "您好，我是河北区金钟路阳光小区3栋2单元的居民，电话13622220102，";
    let lamp = "小区门口的路灯坏了一个多星期了，晚上特别黑，非常危险，请尽快修复";
    let (s, b) = gw.submit(json!({"content": format!("{intro}{lamp}"), "phone": phone}));
    assert_eq!(s, 202, "{b}");
    let first = numbers(&b);
    let (s, b) = gw.submit(json!({
        "content": format!("{intro}楼下的井盖丢了，晚上特别黑，非常危险，请尽快修复"),
        "phone": phone
    }));
    assert_eq!(s, 202, "{b}");
    assert_ne!(numbers(&b), first, "{b}");
    let again = "小区门口的路灯坏了一个多星期了，晚上特别黑，非常危险，已经反映过了";
    let (s, b) = gw.submit(json!({"content": format!("{intro}{again}"), "phone": phone}));
    assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")), "{b}");
    assert_eq!(numbers(&b), first);
    wait_until("two orders at dispatch", LONG, || {
        (delivered_orders(&sim.lines()).len() == 2).then_some(())
    });
    wait_until("the repeat contact at dispatch", LONG, || {
        sim.lines()
            .into_iter()
            .find(|l| is_contact(l) && l["contact_for"] == first[0].as_str())
    });
    assert_eq!(delivered_orders(&sim.lines()).len(), 2);
}

#[test]
fn repeats_are_answered_with_the_open_order_and_forwarded_near_misses_are_new() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "");
    let phone = "13622220001";
    let (s, b) = gw.submit(
        json!({"content": "和平区南京路1号门口的路灯坏了一个月了，晚上很黑", "phone": phone}),
    );
    assert_eq!(s, 202);
    let first = numbers(&b);
    // The same matter again, in other words: a repeat (art. 17(5)).
    let (s, b) = gw.submit(json!({
        "content": "南京路1号门口的路灯坏了一个多月了，晚上很黑！", "phone": phone,
        "name": "王女士", "email": "wang@example.cn"
    }));
    assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")), "{b}");
    assert_eq!(numbers(&b), first);
    // A different matter from the same person: a new order.
    let (s, b) = gw.submit(json!({"content": "小区垃圾站三天没有清运，气味很大", "phone": phone}));
    assert_eq!(s, 202, "{b}");
    assert_ne!(numbers(&b), first);
    // The repeat reached dispatch as a contact on the open order, not as an order.
    let contact = wait_until("the repeat contact at dispatch", LONG, || {
        sim.lines()
            .into_iter()
            .find(|l| is_contact(l) && l["contact_for"] == first[0].as_str())
    });
    assert!(contact["content"].as_str().unwrap().contains("南京路"));
    // With the name and e-mail the repeat came with, which the first submission lacked.
    assert_eq!(
        (
            &contact["submitter"]["name"],
            &contact["submitter"]["email"]
        ),
        (&json!("王女士"), &json!("wang@example.cn")),
        "{contact}"
    );
    wait_until("two orders at dispatch", LONG, || {
        (delivered_orders(&sim.lines()).len() == 2).then_some(())
    });
    // A list of three matters is three orders (art. 13); the same list again repeats all three
    // (it was compared whole with each order's one matter, and made three more).
    let list = "一是暖气不热，二是物业不接电话，三是垃圾没人清运";
    let (s, b) = gw.submit(json!({"content": list, "phone": "13622220004"}));
    assert_eq!(s, 202, "{b}");
    let three = numbers(&b);
    assert_eq!(three.len(), 3, "{b}");
    let (s, b) = gw.submit(json!({"content": list, "phone": "13622220004"}));
    assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")), "{b}");
    assert_eq!(numbers(&b), three);
    wait_until("five orders at dispatch", LONG, || {
        (delivered_orders(&sim.lines()).len() == 5).then_some(())
    });
    // An emergency from the web is redirected and never dispatched.
    let (s, b) =
        gw.submit(json!({"content": "我家楼下饭店着火了，火很大", "phone": "13622220002"}));
    assert_eq!((s, b["redirect"]["number"].as_str()), (200, Some("119")));
    let (s, _) =
        gw.submit(json!({"content": "之后的普通诉求：公园长椅坏了", "phone": "13622220003"}));
    assert_eq!(s, 202);
    wait_until("the later order at dispatch", LONG, || {
        (delivered_orders(&sim.lines()).len() == 6).then_some(())
    });
    assert!(!serde_json::to_string(&sim.lines())
        .unwrap()
        .contains("着火"));
}

#[test]
fn rules_reload_by_admin_and_sighup_and_a_broken_file_keeps_the_old_rules() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    let mut gw = Gateway::start(dir.path(), &sim.url, "[rules]\ndir = \"rules\"\n");
    let ask = |gw: &Gateway, i: u32| {
        gw.submit(json!({"content": "请问彩票中奖了去哪里兑奖", "phone": format!("1352222{i:04}")}))
    };
    let (s, _) = ask(&gw, 1);
    assert_eq!(s, 202, "built-in rules: an ordinary order");
    let rule = |keyword: &str| {
        format!(
            "version = 1\n[[rule]]\nname = \"lottery\"\naction = \"inform\"\ntag = \"guidance:lottery\"\n\
             message = \"兑奖请联系彩票中心。\"\nkeywords = [\"{keyword}\"]\n"
        )
    };
    std::fs::write(dir.path().join("rules/guidance.toml"), rule("彩票")).unwrap();
    let r = client()
        .post(format!("{}/admin/v1/rules/reload", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // The answer names the node that reloaded: a reload reaches only the node that takes it
    // (through a balancer, an operator must see which one did).
    let reloaded: serde_json::Value = r.json().unwrap();
    assert_eq!(
        reloaded,
        json!({"status": "reloaded", "node": 7}),
        "the test config's node_id"
    );
    let (s, b) = ask(&gw, 2);
    assert_eq!((s, b["status"].as_str()), (200, Some("informed")), "{b}");
    assert_eq!(
        b["message"],
        "兑奖请联系彩票中心。如遇紧急情况，请直接拨打110、119、120、122。"
    );
    // A second matter in the same message is not lost to the guidance: both are orders, the
    // first with its hint (art. 13).
    let (s, b) = gw.submit(json!({
        "content": "一是彩票中奖了去哪里兑奖，二是小区门口路灯坏了一个月",
        "phone": "13522229999"
    }));
    assert_eq!(
        (s, b["orders"].as_array().map(Vec::len)),
        (202, Some(2)),
        "{b}"
    );
    // A broken file is refused with its problem named; the rules in force stay.
    std::fs::write(
        dir.path().join("rules/guidance.toml"),
        "version = 1\n[[rule]]\nname = 3\n",
    )
    .unwrap();
    let r = client()
        .post(format!("{}/admin/v1/rules/reload", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("guidance.toml"),
        "{body}"
    );
    assert_eq!(ask(&gw, 3).1["status"], "informed");
    // SIGHUP reloads too.
    std::fs::write(
        dir.path().join("rules/guidance.toml"),
        rule("兑奖不存在的词"),
    )
    .unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &gw.child.id().to_string()])
        .status();
    // A new asker each time: repeated asks would (rightly) meet the quota.
    let mut i = 100;
    wait_until("the SIGHUP reload", LONG, || {
        i += 1;
        (ask(&gw, i).0 == 202).then_some(())
    });
    assert!(gw.terminate());
}

#[test]
fn order_status_is_cached_briefly_and_falls_back_to_what_the_gateway_knows() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "");
    let (_, b) = gw.submit(json!({"content": "人行道护栏倒了", "phone": "13644440001"}));
    let n = numbers(&b).remove(0);
    wait_until("the order at dispatch", LONG, || {
        delivered_orders(&sim.lines()).contains(&n).then_some(())
    });
    let status = |n: &str| -> serde_json::Value {
        client()
            .get(format!("{}/v1/orders/{n}", gw.url))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let s = status(&n);
    assert_eq!(s["status"], "processing");
    // dispatch-sim answers in UTC with nanoseconds; the submitter reads the hotline's zone, as
    // in `received_at`.
    let updated = s["updated_at"].as_str().unwrap_or_default();
    assert!(updated.ends_with("+08:00") && !updated.contains('.'), "{s}");
    // Dispatch goes away: the cached answer is served.
    sim.stop();
    assert_eq!(
        status(&n)["status"],
        "processing",
        "served from the short cache"
    );
    // An order dispatch never answered for: what the gateway itself knows.
    let (_, b) = gw.submit(json!({"content": "公厕无人打扫", "phone": "13644440002"}));
    let n2 = numbers(&b).remove(0);
    let s = status(&n2);
    assert_eq!(s["status"], "received", "{s}");
    assert_eq!(s["number"], n2.as_str());
}

/// The retention (`storage.retain`, 30 days by default): a month after delivery an order's
/// body and its page's retry record are gone from the store, counted and logged, while the
/// order still answers its status and an undelivered order keeps its body and is delivered
/// whole. Until 2026-12-07 both were kept for ever and the store grew without bound. The rows
/// are aged in the store between two runs (a month is not waited for).
#[test]
fn a_month_after_delivery_the_body_and_retry_record_go_and_the_status_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (sim_out, sim_port) = (dir.path().join("sim.jsonl"), free_port());
    let mut sim = Sim::start(sim_port, &sim_out, &[]);
    let mut gw = Gateway::start(dir.path(), &sim.url, "");
    let (_, b) = gw.submit(
        json!({"content": "小区门口路灯不亮", "phone": "13644440021",
                                  "client_ref": "6f1c2a9e-retention-1"}),
    );
    let delivered = numbers(&b).remove(0);
    sim.wait_order(&delivered);
    sim.stop();
    let (_, b) = gw.submit(json!({"content": "公园厕所无人打扫", "phone": "13644440022"}));
    let pending = numbers(&b).remove(0);
    let (config, port) = (gw.config.clone(), gw.port());
    assert!(gw.terminate());
    let month = 31 * 86_400;
    let age = format!(
        "UPDATE outbox SET created_at = created_at - {month}, \
         delivered_at = delivered_at - {month}; \
         UPDATE dedupe SET created_at = created_at - {month}; \
         UPDATE orders SET created_at = created_at - {month};"
    );
    match common::services::test_backend() {
        "postgres" => {
            let db = common::services::db_name_for(dir.path());
            common::services::postgres().psql(&db, &age);
        }
        _ => rusqlite::Connection::open(dir.path().join("data/gateway.db"))
            .unwrap()
            .execute_batch(&age)
            .unwrap(),
    }
    let gw = Gateway::start_with(config, port);
    let pruned = |what: &str| {
        let m = gw.metrics();
        let line = format!("hotline_store_pruned_total{{what=\"{what}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(line.as_str())?.parse::<u64>().ok())
    };
    wait_until("the first run of the retention", LONG, || {
        pruned("outbox_body").filter(|n| *n > 0)
    });
    assert_eq!(pruned("outbox_body"), Some(1), "the delivered body only");
    assert_eq!(pruned("dedupe"), Some(1), "the page's retry record");
    assert!(gw.logs().contains("Store pruned"), "{}", gw.logs());
    // Dispatch is down: the status is what the gateway itself knows, from the pruned row.
    let s: serde_json::Value = client()
        .get(format!("{}/v1/orders/{delivered}", gw.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        (&s["number"], &s["status"]),
        (&json!(delivered), &json!("forwarded")),
        "{s}"
    );
    assert!(s["forwarded_at"].is_string(), "{s}");
    // The undelivered order kept its body: dispatch gets it whole once it is back.
    let sim = Sim::start(sim_port, &sim_out, &[]);
    let line = sim.wait_order(&pending);
    assert_eq!(line["content"], "公园厕所无人打扫", "{line}");
}

/// Status lookups ask what `dispatch.url` names and nowhere else, as the relay does: a
/// dispatch that answers with a redirect gets no second request, and the submitter sees what
/// the gateway itself knows. (reqwest follows up to ten redirects unless told not to.)
#[test]
fn an_order_status_lookup_follows_no_redirect() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dispatch = format!("http://{}", listener.local_addr().unwrap());
    let (seen_tx, seen) = std::sync::mpsc::channel::<String>();
    // A dispatch that moved: every path is redirected under /moved, where a status waits.
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let mut reader = BufReader::new(conn);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let path = line.split(' ').nth(1).unwrap_or("/").to_string();
            let _ = seen_tx.send(format!("{} {path}", line.split(' ').next().unwrap_or("")));
            let answer = if path.starts_with("/moved") {
                let body = r#"{"status":"answered after a redirect","unit":"?"}"#;
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                format!(
                    "HTTP/1.1 302 Found\r\nlocation: /moved{path}\r\n\
                     content-length: 0\r\nconnection: close\r\n\r\n"
                )
            };
            let _ = reader.get_mut().write_all(answer.as_bytes());
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &dispatch, "");
    let (s, b) =
        gw.submit(json!({"content": "公交站牌的玻璃碎了好几天了", "phone": "13644440003"}));
    assert_eq!(s, 202, "{b}");
    let n = numbers(&b).remove(0);
    let asked = format!("GET /work-orders/{n}");
    let r: serde_json::Value = client()
        .get(format!("{}/v1/orders/{n}", gw.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["status"], "received", "what the gateway knows: {r}");
    let requests: Vec<String> = seen.try_iter().collect();
    assert!(
        requests.contains(&asked),
        "dispatch was asked: {requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.starts_with("GET /moved")),
        "the redirect was not followed: {requests:?}"
    );
}

/// A dispatch that answers every status lookup with `status` and anything else with `{}`;
/// its URL.
fn dispatch_answering_status(status: &'static str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dispatch = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let mut reader = BufReader::new(conn);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let body = if line.starts_with("GET /work-orders/") {
                status
            } else {
                "{}"
            };
            let _ = reader.get_mut().write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    dispatch
}

/// `GET /v1/orders/{number}` of the order `gw` makes of `form`, as text.
fn status_shown(gw: &Gateway, form: serde_json::Value) -> String {
    let (s, b) = gw.submit(form);
    assert_eq!(s, 202, "{b}");
    let n = numbers(&b).remove(0);
    let r: serde_json::Value = client()
        .get(format!("{}/v1/orders/{n}", gw.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    r.to_string()
}

/// The contract: the status answer "never holds personal data", and anyone with an order's
/// number may ask. Dispatch cores write contacts into their statuses; until 2026-12-07 the
/// gateway passed them on as they came (the review's status, below).
#[test]
fn an_order_status_shows_no_personal_data_dispatch_wrote_into_it() {
    let dispatch = dispatch_answering_status(
        r#"{"status":"已派单，网格员（13957100001）已联系反映人孙八（13512340001，sun.ba@example.cn），地址上城区解放路9号","unit":"上城区城管局 联系人 ０５７１－８７０００００１"}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &dispatch, "");
    let shown = status_shown(
        &gw,
        json!({"content": "井盖丢失请尽快修复", "name": "孙八",
        "phone": "13512340001", "email": "sun.ba@example.cn", "address": "上城区解放路9号"}),
    );
    assert!(
        shown.contains("已派单") && shown.contains("上城区城管局"),
        "{shown}"
    );
    for raw in [
        "孙八",
        "13512340001",
        "13957100001",
        "sun.ba",
        "解放路",
        "８７００",
    ] {
        assert!(!shown.contains(raw), "{raw}: {shown}");
    }
}

/// The review's two gaps (2026-12-07): a house number in Chinese numerals or full-width
/// digits, and the names and work numbers of the staff dispatch writes into its status, were
/// shown to anyone with the order's number. A role, a surname with a title and the district
/// stay.
#[test]
fn an_order_status_shows_no_house_number_in_numerals_nor_a_staff_name() {
    let dispatch = dispatch_answering_status(
        r#"{"status":"网格员王建国已联系和平区南京路七十七号三单元五〇二室住户，维修工张三（工号1234）已上门，十二栋二十三号楼、７７号同查","unit":"和平区房管局 联系人李科长"}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &dispatch, "");
    let shown = status_shown(
        &gw,
        json!({"content": "楼道灯不亮请修理", "name": "孙八",
        "phone": "13512340001", "address": "上城区解放路9号"}),
    );
    for kept in [
        "网格员王**",
        "和平区南京路***号",
        "维修工张**",
        "和平区房管局 联系人李科长",
    ] {
        assert!(shown.contains(kept), "{kept}: {shown}");
    }
    for raw in [
        "王建国",
        "七十七",
        "三单元",
        "五〇二",
        "十二栋",
        "二十三",
        "７７",
        "张三",
        "1234",
    ] {
        assert!(!shown.contains(raw), "{raw}: {shown}");
    }
}

/// Behind a balancer in a trusted range, each citizen is their own `ip:` identity with their
/// own quota, not one shared by everyone the balancer forwards.
#[test]
fn citizens_behind_a_proxy_in_a_trusted_range_are_counted_apart() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        "[web]\ntrusted_proxies = [\"127.0.0.0/8\"]\n[nuisance]\nquota = 1\n",
    );
    let post =
        |from: &str, content: &str| gw.submit_from(Some(from), json!({ "content": content }));
    let (s, b) = post("203.0.113.1", "代理后：小区路灯坏了");
    assert_eq!(s, 202, "{b}");
    let (s, b) = post("203.0.113.2", "代理后：楼道堆放杂物");
    assert_eq!(s, 202, "another citizen, another quota: {b}");
    // The first one's quota is spent: the forwarded address is what is counted.
    let (s, b) = post("203.0.113.1", "代理后：井盖松动");
    assert_eq!((s, b["status"].as_str()), (429, Some("throttled")), "{b}");
    let view = gw.admin_get("/admin/v1/callers/ip:203.0.113.1");
    assert_eq!(view["warnings"].as_array().map(Vec::len), Some(1), "{view}");
}

/// POSTs JSON to the web form forwarded for `from` (a `web.trusted_proxies` peer believes it):
/// (status, `Retry-After`, body).
fn post_from(
    gw: &Gateway,
    from: &str,
    body: serde_json::Value,
) -> (u16, Option<u64>, serde_json::Value) {
    let r = client()
        .post(format!("{}/v1/web/submissions", gw.url))
        .header("x-forwarded-for", from)
        .json(&body)
        .send()
        .expect("submit");
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (
        status,
        retry_after,
        r.json().unwrap_or(serde_json::Value::Null),
    )
}

/// One machine typing a made-up phone each time (every number a fresh identity with a fresh
/// quota) is stopped by the cap per client address (`web.address_quota`): over it 429
/// `throttled` with `Retry-After`, nothing stored, no reminder on any typed number (its owner
/// may be anyone). An emergency past the cap is still redirected, a text the second opinion
/// suspects still taken; another address (another IPv6 /64) is not refused, one in the same
/// /64 is. Until 2026-12-07 all 30 of such a flood were 202 orders at the dispatch core.
#[test]
fn one_address_typing_a_new_phone_each_time_is_capped_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        "[web]\ntrusted_proxies = [\"127.0.0.0/8\"]\naddress_quota = 4\n[nuisance]\nquota = 2\nwarnings = 2\n\
         allow = [\"ip:198.51.100.9\", \"phone:13900009999\"]\n",
    );
    let flood = "198.51.100.7";
    let phone = |i: usize| format!("1390000{i:04}");
    let mut numbers = Vec::new();
    for i in 0..4 {
        let (s, _, b) = post_from(
            &gw,
            flood,
            json!({"content": format!("第{i}号：某小区门口路灯坏了"), "phone": phone(i)}),
        );
        assert_eq!(s, 202, "submission {i}: {b}");
        numbers.extend(common::numbers(&b));
    }
    for i in 4..6 {
        let (s, retry_after, b) = post_from(
            &gw,
            flood,
            json!({"content": format!("第{i}号：某小区门口路灯坏了"), "phone": phone(i)}),
        );
        assert_eq!(
            (s, b["status"].as_str()),
            (429, Some("throttled")),
            "{i}: {b}"
        );
        let wait = b["retry_after"].as_u64().unwrap();
        assert!(wait > 0, "{b}");
        assert_eq!(retry_after, Some(wait), "Retry-After as the body says: {b}");
        // No reminder is used by it: all of `nuisance.warnings` are left, and the message
        // promises no suspension.
        assert_eq!(b["warnings_left"], 2, "{b}");
        let message = b["message"].as_str().unwrap();
        assert!(
            message.contains("网络地址")
                && !message.contains("将被暂停受理")
                && message.contains("110"),
            "{message}"
        );
    }
    // An emergency from that address, past its cap: redirected.
    let (s, _, b) = post_from(
        &gw,
        flood,
        json!({"content": "楼下饭店着火了，火很大，有人被困", "phone": phone(6)}),
    );
    assert_eq!(
        (s, b["redirect"]["number"].as_str()),
        (200, Some("119")),
        "{b}"
    );
    // A text the second opinion suspects is not refused either (as it is never shed): the
    // address may be a campus's, kept busy by others. Its order is marked for urgent review.
    let (s, _, b) = post_from(&gw, flood, json!({"content": SUSPECTED, "phone": phone(8)}));
    assert_eq!(s, 202, "{b}");
    assert_urgent_review(&b, "110");
    numbers.extend(common::numbers(&b));
    // Another address, and IPv6 by its /64.
    let (s, _, b) = post_from(
        &gw,
        "198.51.100.8",
        json!({"content": "另一处：楼道堆放杂物", "phone": phone(7)}),
    );
    assert_eq!(s, 202, "another address is not refused: {b}");
    numbers.extend(common::numbers(&b));
    for i in 0..4 {
        let from = format!("2001:db8:1:2::{:x}", i + 1);
        let (s, _, b) = post_from(&gw, &from, json!({"content": format!("六号{i}：井盖松动")}));
        assert_eq!(s, 202, "{from}: {b}");
        numbers.extend(common::numbers(&b));
    }
    let (s, _, b) = post_from(
        &gw,
        "2001:db8:1:2:ffff::9",
        json!({"content": "六号：井盖松动了"}),
    );
    assert_eq!(s, 429, "the same /64 is one address: {b}");
    let (s, _, b) = post_from(
        &gw,
        "2001:db8:1:3::1",
        json!({"content": "另一户：井盖松动了"}),
    );
    assert_eq!(s, 202, "another /64: {b}");
    numbers.extend(common::numbers(&b));

    // An address on the allow list (a city's kiosk, say) is not capped; a typed phone on it
    // exempts nobody, since anyone can type it.
    for i in 0..6 {
        let (s, _, b) = post_from(
            &gw,
            "198.51.100.9",
            json!({"content": format!("自助机{i}：路面塌陷"), "phone": phone(20 + i)}),
        );
        assert_eq!(s, 202, "an allowed address: {b}");
        numbers.extend(common::numbers(&b));
    }
    let (s, _, b) = post_from(
        &gw,
        flood,
        json!({"content": "第9号：某小区门口路灯坏了", "phone": "13900009999"}),
    );
    assert_eq!(s, 429, "a typed allowed phone: {b}");

    // Dispatch gets the accepted ones and nothing of the refused: once the last accepted has
    // arrived (orders go in the order they were stored), no refused text is there.
    assert_eq!(numbers.len(), 17, "{numbers:?}");
    for n in &numbers {
        sim.wait_order(n);
    }
    let orders: Vec<_> = sim.lines().into_iter().filter(is_order).collect();
    assert_eq!(orders.len(), 17, "{orders:?}");
    let text = serde_json::to_string(&orders).unwrap();
    for refused in ["第4号", "第5号", "第9号", "六号：井盖松动了"] {
        assert!(
            !text.contains(refused),
            "{refused} reached dispatch: {text}"
        );
    }
    // No typed number was reminded (or suspended) for the address's flood.
    for i in 0..6 {
        let view = gw.admin_get(&format!("/admin/v1/callers/phone:{}", phone(i)));
        assert_eq!(view["warnings"].as_array().map(Vec::len), Some(0), "{view}");
        assert!(view["suspension"].is_null(), "{view}");
    }
    let metrics = gw.metrics();
    assert!(
        metrics.contains("hotline_web_address_throttled_total 4"),
        "{metrics}"
    );
    // No address in the logs (the refusal is logged at debug level only, masked).
    assert!(!gw.logs().contains("198.51.100.7"));
}

/// `web.address_quota = 0` turns the cap off: a flood of 20 made-up numbers from one address
/// is all 202, as before the cap (each number its own quota). With `nuisance.quota = 1` the
/// default cap would be 10, so a zero read as "unset" would refuse the last ten.
#[test]
fn an_address_quota_of_zero_turns_the_cap_off() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        "[web]\naddress_quota = 0\n[nuisance]\nquota = 1\n",
    );
    for i in 0..20 {
        let (s, b) = gw.submit(json!({"content": format!("第{i}号：某小区门口路灯坏了"), "phone": format!("1380000{i:04}")}));
        assert_eq!(s, 202, "{i}: {b}");
    }
}

/// `GET /v1/orders/{number}` forwarded for the client address `from` (a `web.trusted_proxies`
/// peer believes it): (status, `Retry-After`, body).
fn lookup_from(gw: &Gateway, from: &str, number: &str) -> (u16, Option<u64>, serde_json::Value) {
    let r = client()
        .get(format!("{}/v1/orders/{number}", gw.url))
        .header("x-forwarded-for", from)
        .send()
        .expect("lookup");
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (
        status,
        retry_after,
        r.json().unwrap_or(serde_json::Value::Null),
    )
}

/// Order numbers are sequential, and until 2026-12-07 one loop over a day's range listed every
/// order's category, times, unit and status (the privacy review's F4). Status look-ups are now
/// capped per client address (`web.lookup_quota`): the (N+1)th from one address is 429
/// `too_many_lookups` with `Retry-After`, 404s counted as hits are (walking the range mostly
/// hits 404s); another address is not refused, and the look-ups spent nothing of the
/// address's web submissions (a budget of their own).
#[test]
fn status_lookups_are_capped_per_client_address_and_404s_count() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        "[web]\ntrusted_proxies = [\"127.0.0.0/8\"]\nlookup_quota = 3\naddress_quota = 1\n\
         [nuisance]\nquota = 1\n",
    );
    let (s, b) = gw.submit(json!({"content": "小区门口路灯坏了", "phone": "13644440021"}));
    assert_eq!(s, 202, "{b}");
    let n = numbers(&b).remove(0);
    let walker = "198.51.100.7";
    // A walk over the numbers around it: one hit, two misses.
    let missing = |i: u64| format!("{}", n.parse::<u64>().unwrap() + 100 + i);
    assert_eq!(lookup_from(&gw, walker, &n).0, 200);
    for i in 0..2 {
        let (s, _, b) = lookup_from(&gw, walker, &missing(i));
        assert_eq!(s, 404, "{b}");
    }
    // The fourth: refused, the real order's number as well as another.
    for number in [missing(2), n.clone()] {
        let (s, retry_after, b) = lookup_from(&gw, walker, &number);
        assert_eq!(
            (s, b["status"].as_str(), b["error"]["code"].as_str()),
            (429, Some("rejected"), Some("too_many_lookups")),
            "{b}"
        );
        let wait = b["error"]["retry_after"].as_u64().unwrap();
        assert!(wait > 0, "{b}");
        assert_eq!(retry_after, Some(wait), "Retry-After as the body says: {b}");
        assert!(b["message"].as_str().unwrap().contains("查询"), "{b}");
        assert!(
            b.get("category").is_none() && b.get("unit").is_none(),
            "{b}"
        );
    }
    // Another address is counted apart.
    let (s, _, b) = lookup_from(&gw, "198.51.100.8", &n);
    assert_eq!((s, b["number"].as_str()), (200, Some(n.as_str())), "{b}");
    // The walker's web submission is not refused by its look-ups (`address_quota = 1`).
    let (s, b) = gw.submit_from(
        Some(walker),
        json!({"content": "楼道里的灯不亮了", "phone": "13644440022"}),
    );
    assert_eq!(s, 202, "{b}");
}

/// Behind a proxy that writes the client's hop with a port or in brackets (`203.0.113.6:5555`,
/// `[2001:db8:5:5::1]:443`), a hop the client writes to its left and changes on every look-up
/// does not escape `web.lookup_quota`: the proxy's hop is the client. Until 2026-12-07 such a
/// hop was skipped, the client's own believed, and the walk over order numbers never capped.
#[test]
fn a_rotated_hop_left_of_one_with_a_port_does_not_escape_the_lookup_cap() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        "[web]\ntrusted_proxies = [\"127.0.0.0/8\"]\nlookup_quota = 3\n",
    );
    for proxied in [
        "203.0.113.6:5555",
        "[2001:db8:5:5::1]:443",
        "[2001:db8:6:6::1]",
    ] {
        let answers: Vec<u16> = (0..5)
            .map(|i| {
                let from = format!("10.9.8.{i}, {proxied}");
                lookup_from(&gw, &from, &format!("{}", 2026120801000001u64 + i)).0
            })
            .collect();
        assert_eq!(answers, [404, 404, 404, 429, 429], "{proxied}");
    }
}

/// `web.lookup_quota = 0` turns the cap off: 61 look-ups from one address (one past the default
/// of 60) are all answered, so a zero read as "unset" would refuse the last.
#[test]
fn a_lookup_quota_of_zero_turns_the_cap_off() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "[web]\nlookup_quota = 0\n");
    for i in 0..61 {
        let r = client()
            .get(format!("{}/v1/orders/20260101{i:08}", gw.url))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "look-up {i}");
    }
}

/// A confidential order (`confidential: true`, art. 29) is answered with its status word alone
/// to anyone asking by its number: until 2026-12-07 a `report` filed in confidence showed its
/// category, when it was received, its unit and dispatch's status text (the privacy review's
/// F4). An order not asked to be kept confidential still shows them.
#[test]
fn a_confidential_orders_status_shows_only_its_status_word() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    // Polled below: not capped here (the cap has its own tests).
    let gw = Gateway::start(dir.path(), &sim.url, "[web]\nlookup_quota = 0\n");
    let lookup = |n: &str| -> serde_json::Value {
        client()
            .get(format!("{}/v1/orders/{n}", gw.url))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    // Before delivery (the gateway's own record) and after (dispatch's answer).
    let (s, b) = gw.submit(json!({"content": "举报某单位负责人受贿，我要求保密",
        "phone": "13611112222", "category": "report", "confidential": true}));
    assert_eq!(s, 202, "{b}");
    let secret = numbers(&b).remove(0);
    let (s, b) = gw.submit(
        json!({"content": "公园的长椅坏了", "phone": "13611113333", "category": "complaint"}),
    );
    assert_eq!(s, 202, "{b}");
    let open = numbers(&b).remove(0);
    let early = lookup(&secret);
    sim.wait_order(&secret);
    sim.wait_order(&open);
    let late = wait_until("dispatch's status of the confidential order", LONG, || {
        let v = lookup(&secret);
        (v["status"] == "processing").then_some(v)
    });
    for v in [&early, &late] {
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["number", "status"], "{v}");
        assert_eq!(v["number"], secret.as_str(), "{v}");
        assert!(
            ["received", "forwarded", "processing"].contains(&v["status"].as_str().unwrap()),
            "{v}"
        );
    }
    let shown = wait_until("dispatch's status of the other order", LONG, || {
        let v = lookup(&open);
        (v["status"] == "processing").then_some(v)
    });
    assert_eq!(shown["category"], "complaint", "{shown}");
    assert!(shown["received_at"].is_string(), "{shown}");
}

/// A confidential order is still answered with its status word alone once the retention
/// (`storage.retain`) has cleared its delivered body, with dispatch answering and without:
/// until 2026-12-07 the body was the flag's only place, and a month after delivery such an
/// order was answered with its category and when it was received again (a `report` filed in
/// confidence, told to anyone walking the numbers). An order not asked to be kept
/// confidential still shows them after the retention. The rows are aged in the store between
/// two runs, as in the retention's own test.
#[test]
fn a_confidential_order_keeps_its_status_word_alone_once_retention_cleared_its_body() {
    let dir = tempfile::tempdir().unwrap();
    let (sim_out, sim_port) = (dir.path().join("sim.jsonl"), free_port());
    let mut sim = Sim::start(sim_port, &sim_out, &[]);
    // Polled below: not capped here (the cap has its own tests).
    let mut gw = Gateway::start(dir.path(), &sim.url, "[web]\nlookup_quota = 0\n");
    let (s, b) = gw.submit(
        json!({"content": "举报某街道办工作人员收受好处费，请为我保密",
        "phone": "13644440031", "category": "report", "confidential": true}),
    );
    assert_eq!(s, 202, "{b}");
    let secret = numbers(&b).remove(0);
    let (s, b) = gw.submit(
        json!({"content": "小区东门的垃圾桶满了没人清", "phone": "13644440032", "category": "complaint"}),
    );
    assert_eq!(s, 202, "{b}");
    let open = numbers(&b).remove(0);
    sim.wait_order(&secret);
    sim.wait_order(&open);
    // Dispatch is down at first (its answers are cached for a while once given).
    sim.stop();
    let (config, port) = (gw.config.clone(), gw.port());
    assert!(gw.terminate());
    let month = 31 * 86_400;
    let age = format!(
        "UPDATE outbox SET created_at = created_at - {month}, \
         delivered_at = delivered_at - {month}; \
         UPDATE orders SET created_at = created_at - {month};"
    );
    match common::services::test_backend() {
        "postgres" => {
            let db = common::services::db_name_for(dir.path());
            common::services::postgres().psql(&db, &age);
        }
        _ => rusqlite::Connection::open(dir.path().join("data/gateway.db"))
            .unwrap()
            .execute_batch(&age)
            .unwrap(),
    }
    let gw = Gateway::start_with(config, port);
    let pruned = wait_until("the retention cleared both bodies", LONG, || {
        let m = gw.metrics();
        m.lines()
            .find_map(|l| {
                l.strip_prefix("hotline_store_pruned_total{what=\"outbox_body\"} ")?
                    .parse::<u64>()
                    .ok()
            })
            .filter(|n| *n >= 2)
    });
    assert_eq!(pruned, 2, "both delivered bodies, and only those");
    let lookup = |n: &str| -> serde_json::Value {
        client()
            .get(format!("{}/v1/orders/{n}", gw.url))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let only_the_word = |v: &serde_json::Value, words: &[&str]| {
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["number", "status"], "{v}");
        assert_eq!(v["number"], secret.as_str(), "{v}");
        assert!(words.contains(&v["status"].as_str().unwrap()), "{v}");
    };
    // Dispatch is down: the gateway's own word from the pruned row, nothing else.
    only_the_word(&lookup(&secret), &["forwarded"]);
    let shown = lookup(&open);
    assert_eq!(shown["category"], "complaint", "{shown}");
    assert!(shown["forwarded_at"].is_string(), "{shown}");
    // Dispatch answers: its status word, nothing else.
    let _sim = Sim::start(sim_port, &sim_out, &[]);
    let late = wait_until("dispatch's status of the confidential order", LONG, || {
        let v = lookup(&secret);
        (v["status"] == "processing").then_some(v)
    });
    only_the_word(&late, &["processing"]);
    let shown = wait_until("dispatch's status of the other order", LONG, || {
        let v = lookup(&open);
        (v["status"] == "processing").then_some(v)
    });
    assert_eq!(shown["category"], "complaint", "{shown}");
    assert!(shown["received_at"].is_string(), "{shown}");
}

/// The sim's file is what a black-box check reads: each order line is the order itself, with the
/// acknowledged number at top level; a repeat contact has no `number`; a re-delivery under a key
/// the sim has seen (also after a restart) is marked `"repeat": true`.
#[test]
fn the_sim_records_orders_by_their_number_and_contacts_apart() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim.jsonl");
    let port = free_port();
    let mut sim = Sim::start(port, &out, &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "");
    let phone = "13655550001";
    let (s, b) = gw.submit(
        json!({"content": "和平区南京路1号门口的路灯坏了一个月了，晚上很黑", "phone": phone}),
    );
    assert_eq!(s, 202, "{b}");
    let n = numbers(&b).remove(0);
    // The same matter again: a repeat contact on that order.
    let (s, b) = gw.submit(
        json!({"content": "南京路1号门口的路灯坏了一个多月了，晚上很黑！", "phone": phone}),
    );
    assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")), "{b}");
    // Read the file line by line, as a script would.
    let raw = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is JSON"))
            .collect()
    };
    let lines = wait_until("the order and the contact at dispatch", LONG, || {
        let l = raw();
        (l.iter().any(|l| l["number"] == n.as_str())
            && l.iter().any(|l| l["contact_for"] == n.as_str()))
        .then_some(l)
    });
    let orders: Vec<_> = lines.iter().filter(|l| l["number"] == n.as_str()).collect();
    assert_eq!(orders.len(), 1, "{lines:?}");
    let order = orders[0];
    assert_eq!(order["idempotency_key"], n.as_str(), "{order}");
    assert!(order.get("repeat").is_none(), "a first delivery: {order}");
    assert_eq!(
        order["content"], "和平区南京路1号门口的路灯坏了一个月了，晚上很黑",
        "{order}"
    );
    assert_eq!(order["channel"], "web", "{order}");
    for gone in ["kind", "key", "order"] {
        assert!(order.get(gone).is_none(), "no wrapper: {order}");
    }
    let contact = lines
        .iter()
        .find(|l| l["contact_for"] == n.as_str())
        .unwrap();
    assert!(contact.get("number").is_none(), "{contact}");
    assert!(contact["idempotency_key"].is_string(), "{contact}");
    assert_ne!(contact["idempotency_key"], n.as_str(), "{contact}");
    assert!(
        contact["content"]
            .as_str()
            .unwrap_or_default()
            .contains("南京路"),
        "{contact}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.get("number").is_some()).count(),
        1,
        "one line with a number: {lines:?}"
    );

    // The same key again, after a restart: the sim still knows it (409) and marks the line.
    sim.stop();
    let sim = Sim::start(port, &out, &[]);
    let mut body = order.clone();
    body.as_object_mut().unwrap().remove("idempotency_key");
    let again = client()
        .post(format!("{}/work-orders", sim.url))
        .header("idempotency-key", n.as_str())
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let lines = raw();
    let same: Vec<_> = lines.iter().filter(|l| l["number"] == n.as_str()).collect();
    assert!(same.len() >= 2, "{lines:?}");
    assert!(same[0].get("repeat").is_none(), "{}", same[0]);
    for l in &same[1..] {
        assert_eq!(l["repeat"], true, "{l}");
        assert_eq!(l["idempotency_key"], n.as_str(), "{l}");
    }
    let mut resent = same[same.len() - 1].clone();
    resent.as_object_mut().unwrap().remove("repeat");
    assert_eq!(resent, *order, "the order as received, plus the two fields");
    assert_eq!(
        delivered_orders(&lines),
        vec![n.clone()],
        "a repeat is no new delivery"
    );
}

#[test]
fn a_dispatch_url_with_a_query_serves_deliveries_and_status_lookups() {
    // `dispatch.url` may carry a query (an API key). The relay kept it a query; status
    // look-ups appended their path to it as text (`/?k=v/work-orders/N`), dispatch did not
    // know that address, and the submitter saw only the gateway's own status (until
    // 2026-12-07).
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &format!("{}/?k=v", sim.url), "");
    let (s, b) = gw.submit(json!({"content": "小区门口的路灯不亮了", "phone": "13644440004"}));
    assert_eq!(s, 202, "{b}");
    let n = numbers(&b).remove(0);
    sim.wait_order(&n);
    let r: serde_json::Value = client()
        .get(format!("{}/v1/orders/{n}", gw.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    // What dispatch-sim answers for an order it has (src/sim.rs).
    assert_eq!(
        (&r["status"], &r["unit"]),
        (&json!("processing"), &json!("市12345热线派单中心")),
        "dispatch's status, not the gateway's own: {r}"
    );
}

/// POSTs `body` to the web form with `content_type`; returns (status, body).
fn post_raw(gw: &Gateway, content_type: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let r = client()
        .post(format!("{}/v1/web/submissions", gw.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or_default())
}

/// A client library that labels every multipart part `application/octet-stream` (no file
/// name): the form's own fields are read as text and the matter is an order. Until 2026-12-07
/// `content` so labelled was taken for a file upload: 422 `attachments`, the matter unheard.
/// A part of another name so labelled is still a file, and a file is still refused.
#[test]
fn form_fields_labelled_octet_stream_are_read_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "");
    let part = |name: &str, value: &str| {
        format!(
            "--abc\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n{value}\r\n"
        )
    };
    let form = |extra: &str| {
        format!(
            "{}{}{extra}--abc--\r\n",
            part("content", "八角楼小区门口路灯坏了"),
            part("phone", "13644440005")
        )
        .into_bytes()
    };
    let (s, b) = post_raw(&gw, "multipart/form-data; boundary=abc", form(""));
    assert_eq!((s, b["status"].as_str()), (202, Some("accepted")), "{b}");
    let order = sim.wait_order(&numbers(&b).remove(0));
    assert_eq!(order["content"], "八角楼小区门口路灯坏了", "{order}");
    assert_eq!(order["submitter"]["phone"], "13644440005", "{order}");
    let (s, b) = post_raw(
        &gw,
        "multipart/form-data; boundary=abc",
        form(&part("scan", "\u{1}\u{2}binary")),
    );
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (422, Some("attachments")),
        "{b}"
    );
}

/// A multipart body cut off before its closing boundary is refused at once (400
/// `invalid_form`). Until 2026-12-07 one ending in `\r`, `\r\n`, `\r\n-` or `\r\n--ab` was
/// never answered (actix-multipart waited for bytes that had all arrived), holding its
/// connection for good; a few of them made the gateway deaf to everyone. Each post here is
/// bounded by the test client's own time-out. An empty `boundary=` is no multipart either.
#[test]
fn a_multipart_body_cut_off_before_its_closing_boundary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "[nuisance]\nquota = 100000\n");
    let part = "--abc\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\n小区路灯坏了";
    for end in [
        "",
        "\r",
        "\r\n",
        "\r\n-",
        "\r\n--",
        "\r\n--ab",
        "\r\n--abc",
        "\r\n--abc-",
    ] {
        let body = format!("{part}{end}").into_bytes();
        let (s, b) = post_raw(&gw, "multipart/form-data; boundary=abc", body);
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (400, Some("invalid_form")),
            "{end:?}: {b}"
        );
    }
    let whole = format!("{part}\r\n--abc--\r\n").into_bytes();
    let (s, b) = post_raw(&gw, "multipart/form-data; boundary=", whole.clone());
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("invalid_form")),
        "{b}"
    );
    assert!(sim.lines().is_empty());
    // The whole body is an order, and the gateway answers as before.
    let (s, b) = post_raw(&gw, "multipart/form-data; boundary=abc", whole);
    assert_eq!(s, 202, "{b}");
    assert_eq!(
        client()
            .get(format!("{}/healthz", gw.url))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

/// Bodies that used to lose or invent a matter under a 202 are refused and store nothing,
/// with an emergency anywhere in them still redirected (until 2026-12-07): items in the PHP or
/// Rails shape (`items[][content]`: the matters dropped), a field sent twice (the last won, an
/// emergency in the first unheard), content of invisible characters only (an order about
/// nothing).
#[test]
fn odd_item_shapes_repeated_fields_and_invisible_content_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "[nuisance]\nquota = 100000\n");
    let form = "application/x-www-form-urlencoded";
    let enc = |s: &str| -> String { s.bytes().map(|b| format!("%{b:02X}")).collect() };
    let lamp = enc("楼道灯不亮三天了");
    for (body, field) in [
        (
            format!("content=x&items[][content]={lamp}&items[][content]={lamp}"),
            "items",
        ),
        (format!("content=x&items[0].content={lamp}"), "items"),
        (format!("content=x&items[-1][content]={lamp}"), "items"),
        (
            "content=x&attachments[][url]=https%3A%2F%2Fa.cn%2F1.jpg".to_string(),
            "attachments",
        ),
        (format!("content={lamp}&content=x"), "content"),
    ] {
        let (s, b) = post_raw(&gw, form, body.clone().into_bytes());
        assert_eq!(
            (s, b["error"]["code"].as_str(), b["error"]["field"].as_str()),
            (422, Some("invalid_field"), Some(field)),
            "{body}: {b}"
        );
    }
    let (s, b) = post_raw(
        &gw,
        "application/json",
        r#"{"content":"路灯坏了","content":"路灯坏了两次"}"#
            .as_bytes()
            .to_vec(),
    );
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (422, Some("content")),
        "{b}"
    );
    let (s, b) = post_raw(
        &gw,
        "application/json",
        r#"{"content":"\u200b\u200b\ufeff"}"#.as_bytes().to_vec(),
    );
    assert_eq!(
        (s, b["error"]["code"].as_str(), b["error"]["field"].as_str()),
        (422, Some("missing_field"), Some("content")),
        "{b}"
    );
    // An emergency in any of these is heard.
    let fire = "楼下饭店着火了，火很大，有人被困";
    for (ct, body) in [
        (form, format!("content=x&items[][content]={}", enc(fire))),
        (form, format!("content={}&content=x", enc(fire))),
        (
            "application/json",
            format!(r#"{{"content":"{fire}","content":"路灯坏了"}}"#),
        ),
    ] {
        let (s, b) = post_raw(&gw, ct, body.clone().into_bytes());
        assert_eq!(
            (s, b["redirect"]["number"].as_str()),
            (200, Some("119")),
            "{body}: {b}"
        );
    }
    // None of it became an order.
    let (s, b) = gw.submit(json!({"content": "最后一件：井盖松动"}));
    assert_eq!(s, 202, "{b}");
    let lines = wait_until("the one order at dispatch", LONG, || {
        let l = sim.lines();
        (!delivered_orders(&l).is_empty()).then_some(l)
    });
    assert_eq!(delivered_orders(&lines), numbers(&b), "{lines:?}");
}

/// `楼下着火了，火很大，有人被困` and `小区门口路灯坏了一个月了` in GBK, percent-escaped as a GBK
/// page's browser posts them.
const GBK_FIRE: &str =
    "%C2%A5%CF%C2%D7%C5%BB%F0%C1%CB%A3%AC%BB%F0%BA%DC%B4%F3%A3%AC%D3%D0%C8%CB%B1%BB%C0%A7";
const GBK_LAMP: &str = "%D0%A1%C7%F8%C3%C5%BF%DA%C2%B7%B5%C6%BB%B5%C1%CB%D2%BB%B8%F6%D4%C2%C1%CB";

/// A GBK portal's form (declared or not) is read in GBK: its emergency is redirected and its
/// matter reaches dispatch as written, not as U+FFFD junk under a 202 (until 2026-12-07 both
/// were lost so). Multipart text parts likewise.
#[test]
fn a_gbk_form_is_read_in_its_charset() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "[nuisance]\nquota = 100000\n");
    let form = "application/x-www-form-urlencoded";
    let body = format!("content={GBK_FIRE}&phone=13900000600").into_bytes();
    let (s, b) = post_raw(&gw, &format!("{form}; charset=gb2312"), body);
    assert_eq!(
        (s, b["redirect"]["number"].as_str()),
        (200, Some("119")),
        "{b}"
    );
    // Undeclared, as browsers post: still GBK, still an emergency.
    let body = format!("content={GBK_FIRE}").into_bytes();
    let (s, b) = post_raw(&gw, form, body);
    assert_eq!(
        (s, b["redirect"]["number"].as_str()),
        (200, Some("119")),
        "{b}"
    );
    // A matter, with the `_charset_` field and a submit button a browser adds.
    let body = format!("_charset_=GBK&content={GBK_LAMP}&submit=%CC%E1%BD%BB").into_bytes();
    let (s, b) = post_raw(&gw, form, body);
    assert_eq!(s, 202, "{b}");
    let order = sim.wait_order(&numbers(&b)[0]);
    assert_eq!(order["content"], "小区门口路灯坏了一个月了", "{order}");
    // Multipart, a GBK text part.
    let gbk_lamp: Vec<u8> = (0..GBK_LAMP.len() / 3)
        .map(|i| u8::from_str_radix(&GBK_LAMP[3 * i + 1..3 * i + 3], 16).unwrap())
        .collect();
    let parts = reqwest::blocking::multipart::Form::new()
        .part(
            "content",
            reqwest::blocking::multipart::Part::bytes(gbk_lamp),
        )
        .text("phone", "13900000601");
    let r = client()
        .post(format!("{}/v1/web/submissions", gw.url))
        .multipart(parts)
        .send()
        .unwrap();
    let (s, b): (u16, serde_json::Value) = (r.status().as_u16(), r.json().unwrap());
    assert_eq!(s, 202, "{b}");
    let order = sim.wait_order(&numbers(&b)[0]);
    assert_eq!(order["content"], "小区门口路灯坏了一个月了", "{order}");
    // Declared UTF-8 but sent GBK: refused, not guessed.
    let body = format!("content={GBK_LAMP}").into_bytes();
    let (s, b) = post_raw(&gw, &format!("{form}; charset=utf-8"), body);
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("invalid_utf8")),
        "{b}"
    );
}

/// A mistake in an optional field (or a photo attached) does not keep an emergency from its
/// redirect: the citizen gets the number, no order is made, the redirect is on the caller's
/// record. Without an emergency the refusal stands, naming the field for the citizen and the
/// developer but not quoting the value. A submit button's field is no mistake.
#[test]
fn a_refused_field_does_not_keep_an_emergency_from_its_redirect() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "[nuisance]\nquota = 100000\n");
    let fire = "楼下着火了，火很大，有人被困";
    for (field, value) in [
        ("email", json!("zhang@qq")),
        ("phone", json!("138-0000-000x")),
        ("name", json!("张".repeat(201))),
        ("category", json!("其他")),
        ("lat", json!("39,9")),
        ("extra", json!(1)),
    ] {
        let mut body = json!({ "content": fire });
        body[field] = value;
        let (s, b) = gw.submit(body);
        assert_eq!(
            (s, b["status"].as_str(), b["redirect"]["number"].as_str()),
            (200, Some("redirected"), Some("119")),
            "{field}: {b}"
        );
    }
    let form = "application/x-www-form-urlencoded";
    let body = format!("content={}&lat=39%2C9&lon=116%2C4", fire).into_bytes();
    let (s, b) = post_raw(&gw, form, body);
    assert_eq!(
        (s, b["redirect"]["number"].as_str()),
        (200, Some("119")),
        "{b}"
    );
    let parts = reqwest::blocking::multipart::Form::new()
        .text("content", fire)
        .part(
            "photo",
            reqwest::blocking::multipart::Part::bytes(b"\xff\xd8\xff".to_vec()).file_name("a.jpg"),
        );
    let r = client()
        .post(format!("{}/v1/web/submissions", gw.url))
        .multipart(parts)
        .send()
        .unwrap();
    let (s, b): (u16, serde_json::Value) = (r.status().as_u16(), r.json().unwrap());
    assert_eq!(
        (s, b["redirect"]["number"].as_str()),
        (200, Some("119")),
        "{b}"
    );
    // The redirects are recorded as any (the anonymous sender's address is the identity).
    wait_until("eight redirects on the record", LONG, || {
        let view = gw.admin_get("/admin/v1/callers/ip:127.0.0.1");
        (view["redirects"].as_array().map(Vec::len) == Some(8)).then_some(())
    });
    // Without an emergency, the refusal stands and says which field.
    let (s, b) = gw.submit(json!({"content": "小区路灯坏了", "email": "zhang@qq"}));
    assert_eq!(
        (s, b["error"]["code"].as_str(), b["error"]["field"].as_str()),
        (422, Some("invalid_field"), Some("email")),
        "{b}"
    );
    let message = b["message"].as_str().unwrap_or_default();
    assert!(message.contains("电子邮箱"), "{b}");
    assert!(
        !b.to_string().contains("zhang"),
        "the value is not quoted: {b}"
    );
    // A browser's submit button is not refused.
    let body =
        "content=%E5%B0%8F%E5%8C%BA%E4%BA%95%E7%9B%96%E6%9D%BE%E5%8A%A8&submit=%E6%8F%90%E4%BA%A4";
    let (s, b) = post_raw(&gw, form, body.as_bytes().to_vec());
    assert_eq!(s, 202, "{b}");
    // One order: the redirects made none.
    let lines = wait_until("the one order at dispatch", LONG, || {
        let l = sim.lines();
        (!delivered_orders(&l).is_empty()).then_some(l)
    });
    assert_eq!(delivered_orders(&lines), numbers(&b), "{lines:?}");
}

/// A multipart form with a phone's photo (a few MB, far past `server.body_limit`) is read as it
/// streams in, its file part dropped: its text still reaches the emergency rules (until
/// 2026-12-07 it got 413 before anything was checked). A form past the multipart cap, or
/// with text past the body limit, is still refused 413.
#[test]
fn a_form_with_a_large_photo_still_reaches_the_emergency_rules() {
    use reqwest::blocking::multipart::{Form, Part};
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "[nuisance]\nquota = 100000\n");
    let post = |form: Form| {
        let r = client()
            .post(format!("{}/v1/web/submissions", gw.url))
            .multipart(form)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().unwrap_or_default())
    };
    let photo = |len: usize| Part::bytes(vec![0xd8u8; len]).file_name("fire.jpg");
    let form = |content: &str, len: usize| {
        Form::new()
            .text("content", content.to_string())
            .text("phone", "13922220004")
            .part("photo", photo(len))
    };
    let (s, b) = post(form("楼下饭店着火了，火很大，浓烟往楼上窜", 3 << 20));
    assert_eq!(
        (s, b["status"].as_str(), b["redirect"]["number"].as_str()),
        (200, Some("redirected"), Some("119")),
        "{b}"
    );
    // A routine matter with a photo: refused for the file, as a small one is.
    let (s, b) = post(form("小区门口路灯坏了", 3 << 20));
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (422, Some("attachments")),
        "{b}"
    );
    // Past the cap (declared; refused before the body is read), and text past the body
    // limit: 413.
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", gw.port())).unwrap();
    conn.set_read_timeout(Some(LONG)).unwrap();
    write!(
        conn,
        "POST /v1/web/submissions HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n",
        17 << 20
    )
    .unwrap();
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    let (s, b) = post(Form::new().text("content", "路灯坏了".repeat(6000)));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (413, Some("body_too_large")),
        "{b}"
    );
}

/// A photo sent in a part named `attachments` with `image/jpeg` and no file name (Python
/// requests' `(None, data, 'image/jpeg')`, OkHttp's `addFormDataPart(name, null, body)`, `curl
/// -F attachments=<photo.jpg`) is a file, small or past `server.body_limit`: a fire gets 119,
/// a routine matter the 422 naming `attachments`, as before 2026-12-07. For a few hours that
/// day a form field of any type was read as text: 422 `invalid_utf8` or 413, the fire unheard.
/// A form field labelled `application/octet-stream` whose bytes are no text (`address` here;
/// `attachments` so labelled is always a file) is a file too, not a form made unreadable.
#[test]
fn a_photo_in_a_form_field_without_a_file_name_is_a_file_and_a_fire_still_gets_119() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "[nuisance]\nquota = 100000\n");
    let post = |body: Vec<u8>| post_raw(&gw, "multipart/form-data; boundary=XyZ", body);
    // A JPEG's first bytes, then more of the kind: no UTF-8.
    let photo = |len: usize| {
        let mut p = vec![0xff, 0xd8, 0xff, 0xe0];
        p.resize(len, 0xd8);
        p
    };
    let jpeg = "\r\nContent-Type: image/jpeg";
    let octet = "\r\nContent-Type: application/octet-stream";
    for (name, headers) in [
        ("attachments", jpeg),
        ("content", jpeg),
        ("attachments", octet),
        ("address", octet),
    ] {
        // Small (under the 64 KB body limit) and large.
        for len in [2_000, 200_000] {
            let body = |content: &str, phone: &str| {
                // The photo first, as a page's order of fields may put it (a `content` of
                // image/jpeg is a file, skipped: the text part is the only `content` read).
                raw_form(&[
                    (name, headers, &photo(len)),
                    ("content", "", content.as_bytes()),
                    ("phone", "", phone.as_bytes()),
                ])
            };
            let (s, b) = post(body("楼下饭店着火了，火很大", "13911110002"));
            assert_eq!(
                (s, b["status"].as_str(), b["redirect"]["number"].as_str()),
                (200, Some("redirected"), Some("119")),
                "{name} {headers:?} {len}: {b}"
            );
            let (s, b) = post(body("小区门口路灯坏了", "13911110003"));
            assert_eq!(
                (s, b["error"]["code"].as_str(), b["error"]["field"].as_str()),
                (422, Some("invalid_field"), Some("attachments")),
                "{name} {headers:?} {len}: {b}"
            );
        }
    }
}

/// A multipart body, boundary `XyZ`, of `parts`: each its headers after the Content-Disposition
/// name, and its value.
fn raw_form(parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, headers, value) in parts {
        body.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"{headers}\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XyZ--\r\n");
    body
}

/// A photo named only with `filename*=` (RFC 5987, as older Python clients and some Java and
/// Go libraries send `火.jpg`) is a file, as one with `filename=` is: the fire's text gets the
/// redirect and a routine matter the 422 naming `attachments` (until 2026-12-07 the photo was
/// read as text: 413 for both). A part whose own Content-Type is not text is a file too; a text
/// part past `server.body_limit` is still 413, its text read by then checked first.
#[test]
fn a_photo_named_with_filename_star_is_a_file_and_a_413_still_hears_a_fire() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "[nuisance]\nquota = 100000\n");
    let post = |body: Vec<u8>| post_raw(&gw, "multipart/form-data; boundary=XyZ", body);
    let photo = vec![0xd8u8; 200_000];
    let star = "; filename*=UTF-8''%E7%81%AB.jpg\r\nContent-Type: image/jpeg";
    let bare = "\r\nContent-Type: application/octet-stream";
    for headers in [star, bare] {
        let fire = raw_form(&[
            ("content", "", "楼下饭店着火了，火很大".as_bytes()),
            ("phone", "", b"13922220005"),
            ("photo", headers, &photo),
        ]);
        let (s, b) = post(fire);
        assert_eq!(
            (s, b["status"].as_str(), b["redirect"]["number"].as_str()),
            (200, Some("redirected"), Some("119")),
            "{headers:?}: {b}"
        );
        let routine = raw_form(&[
            ("content", "", "小区门口路灯坏了".as_bytes()),
            ("phone", "", b"13922220005"),
            ("photo", headers, &photo),
        ]);
        let (s, b) = post(routine);
        assert_eq!(
            (s, b["error"]["field"].as_str()),
            (422, Some("attachments")),
            "{headers:?}: {b}"
        );
    }
    // A text part past the body limit: 413, unless the text read by then is a fire.
    let long = format!("楼下饭店着火了，火很大{}", "路灯坏了".repeat(6000));
    let (s, b) = post(raw_form(&[("content", "", long.as_bytes())]));
    assert_eq!(
        (s, b["status"].as_str(), b["redirect"]["number"].as_str()),
        (200, Some("redirected"), Some("119")),
        "{b}"
    );
    let (s, b) = post(raw_form(&[(
        "content",
        "",
        "路灯坏了".repeat(6000).as_bytes(),
    )]));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (413, Some("body_too_large")),
        "{b}"
    );
}

/// A form of many parts is refused, however small each: past 256 parts (422 `invalid_field`,
/// field `body`), and when its parts' heads pass `server.body_limit` (413), as a JSON body's
/// keys count. A fire read before the refusal still gets the redirect. Until 2026-12-07 only
/// text values counted: 16 MiB of empty parts (some 330,000) were all kept, 13 MB a request.
#[test]
fn a_form_of_many_parts_is_refused_and_a_fire_in_it_still_heard() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "[nuisance]\nquota = 100000\n");
    let post = |body: Vec<u8>| post_raw(&gw, "multipart/form-data; boundary=XyZ", body);
    let many = |content: &str, n: usize, name: &str| {
        let mut parts: Vec<(&str, &str, &[u8])> = vec![
            ("content", "", content.as_bytes()),
            ("phone", "", b"13922220006"),
        ];
        parts.extend(std::iter::repeat_n((name, "", &b""[..]), n));
        raw_form(&parts)
    };
    // 300 empty parts of a field the gateway ignores.
    let (s, b) = post(many("小区门口路灯坏了", 300, "x"));
    assert_eq!(
        (s, b["error"]["code"].as_str(), b["error"]["field"].as_str()),
        (422, Some("invalid_field"), Some("body")),
        "{b}"
    );
    let (s, b) = post(many("楼下饭店着火了，火很大", 300, "x"));
    assert_eq!(
        (s, b["status"].as_str(), b["redirect"]["number"].as_str()),
        (200, Some("redirected"), Some("119")),
        "{b}"
    );
    // 200 parts (under the cap) with names of 400 bytes: 80 KB of heads, past 64 KB.
    let name = "n".repeat(400);
    let (s, b) = post(many("小区门口路灯坏了", 200, &name));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (413, Some("body_too_large")),
        "{b}"
    );
    // A real form's parts are far from either bound.
    let (s, b) = post(many("小区门口路灯坏了", 60, "csrf_token"));
    assert_eq!((s, b["status"].as_str()), (202, Some("accepted")), "{b}");
    // Some 15 MB of empty parts (the review sent 16 MiB): refused, not kept.
    let (s, b) = post(many("小区门口路灯坏了", 300_000, "x"));
    assert_eq!(
        (s, b["error"]["code"].as_str(), b["error"]["field"].as_str()),
        (422, Some("invalid_field"), Some("body")),
        "{b}"
    );
}

/// A form refused for a field whose text is a possible emergency (the rules' redirect the
/// model doubts, or the model's suspicion) keeps its 422, and the refusal begins with the
/// number to dial (until 2026-12-07 a person in danger was only asked to fix an e-mail).
#[test]
fn a_refused_form_that_may_be_an_emergency_names_the_number_first() {
    use hotline_gateway::pipeline::{second_opinion::DEFAULT_DOUBT, RuleSet};
    // The premises: one text doubted, one only suspected, by the built-in rules.
    let rules = RuleSet::load(None, Some(0.4)).unwrap();
    let model = rules.second_opinion.as_ref().unwrap();
    assert_eq!(rules.emergency.check(DOUBTED_NOW).unwrap().number, "120");
    assert!(model.score(DOUBTED_NOW).0 < DEFAULT_DOUBT);
    assert!(rules.emergency.check(SUSPECTED).is_none());
    assert_eq!(model.check(SUSPECTED).unwrap().number, "110");

    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "");
    for (i, (text, number)) in [(DOUBTED_NOW, "120"), (SUSPECTED, "110")]
        .into_iter()
        .enumerate()
    {
        let (s, b) = gw.submit(
            json!({"content": text, "phone": format!("1391111444{i}"), "email": "zhang@@qq"}),
        );
        assert_eq!(
            (s, b["error"]["code"].as_str(), b["error"]["field"].as_str()),
            (422, Some("invalid_field"), Some("email")),
            "{b}"
        );
        assert_eq!(
            b["message"],
            format!(
                "您反映的情况可能是紧急情况：如果危险正在发生，请立即拨打{number}。\
                 电子邮箱（email）不是有效的电子邮箱地址，请修改后重新提交。"
            ),
            "{b}"
        );
    }
}

/// A page that reuses its client_ref, from a sender who gave a phone, for a new text: the new
/// text is heard, and a possible emergency in it gets its order and its number (until
/// 2026-12-07 it got the earlier routine answer, and the text was dropped). The same page sent
/// again still gets its first answer.
#[test]
fn a_reused_client_ref_with_a_new_text_is_heard_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "[nuisance]\nquota = 100\n");
    let page = |content: &str| json!({"content": content, "phone": "13977770002", "client_ref": "ref-fixed-1"});
    let (s, first) = gw.submit(page("小区路灯坏了一个月"));
    assert_eq!(s, 202, "{first}");
    let (_, again) = gw.submit(page("小区路灯坏了一个月"));
    assert_eq!(numbers(&again), numbers(&first), "a retry: {again}");
    for (text, number) in [(DOUBTED_NOW, "120"), (SUSPECTED, "110")] {
        let (s, b) = gw.submit(page(text));
        assert_eq!(s, 202, "{b}");
        assert_urgent_review(&b, number);
        assert_ne!(numbers(&b), numbers(&first), "{b}");
    }
}

/// A page retries with its client_ref after a network failure, which is when a phone moves
/// from Wi-Fi to 4G: from an anonymous sender, the retry from another address gets the first
/// answer (until 2026-12-07 it made a second order). A new text under the same ref is heard.
#[test]
fn an_anonymous_retry_from_a_new_address_gets_the_first_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        "[web]\ntrusted_proxies = [\"127.0.0.0/8\"]\n[nuisance]\nquota = 100000\n",
    );
    let post = |from: &str, content: &str| {
        gw.submit_from(
            Some(from),
            json!({ "content": content, "client_ref": "9f1c2d7e-retry" }),
        )
    };
    let (s, first) = post("203.0.113.50", "小区门口的垃圾站臭味很大");
    assert_eq!(s, 202, "{first}");
    let (s, retry) = post("198.51.100.20", "小区门口的垃圾站臭味很大");
    assert!(s == 202 || s == 200, "{retry}");
    assert_eq!(numbers(&retry), numbers(&first), "{retry}");
    let (s, other) = post("198.51.100.20", "楼道里的灯坏了没人修");
    assert_eq!(s, 202, "{other}");
    assert_ne!(numbers(&other), numbers(&first), "{other}");
    // A neighbour's page with the same fixed ref and the same words but another address is
    // someone else: an order of its own, with the neighbour's address (a digest of the text
    // alone merged them, and the second address reached nobody).
    let (s, neighbour) = gw.submit_from(
        Some("192.0.2.77"),
        json!({"content": "小区门口的垃圾站臭味很大", "client_ref": "9f1c2d7e-retry",
               "address": "解放路99号"}),
    );
    assert_eq!(s, 202, "{neighbour}");
    assert_ne!(numbers(&neighbour), numbers(&first), "{neighbour}");
    let order = sim.wait_order(&numbers(&neighbour)[0]);
    assert_eq!(order["location"]["address"], "解放路99号");
}

/// A web form always carries a matter: one whose text is its address, sent with a position,
/// is an order of its own, not a "supplement" of the sender's last order (until 2026-12-07 it
/// was, answered `duplicate`, and the matter had no order).
#[test]
fn a_web_matter_whose_text_is_its_place_is_an_order() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "[nuisance]\nquota = 100000\n");
    let (s, first) =
        gw.submit(json!({"content": "小区门口的垃圾站臭味很大", "phone": "13900000700"}));
    assert_eq!(s, 202, "{first}");
    let place = "解放路88号门口井盖丢了很危险";
    let (s, b) = gw.submit(json!({
        "content": place, "address": place, "lat": 39.12, "lon": 117.2, "phone": "13900000700"
    }));
    assert_eq!((s, b["status"].as_str()), (202, Some("accepted")), "{b}");
    assert_ne!(numbers(&b), numbers(&first));
    let order = sim.wait_order(&numbers(&b)[0]);
    assert_eq!(order["content"], place);
    assert_eq!(order["location"]["lat"], 39.12);
}

/// The web form carries links to media a page uploaded elsewhere (it could carry none until
/// 2026-12-07, though its refusal of a file said "send a link"), in JSON and in the form
/// encodings, into the work order's `attachments`; a file input left empty is no file sent.
#[test]
fn attachment_links_reach_the_work_order() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, "[nuisance]\nquota = 100000\n");
    let (s, b) = gw.submit(json!({
        "content": "解放路88号门口井盖丢了",
        "attachments": [{"kind": "image", "url": "https://img.example.cn/well.jpg"},
                        {"url": "https://pan.example.cn/s/abc"}]
    }));
    assert_eq!(s, 202, "{b}");
    let order = sim.wait_order(&numbers(&b)[0]);
    assert_eq!(
        order["attachments"],
        json!([
            {"kind": "image", "url": "https://img.example.cn/well.jpg", "media_id": ""},
            {"kind": "link", "url": "https://pan.example.cn/s/abc", "media_id": ""}
        ])
    );
    // Multipart as a browser posts it: indexed links, and a file input left empty
    // (`filename=""`, no bytes), which is not a file sent.
    let part = |name: &str, value: &str| {
        format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
    };
    let body = [
        part("content", "公园长椅坏了"),
        part("attachments[0][url]", "https://img.example.cn/bench.jpg"),
        part("attachments[0][kind]", "image"),
        "--XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n\r\n--XyZ--\r\n"
            .to_string(),
    ]
    .concat();
    let (s, b) = post_raw(&gw, "multipart/form-data; boundary=XyZ", body.into_bytes());
    assert_eq!(s, 202, "{b}");
    let order = sim.wait_order(&numbers(&b)[0]);
    assert_eq!(
        order["attachments"],
        json!([{"kind": "image", "url": "https://img.example.cn/bench.jpg", "media_id": ""}])
    );
}

/// dispatch-sim answers contacts as a real dispatch does: 404 for an order it does not have
/// (not recorded), 201 the first time under a key, 409 and a line marked `"repeat": true` for a
/// key it has seen, also after a restart.
#[test]
fn dispatch_sim_refuses_contacts_for_unknown_orders_and_marks_repeated_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim.jsonl");
    let port = free_port();
    let mut sim = Sim::start(port, &out, &[]);
    let post = |path: &str, key: &str, body: serde_json::Value| {
        client()
            .post(format!("{}{path}", sim.url))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let contact = json!({"kind": "supplement", "content": "还在漏水，更严重了"});
    let unknown = "/work-orders/2099010101000001/contacts";
    assert_eq!(post(unknown, "2099010101000001-c1", contact.clone()), 404);
    assert!(sim.lines().is_empty(), "{:?}", sim.lines());
    let n = "2099010101000002";
    assert_eq!(post("/work-orders", n, json!({"number": n})), 201);
    let path = format!("/work-orders/{n}/contacts");
    let key = format!("{n}-c1");
    assert_eq!(post(&path, &key, contact.clone()), 201);
    assert_eq!(post(&path, &key, contact.clone()), 409);
    let contacts: Vec<_> = sim.lines().into_iter().filter(is_contact).collect();
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    assert!(contacts[0].get("repeat").is_none(), "{contacts:?}");
    assert_eq!(contacts[1]["repeat"], true, "{contacts:?}");
    // Restarted on its file, it still knows the order and the key.
    sim.stop();
    let sim = Sim::start(port, &out, &[]);
    let again = client()
        .post(format!("{}{path}", sim.url))
        .header("Idempotency-Key", &key)
        .json(&contact)
        .send()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(again, 409);
}

/// After a mass refusal (dispatch checks another secret: every order 401), an operator reads
/// the dead letters a page at a time and replays them all with one call, by the status they
/// were refused with.
#[test]
fn an_operator_pages_through_dead_letters_and_replays_them_in_bulk() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim.jsonl");
    let port = free_port();
    let mut sim = Sim::start(port, &out, &["--secret", "rotated-at-dispatch"]);
    let gw = Gateway::start(dir.path(), &sim.url, "");
    let numbers: Vec<String> = (0..5)
        .map(|i| {
            let (s, b) = gw.submit(
                json!({"content": format!("第{i}件事：井盖缺失"), "phone": format!("1394444{i:04}")}),
            );
            assert_eq!(s, 202, "{b}");
            b["orders"][0]["number"].as_str().unwrap().to_string()
        })
        .collect();
    wait_until("five dead letters", LONG, || {
        (gw.admin_get("/admin/v1/outbox")["dead"] == 5).then_some(())
    });
    // Pages of two, newest first, until next_before is null.
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_string();
    for _ in 0..5 {
        let page = gw.admin_get(&format!("/admin/v1/outbox{query}"));
        let keys: Vec<String> = page["dead_letters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["key"].as_str().unwrap().to_string())
            .collect();
        assert!(keys.len() <= 2, "{page}");
        seen.extend(keys);
        match page["next_before"].as_str() {
            Some(k) => query = format!("?limit=2&before={k}"),
            None => break,
        }
    }
    let mut newest_first = numbers.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let status = |r: reqwest::blocking::Response| r.status().as_u16();
    let c = client();
    let outbox = format!("{}/admin/v1/outbox", gw.url);
    assert_eq!(
        status(
            c.get(format!("{outbox}?limit=0"))
                .bearer_auth(ADMIN)
                .send()
                .unwrap()
        ),
        400
    );
    let replay = format!("{}/admin/v1/outbox/dead/replay", gw.url);
    assert_eq!(
        status(c.post(&replay).json(&json!({})).send().unwrap()),
        401
    );
    let requeued = |filter: serde_json::Value| -> serde_json::Value {
        let r = c
            .post(&replay)
            .bearer_auth(ADMIN)
            .json(&filter)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        r.json().unwrap()
    };
    assert_eq!(requeued(json!({"status": 422}))["count"], 0);
    assert_eq!(
        requeued(json!({"status": 401, "until": "2000-01-01T00:00:00+08:00"}))["count"],
        0
    );
    // The secret is fixed at dispatch; one call replays them all.
    sim.stop();
    let sim = Sim::start(port, &out, &[]);
    assert_eq!(
        requeued(json!({"status": 401, "kind": "order"}))["count"],
        5
    );
    wait_until("every replayed order at dispatch", LONG, || {
        let delivered = delivered_orders(&sim.lines());
        numbers.iter().all(|n| delivered.contains(n)).then_some(())
    });
    assert_eq!(gw.admin_get("/admin/v1/outbox")["dead"], 0);
}

/// The privacy review's F7 (2026-12-07): the DEBUG "Request refused" line quoted what the
/// client sent as sent: a 415's content type, an unknown JSON field's name (a name and an
/// address), an admin's duration (a phone number). The answer still tells the sender.
#[test]
fn a_refusals_debug_line_shows_no_personal_data_the_client_sent() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let port = free_port();
    let config = write_config(dir.path(), port, &sim.url, "");
    let gw = Gateway::start_with_env(config, port, &[("RUST_LOG", "debug")]);
    let web = format!("{}/v1/web/submissions", gw.url);
    let r = client()
        .post(&web)
        .header("content-type", "text/x-zhang.san@example.com")
        .body("路灯坏了")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let r = client()
        .post(&web)
        .header("content-type", "application/json")
        .body(r#"{"content":"路灯坏了","欧阳娜娜朝阳区建国路88号华贸中心3号楼1502室":1}"#)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let r = client()
        .put(format!(
            "{}/admin/v1/callers/phone:13600000007/suspension",
            gw.url
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"duration": "13912345678", "reason": "测试"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let b: serde_json::Value = r.json().unwrap();
    assert_eq!(b["error"]["code"], "invalid_duration", "{b}");
    let lines = wait_until("three refusals logged", LONG, || {
        let lines: Vec<String> = gw
            .logs()
            .lines()
            .filter(|l| l.contains("Request refused"))
            .map(str::to_string)
            .collect();
        (lines.len() >= 3).then_some(lines.join("\n"))
    });
    for code in [
        "unsupported_media_type",
        "invalid_field",
        "invalid_duration",
    ] {
        assert!(lines.contains(code), "{code}: {lines}");
    }
    assert!(lines.contains("139****5678"), "{lines}");
    let logs = gw.logs();
    for raw in ["zhang.san", "欧阳娜娜", "建国路", "13912345678"] {
        assert!(!logs.contains(raw), "{raw} in the log: {lines}");
    }
}

/// The web form's typed phone: the same matter under the same number from another client
/// address is a new order, not a "duplicate" telling the number of someone else's order (the
/// twenty-second session's review, F1); from the same address it is still the repeat it was.
#[test]
fn a_web_repeat_under_a_typed_phone_is_one_only_from_the_same_address() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        "[web]\ntrusted_proxies = [\"127.0.0.0/8\"]\n",
    );
    let matter =
        json!({"content": "楼道里的灯坏了一个星期了，晚上上下楼很不安全", "phone": "13644440031"});
    let (s, b) = gw.submit_from(Some("198.51.100.21"), matter.clone());
    assert_eq!(s, 202, "{b}");
    let first = numbers(&b).remove(0);
    let (s, b) = gw.submit_from(Some("198.51.100.22"), matter.clone());
    assert_eq!((s, b["status"].as_str()), (202, Some("accepted")), "{b}");
    assert!(!b.to_string().contains(&first), "{b}");
    let (s, b) = gw.submit_from(Some("198.51.100.21"), matter);
    assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")), "{b}");
    assert_eq!(numbers(&b), vec![first]);
}

/// What the web form says to a typed phone under a suspension that holds everywhere (the
/// gateway's `nuisance::typed_phone_reason`).
fn typed_phone_reason() -> &'static str {
    "违反热线使用规定（《管理办法》第三十二条）"
}

/// Anyone may type anyone's number into the form. A suspension that holds everywhere (an
/// operator's here) still refuses that number on the web form, but with fixed words: until
/// 2026-12-07 the refusal read out the operator's own reason to whoever typed the number (the
/// twenty-second session's review, F2). Its end is still said. The operator's view keeps the
/// reason; a suspension earned on the web form itself still says the rule's.
#[test]
fn a_typed_phone_under_an_operators_suspension_is_not_told_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        "[nuisance]\nquota = 1\nwarnings = 1\n",
    );
    let reason = "多次在电话中辱骂话务员并威胁工作人员";
    gw.suspend("phone:13600002222", "7d", reason);
    let (s, b) = gw.submit(json!({"content": "随便问问", "phone": "136-0000-2222"}));
    assert_eq!((s, b["status"].as_str()), (403, Some("suspended")), "{b}");
    assert!(!b.to_string().contains("辱骂"), "{b}");
    assert_eq!(b["reason"], typed_phone_reason(), "{b}");
    assert!(b["until"].is_string(), "{b}");
    let view = gw.admin_get("/admin/v1/callers/phone:13600002222");
    assert_eq!(view["suspension"]["reason"], reason, "{view}");
    // Earned on the form: the rule's own words, as before.
    for _ in 0..3 {
        gw.submit(json!({"content": "楼下的路灯坏了三天了", "phone": "13600003333"}));
    }
    let (s, b) = gw.submit(json!({"content": "楼下的路灯坏了三天了", "phone": "13600003333"}));
    assert_eq!((s, b["status"].as_str()), (403, Some("suspended")), "{b}");
    assert!(
        b["reason"].as_str().unwrap().contains("多次重复占用"),
        "{b}"
    );
}

/// An anonymous web submitter is its client address (`ip:`), and everyone behind one address
/// (a campus, a carrier's CGNAT) is that one identity: the rule's ladder refuses it over
/// quota (429, reminders, then none left) but never suspends it. Until 2026-12-07 one
/// person's flood there got every anonymous citizen behind the address suspended for an hour,
/// then a day, a week, a month (the twenty-second session's review, F3).
#[test]
fn an_anonymous_address_over_quota_is_throttled_never_suspended() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        "[nuisance]\nquota = 2\nwarnings = 2\n",
    );
    let mut statuses = Vec::new();
    let matters = [
        "小区门口的路灯坏了",
        "楼道里堆满了杂物",
        "井盖松动了",
        "垃圾三天没人清运",
        "广场舞噪音太大",
        "自来水发黄",
        "路边违章停车",
        "公园长椅坏了",
    ];
    for m in matters {
        let (s, b) = gw.submit(json!({ "content": m }));
        statuses.push((s, b["status"].as_str().map(String::from)));
    }
    let throttled = (429, Some("throttled".to_string()));
    assert_eq!(
        statuses[..2].iter().filter(|s| s.0 == 202).count(),
        2,
        "{statuses:?}"
    );
    assert!(
        statuses[2..].iter().all(|s| *s == throttled),
        "{statuses:?}"
    );
    let view = gw.admin_get("/admin/v1/callers/ip:127.0.0.1");
    assert!(view["suspension"].is_null(), "{view}");
    assert_eq!(view["warnings"].as_array().map(Vec::len), Some(2), "{view}");
    // Another citizen behind the same address is refused over the quota they share, not
    // suspended.
    let (s, b) = gw.submit(json!({"content": "我们楼的电梯坏了三天了"}));
    assert_eq!((s, b["status"].as_str()), (429, Some("throttled")), "{b}");
    assert_eq!(b["warnings_left"], 0, "{b}");
    // Nor is a suspension foretold that never comes.
    let said = b["message"].as_str().unwrap_or_default();
    assert!(said.contains("分钟后再试") && !said.contains("暂停"), "{b}");
}
