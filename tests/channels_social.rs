//! WeChat and Weibo end to end: the real binary, a real dispatch-sim, and an independent peer
//! playing the platform. For WeChat the peer is wechatpy 1.8.18 (`tests/peers/wechat_peer.py`):
//! it signs and encrypts pushes and decrypts, signature-checks and parses our replies, so none of
//! the gateway's own protocol code judges itself. For Weibo (no SDK exists) the peer
//! (`tests/peers/weibo_peer.py`) signs by hand from the brief and is checked against the official
//! vector. What belongs here: everything a push can meet, from the reply the platform shows the
//! citizen to what reaches dispatch, and what must not.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

const TOKEN: &str = "hotlineToken2026";
const APPID: &str = "wx2c2769f8efd9abc2";
/// The official sample key: its last character leaves non-zero trailing bits, which a strict
/// base64 decoder refuses (brief 1.4), so every safe-mode test also covers the lenient decode.
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
/// The account's original id, which WeChat puts in `ToUserName`.
const GH: &str = "gh_3c884a361561";
const WELCOME: &str = "欢迎关注12345政务服务便民热线！直接发送文字即可反映诉求。";
const WEIBO_SECRET: &str = "weiboAppSecret77";
/// Our Weibo account's uid: above 2^53, so any float on the way loses it.
const WEIBO_UID: &str = "5000000000000000001";

/// Both WeChat accounts (`main` accepts every mode, `strict` safe mode only) and a Weibo account.
fn accounts() -> String {
    format!(
        r#"
[channels.wechat.main]
token = "{TOKEN}"
app_id = "{APPID}"
encoding_aes_key = "{AES_KEY}"
welcome = "{WELCOME}"

[channels.wechat.strict]
token = "{TOKEN}"
app_id = "{APPID}"
encoding_aes_key = "{AES_KEY}"
require_encryption = true

[channels.weibo.main]
app_secret = "{WEIBO_SECRET}"
"#
    )
}

/// Runs a peer script with `input` as JSON on stdin and returns its JSON answer.
fn peer(script: &str, input: &Value) -> Value {
    common::run_peer(script, &[], input)
}

/// Unix seconds now.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A fresh 64-bit MsgId, above 2^53 like the real ones.
fn msg_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    6_054_768_590_064_713_728 + NEXT.fetch_add(1, Ordering::Relaxed) * 7919 + (now() as u64 % 1000)
}

/// A text message from `openid` as WeChat pushes it.
fn text(openid: &str, content: &str) -> Value {
    json!({"type": "text", "from": openid, "to": GH, "create_time": now(),
           "content": content, "msg_id": msg_id()})
}

/// An event from `openid`.
fn event(openid: &str, name: &str) -> Value {
    json!({"type": "event", "from": openid, "to": GH, "create_time": now(), "event": name})
}

/// The WeChat peer aimed at `account` of `gw`, with `extra` fields merged into its input.
fn wx(gw: &Gateway, account: &str, extra: Value) -> Value {
    let mut input = json!({
        "op": "push", "url": format!("{}/v1/wechat/{account}", gw.url),
        "token": TOKEN, "appid": APPID, "aes_key": AES_KEY, "mode": "plain",
    });
    for (k, v) in extra.as_object().expect("an object").iter() {
        input[k] = v.clone();
    }
    peer("wechat_peer.py", &input)
}

/// Pushes `message` to the `main` account in `mode` ("plain", "safe", "compat").
fn wx_push(gw: &Gateway, mode: &str, message: &Value) -> Value {
    wx(gw, "main", json!({"mode": mode, "message": message}))
}

/// Sends a request the peer built earlier again, byte for byte (a platform retry).
fn wx_resend(gw: &Gateway, earlier: &Value) -> Value {
    wx(
        gw,
        "main",
        json!({"op": "send", "request": earlier["request"]}),
    )
}

/// The reply text of a 200 answer that wechatpy read as a text reply; checks the users are
/// swapped and, in `encrypted` mode, that the reply was sealed (wechatpy verified MsgSignature,
/// the appid and the 32-byte padding while decrypting).
fn reply_text(r: &Value, openid: &str, encrypted: bool) -> String {
    assert_eq!(r["status"], 200, "{r}");
    assert!(
        r["reply_error"].is_null(),
        "wechatpy refused the reply: {r}"
    );
    let reply = &r["reply"];
    assert!(reply.is_object(), "a text reply, not `success`: {r}");
    assert!(
        r["content_type"]
            .as_str()
            .unwrap_or("")
            .starts_with("text/xml"),
        "{r}"
    );
    assert_eq!(reply["type"], "text", "{r}");
    assert_eq!(reply["to"], openid, "To is the sender: {r}");
    assert_eq!(reply["from"], GH, "From is the account: {r}");
    assert_eq!(reply["encrypted"], encrypted, "{r}");
    if encrypted {
        let pad = reply["padding"].as_u64().unwrap_or(0);
        assert!((1..=32).contains(&pad), "32-byte PKCS#7: {r}");
    }
    let t = reply["create_time"].as_i64().unwrap_or(0);
    assert!((now() - t).abs() < 600, "CreateTime is a unix time: {r}");
    reply["content"].as_str().unwrap_or_default().to_string()
}

/// A "no reply" answer: 200 with the body `success`.
fn assert_no_reply(r: &Value) {
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["body"], "success", "{r}");
}

/// A refusal: the status, a JSON body with `status: rejected` and the error code.
fn assert_refused(r: &Value, status: u16, code: &str) {
    assert_eq!(r["status"], status, "{r}");
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap_or("")).unwrap_or(Value::Null);
    assert_eq!(body["status"], "rejected", "{r}");
    assert_eq!(body["error"]["code"], code, "{r}");
    assert!(
        !body["message"].as_str().unwrap_or("").is_empty(),
        "a sentence for the person: {r}"
    );
}

/// The order number in a reply: the first run of 12+ digits. Checks its shape (date + node 07).
fn number_in(content: &str) -> String {
    let n = content
        .split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() >= 12)
        .unwrap_or_else(|| panic!("no order number in {content:?}"))
        .to_string();
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y%m%d")
        .to_string();
    assert!(n.starts_with(&format!("{today}07")), "date + node id: {n}");
    n
}

/// First deliveries of orders at the sim: (idempotency key = number, order JSON as received).
fn orders(sim: &Sim) -> Vec<(String, Value)> {
    sim.lines()
        .into_iter()
        .filter(is_first_delivery)
        .filter_map(|mut l| {
            let key = l.as_object_mut()?.remove("idempotency_key")?;
            Some((key.as_str()?.to_string(), l))
        })
        .collect()
}

/// Repeat contacts (art. 17(5)) the sim received: a platform retry must never be one.
fn contacts(sim: &Sim) -> Vec<Value> {
    sim.lines().into_iter().filter(is_contact).collect()
}

/// Waits until `number` has reached dispatch; returns all orders delivered by then.
fn wait_for_order(sim: &Sim, number: &str) -> Vec<(String, Value)> {
    wait_until(&format!("order {number} at dispatch"), LONG, || {
        let o = orders(sim);
        o.iter().any(|(n, _)| n == number).then_some(o)
    })
}

/// The one delivered order with `number` (panics when absent or delivered twice).
fn the_order(all: &[(String, Value)], number: &str) -> Value {
    let found: Vec<&Value> = all
        .iter()
        .filter(|(n, _)| n == number)
        .map(|(_, o)| o)
        .collect();
    assert_eq!(found.len(), 1, "order {number} exactly once: {all:?}");
    found[0].clone()
}

/// Privacy: the logs never carry a raw openid (or uid).
fn assert_not_logged(gw: &Gateway, secrets: &[&str]) {
    let logs = gw.logs();
    assert!(!logs.is_empty(), "the gateway logs something");
    for s in secrets {
        assert!(
            !logs.contains(s),
            "{s} appears unmasked in the logs:\n{logs}"
        );
    }
}

/// Stops a gateway and starts it again on the same config, port and store.
fn restart(gw: Gateway) -> Gateway {
    let (config, port) = (gw.config.clone(), gw.port());
    drop(gw);
    Gateway::start_with(config, port)
}

#[test]
fn wechat_handshake_echoes_only_a_signed_echostr() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), "", &accounts());
    let hs = |account: &str, tamper: Value| {
        peer(
            "wechat_peer.py",
            &json!({"op": "handshake", "url": format!("{}/v1/wechat/{account}", gw.url),
                    "token": TOKEN, "echostr": "4375120948345356249", "tamper": tamper}),
        )
    };
    for account in ["main", "strict"] {
        let r = hs(account, Value::Null);
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["body"], "4375120948345356249", "echostr exactly: {r}");
        assert!(r["content_type"]
            .as_str()
            .unwrap()
            .starts_with("text/plain"));
    }
    let r = hs("main", json!("signature"));
    assert_refused(&r, 401, "bad_signature");
    assert!(!r["body"].as_str().unwrap().contains("4375120948345356249"));
    assert_refused(&hs("main", json!("no_signature")), 401, "bad_signature");
    assert_eq!(hs("nope", Value::Null)["status"], 404);
}

