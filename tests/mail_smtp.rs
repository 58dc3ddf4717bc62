//! Mail against a real SMTP server (Python's aiosmtpd, storing into a Maildir on a free port):
//! receipts, supervisor alerts, and an SMTP outage that neither slows intake nor loses mail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

struct Smtp(Child);

/// aiosmtpd's Maildir handler, except that it answers RCPT for one address with 550, as a
/// server does for a mailbox that no longer exists.
const REFUSING: &str = "import sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
port, maildir, gone = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class Refusing(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == gone:
            return '550 5.1.1 <%s>: Recipient address rejected: User unknown' % address
        envelope.rcpt_tos.append(address)
        return '250 OK'
Controller(Refusing(maildir), hostname='127.0.0.1', port=port).start()
threading.Event().wait()
";

/// aiosmtpd's Maildir handler, except that it takes `pause` seconds over each message's DATA,
/// as a busy or distant server does.
const SLOW: &str = "import sys, asyncio, threading
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
port, maildir, pause = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
class Slow(Mailbox):
    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(pause)
        return await super().handle_DATA(server, session, envelope)
Controller(Slow(maildir), hostname='127.0.0.1', port=port).start()
threading.Event().wait()
";

impl Smtp {
    fn start(port: u16, maildir: &Path) -> Smtp {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir);
        Smtp::spawn(cmd, port)
    }

    /// A server that refuses `gone` for good and takes every other recipient.
    fn refusing(port: u16, maildir: &Path, gone: &str) -> Smtp {
        let mut cmd = Command::new("python3");
        cmd.args(["-c", REFUSING, &port.to_string()])
            .arg(maildir)
            .arg(gone);
        Smtp::spawn(cmd, port)
    }

    /// A server that takes `pause` over each message.
    fn slow(port: u16, maildir: &Path, pause: Duration) -> Smtp {
        let mut cmd = Command::new("python3");
        cmd.args(["-c", SLOW, &port.to_string()])
            .arg(maildir)
            .arg(pause.as_secs_f64().to_string());
        Smtp::spawn(cmd, port)
    }

    fn spawn(mut cmd: Command, port: u16) -> Smtp {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (scripts/test installs it)");
        wait_until("aiosmtpd to listen", LONG, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Smtp(child)
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every mail in the Maildir, as raw text with quoted-printable/base64 bodies decoded by Python's
/// email package (so the assertions read Chinese text, not encodings).
fn mails(maildir: &Path) -> Vec<String> {
    let new = maildir.join("new");
    let Ok(entries) = std::fs::read_dir(&new) else {
        return Vec::new();
    };
    let files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files
        .iter()
        .filter_map(|f| {
            let out = Command::new("python3")
                .arg("-c")
                .arg(
                    "import sys,email\nfrom email.header import decode_header, make_header\n\
                     m=email.message_from_binary_file(open(sys.argv[1],'rb'))\n\
                     print('To:', m['To']); print('Subject:', str(make_header(decode_header(m['Subject']))))\n\
                     print(m.get_payload(decode=True).decode('utf-8'))",
                )
                .arg(f)
                .output()
                .ok()?;
            Some(String::from_utf8_lossy(&out.stdout).to_string())
        })
        .collect()
}

#[test]
fn receipts_and_alerts_arrive_and_an_smtp_outage_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let port = free_port();
    let smtp = Smtp::start(port, &maildir);
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let extra = format!(
        "[mail]\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"12345@example.gov.cn\"\n\
         supervisors = [\"duty@example.gov.cn\"]\n"
    );
    let gw = Gateway::start(dir.path(), &sim.url, &extra);

    // A receipt to a submitter who gave an address.
    let (s, b) = gw.submit(json!({"content": "小区绿化带被占用", "email": "wang@example.cn"}));
    assert_eq!(s, 202, "{b}");
    let number = b["orders"][0]["number"].as_str().unwrap().to_string();
    let receipt = wait_until("the receipt", LONG, || {
        mails(&maildir).into_iter().find(|m| m.contains(&number))
    });
    assert!(receipt.contains("To: wang@example.cn"), "{receipt}");
    assert!(receipt.contains("已受理"), "{receipt}");
    // No address, no receipt: only one mail so far.
    let (s, _) = gw.submit(json!({"content": "没有留邮箱的诉求：路面破损"}));
    assert_eq!(s, 202);

    // An emergency alert to the supervisors.
    gw.submit(json!({"content": "有人持刀抢劫，就在超市门口"}));
    let alert = wait_until("the emergency alert", LONG, || {
        mails(&maildir).into_iter().find(|m| m.contains("紧急转接"))
    });
    assert!(alert.contains("To: duty@example.gov.cn"), "{alert}");
    assert!(alert.contains("110"), "{alert}");
    assert_eq!(mails(&maildir).len(), 2, "one receipt, one alert");

    // A possible emergency the rules do not find (second opinion): the order is made and the
    // supervisors are alerted to look at it now.
    let (s, b) = gw.submit(json!({"content": "工地上有个师傅从架子上掉下来了 躺着一动不动"}));
    assert_eq!(s, 202, "{b}");
    let reviewed = b["orders"][0]["number"].as_str().unwrap().to_string();
    let review = wait_until("the review alert", LONG, || {
        mails(&maildir)
            .into_iter()
            .find(|m| m.contains("疑似紧急") && m.contains(&reviewed))
    });
    assert!(review.contains("To: duty@example.gov.cn"), "{review}");
    assert!(review.contains("120"), "{review}");
    assert_eq!(mails(&maildir).len(), 3, "one receipt, two alerts");

    // SMTP down: intake goes on, mail waits and is delivered when SMTP is back.
    drop(smtp);
    let (s, b) = gw.submit(json!({"content": "停机期间：路灯闪烁", "email": "zhao@example.cn"}));
    assert_eq!(s, 202, "{b}");
    let n2 = b["orders"][0]["number"].as_str().unwrap().to_string();
    let _smtp = Smtp::start(port, &maildir);
    wait_until(
        "the receipt sent after SMTP came back",
        Duration::from_secs(60),
        || mails(&maildir).into_iter().find(|m| m.contains(&n2)),
    );
    assert!(
        !gw.logs().contains("wang@example.cn"),
        "addresses are masked in logs"
    );
}

/// A mail retried, or (PostgreSQL) claimed, by a clock that was ahead (a VM's wrong RTC at
/// boot, corrected by NTP; an operator's typo) goes out once the clock is right again, not
/// after the step: until 2026-12-07 a receipt retried 30 days ahead waited 30 days. The row is
/// left as such a clock leaves it, while the gateway is stopped.
#[test]
fn a_mail_put_off_by_a_clock_that_was_ahead_goes_out_when_it_is_right_again() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let port = free_port();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let extra = format!(
        "[mail]\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"12345@example.gov.cn\"\n"
    );
    // No SMTP server yet: the receipt waits in the event outbox.
    let mut gw = Gateway::start(dir.path(), &sim.url, &extra);
    let (s, b) = gw.submit(json!({"content": "小区绿化带被占用", "email": "wang@example.cn"}));
    assert_eq!(s, 202, "{b}");
    let number = b["orders"][0]["number"].as_str().unwrap().to_string();
    assert!(gw.terminate(), "{}", gw.logs());
    let ahead = chrono::Utc::now().timestamp_millis() + 30 * 86_400_000;
    let mut sql = format!("UPDATE events SET next_at_ms = {ahead} WHERE sink = 'mail';");
    if services::test_backend() == "postgres" {
        sql += &format!("UPDATE events SET lease_until_ms = {ahead} WHERE sink = 'mail';");
    }
    services::store_sql(dir.path(), &sql);
    let _smtp = Smtp::start(port, &maildir);
    let gw = Gateway::start_with(gw.config.clone(), gw.port());
    wait_until("the receipt", LONG, || {
        mails(&maildir).into_iter().find(|m| m.contains(&number))
    });
    assert!(
        gw.logs()
            .contains("Events were scheduled or claimed further ahead"),
        "said in the log: {}",
        gw.logs()
    );
}

#[test]
fn suspensions_reach_supervisors_as_one_digest() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let port = free_port();
    let _smtp = Smtp::start(port, &maildir);
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let extra = format!(
        "[mail]\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nsupervisors = [\"duty@example.gov.cn\"]\n\
         digest_every = \"2s\"\n"
    );
    let gw = Gateway::start(dir.path(), &sim.url, &extra);
    for (phone, reason) in [
        ("13700001111", "辱骂话务员"),
        ("13700002222", "反复恶意占线"),
    ] {
        let r = client()
            .put(format!(
                "{}/admin/v1/callers/phone:{phone}/suspension",
                gw.url
            ))
            .bearer_auth(ADMIN)
            .json(&json!({"duration": "24h", "reason": reason}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let digest = wait_until("the suspension digest", LONG, || {
        mails(&maildir)
            .into_iter()
            .find(|m| m.contains("暂停受理汇总"))
    });
    assert!(digest.contains("2人"), "{digest}");
    assert!(
        digest.contains("辱骂话务员") && digest.contains("反复恶意占线"),
        "{digest}"
    );
    assert!(
        !digest.contains("13700001111"),
        "identities are masked: {digest}"
    );
    assert_eq!(
        mails(&maildir).len(),
        1,
        "one digest, not one mail per suspension"
    );
}

/// The value of a counter in Prometheus text, 0 when it is not there yet.
fn counter(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_supervisor_refused_for_good_neither_repeats_nor_withholds_the_others_mail() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let port = free_port();
    // The supervisor who left is between two others: before the fix, the first was mailed
    // again on every retry and the last never.
    let _smtp = Smtp::refusing(port, &maildir, "left@example.gov.cn");
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let extra = format!(
        "[mail]\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"12345@example.gov.cn\"\n\
         supervisors = [\"first@example.gov.cn\", \"left@example.gov.cn\", \
         \"last@example.gov.cn\"]\ndigest_every = \"1s\"\n"
    );
    let gw = Gateway::start(dir.path(), &sim.url, &extra);

    gw.submit(json!({"content": "有人持刀抢劫，就在超市门口"}));
    let alerts_to = |who: &str| {
        mails(&maildir)
            .into_iter()
            .filter(|m| m.contains("紧急转接") && m.contains(&format!("To: {who}")))
            .count()
    };
    wait_until("the alert to both supervisors still here", LONG, || {
        (alerts_to("first@example.gov.cn") > 0 && alerts_to("last@example.gov.cn") > 0)
            .then_some(())
    });
    let refused = "hotline_mail_refused_total{topic=\"emergency/redirected\"}";
    wait_until("the refusal to be counted", LONG, || {
        (counter(&gw.metrics(), refused) == 1.0).then_some(())
    });

    // A later mail gets out only after the alert's round has ended; an alert still owed to
    // anyone would have been scheduled again and the refusal counted again.
    let (s, b) = gw.submit(json!({"content": "小区绿化带被占用", "email": "wang@example.cn"}));
    assert_eq!(s, 202, "{b}");
    let number = b["orders"][0]["number"].as_str().unwrap().to_string();
    wait_until("the receipt after the alert", LONG, || {
        mails(&maildir).into_iter().find(|m| m.contains(&number))
    });
    assert_eq!(
        alerts_to("first@example.gov.cn"),
        1,
        "exactly one alert each"
    );
    assert_eq!(
        alerts_to("last@example.gov.cn"),
        1,
        "exactly one alert each"
    );
    assert_eq!(alerts_to("left@example.gov.cn"), 0);
    let m = gw.metrics();
    assert_eq!(counter(&m, refused), 1.0, "refused once, not retried\n{m}");
    assert_eq!(counter(&m, "hotline_mail_failures_total"), 0.0, "{m}");

    // The suspension digest likewise.
    gw.suspend("phone:13700003333", "24h", "辱骂话务员");
    let digests_to = |who: &str| {
        mails(&maildir)
            .into_iter()
            .filter(|m| m.contains("暂停受理汇总") && m.contains(&format!("To: {who}")))
            .count()
    };
    wait_until("the digest to both supervisors still here", LONG, || {
        (digests_to("first@example.gov.cn") > 0 && digests_to("last@example.gov.cn") > 0)
            .then_some(())
    });
    let refused_digest = "hotline_mail_refused_total{topic=\"callers/suspended\"}";
    wait_until("the digest's refusal to be counted", LONG, || {
        (counter(&gw.metrics(), refused_digest) == 1.0).then_some(())
    });
    let (s, b) = gw.submit(json!({"content": "路面破损", "email": "zhao@example.cn"}));
    assert_eq!(s, 202, "{b}");
    let number = b["orders"][0]["number"].as_str().unwrap().to_string();
    wait_until("the receipt after the digest", LONG, || {
        mails(&maildir).into_iter().find(|m| m.contains(&number))
    });
    assert_eq!(
        digests_to("first@example.gov.cn"),
        1,
        "exactly one digest each"
    );
    assert_eq!(
        digests_to("last@example.gov.cn"),
        1,
        "exactly one digest each"
    );
    let m = gw.metrics();
    assert_eq!(counter(&m, refused_digest), 1.0, "{m}");
    assert_eq!(counter(&m, "hotline_mail_failures_total"), 0.0, "{m}");

    let logs = gw.logs();
    assert!(
        logs.contains("refused a recipient for good"),
        "the refusal is logged"
    );
    assert!(
        !logs.contains("left@example.gov.cn"),
        "the refused address is masked in logs"
    );
}

/// Two nodes mailing from one PostgreSQL event outbox through a slow SMTP server: a round of
/// alerts takes longer than the claim (`storage.lease`) a node took them with, and the other
/// node must not take the alerts still being mailed and mail them again. Each supervisor gets
/// each alert once.
#[test]
fn two_nodes_mail_each_alert_once_through_a_server_slower_than_the_lease() {
    use hotline_gateway::sinks::mail::{self, MailSettings};
    use hotline_gateway::store::postgres::PgStore;
    use hotline_gateway::store::{Sinks, Store};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let port = free_port();
    // 12 messages of 0.3 s each: 3.6 s of mail, against a lease of 1 s.
    let _smtp = Smtp::slow(port, &maildir, Duration::from_millis(300));
    let pg = common::services::postgres();
    let db = common::services::db_name_for(dir.path());
    pg.create_db(&db);
    let url = pg.url(&db);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let lease = Duration::from_secs(1);
    let open = |node: u8| -> Arc<dyn Store> {
        Arc::new(
            rt.block_on(PgStore::open(&url, node, Sinks::default(), lease, None))
                .unwrap(),
        )
    };
    let (one, two) = (open(1), open(2));
    let alerts = 6;
    pg.psql(
        &db,
        &format!(
            "INSERT INTO events(sink, topic, payload) SELECT 'mail', 'emergency/redirected', \
             json_build_object('number', '11' || g, 'reason', 'alert ' || g)::text \
             FROM generate_series(1, {alerts}) g"
        ),
    );
    let supervisors = ["first@example.gov.cn", "second@example.gov.cn"];
    let cfg = MailSettings {
        smtp_url: format!("smtp://127.0.0.1:{port}").as_str().into(),
        from: "12345@example.gov.cn".into(),
        supervisors: supervisors.iter().map(|s| s.to_string()).collect(),
        templates: None,
        alerts_per_minute: 1000,
        digest_every: Duration::from_secs(3600),
        tz: chrono_tz::Asia::Shanghai,
    };
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let senders: Vec<_> = [one, two]
        .into_iter()
        .map(|store| rt.spawn(mail::run(cfg.clone(), store, shutdown.clone())))
        .collect();
    wait_until("every alert settled", Duration::from_secs(60), || {
        (pg.psql(&db, "SELECT count(*) FROM events") == "0").then_some(())
    });
    stop.send(true).unwrap();
    for s in senders {
        rt.block_on(s).unwrap();
    }
    let got = mails(&maildir);
    for g in 1..=alerts {
        for to in supervisors {
            let copies = got
                .iter()
                .filter(|m| m.contains(&format!("To: {to}")) && m.contains(&format!("alert {g}\n")))
                .count();
            assert_eq!(copies, 1, "alert {g} to {to}, of {} mails", got.len());
        }
    }
    assert_eq!(got.len(), alerts * supervisors.len());
}

/// Dispatch turns every order down (a rotated secret: 401), and each dead letter is an alert.
/// That flood must not cost the supervisors an emergency alert (emergencies are never
/// rate-limited), and no dead letter may go unmentioned: those over the limit wait and go out
/// as a digest. Times in the mails are in `server.timezone` (Asia/Shanghai), not UTC.
#[test]
fn a_flood_of_dead_letters_neither_drops_emergency_alerts_nor_loses_a_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let port = free_port();
    let _smtp = Smtp::start(port, &maildir);
    let sim = Sim::start(
        free_port(),
        &dir.path().join("sim.jsonl"),
        &["--secret", "rotated-at-dispatch"],
    );
    let extra = format!(
        "[mail]\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"12345@example.gov.cn\"\n\
         supervisors = [\"duty@example.gov.cn\"]\nalerts_per_minute = 4\n"
    );
    let gw = Gateway::start(dir.path(), &sim.url, &extra);
    let dead: Vec<String> = (0..8)
        .map(|i| {
            let (s, b) = gw.submit(
                json!({"content": format!("第{i}件事：路灯不亮"), "phone": format!("1392222{i:04}")}),
            );
            assert_eq!(s, 202, "{b}");
            b["orders"][0]["number"].as_str().unwrap().to_string()
        })
        .collect();
    wait_until("every order a dead letter", LONG, || {
        (gw.admin_get("/admin/v1/outbox")["dead"] == 8).then_some(())
    });
    for (text, phone) in [
        ("救命，厨房着火了", "13933330001"),
        ("我爸突然晕倒了，没有呼吸", "13933330002"),
    ] {
        let (s, b) = gw.submit(json!({"content": text, "phone": phone}));
        assert_eq!(s, 200, "{b}");
    }
    for number in ["119", "120"] {
        wait_until(&format!("the {number} alert"), LONG, || {
            mails(&maildir)
                .into_iter()
                .find(|m| m.contains("紧急转接") && m.contains(number))
        });
    }
    // Every dead letter is named, alone or in a digest, once the limit allows.
    let named = wait_until("every dead letter mailed", Duration::from_secs(90), || {
        let all: String = mails(&maildir)
            .into_iter()
            .filter(|m| m.contains("派单失败"))
            .collect();
        dead.iter().all(|n| all.contains(n)).then_some(all)
    });
    assert!(named.contains("HTTP 401"), "{named}");
    let dead_mails = mails(&maildir)
        .iter()
        .filter(|m| m.contains("派单失败"))
        .count();
    assert!(dead_mails <= 4, "within the limit: {dead_mails} mails");
    let m = gw.metrics();
    assert!(
        !m.contains("hotline_mail_deferred_total{topic=\"emergency/"),
        "{m}"
    );
    for mail in mails(&maildir) {
        assert!(!mail.contains("+00:00"), "times in server.timezone: {mail}");
        if mail.contains("紧急转接") {
            assert!(mail.contains("时间：20") && mail.contains('年'), "{mail}");
        }
    }
}

/// How many mails in the Maildir went to `to` and to anyone else, read from the raw files'
/// headers (cheap enough to poll while a slow server takes one message at a time).
fn mails_to(maildir: &Path, to: &str) -> (usize, usize) {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return (0, 0);
    };
    let header = format!("To: {to}");
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .fold((0, 0), |(them, others), m| {
            if m.lines().any(|l| l == header) {
                (them + 1, others)
            } else {
                (them, others + 1)
            }
        })
}

/// An emergency alert goes before a backlog of receipts: it waits at most for the message
/// being sent (until 2026-12-07 it waited for every receipt taken in the round before it: a
/// redirect's alert arrived 40 s late behind 117 receipts through a slow server).
#[test]
fn an_emergency_alert_overtakes_a_backlog_of_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let port = free_port();
    let _smtp = Smtp::slow(port, &maildir, Duration::from_millis(200));
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let extra = format!(
        "[mail]\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"12345@example.gov.cn\"\n\
         supervisors = [\"duty@example.gov.cn\"]\n[nuisance]\nquota = 100000\n"
    );
    let gw = Gateway::start(dir.path(), &sim.url, &extra);
    std::thread::scope(|s| {
        for t in 0..4 {
            let gw = &gw;
            s.spawn(move || {
                for i in 0..20 {
                    let (st, b) = gw.submit(json!({
                        "content": format!("第{t}-{i}件：小区路灯不亮"),
                        "phone": format!("1390000{t}{i:03}"),
                        "email": format!("citizen{t}x{i}@example.cn"),
                    }));
                    assert_eq!(st, 202, "{b}");
                }
            });
        }
    });
    // The receipts are being mailed, one at a time.
    wait_until("the first receipts", LONG, || {
        (mails_to(&maildir, "duty@example.gov.cn").1 >= 2).then_some(())
    });
    let (s, b) = gw.submit(json!({"content": "救命，厨房着火了，火很大"}));
    assert_eq!((s, b["status"].as_str()), (200, Some("redirected")), "{b}");
    let before = mails_to(&maildir, "duty@example.gov.cn").1;
    let after = wait_until("the 119 alert", LONG, || {
        let (duty, receipts) = mails_to(&maildir, "duty@example.gov.cn");
        (duty >= 1).then_some(receipts)
    });
    assert!(
        after - before <= 3,
        "receipts mailed ahead of the alert: {} (of 80)",
        after - before
    );
}