#[test]
fn wechat_plaintext_text_push_makes_one_order_and_retries_get_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let openid = "oPlain_9xKq2ZtRwVb3NmA7cD1eF";
    let msg = text(openid, "小区东门路灯坏了一个星期，晚上很黑");
    let first = wx_push(&gw, "plain", &msg);
    assert_eq!(
        first["peer_parsed"], "TextMessage",
        "wechatpy reads our fixture as text"
    );
    let content = reply_text(&first, openid, false);
    assert!(content.contains("工单号"), "{content}");
    let number = number_in(&content);

    // WeChat resends up to three times when the answer is late: same answer, no new order.
    for _ in 0..3 {
        let again = wx_resend(&gw, &first);
        assert_eq!(
            reply_text(&again, openid, false),
            content,
            "the first answer, word for word"
        );
    }
    // A later, different message from the same citizen is a new order.
    let second = wx_push(&gw, "plain", &text(openid, "垃圾桶满了没人清运"));
    let number2 = number_in(&reply_text(&second, openid, false));
    assert_ne!(number2, number);

    let all = wait_until("both orders at dispatch", LONG, || {
        let o = orders(&sim);
        (o.iter().any(|(n, _)| *n == number) && o.iter().any(|(n, _)| *n == number2)).then_some(o)
    });
    assert_eq!(all.len(), 2, "the retries made no order: {all:?}");
    assert!(contacts(&sim).is_empty(), "a retry is no repeat contact");
    let order = the_order(&all, &number);
    assert_eq!(order["number"], number.as_str());
    assert_eq!(order["channel"], "wechat");
    assert_eq!(order["account"], "main");
    assert_eq!(order["submitter"]["identity"], format!("wechat:{openid}"));
    assert_eq!(order["content"], "小区东门路灯坏了一个星期，晚上很黑");
    assert_eq!(
        order["channel_ref"],
        msg["msg_id"].to_string(),
        "MsgId, 64-bit exact"
    );
    assert!(order["received_at"].as_str().unwrap().ends_with("+08:00"));
    assert_not_logged(&gw, &[openid]);
}

/// The store's write path held up from outside, as a backup, a long checkpoint or a slow disk
/// holds it (SQLite: a write transaction; PostgreSQL: the dedupe table, read before the intake
/// statement is sent, as a full pool holds an intake up too), until dropped.
enum StoreLock {
    Sqlite(rusqlite::Connection),
    Postgres(services::PsqlSession),
}

impl StoreLock {
    fn hold(dir: &std::path::Path) -> StoreLock {
        if services::test_backend() == "postgres" {
            let (pg, db) = (services::postgres(), services::db_name_for(dir));
            let session = pg.session(&db, "BEGIN; LOCK TABLE dedupe IN ACCESS EXCLUSIVE MODE;");
            let held = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                        WHERE c.relname = 'dedupe' AND l.mode = 'AccessExclusiveLock' AND l.granted";
            wait_until("psql holds the dedupe lock", LONG, || {
                (pg.psql(&db, held) != "0").then_some(())
            });
            return StoreLock::Postgres(session);
        }
        let db = rusqlite::Connection::open(dir.join("data").join("gateway.db")).unwrap();
        db.execute_batch("BEGIN IMMEDIATE;").unwrap();
        StoreLock::Sqlite(db)
    }

    fn release(self) {
        match self {
            StoreLock::Sqlite(db) => db.execute_batch("ROLLBACK;").unwrap(),
            StoreLock::Postgres(session) => session.finish("COMMIT;"),
        }
    }
}

/// A push answered `success` past its reply budget survives a kill -9 right after that answer:
/// WeChat does not resend after `success`, and until 2026-12-07 the intake going on in memory
/// was the push's only copy (0 orders after the restart). The push is in the journal before the
/// answer; the restarted gateway stores it, once, and the platform's retry is answered from its
/// record.
#[test]
fn a_push_answered_past_its_reply_budget_survives_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let mut gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let lock = StoreLock::hold(dir.path());
    let openid = "oLateKill_4Hh8Jj2Kk6Ll0Zz3Xx7";
    let first = wx_push(&gw, "plain", &text(openid, "人民路的路灯坏了一个星期了"));
    assert_eq!(first["status"], 200, "{first}");
    assert_eq!(
        first["body"], "success",
        "answered past the budget: {first}"
    );
    gw.kill9();
    lock.release();
    let gw = Gateway::start_with(gw.config.clone(), gw.port());
    let all = wait_until("the push's order at dispatch", LONG, || {
        let o = orders(&sim);
        (!o.is_empty()).then_some(o)
    });
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].1["content"], "人民路的路灯坏了一个星期了");
    let again = wx_resend(&gw, &first);
    assert_eq!(
        number_in(&reply_text(&again, openid, false)),
        all[0].0,
        "a retry is answered from the record"
    );
    let journal = dir.path().join("data").join("pending-pushes");
    wait_until("the journal to empty", LONG, || {
        let left = std::fs::read_dir(&journal).map_or(0, |d| d.count());
        (left == 0).then_some(())
    });
    assert_eq!(orders(&sim).len(), 1, "one order");
}

#[test]
fn wechat_safe_mode_round_trip_with_wechatpy_survives_retries_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let openid = "oSafe_Tq81LmZx0pWc5YhRe2Ku4n";

    // Safe mode: only ToUserName and Encrypt in the body; the reply must be sealed.
    let safe = wx_push(&gw, "safe", &text(openid, "楼下餐馆油烟直排，熏得没法开窗"));
    assert!(
        !safe["request"]["body"].as_str().unwrap().contains("油烟"),
        "the peer really encrypted the push"
    );
    assert!(
        !safe["body"].as_str().unwrap().contains("工单号"),
        "the reply is not plaintext: {safe}"
    );
    let safe_text = reply_text(&safe, openid, true);
    let n_safe = number_in(&safe_text);
    let again = wx_resend(&gw, &safe);
    assert_eq!(
        reply_text(&again, openid, true),
        safe_text,
        "the first answer"
    );

    // Compatible mode: the plain copy is unsigned, only the encrypted one counts.
    let real = text(openid, "人行道上的井盖丢了，有人差点掉下去");
    let mut forged = real.clone();
    forged["content"] = json!("这段明文被中间人改过");
    let compat = wx(
        &gw,
        "main",
        json!({"mode": "compat", "message": real, "outer": forged}),
    );
    let compat_text = reply_text(&compat, openid, true);
    let n_compat = number_in(&compat_text);

    // The gateway restarts; the platform retries both pushes: same answers, no new orders.
    let gw = restart(gw);
    assert_eq!(reply_text(&wx_resend(&gw, &safe), openid, true), safe_text);
    assert_eq!(
        reply_text(&wx_resend(&gw, &compat), openid, true),
        compat_text
    );
    // A new push after the restart gets a new, unique number.
    let after = wx_push(&gw, "safe", &text(openid, "公园健身器材坏了"));
    let n_after = number_in(&reply_text(&after, openid, true));
    let mut numbers = vec![n_safe.clone(), n_compat.clone(), n_after.clone()];
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 3, "numbers unique across restarts");

    let all = wait_until("three orders at dispatch", LONG, || {
        let o = orders(&sim);
        numbers
            .iter()
            .all(|n| o.iter().any(|(m, _)| m == n))
            .then_some(o)
    });
    assert_eq!(
        all.len(),
        3,
        "retries before and after the restart made no order: {all:?}"
    );
    assert!(contacts(&sim).is_empty(), "a retry is no repeat contact");
    let order = the_order(&all, &n_safe);
    assert_eq!(order["channel"], "wechat");
    assert_eq!(order["submitter"]["identity"], format!("wechat:{openid}"));
    assert_eq!(order["content"], "楼下餐馆油烟直排，熏得没法开窗");
    let order = the_order(&all, &n_compat);
    assert_eq!(
        order["content"], "人行道上的井盖丢了，有人差点掉下去",
        "decrypted copy only"
    );
    assert_not_logged(&gw, &[openid]);
}

#[test]
fn wechat_emergency_is_answered_with_119_and_never_dispatched() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let openid = "oFire_Pz3Wq7Xk0Lm2Nb8Vc4Rt6Y";
    let fire = wx_push(&gw, "plain", &text(openid, "我家厨房着火了，火很大"));
    let content = reply_text(&fire, openid, false);
    assert!(content.contains("拨打119"), "names 119: {content}");
    assert!(!content.contains("工单号"), "no order number: {content}");
    // The platform's retry gets the same redirect.
    let again = reply_text(&wx_resend(&gw, &fire), openid, false);
    assert!(again.contains("拨打119"), "{again}");
    // In safe mode too, sealed.
    let safe = wx_push(&gw, "safe", &text(openid, "快来人，仓库起火了有人被困"));
    let sealed = reply_text(&safe, openid, true);
    assert!(
        sealed.contains("拨打119") && !sealed.contains("工单号"),
        "{sealed}"
    );

    // A later normal message goes through; once it has arrived, nothing else did.
    let normal = wx_push(&gw, "plain", &text(openid, "消防通道被私家车堵了好几天"));
    let number = number_in(&reply_text(&normal, openid, false));
    let all = wait_for_order(&sim, &number);
    assert_eq!(all.len(), 1, "only the normal order: {all:?}");
    let lines = serde_json::to_string(&sim.lines()).unwrap();
    assert!(
        !lines.contains("着火") && !lines.contains("起火"),
        "{lines}"
    );
    assert_not_logged(&gw, &[openid]);
}

/// A follower asks about the insurer of last year's crash: the rules would redirect it to 122,
/// the second opinion strongly doubts it, so the reply carries an order number *and* the number
/// to dial if the danger were happening now, sealed in safe mode like any reply.
#[test]
fn wechat_a_doubted_redirect_is_answered_with_an_order_and_the_number() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let openid = "oCrash_Pz3Wq7Xk0Lm2Nb8Vc4Rt6Y";
    let r = wx_push(&gw, "safe", &text(openid, DOUBTED));
    let sealed = reply_text(&r, openid, true);
    assert!(sealed.contains("拨打122"), "names 122: {sealed}");
    let number = number_in(&sealed);
    let order = the_order(&wait_for_order(&sim, &number), &number);
    assert_eq!(order["emergency_review"]["by"], "rules", "{order}");
    assert_eq!(order["channel"], "wechat", "{order}");
}

#[test]
fn wechat_events_unknown_types_and_status_queries_make_no_orders() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let openid = "oEvent_Hj5Kl9Mn3Bv7Cx1Zq8Ws2E";

    let sub = wx_push(&gw, "plain", &event(openid, "subscribe"));
    assert_eq!(sub["peer_parsed"], "SubscribeEvent");
    assert_eq!(reply_text(&sub, openid, false), WELCOME);
    let sub_safe = wx_push(&gw, "safe", &event(openid, "subscribe"));
    assert_eq!(reply_text(&sub_safe, openid, true), WELCOME);
    // A follow through a parametric QR code is still a follow.
    let mut scan_sub = event(openid, "subscribe");
    scan_sub["event_key"] = json!("qrscene_123123");
    scan_sub["fields"] = json!({"Ticket": "TICKET"});
    let r = wx_push(&gw, "plain", &scan_sub);
    assert_eq!(r["peer_parsed"], "SubscribeScanEvent");
    assert_eq!(reply_text(&r, openid, false), WELCOME);

    // Nothing to say: `success`, plain or encrypted.
    assert_no_reply(&wx_push(&gw, "plain", &event(openid, "unsubscribe")));
    let mut click = event(openid, "CLICK");
    click["event_key"] = json!("MENU_GUIDE");
    assert_no_reply(&wx_push(&gw, "safe", &click));
    let unknown = json!({"type": "miniprogrampage", "from": openid, "to": GH,
                         "create_time": now(), "msg_id": msg_id(),
                         "fields": {"Title": "小程序", "AppId": "wx1234", "PagePath": "pages/x"}});
    // A message of a kind not taken is told so (how to send the matter), and makes no order.
    let unsupported = |r: &Value, encrypted: bool| {
        let content = reply_text(r, openid, encrypted);
        assert!(content.contains("暂不支持"), "{content}");
    };
    unsupported(&wx_push(&gw, "plain", &unknown), false);
    unsupported(&wx_push(&gw, "safe", &unknown), true);
    // Counted by type; a type nobody knows is `other`, so pushes cannot add series at will.
    let mut odd = unknown.clone();
    odd["type"] = json!("zz_made_up_type_42");
    unsupported(&wx_push(&gw, "plain", &odd), false);
    // Whoever signs pushes may write anything there: an e-mail address in it was logged at
    // INFO as sent until 2026-12-07 (the privacy review's F7).
    let mut mail = unknown.clone();
    mail["type"] = json!("zhang.san@example.com");
    unsupported(&wx_push(&gw, "plain", &mail), false);
    let logged = wait_until("the e-mail type logged", LONG, || {
        gw.logs()
            .lines()
            .find(|l| l.contains("Unknown WeChat message type") && l.contains("example.com"))
            .map(str::to_string)
    });
    assert!(
        logged.contains("z***@example.com") && !gw.logs().contains("zhang.san"),
        "{logged}"
    );
    // A device's report is nobody's message: no reply.
    let mut device = unknown.clone();
    device["type"] = json!("device_event");
    assert_no_reply(&wx_push(&gw, "plain", &device));
    let metrics = gw.metrics();
    for label in ["type=\"miniprogrampage\"", "type=\"other\""] {
        assert!(metrics.contains(label), "{label} missing from /metrics");
    }
    assert!(!metrics.contains("zz_made_up"), "the type became a label");

    // A matter, then its status by number: no new order for the query.
    let r = wx_push(&gw, "plain", &text(openid, "我们小区停水两天了"));
    let number = number_in(&reply_text(&r, openid, false));
    wait_for_order(&sim, &number);
    for query in [format!("查询 {number}"), format!("查询：{number}")] {
        let r = wx_push(&gw, "plain", &text(openid, &query));
        let status = reply_text(&r, openid, false);
        assert!(status.contains(&number), "{status}");
        assert!(
            !status.contains("未查询到") && !status.contains("已受理，工单号"),
            "{status}"
        );
    }
    let r = wx_push(&gw, "safe", &text(openid, &format!("查询{number}")));
    assert!(reply_text(&r, openid, true).contains(&number));
    let r = wx_push(&gw, "plain", &text(openid, "查询 2026010107999999"));
    assert!(reply_text(&r, openid, false).contains("未查询到"));
    // A query that also reports an emergency gets the number to dial, not a status (art. 17).
    let r = wx_push(
        &gw,
        "plain",
        &text(openid, &format!("查询 {number} 我家厨房着火了，火很大")),
    );
    let fire = reply_text(&r, openid, false);
    assert!(fire.contains("拨打119"), "{fire}");

    // A later matter arrives; by then nothing else has.
    let r = wx_push(&gw, "plain", &text(openid, "楼道里堆满杂物，有火灾隐患"));
    let number2 = number_in(&reply_text(&r, openid, false));
    let all = wait_for_order(&sim, &number2);
    assert_eq!(
        all.len(),
        2,
        "events, unknown types and queries made no order: {all:?}"
    );
    the_order(&all, &number);
    assert_not_logged(&gw, &[openid]);
}

#[test]
fn wechat_media_locations_and_odd_text_reach_dispatch_as_orders() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    // One sender per message, so no rule that joins a sender's messages can interfere.
    let ids = [
        "oLoc_Rr4Tt8Yy2Uu6Ii0Oo3Pp7Aa",
        "oVoice_Ee5Ww1Qq7Aa3Ss9Dd2Ff6",
        "oImage_Kk4Jj8Hh2Gg6Ff0Dd3Ss7",
        "oOdd_Pp1Oo5Ii9Uu3Yy7Tt2Rr6Ee",
    ];
    let fields = |openid: &str, kind: &str, fields: Value| {
        json!({"type": kind, "from": openid, "to": GH, "create_time": now(),
               "msg_id": msg_id(), "fields": fields})
    };
    let sent = [
        (
            "safe",
            fields(
                ids[0],
                "location",
                json!({"Location_X": 39.084158, "Location_Y": 117.200983, "Scale": 15,
                       "Label": "天津市和平区南京路1号附近路面塌陷"}),
            ),
            "LocationMessage",
        ),
        (
            "plain",
            fields(
                ids[1],
                "voice",
                json!({"MediaId": "voice-media-7", "Format": "amr",
                       "Recognition": "我家门口的水管爆了，水流了一地"}),
            ),
            "VoiceMessage",
        ),
        (
            "compat",
            fields(
                ids[2],
                "image",
                json!({"PicUrl": "http://mmbiz.qpic.cn/x.jpg", "MediaId": "image-media-9"}),
            ),
            "ImageMessage",
        ),
        (
            "safe",
            // A raw C0 control (which WeChat does send, and expat refuses), `]]>` and an emoji.
            text(ids[3], "路面]]>有个大坑\u{1d}请尽快处理😀"),
            "unparseable: ExpatError",
        ),
    ];
    let mut numbers = Vec::new();
    for ((mode, msg, parsed), openid) in sent.iter().zip(ids) {
        let r = wx_push(&gw, mode, msg);
        assert_eq!(r["peer_parsed"], *parsed, "{r}");
        numbers.push(number_in(&reply_text(&r, openid, *mode != "plain")));
    }
    let all = wait_until("four orders at dispatch", LONG, || {
        let o = orders(&sim);
        numbers
            .iter()
            .all(|n| o.iter().any(|(m, _)| m == n))
            .then_some(o)
    });
    assert_eq!(all.len(), 4, "{all:?}");
    let location = the_order(&all, &numbers[0]);
    assert_eq!(
        location["location"]["lat"], 39.084158,
        "Location_X is the latitude: {location}"
    );
    assert_eq!(location["location"]["lon"], 117.200983, "{location}");
    assert!(location["location"]["address"]
        .as_str()
        .unwrap()
        .contains("南京路1号"));
    let voice = the_order(&all, &numbers[1]);
    assert_eq!(
        voice["content"], "我家门口的水管爆了，水流了一地",
        "Recognition is the content"
    );
    assert_eq!(voice["attachments"][0]["kind"], "voice", "{voice}");
    assert_eq!(
        voice["attachments"][0]["media_id"], "voice-media-7",
        "{voice}"
    );
    let image = the_order(&all, &numbers[2]);
    assert_eq!(image["attachments"][0]["kind"], "image", "{image}");
    assert_eq!(
        image["attachments"][0]["media_id"], "image-media-9",
        "{image}"
    );
    assert_eq!(
        image["attachments"][0]["url"], "http://mmbiz.qpic.cn/x.jpg",
        "{image}"
    );
    let odd = the_order(&all, &numbers[3]);
    assert_eq!(
        odd["content"], "路面]]>有个大坑请尽快处理😀",
        "control stripped, rest kept"
    );
    assert_eq!(odd["submitter"]["identity"], format!("wechat:{}", ids[3]));
    assert_not_logged(&gw, &ids);
}

#[test]
fn wechat_refusals_have_clear_statuses_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let openid = "oRefuse_Gg5Hh9Jj3Kk7Ll1Zz4Xx";
    // Every refused push below is this same message (same MsgId, sender and CreateTime), so if
    // any of them had stored even a dedupe record, the final valid push would be answered from
    // it instead of making its order.
    let msg = text(openid, "路口红绿灯不亮，车辆乱行");
    let m = |extra: Value| {
        let mut input = json!({"message": msg});
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        wx(&gw, "main", input)
    };
    let create = msg["create_time"].as_i64().unwrap();
    let xml_fields = format!(
        "<ToUserName><![CDATA[{GH}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
         <CreateTime>{create}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    );
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
         <xml>{xml_fields}<Content>&xxe;</Content><MsgId>{}</MsgId></xml>",
        msg["msg_id"]
    );
    let lol = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">\
         <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\
         <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\
         <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\
         <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">]>\
         <xml>{xml_fields}<Content>&lol4;</Content><MsgId>{}</MsgId></xml>",
        msg["msg_id"]
    );
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "stale timestamp",
            json!({"timestamp_offset": -1000}),
            401,
            "stale_timestamp",
        ),
        (
            "future timestamp",
            json!({"timestamp_offset": 1000}),
            401,
            "stale_timestamp",
        ),
        (
            "stale timestamp, safe mode",
            json!({"mode": "safe", "timestamp_offset": -1000}),
            401,
            "stale_timestamp",
        ),
        (
            "forged signature",
            json!({"tamper": "signature"}),
            401,
            "bad_signature",
        ),
        (
            "forged signature, safe mode",
            json!({"mode": "safe", "tamper": "signature"}),
            401,
            "bad_signature",
        ),
        (
            "forged msg_signature",
            json!({"mode": "safe", "tamper": "msg_signature"}),
            401,
            "bad_signature",
        ),
        ("XXE body", json!({"body": xxe}), 400, "invalid_xml"),
        (
            "billion laughs body",
            json!({"body": lol}),
            400,
            "invalid_xml",
        ),
        (
            "XXE inside the ciphertext",
            json!({"mode": "safe", "inner": xxe}),
            400,
            "invalid_xml",
        ),
        (
            "truncated ciphertext",
            json!({"mode": "safe", "tamper": "truncate"}),
            400,
            "decrypt_failed",
        ),
        (
            "wrong padding",
            json!({"mode": "safe", "tamper": "bad_padding"}),
            400,
            "decrypt_failed",
        ),
        (
            "encrypted for another appid",
            json!({"mode": "safe", "encrypt_appid": "wx0000000000000000"}),
            401,
            "app_id_mismatch",
        ),
        (
            "encrypt_type=aes without Encrypt",
            json!({"tamper": "no_encrypt"}),
            422,
            "missing_field",
        ),
        (
            "JSON instead of XML",
            json!({"body": "{\"MsgType\":\"text\"}"}),
            400,
            "invalid_xml",
        ),
        (
            "oversized body",
            json!({"body": format!("<xml><Content>{}</Content></xml>", "x".repeat(70_000))}),
            413,
            "body_too_large",
        ),
    ];
    for (what, extra, status, code) in cases {
        let r = m(extra);
        assert!(r["reply"].is_null(), "{what}: {r}");
        assert_eq!(r["status"], status, "{what}: {r}");
        assert_refused(&r, status, code);
    }
    // An account that requires encryption refuses plaintext with 403 and takes safe mode.
    let strict_openid = "oStrict_Qq2Ww6Ee0Rr4Tt8Yy1Uu";
    let r = wx(
        &gw,
        "strict",
        json!({"message": text(strict_openid, "明文推送不该被接受")}),
    );
    assert_refused(&r, 403, "encryption_required");
    let r = wx(
        &gw,
        "strict",
        json!({"mode": "safe", "message": text(strict_openid, "加密推送的诉求：电梯经常停运")}),
    );
    let n_strict = number_in(&reply_text(&r, strict_openid, true));
    // Unknown account.
    assert_eq!(
        wx(&gw, "nope", json!({"message": text(openid, "x")}))["status"],
        404
    );

    // The very message that was refused so many times, now sent properly, is a new order.
    let ok = m(json!({}));
    let number = number_in(&reply_text(&ok, openid, false));
    let all = wait_until("both orders at dispatch", LONG, || {
        let o = orders(&sim);
        (o.iter().any(|(n, _)| *n == number) && o.iter().any(|(n, _)| *n == n_strict)).then_some(o)
    });
    assert_eq!(all.len(), 2, "no refused push reached dispatch: {all:?}");
    assert_eq!(
        the_order(&all, &number)["content"],
        "路口红绿灯不亮，车辆乱行"
    );
    assert_eq!(
        the_order(&all, &n_strict)["content"],
        "加密推送的诉求：电梯经常停运"
    );
    let lines = serde_json::to_string(&sim.lines()).unwrap();
    assert!(
        !lines.contains("明文推送") && !lines.contains("lol"),
        "{lines}"
    );
    assert_eq!(
        client()
            .get(format!("{}/readyz", gw.url))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_not_logged(&gw, &[openid, strict_openid]);
}

#[test]
fn wechat_suspended_and_throttled_senders_get_the_reminder_and_no_order() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let extra = format!("{}\n[nuisance]\nquota = 2\nper = \"1h\"\n", accounts());
    let gw = Gateway::start(dir.path(), &sim.url, &extra);

    // An operator suspended this sender: the reply says so; emergencies still get through.
    let suspended = "oSusp_Aa1Ss5Dd9Ff3Gg7Hh2Jj6K";
    let r = client()
        .put(format!(
            "{}/admin/v1/callers/wechat:{suspended}/suspension",
            gw.url
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"duration": "24h", "reason": "恶意骚扰"}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text());
    let r = wx_push(&gw, "plain", &text(suspended, "我又来投诉了"));
    let content = reply_text(&r, suspended, false);
    assert!(
        content.contains("暂停") && content.contains("恶意骚扰"),
        "{content}"
    );
    assert!(!content.contains("工单号"), "{content}");
    let r = wx_push(&gw, "safe", &text(suspended, "救命，家里着火了"));
    assert!(reply_text(&r, suspended, true).contains("拨打119"));

    // Over the quota: the reminder of the ladder, no order.
    let busy = "oBusy_Zz9Xx5Cc1Vv7Bb3Nn8Mm4Q";
    let mut want = Vec::new();
    for i in 0..2 {
        let r = wx_push(&gw, "plain", &text(busy, &format!("第{i}件事：路面有坑")));
        want.push(number_in(&reply_text(&r, busy, false)));
    }
    let r = wx_push(&gw, "plain", &text(busy, "第三件事：树枝挡路"));
    let content = reply_text(&r, busy, false);
    assert!(
        content.contains("频繁") && !content.contains("工单号"),
        "{content}"
    );

    let last = want.last().unwrap().clone();
    let all = wait_until("the accepted orders at dispatch", LONG, || {
        let o = orders(&sim);
        want.iter()
            .all(|n| o.iter().any(|(m, _)| m == n))
            .then_some(o)
    });
    assert_eq!(
        all.len(),
        2,
        "the suspended and the throttled made none: {all:?}"
    );
    the_order(&all, &last);
    assert_not_logged(&gw, &[suspended, busy]);
}

/// The Weibo peer aimed at `gw`'s `main` account.
fn wb(gw: &Gateway, extra: Value) -> Value {
    let mut input = json!({"op": "push", "url": format!("{}/v1/weibo/main", gw.url),
                           "secret": WEIBO_SECRET});
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    peer("weibo_peer.py", &input)
}

/// A Weibo push from `sender`.
fn wb_msg(sender: &str, kind: &str, text: &str, data: Value) -> Value {
    let created = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%a %b %d %H:%M:%S %z %Y")
        .to_string();
    json!({"type": kind, "receiver_id": WEIBO_UID, "sender_id": sender,
           "created_at": created, "text": text, "data": data})
}

/// The reply text of a Weibo answer; checks the ids are swapped, exactly.
fn wb_reply(r: &Value, sender: &str) -> String {
    assert_eq!(r["status"], 200, "{r}");
    assert!(r["reply_error"].is_null(), "unreadable reply: {r}");
    let reply = &r["reply"];
    assert!(reply.is_object(), "a reply, not an empty body: {r}");
    assert_eq!(reply["result"], true, "{r}");
    assert_eq!(reply["type"], "text", "{r}");
    assert_eq!(reply["sender_id"], WEIBO_UID, "our uid sends: {r}");
    assert_eq!(reply["receiver_id"], sender, "the fan receives: {r}");
    reply["text"].as_str().unwrap_or_default().to_string()
}

#[test]
fn weibo_handshake_push_retries_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let hs = |tamper: Value| {
        wb(
            &gw,
            json!({"op": "handshake", "echostr": "dnPdpTZz85", "tamper": tamper}),
        )
    };
    let r = hs(Value::Null);
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["body"], "dnPdpTZz85");
    assert_refused(&hs(json!("signature")), 401, "bad_signature");

    // Fan uid above 2^53: it must come back exactly.
    let sender = "9007199254740993";
    let first = wb(
        &gw,
        json!({"message": wb_msg(sender, "text", "小区垃圾三天没人清理了", json!({}))}),
    );
    let first_text = wb_reply(&first, sender);
    let number = number_in(&first_text);
    for _ in 0..2 {
        let again = wb(&gw, json!({"op": "send", "request": first["request"]}));
        assert_eq!(wb_reply(&again, sender), first_text, "the first answer");
    }
    // Refusals: bad signature and an old timestamp; nothing stored.
    let refused = wb_msg(sender, "text", "这条签名不对", json!({}));
    let r = wb(&gw, json!({"message": refused, "tamper": "signature"}));
    assert_refused(&r, 401, "bad_signature");
    let r = wb(
        &gw,
        json!({"message": refused, "timestamp_offset_ms": -1_000_000}),
    );
    assert_refused(&r, 401, "stale_timestamp");
    let r = wb(
        &gw,
        json!({"message": refused, "timestamp_offset_ms": 1_000_000}),
    );
    assert_refused(&r, 401, "stale_timestamp");
    // A NUL in created_at, which goes into the dedupe key (PostgreSQL refuses NUL in text):
    // a typed 422, not a 500; nothing stored (the order count below).
    let mut nul = wb_msg(sender, "text", "时间里有控制字符", json!({}));
    nul["created_at"] = json!(format!("{}\u{0}", nul["created_at"].as_str().unwrap()));
    assert_refused(&wb(&gw, json!({"message": nul})), 422, "invalid_field");
    // Nothing to say: an empty body.
    for (kind, data) in [
        ("event", json!({"subtype": "follow"})),
        ("event", json!({"subtype": "click", "key": "MENU_1"})),
        ("hologram", json!({"x": 1})),
    ] {
        let r = wb(
            &gw,
            json!({"message": wb_msg(sender, kind, "关注事件消息", data)}),
        );
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["body"], "", "no reply for {kind}: {r}");
    }
    // An image from another fan, signed with a timestamp in seconds: an order with the file id.
    let fan2 = "2489518277";
    let image = wb_msg(
        fan2,
        "image",
        "发了一张图片",
        json!({"vfid": 821804459, "tovfid": 821804469}),
    );
    let r = wb(&gw, json!({"message": image, "timestamp_unit": "s"}));
    let n_image = number_in(&wb_reply(&r, fan2));
    // An emergency: the number to dial, no order.
    let r = wb(
        &gw,
        json!({"message": wb_msg(sender, "text", "我家厨房着火了，火很大", json!({}))}),
    );
    let fire = wb_reply(&r, sender);
    assert!(
        fire.contains("拨打119") && !fire.contains("工单号"),
        "{fire}"
    );
    // A status query.
    wait_for_order(&sim, &number);
    let r = wb(
        &gw,
        json!({"message": wb_msg(sender, "text", &format!("查询 {number}"), json!({}))}),
    );
    assert!(wb_reply(&r, sender).contains(&number));
    // One that also reports an emergency gets the number to dial, not a status (art. 17).
    let r = wb(
        &gw,
        json!({"message": wb_msg(sender, "text", &format!("查询 {number} 楼下着火了，火很大"), json!({}))}),
    );
    let fire = wb_reply(&r, sender);
    assert!(fire.contains("拨打119"), "{fire}");
    // A shared place right after a matter joins its order (it was an order of its own, whose
    // only text was the platform's label).
    let place = wb_msg(
        sender,
        "position",
        "我在这里",
        json!({"longitude": "116.3", "latitude": "39.9"}),
    );
    let r = wb(&gw, json!({"message": place}));
    let joined = wb_reply(&r, sender);
    assert!(
        joined.contains(&number) && joined.contains("补充"),
        "{joined}"
    );
    wait_until("the place at dispatch as a supplement", LONG, || {
        contacts(&sim)
            .iter()
            .any(|c| c["contact_for"] == number.as_str() && c["kind"] == "supplement")
            .then_some(())
    });

    // After a restart the retry still gets the first answer.
    let gw = restart(gw);
    let again = wb(&gw, json!({"op": "send", "request": first["request"]}));
    assert_eq!(wb_reply(&again, sender), first_text);

    // The refused message, sent properly, is a new order; it is the second and last.
    let r = wb(&gw, json!({"message": refused}));
    let number2 = number_in(&wb_reply(&r, sender));
    let all = wait_until("three orders at dispatch", LONG, || {
        let o = orders(&sim);
        [&number, &number2, &n_image]
            .iter()
            .all(|n| o.iter().any(|(m, _)| m == *n))
            .then_some(o)
    });
    assert_eq!(all.len(), 3, "{all:?}");
    let order = the_order(&all, &n_image);
    assert_eq!(order["attachments"][0]["kind"], "image", "{order}");
    assert_eq!(
        order["attachments"][0]["media_id"], "821804469",
        "tovfid: {order}"
    );
    assert_eq!(order["submitter"]["identity"], format!("weibo:{fan2}"));
    let order = the_order(&all, &number);
    assert_eq!(order["channel"], "weibo");
    assert_eq!(order["account"], "main");
    assert_eq!(order["submitter"]["identity"], format!("weibo:{sender}"));
    assert_eq!(order["content"], "小区垃圾三天没人清理了");
    assert_eq!(the_order(&all, &number2)["content"], "这条签名不对");
    // Counted by key: the restart may post the place again under its key (a delivery whose
    // result was not yet written when the SIGTERM came; dispatch answers it 409 `repeat`).
    let keys: std::collections::BTreeSet<String> = contacts(&sim)
        .iter()
        .filter_map(|c| c["idempotency_key"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "only the place; a retry is no repeat contact: {:?}",
        contacts(&sim)
    );
    let lines = serde_json::to_string(&sim.lines()).unwrap();
    assert!(!lines.contains("着火"), "{lines}");
    assert_not_logged(&gw, &[sender, fan2]);
}

#[test]
fn wechat_concurrent_retries_of_one_push_make_one_order_and_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let extra = format!("{}\n[nuisance]\nquota = 2\nper = \"1h\"\n", accounts());
    let gw = Gateway::start(dir.path(), &sim.url, &extra);
    let openid = "oRace_Mm3Nn7Bb1Vv5Cc9Xx2Zz6L";
    // The platform retries while the first attempt may still be running (brief 1.9 #8): the
    // same request, built by wechatpy, delivered six times at once.
    let built = wx(
        &gw,
        "main",
        json!({"op": "build", "mode": "safe", "message": text(openid, "小区门口的下水道堵了")}),
    );
    let url = format!(
        "{}/v1/wechat/main?{}",
        gw.url,
        built["request"]["query"].as_str().unwrap()
    );
    let body = built["request"]["body"].as_str().unwrap().to_string();
    let start = std::sync::Barrier::new(6);
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    let c = client();
                    start.wait();
                    let r = c
                        .post(&url)
                        .header("content-type", "text/xml")
                        .body(body.clone())
                        .send()
                        .unwrap();
                    (r.status().as_u16(), r.text().unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let contents: Vec<String> = answers
        .iter()
        .map(|(status, body)| {
            let r = wx(
                &gw,
                "main",
                json!({"op": "read", "status": status, "body": body,
                       "content_type": "text/xml; charset=utf-8"}),
            );
            reply_text(&r, openid, true)
        })
        .collect();
    assert!(
        contents.iter().all(|c| *c == contents[0]),
        "every attempt gets the one answer: {contents:#?}"
    );
    let number = number_in(&contents[0]);
    assert!(contents[0].contains("已受理"), "{contents:?}");
    // The six deliveries were one submission: with a quota of two, one more is accepted.
    let r = wx_push(&gw, "plain", &text(openid, "路边的树倒了挡住了人行道"));
    let content = reply_text(&r, openid, false);
    assert!(
        content.contains("工单号"),
        "retries do not eat the quota: {content}"
    );
    let second = number_in(&content);
    let all = wait_until("both orders at dispatch", LONG, || {
        let o = orders(&sim);
        (o.iter().any(|(n, _)| *n == number) && o.iter().any(|(n, _)| *n == second)).then_some(o)
    });
    assert_eq!(all.len(), 2, "{all:?}");
    let contacts = contacts(&sim);
    assert!(
        contacts.is_empty(),
        "a retry is no repeat contact: {contacts:?}"
    );
}

#[test]
fn wechat_photo_and_location_after_a_text_are_added_to_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let openid = "oAttach_Qq2Ww6Ee0Rr4Tt8Yy1Uu";
    let r = wx_push(&gw, "plain", &text(openid, "小区门口的路面塌陷了一个大坑"));
    let number = number_in(&reply_text(&r, openid, false));
    let fields = |kind: &str, fields: Value| {
        json!({"type": kind, "from": openid, "to": GH, "create_time": now(),
               "msg_id": msg_id(), "fields": fields})
    };
    // A photo, then a location, within the window: both go to the same order.
    let r = wx_push(
        &gw,
        "safe",
        &fields(
            "image",
            json!({"PicUrl": "http://mmbiz.qpic.cn/hole.jpg", "MediaId": "hole-media-1"}),
        ),
    );
    let reply = reply_text(&r, openid, true);
    assert!(reply.contains(&number) && reply.contains("补充"), "{reply}");
    let r = wx_push(
        &gw,
        "plain",
        &fields(
            "location",
            json!({"Location_X": 39.1, "Location_Y": 117.2, "Scale": 15, "Label": "南京路1号"}),
        ),
    );
    assert!(reply_text(&r, openid, false).contains(&number));
    let supplements = wait_until("two supplements at dispatch", LONG, || {
        let c: Vec<Value> = contacts(&sim)
            .into_iter()
            .filter(|c| c["contact_for"] == number.as_str())
            .collect();
        (c.len() >= 2).then_some(c)
    });
    assert_eq!(supplements[0]["kind"], "supplement");
    // The contact body alone (the line less the sim's two fields).
    let kinds: Vec<String> = supplements
        .iter()
        .map(|c| {
            let mut body = c.clone();
            if let Some(fields) = body.as_object_mut() {
                fields.remove("contact_for");
                fields.remove("idempotency_key");
            }
            body.to_string()
        })
        .collect();
    assert!(
        kinds.iter().any(|k| k.contains("hole-media-1")),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k.contains("117.2")), "{kinds:?}");
    assert_eq!(
        orders(&sim).len(),
        1,
        "no new order for the photo or the location"
    );
    // Once the sender is suspended, a photo gets the suspension's answer and reaches no order
    // (art. 32), though it would still be within the window.
    gw.suspend(&format!("wechat:{openid}"), "24h", "恶意骚扰");
    let r = wx_push(
        &gw,
        "plain",
        &fields(
            "image",
            json!({"PicUrl": "http://mmbiz.qpic.cn/more.jpg", "MediaId": "hole-media-2"}),
        ),
    );
    let reply = reply_text(&r, openid, false);
    assert!(
        reply.contains("暂停") && !reply.contains(&number),
        "a suspended sender's photo supplemented an order: {reply}"
    );
    // A photo from someone with no recent matter is an order of its own.
    let other = "oAlone_Zz1Xx5Cc9Vv3Bb7Nn2Mm6";
    let r = wx_push(
        &gw,
        "plain",
        &json!({"type": "image", "from": other, "to": GH, "create_time": now(),
                "msg_id": msg_id(), "fields": {"PicUrl": "http://x/y.jpg", "MediaId": "m-2"}}),
    );
    let n2 = number_in(&reply_text(&r, other, false));
    wait_for_order(&sim, &n2);
    assert!(
        !contacts(&sim)
            .iter()
            .any(|c| c.to_string().contains("hole-media-2")),
        "the suspended sender's photo reached dispatch"
    );
}

#[test]
fn wechat_status_menu_lists_the_followers_recent_orders() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let openid = "oMenu_Aa1Ss5Dd9Ff3Gg7Hh2Jj6";
    let r = wx_push(&gw, "plain", &text(openid, "楼道里的灯坏了好几天"));
    let number = number_in(&reply_text(&r, openid, false));
    let click = json!({"type": "event", "from": openid, "to": GH, "create_time": now(),
                       "event": "CLICK", "event_key": "ORDER_STATUS"});
    let r = wx_push(&gw, "plain", &click);
    assert!(reply_text(&r, openid, false).contains(&number));
    let stranger = "oNone_Qq1Ww5Ee9Rr3Tt7Yy2Uu6";
    let click = json!({"type": "event", "from": stranger, "to": GH, "create_time": now(),
                       "event": "CLICK", "event_key": "ORDER_STATUS"});
    let r = wx_push(&gw, "plain", &click);
    assert!(reply_text(&r, stranger, false).contains("没有提交过"));
}

#[test]
fn pushes_over_the_high_water_mark_get_503_with_retry_after_and_emergencies_still_get_their_number()
{
    // Dispatch is down, so the outbox only grows: two orders are above a high-water mark of one.
    let dir = tempfile::tempdir().unwrap();
    let down = format!("http://127.0.0.1:{}", free_port());
    let port = free_port();
    let node = NodeConfig {
        storage: format!("{}\nhigh_water = 1", services::storage_toml(dir.path())),
        ..NodeConfig::default()
    };
    let gw = Gateway::start_with(node.write(dir.path(), port, &down, &accounts()), port);
    for (i, openid) in ["oShedA_1Qw2Er3Ty4Ui5Op6As7D", "oShedB_8Fg9Hj0Kl1Zx2Cv3Bn4M"]
        .into_iter()
        .enumerate()
    {
        let r = wx_push(
            &gw,
            "plain",
            &text(openid, &format!("积压{i}：小区路灯不亮")),
        );
        number_in(&reply_text(&r, openid, false));
    }
    let depth = || {
        gw.metrics()
            .lines()
            .find_map(|l| l.strip_prefix("hotline_outbox_depth ")?.parse::<f64>().ok())
    };
    assert_eq!(depth(), Some(2.0));

    // Over the mark: a 503 the platform retries after Retry-After, with the stable code, in
    // both WeChat modes and from Weibo; no reply for the citizen to take as an acceptance.
    let openid = "oShedC_5Nm6Bv7Cx8Zl9Kj0Hg1F";
    for mode in ["plain", "safe"] {
        let r = wx_push(&gw, mode, &text(openid, "楼道堆满杂物，存在安全隐患"));
        assert_eq!(r["status"], 503, "{mode}: {r}");
        assert!(r["retry_after"].as_str().is_some(), "{mode}: {r}");
        assert!(r["reply"].is_null(), "{mode}: {r}");
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap_or("")).unwrap();
        assert_eq!(body["error"]["code"], "unavailable", "{mode}: {r}");
    }
    let sender = "9007199254740995";
    let r = wb(
        &gw,
        json!({"message": wb_msg(sender, "text", "噪音扰民，晚上施工", json!({}))}),
    );
    assert_eq!(r["status"], 503, "{r}");
    assert!(r["retry_after"].as_str().is_some(), "{r}");

    // An emergency is never shed: the same sender gets the number to dial.
    let fire = wx_push(&gw, "plain", &text(openid, "我家楼下着火了，火很大"));
    let content = reply_text(&fire, openid, false);
    assert!(content.contains("拨打119"), "{content}");
    let m = gw.metrics();
    for channel in ["wechat", "weibo"] {
        assert!(
            m.lines()
                .any(|l| l.starts_with(&format!("hotline_shed_total{{channel=\"{channel}\"}}"))),
            "{channel} sheds are counted"
        );
    }
    // Nothing of the shed pushes was stored.
    assert_eq!(depth(), Some(2.0));
}

#[test]
fn weibo_a_positions_label_is_not_its_matter_and_a_later_place_is_no_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let extra = format!("{}\n[rules]\nattach_window = \"1s\"\n", accounts());
    let gw = Gateway::start(dir.path(), &sim.url, &extra);
    let fan = "9007199254741001";
    let place = |lat: &str, lon: &str| {
        wb_msg(
            fan,
            "position",
            "发送了一个位置",
            json!({"latitude": lat, "longitude": lon}),
        )
    };
    let r = wb(&gw, json!({"message": place("39.982525", "116.308586")}));
    let first = number_in(&wb_reply(&r, fan));
    let all = wait_for_order(&sim, &first);
    let order = the_order(&all, &first);
    assert_eq!(order["content"], "", "the label is no matter: {order}");
    assert_eq!(order["location"]["address"], "", "nor an address: {order}");
    assert_eq!(order["location"]["lat"], 39.982525, "{order}");
    // Past the attach window, another place is not "the same matter" because both carry the
    // platform's label (it was: a repeat, and a contact for the first order).
    let t0 = now();
    wait_until("the attach window to pass", LONG, || {
        (now() >= t0 + 2).then_some(())
    });
    let r = wb(&gw, json!({"message": place("39.990001", "116.320002")}));
    let reply = wb_reply(&r, fan);
    assert!(reply.contains("已受理，工单号"), "{reply}");
    let second = number_in(&reply);
    let all = wait_for_order(&sim, &second);
    assert_eq!(the_order(&all, &second)["location"]["lat"], 39.990001);
    assert!(contacts(&sim).is_empty(), "{:?}", contacts(&sim));
}

#[test]
fn wechat_a_retry_of_a_guidance_answer_gets_the_guidance_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    let guidance = "您反映的事项依法应当通过诉讼途径解决，可拨打12348公共法律服务热线咨询。";
    // What the person reads: the guidance, then the emergency numbers every answer ends with.
    let answer = format!("{guidance}如遇紧急情况，请直接拨打110、119、120、122。");
    std::fs::write(
        dir.path().join("rules/guidance.toml"),
        format!(
            "version = 1\n[[rule]]\nname = \"court\"\naction = \"inform\"\n\
             tag = \"guidance:court\"\nmessage = \"{guidance}\"\nkeywords = [\"起诉\"]\n"
        ),
    )
    .unwrap();
    let extra = format!("{}\n[rules]\ndir = \"rules\"\n", accounts());
    let gw = Gateway::start(dir.path(), "", &extra);
    let openid = "oCourt_Zz4Xx8Cc2Vv6Bb0Nn5Mm9";
    let first = wx_push(
        &gw,
        "safe",
        &text(openid, "我想起诉我的邻居，怎么去法院立案"),
    );
    assert_eq!(reply_text(&first, openid, true), answer);
    // The platform's retry, here and after a restart (the record is all there is then), used
    // to read "请按提示途径办理" with no hint to follow.
    assert_eq!(reply_text(&wx_resend(&gw, &first), openid, true), answer);
    let gw = restart(gw);
    assert_eq!(reply_text(&wx_resend(&gw, &first), openid, true), answer);
}

/// The order number in full-width digits, as a Chinese input method in full-width mode types it.
fn full_width(number: &str) -> String {
    number
        .chars()
        .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
        .collect()
}

/// The number read out in groups of four (`2026 1207 0769 8881`).
fn in_groups(number: &str, sep: &str) -> String {
    number
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(sep)
}

/// A status answer for `number`: names it, and is neither an acknowledgement nor a refusal.
fn assert_status_of(content: &str, number: &str) {
    assert!(content.contains(number), "{content}");
    for not in ["已受理，工单号", "已在办理中", "频繁", "暂停", "未查询到"] {
        assert!(!content.contains(not), "{not}: {content}");
    }
}

#[test]
fn status_queries_in_the_forms_citizens_type_or_say_make_no_order_and_are_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let extra = format!("{}\n[nuisance]\nquota = 2\nper = \"1h\"\n", accounts());
    let gw = Gateway::start(dir.path(), &sim.url, &extra);
    let openid = "oForms_Qq2Ww6Ee0Rr4Tt8Yy3Uu7";
    let r = wx_push(&gw, "plain", &text(openid, "我们小区停水两天了"));
    let number = number_in(&reply_text(&r, openid, false));
    wait_for_order(&sim, &number);
    // Each used to be a made-up order, then repeats, a reminder and a suspension (quota 2).
    for query in [
        format!("查询 {}", full_width(&number)),
        format!("查询：{}", full_width(&number)),
        format!("查询 {}", in_groups(&number, " ")),
        format!("查询 {}", in_groups(&number, "-")),
        format!("查询工单号：{number}"),
        format!("工单查询 {number}"),
        format!("您好，请帮我查一下工单{number}的进度，谢谢！"),
    ] {
        let r = wx_push(&gw, "plain", &text(openid, &query));
        assert_status_of(&reply_text(&r, openid, false), &number);
    }
    // A voice note: speech recognition writes the query with a full stop.
    let voice = json!({"type": "voice", "from": openid, "to": GH, "create_time": now(),
                       "msg_id": msg_id(),
                       "fields": {"MediaId": "voice-query-1", "Format": "amr",
                                  "Recognition": format!("查询{number}。")}});
    let r = wx_push(&gw, "safe", &voice);
    assert_status_of(&reply_text(&r, openid, true), &number);
    // Weibo too.
    let fan = "9007199254740997";
    let r = wb(
        &gw,
        json!({"message": wb_msg(fan, "text", "小区门口的井盖丢了", json!({}))}),
    );
    let fans = number_in(&wb_reply(&r, fan));
    wait_for_order(&sim, &fans);
    for query in [
        format!("查询 {}", full_width(&fans)),
        format!("工单查询：{}", in_groups(&fans, " ")),
    ] {
        let r = wb(
            &gw,
            json!({"message": wb_msg(fan, "text", &query, json!({}))}),
        );
        assert_status_of(&wb_reply(&r, fan), &fans);
    }
    // None was counted: the second matter is still within the quota of two.
    let r = wx_push(&gw, "plain", &text(openid, "楼道里堆满杂物，有火灾隐患"));
    let second = reply_text(&r, openid, false);
    assert!(second.contains("已受理，工单号"), "{second}");
    let second = number_in(&second);
    let all = wait_for_order(&sim, &second);
    assert_eq!(all.len(), 3, "the queries made no order: {all:?}");
    assert!(contacts(&sim).is_empty(), "nor a repeat contact");
    assert_not_logged(&gw, &[openid, fan]);
}

#[test]
fn a_status_query_with_another_matter_answers_the_status_and_takes_the_matter() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let openid = "oMore_Aa3Ss7Dd1Ff5Gg9Hh4Jj8K";
    let r = wx_push(&gw, "plain", &text(openid, "我们小区停水两天了"));
    let number = number_in(&reply_text(&r, openid, false));
    wait_for_order(&sim, &number);
    // The new matter used to be dropped without a word: no order, no record.
    let both = format!(
        "查询 {number}，另外反映一下：我们小区3号楼的路灯坏了一个星期了，晚上很黑，请尽快派人修理"
    );
    let r = wx_push(&gw, "plain", &text(openid, &both));
    let reply = reply_text(&r, openid, false);
    let (status, ack) = reply.split_once('\n').unwrap_or((&reply, ""));
    assert_status_of(status, &number);
    let new = number_in(
        ack.split_once("已受理，工单号：")
            .unwrap_or_else(|| panic!("an acknowledgement: {reply}"))
            .1,
    );
    assert_ne!(new, number);
    let all = wait_for_order(&sim, &new);
    assert_eq!(
        the_order(&all, &new)["content"],
        "另外反映一下：我们小区3号楼的路灯坏了一个星期了，晚上很黑，请尽快派人修理"
    );
    // Courtesy after the number is no matter.
    let r = wx_push(
        &gw,
        "plain",
        &text(openid, &format!("查询 {number}，谢谢！")),
    );
    assert_status_of(&reply_text(&r, openid, false), &number);
    // Weibo alike.
    let fan = "9007199254740999";
    let both = format!("查询 {number} 还有，楼下餐馆的油烟太大了，熏得没法开窗");
    let r = wb(
        &gw,
        json!({"message": wb_msg(fan, "text", &both, json!({}))}),
    );
    let reply = wb_reply(&r, fan);
    let (status, ack) = reply.split_once('\n').unwrap_or((&reply, ""));
    assert!(status.contains(&number), "{reply}");
    let fans = number_in(ack);
    let all = wait_for_order(&sim, &fans);
    assert_eq!(
        the_order(&all, &fans)["content"],
        "还有，楼下餐馆的油烟太大了，熏得没法开窗"
    );
    assert_eq!(all.len(), 3, "the query itself made no order: {all:?}");
    // A complaint about the asked order keeps its number: the order read `为什么还没人处理`.
    let r = wx_push(
        &gw,
        "plain",
        &text(openid, &format!("查询{number}为什么还没人处理")),
    );
    let reply = reply_text(&r, openid, false);
    let (status, ack) = reply.split_once('\n').unwrap_or((&reply, ""));
    assert_status_of(status, &number);
    let urged = number_in(ack);
    let all = wait_for_order(&sim, &urged);
    assert_eq!(
        the_order(&all, &urged)["content"],
        format!("{number}为什么还没人处理")
    );
}

#[test]
fn weibo_a_reply_naming_twenty_orders_stays_under_the_documented_limit() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let fan = "9007199254741003";
    let matters: Vec<String> = (1..=20)
        .map(|i| format!("{i}、第{i}号楼门口的路灯坏了"))
        .collect();
    let r = wb(
        &gw,
        json!({"message": wb_msg(fan, "text", &matters.join("；"), json!({}))}),
    );
    let reply = wb_reply(&r, fan);
    assert!(
        reply.chars().count() < 300,
        "{}: {reply}",
        reply.chars().count()
    );
    assert!(reply.contains("共20件"), "{reply}");
    let (first, last) = reply
        .split_once("工单号：")
        .and_then(|(_, rest)| rest.split_once('至'))
        .unwrap_or_else(|| panic!("a range: {reply}"));
    let (first, last) = (number_in(first), number_in(last));
    // The relay posts a round's orders concurrently: the last may arrive before the first.
    let all = wait_until("the twenty orders at dispatch", LONG, || {
        let o = orders(&sim);
        (o.len() >= 20).then_some(o)
    });
    the_order(&all, &first);
    the_order(&all, &last);
    assert_eq!(all.len(), 20, "{all:?}");
}

#[test]
fn wechat_a_file_is_answered_with_how_to_send_the_matter_and_makes_no_order() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let openid = "oFile_Pp3Oo7Ii1Uu5Yy9Tt4Rr8E";
    let file = json!({"type": "file", "from": openid, "to": GH, "create_time": now(),
                      "msg_id": msg_id(),
                      "fields": {"Title": "投诉材料.pdf", "Description": "证据",
                                 "FileKey": "f1b2c3", "FileMd5": "0cc175b9c0f1b6a8",
                                 "FileTotalLen": "20480"}});
    for mode in ["plain", "safe"] {
        let r = wx_push(&gw, mode, &file);
        let content = reply_text(&r, openid, mode == "safe");
        assert!(
            content.contains("暂不支持") && content.contains("文字"),
            "{content}"
        );
        assert!(!content.contains("工单号"), "{content}");
    }
    assert!(gw.metrics().contains("type=\"file\""));
    let r = wx_push(
        &gw,
        "plain",
        &text(openid, "材料里说的是小区违建的事，请处理"),
    );
    let number = number_in(&reply_text(&r, openid, false));
    let all = wait_for_order(&sim, &number);
    assert_eq!(all.len(), 1, "the file made no order: {all:?}");
}

/// A push with a field written twice is refused as the web form refuses one (422
/// `invalid_field` naming it), nothing stored, and every value is heard by the emergency
/// rules: a fire in the `<Content>` WeChat's reader skipped (the second) or the `text` Weibo's
/// dropped (the first) gets its number in the platform's reply. Until 2026-12-07 that
/// value was never checked, and the other made an order. wechatpy seals and reads the safe
/// mode; the Weibo peer signs a body a dict cannot hold.
#[test]
fn a_push_with_a_repeated_field_is_refused_and_every_value_heard() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &accounts());
    let openid = "oTwice_Pz3Wq7Xk0Lm2Nb8Vc4Rt6Y";
    let inner = |a: &str, b: &str| {
        format!(
            "<xml><ToUserName><![CDATA[{GH}]]></ToUserName><FromUserName><![CDATA[{openid}]]>\
             </FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[{a}]]></Content><Content><![CDATA[{b}]]></Content>\
             <MsgId>{}</MsgId></xml>",
            now(),
            msg_id()
        )
    };
    for mode in ["plain", "safe"] {
        let r = wx(
            &gw,
            "main",
            json!({"mode": mode, "inner": inner("路灯坏了", "楼下着火了")}),
        );
        let content = reply_text(&r, openid, mode == "safe");
        assert!(
            content.contains("拨打119") && !content.contains("工单号"),
            "{mode}: {content}"
        );
    }
    let r = wx(
        &gw,
        "main",
        json!({"mode": "safe", "inner": inner("路灯坏了", "井盖丢了")}),
    );
    assert_refused(&r, 422, "invalid_field");
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"]["field"], "Content", "{r}");

    let sender = "9007199254740995";
    let twice = |a: &str, b: &str| {
        let m = wb_msg(sender, "text", a, json!({}));
        format!(
            r#"{{"type":"text","receiver_id":{WEIBO_UID},"sender_id":{sender},"created_at":{},"text":{},"text":{},"data":{{}}}}"#,
            m["created_at"],
            json!(a),
            json!(b)
        )
    };
    let r = wb(
        &gw,
        json!({"message": {}, "body": twice("楼下着火了", "路灯坏了")}),
    );
    let reply = wb_reply(&r, sender);
    assert!(
        reply.contains("拨打119") && !reply.contains("工单号"),
        "{reply}"
    );
    let r = wb(
        &gw,
        json!({"message": {}, "body": twice("井盖丢了", "路灯坏了")}),
    );
    assert_refused(&r, 422, "invalid_field");
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"]["field"], "text", "{r}");

    // Nothing of the refused pushes was stored: a later normal push is the only order, and
    // none of their words reached dispatch.
    let normal = wx_push(&gw, "plain", &text(openid, "消防通道被私家车堵了好几天"));
    let number = number_in(&reply_text(&normal, openid, false));
    let all = wait_for_order(&sim, &number);
    assert_eq!(all.len(), 1, "only the normal order: {all:?}");
    let lines = serde_json::to_string(&sim.lines()).unwrap();
    for word in ["路灯", "井盖", "着火"] {
        assert!(!lines.contains(word), "{word}: {lines}");
    }
    assert_not_logged(&gw, &[openid, sender]);
}

/// A status query by number on WeChat or Weibo makes no submission, so until 2026-12-07
/// nothing counted it, and one account could walk a day's sequential order numbers as the web
/// could before `web.lookup_quota`. Queries now count against that budget per sender: past it
/// the reply is the wait, not a status, hits and misses alike; another sender is answered; a
/// matter sent with a capped query still becomes an order (art. 13); the web's budget per
/// address is its own.
#[test]
fn status_queries_by_number_are_capped_per_sender_on_wechat_and_weibo() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(
        dir.path(),
        &sim.url,
        &format!(
            "{}\n[web]\nlookup_quota = 2\n[nuisance]\nquota = 2\n",
            accounts()
        ),
    );
    let walker = "oWalker000000000000000000001";
    let r = wx_push(&gw, "plain", &text(walker, "我们小区停水两天了"));
    let number = number_in(&reply_text(&r, walker, false));
    wait_for_order(&sim, &number);
    let missing = format!("{}", number.parse::<u64>().unwrap() + 100);
    let ask = |who: &str, what: &str| {
        let r = wx_push(&gw, "plain", &text(who, &format!("查询 {what}")));
        reply_text(&r, who, false)
    };
    // Two queries, a hit and a miss, are answered.
    assert!(ask(walker, &number).contains(&number));
    assert!(ask(walker, &missing).contains("未查询到"));
    // The third is the wait, for a real order as for a missing one.
    for what in [&number, &missing] {
        let said = ask(walker, what);
        assert!(
            said.contains("查询过于频繁") && said.contains("分钟后再查询"),
            "{said}"
        );
        assert!(
            !said.contains(what.as_str()) && !said.contains("未查询到"),
            "{said}"
        );
    }
    // Another follower is answered.
    assert!(ask("oOther0000000000000000000002", &number).contains(&number));
    // A matter sent with a capped query is still taken.
    let r = wx_push(
        &gw,
        "plain",
        &text(
            walker,
            &format!("查询 {number}，另外反映一下：楼道里的灯不亮了"),
        ),
    );
    let both = reply_text(&r, walker, false);
    assert!(both.contains("查询过于频繁"), "{both}");
    // The wait names no order number: the one in the reply is the new matter's.
    let second = number_in(&both);
    assert_ne!(second, number);
    wait_for_order(&sim, &second);
    // Weibo: the same budget per fan.
    let fan = "2489518277";
    let wb_ask = |what: &str| {
        let r = wb(
            &gw,
            json!({"message": wb_msg(fan, "text", &format!("查询 {what}"), json!({}))}),
        );
        wb_reply(&r, fan)
    };
    assert!(wb_ask(&number).contains(&number));
    assert!(wb_ask(&missing).contains("未查询到"));
    let said = wb_ask(&number);
    assert!(said.contains("查询过于频繁"), "{said}");
    // The web's look-ups from this address spent nothing of it, nor it of them.
    let url = format!("{}/v1/orders/{number}", gw.url);
    let s = common::client().get(&url).send().unwrap().status().as_u16();
    assert_eq!(s, 200);
}
