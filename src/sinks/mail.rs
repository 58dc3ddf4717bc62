//! Mail (lettre): receipts to submitters who gave an address, alerts to supervisors (emergency
//! redirects, suspensions, dead letters, dispatch outages), from the durable event outbox.
//!
//! Each recipient gets a message of its own, and an event remembers which recipients are done
//! with, so a retry goes only to the others. A mail the SMTP server does not take now is
//! retried with backoff, up to [`MAX_ATTEMPTS`] attempts (about a day) before it is given up
//! (logged, counted in `hotline_mail_abandoned_total`). A recipient the server refuses for good
//! (550, 551, 553: no such mailbox, someone who left) is done with: logged masked, counted in
//! `hotline_mail_refused_total`, never retried, and it holds up no one else.
//! `hotline_mail_sent_total` counts messages the server took. SMTP being down never slows
//! intake because nothing on the request path waits for it.
//!
//! Emergency alerts (`emergency/*`) are never limited and go first: asked for on their own
//! before each round and between its messages, so one waits at most for the message being
//! sent, whatever backlog of receipts is ahead of it: a supervisor must hear of a redirect or a
//! suspected emergency at once. The other alerts (dead letters, dispatch breaker) share `alerts_per_minute` (once per
//! alert, not again on its retries) so an outage cannot become a mail storm; one over the limit
//! is deferred, not dropped (counted in `hotline_mail_deferred_total`), and goes out once the
//! limit allows. Dead letters due together go out as one digest (a rotated dispatch secret
//! turns every order into one), so a flood of them costs one mail a round, and each is still
//! named. Receipts are not limited.
//! Suspensions are not urgent: they are collected and sent as one digest every `digest_every`.
//! Times (`{at}`, `{until}`) are shown in `server.timezone`, as people read them.
//!
//! Templates: compiled-in Chinese defaults; a file `<topic with / as _>.txt` in `[mail] templates`
//! overrides one (first line = subject, the rest = body). Variables are the event's fields in
//! braces: `{number}`, `{category}`, `{channel}`, `{identity}` (masked), `{reason}`, `{until}`,
//! `{rule}`, `{error}`, `{open}`, `{at}`.

use crate::store::{EventRow, Store, Topics};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Mail settings (from `[mail]`).
/// `Debug` shows the SMTP URL without its credentials.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `smtp://host:port`, `smtp://user:pass@host:port?tls=required`, `smtps://...`.
    pub smtp_url: crate::config::UrlText,
    /// Sender.
    pub from: String,
    /// Alert recipients.
    pub supervisors: Vec<String>,
    /// Folder with template overrides.
    pub templates: Option<PathBuf>,
    /// Most alerts per minute.
    pub alerts_per_minute: u32,
    /// Suspension alerts are collected and sent as one digest this often.
    pub digest_every: Duration,
    /// `server.timezone`: the zone times are shown in.
    pub tz: chrono_tz::Tz,
}

/// Attempts at an event's mail before it is given up. With the backoff (1 s doubling to 512 s)
/// that is about a day of SMTP trouble.
pub const MAX_ATTEMPTS: u32 = 170;

/// The payload key under which a mail event keeps the recipients that are done with (took it,
/// or refused it for good), so that a retry sends only to the others.
const DONE: &str = "mail_done";

/// The recipients an event's payload says are done with.
fn done_of(vars: &serde_json::Value) -> BTreeSet<String> {
    vars[DONE]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The compiled-in templates: (topic, subject, body).
const TEMPLATES: &[(&str, &str, &str)] = &[
    (
        "orders/accepted",
        "您的诉求已受理（工单号 {number}）",
        "您好：\n\n您于{at}提交的诉求已受理，工单号：{number}。\n可凭工单号在12345网站、微信公众号或拨打12345查询办理进度。\n\n12345政务服务便民热线",
    ),
    (
        "emergency/redirected",
        "【紧急转接】{number}：{reason}",
        "时间：{at}\n渠道：{channel}\n来访人：{identity}\n转接号码：{number}\n原因：{reason}\n规则：{rule}\n\n请值班长关注后续处置。",
    ),
    (
        "emergency/suspected",
        "【疑似紧急】工单{order}可能需要{number}",
        "时间：{at}\n渠道：{channel}\n来访人：{identity}\n工单号：{order}\n疑似需要：{number}（{assessed}）\n\n{situation}\n请值班长立即查看该工单，必要时回拨来访人或联系{number}。",
    ),
    (
        "callers/suspended",
        "【暂停受理】{identity}",
        "来访人：{identity}\n暂停至：{until}\n原因：{reason}\n决定方：{decided_by}\n时间：{at}",
    ),
    (
        "orders/dead",
        "【派单失败】{what}",
        "{what}被派单接口拒收，已转入死信队列，请核查后通过管理接口重新投递（死信键：{key}）。\n原因：{error}\n时间：{at}",
    ),
    (
        "dispatch/breaker",
        "【派单接口状态】熔断={open}",
        "派单接口熔断状态变为：{open}（true 为故障、暂停投递；false 为已恢复）。\n时间：{at}\n工单在本地持久队列中等待，不会丢失。",
    ),
];

/// Fills `{key}` placeholders from a JSON object; values lose control characters so a value
/// can never start a new header line.
pub fn fill(template: &str, vars: &serde_json::Value) -> String {
    let mut out = template.to_string();
    if let Some(obj) = vars.as_object() {
        for (k, v) in obj {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let clean: String = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            out = out.replace(&format!("{{{k}}}"), &clean);
        }
    }
    out
}

/// The event's fields as a person reads them: its times (`at`, `until`, RFC 3339 in UTC for
/// machines) in `server.timezone`, to the minute; for a suspected emergency, what was found
/// and what the person was told (`{assessed}`, `{situation}`).
fn for_people(cfg: &MailSettings, vars: &serde_json::Value) -> serde_json::Value {
    let mut vars = vars.clone();
    if let Some(obj) = vars.as_object_mut() {
        for key in ["at", "until"] {
            if let Some(serde_json::Value::String(t)) = obj.get_mut(key) {
                *t = crate::messages::local(t, cfg.tz);
            }
        }
        let (assessed, situation) = suspicion_words(obj);
        obj.insert("assessed".into(), assessed.into());
        obj.insert("situation".into(), situation.into());
        // A dead letter: an order, or a contact about one (its `key` is what a replay takes;
        // events queued before 2026-12-07 have none, and their number is the key).
        let number = obj
            .get("number")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let what = match obj.get("kind").and_then(|v| v.as_str()) {
            Some("contact") => format!("工单{number}的后续反映"),
            _ => format!("工单{number}"),
        };
        obj.insert("what".into(), what.into());
        obj.entry("key").or_insert(number.into());
    }
    vars
}

/// How an `emergency/suspected` event came about, in words: the second opinion suspected what
/// the rules did not find (the person was told to dial if in danger); it doubted the rules'
/// redirect (told the same); or the rules were sure of a matter an agent registered or a
/// voicemail's words, where nobody on the line was told anything (until 2026-12-07 every such
/// mail said the rules had found nothing and the person had been told).
fn suspicion_words(e: &serde_json::Map<String, serde_json::Value>) -> (String, String) {
    let number = e.get("number").and_then(|v| v.as_str()).unwrap_or("110");
    let rule = e.get("rule").and_then(|v| v.as_str()).unwrap_or("");
    let assessed = match e.get("score").and_then(|v| v.as_f64()) {
        Some(score) => format!("模型评分 {score}"),
        None => "模型未评分".into(),
    };
    let sure = e.get("sure").and_then(|v| v.as_bool()).unwrap_or(false);
    let situation = match e.get("by").and_then(|v| v.as_str()) {
        Some("rules") if sure => format!(
            "规则判定为紧急情况（{rule}）。事项由话务员登记或来自电话留言，来电人未被转接，也未被告知拨打{number}（可能已挂机）；工单已受理并标记为紧急复核。"
        ),
        Some("rules") => format!(
            "规则判定为紧急情况（{rule}），但模型认为可能性很低，未转接；工单已受理并标记为紧急复核，来访人已被告知如危险正在发生请拨打{number}。"
        ),
        _ => format!(
            "规则未判定为紧急情况，工单已受理并标记为紧急复核；来访人已被告知如危险正在发生请拨打{number}。"
        ),
    };
    (assessed, situation)
}

fn template(cfg: &MailSettings, topic: &str) -> Option<(String, String)> {
    if let Some(dir) = &cfg.templates {
        let file = dir.join(format!("{}.txt", topic.replace('/', "_")));
        if let Ok(text) = std::fs::read_to_string(file) {
            let (subject, body) = text.split_once('\n').unwrap_or((text.as_str(), ""));
            return Some((subject.trim().to_string(), body.trim_start().to_string()));
        }
    }
    TEMPLATES
        .iter()
        .find(|(t, _, _)| *t == topic)
        .map(|(_, s, b)| (s.to_string(), b.to_string()))
}

/// Builds the messages one event still owes, each with its recipient: a receipt to the
/// submitter, or an alert to each supervisor not yet done with. Bad addresses are skipped
/// (logged masked), never retried.
pub fn messages(cfg: &MailSettings, row: &EventRow) -> Vec<(String, Message)> {
    let Ok(vars) = serde_json::from_str::<serde_json::Value>(&row.payload) else {
        return Vec::new();
    };
    let Some((subject, body)) = template(cfg, &row.topic) else {
        return Vec::new();
    };
    let Ok(from) = cfg.from.parse::<Mailbox>() else {
        tracing::error!("mail.from is not an address; mail cannot be sent.");
        return Vec::new();
    };
    let shown = for_people(cfg, &vars);
    let subject = fill(&subject, &shown);
    let body = fill(&body, &shown);
    let recipients: Vec<String> = if row.topic == "orders/accepted" {
        vars["to"]
            .as_str()
            .map(|s| vec![s.to_string()])
            .unwrap_or_default()
    } else {
        cfg.supervisors.clone()
    };
    let done = done_of(&vars);
    recipients
        .iter()
        .filter(|to| !done.contains(*to))
        .filter_map(|to| {
            let Ok(mailbox) = to.parse::<Mailbox>() else {
                tracing::warn!(to = %hotline_adapters::mask::mask_email(to), "Not a mail address; skipped.");
                return None;
            };
            Message::builder()
                .from(from.clone())
                .to(mailbox)
                .subject(subject.clone())
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(body.clone())
                .ok()
                .map(|m| (to.clone(), m))
        })
        .collect()
}

/// The subject of a digest of `n` events of `topic`.
fn digest_subject(topic: &str, n: usize) -> String {
    match topic {
        "orders/dead" => format!("【派单失败汇总】{n}张工单转入死信队列"),
        _ => format!("【暂停受理汇总】{n}人"),
    }
}

/// One digest mail to each supervisor listing the events of `topic` (suspensions, dead letters)
/// in `rows` it is still owed, each with its recipient and the ids of the rows it lists.
pub fn digest(
    cfg: &MailSettings,
    topic: &str,
    rows: &[EventRow],
) -> Vec<(String, Message, Vec<i64>)> {
    let Some((_, body)) = template(cfg, topic) else {
        return Vec::new();
    };
    let Ok(from) = cfg.from.parse::<Mailbox>() else {
        return Vec::new();
    };
    let parsed: Vec<(i64, serde_json::Value)> = rows
        .iter()
        .filter_map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.payload)
                .ok()
                .map(|v| (r.id, v))
        })
        .collect();
    cfg.supervisors
        .iter()
        .filter_map(|to| {
            let mailbox = to.parse::<Mailbox>().ok()?;
            let owed: Vec<&(i64, serde_json::Value)> = parsed
                .iter()
                .filter(|(_, v)| !done_of(v).contains(to))
                .collect();
            if owed.is_empty() {
                return None;
            }
            let parts: Vec<String> = owed
                .iter()
                .map(|(_, v)| fill(&body, &for_people(cfg, v)))
                .collect();
            let subject = digest_subject(topic, parts.len());
            let m = Message::builder()
                .from(from.clone())
                .to(mailbox)
                .subject(subject)
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(parts.join("\n\n---\n\n"))
                .ok()?;
            Some((to.clone(), m, owed.iter().map(|(id, _)| *id).collect()))
        })
        .collect()
}

/// What became of one message.
enum Sent {
    /// The server took it.
    Delivered,
    /// The server refused the recipient for good; retrying cannot help.
    Refused(String),
    /// It may go through later. `answered` is false when the server did not answer at all
    /// (connection, TLS, time-out): then the event's other recipients wait too, rather than
    /// each waiting out its own time-out.
    Failed { error: String, answered: bool },
}

/// The longest one message may take, connecting included. lettre's own time-out covers only
/// the connection: a server that accepts it and then answers slowly, or never (a half-open
/// connection), held the sender as long, and outlived any claim on the events it was mailing.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long each renewal of a round's claim lasts at least (see [`Claim`]): a message's
/// time-out, and room for the renewal's own round trip and for settling the event after it.
const HOLD: Duration = Duration::from_secs(40);

/// Sends one message and sorts the outcome.
async fn send(transport: &AsyncSmtpTransport<Tokio1Executor>, m: Message) -> Sent {
    let Ok(sent) = tokio::time::timeout(SEND_TIMEOUT, transport.send(m)).await else {
        return Sent::Failed {
            error: format!(
                "SMTP did not finish a message in {}s",
                SEND_TIMEOUT.as_secs()
            ),
            answered: false,
        };
    };
    match sent {
        Ok(_) => Sent::Delivered,
        Err(e) => {
            // Servers often quote the address they refuse.
            let error = hotline_adapters::mask::scrub_text(&e.to_string());
            let code = e.status().map(u16::from);
            // 550/551/553 say the mailbox is not there (or not here, or not a valid name); other
            // 5xx (530/535 authentication, 552/554 the message or the transaction) are about
            // our setup or the whole message, which an operator can fix: those keep being
            // retried, up to the cap.
            if e.is_permanent() && matches!(code, Some(550 | 551 | 553)) {
                Sent::Refused(error)
            } else {
                Sent::Failed {
                    error,
                    answered: code.is_some(),
                }
            }
        }
    }
}

/// Counts and logs one message's outcome (once per message, however many events a digest
/// carries).
fn report(to: &str, topic: &str, sent: &Sent) {
    match sent {
        Sent::Delivered => {
            metrics::counter!("hotline_mail_sent_total", "topic" => topic.to_string()).increment(1);
        }
        Sent::Refused(error) => {
            metrics::counter!("hotline_mail_refused_total", "topic" => topic.to_string())
                .increment(1);
            tracing::warn!(
                to = %hotline_adapters::mask::mask_email(to),
                %error,
                topic,
                "SMTP refused a recipient for good; not retried."
            );
        }
        Sent::Failed { .. } => {}
    }
}

/// One event in a round: who is done with, and the last error if anyone is still owed it.
struct Progress {
    row: EventRow,
    vars: serde_json::Value,
    done: BTreeSet<String>,
    owed: Option<String>,
}

impl Progress {
    fn new(row: EventRow) -> Progress {
        let vars = serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null);
        let done = done_of(&vars);
        Progress {
            row,
            vars,
            done,
            owed: None,
        }
    }

    /// Takes one recipient's outcome; `false` when the server did not answer, so the rest of
    /// this event's recipients should wait for the next round.
    fn note(&mut self, to: &str, sent: &Sent) -> bool {
        match sent {
            Sent::Delivered | Sent::Refused(_) => {
                self.done.insert(to.to_string());
                true
            }
            Sent::Failed { error, answered } => {
                self.owed = Some(error.clone());
                *answered
            }
        }
    }

    /// Ends the round for this event: removed when no one is owed it any more, given up after
    /// [`MAX_ATTEMPTS`], else tried again after a backoff, remembering who is done with.
    async fn settle(mut self, store: &dyn Store, now_ms: i64) {
        let topic = self.row.topic.as_str();
        let Some(error) = self.owed else {
            let _ = store.ack_events(vec![self.row.id]).await;
            return;
        };
        metrics::counter!("hotline_mail_failures_total").increment(1);
        let Some(delay) = retry_delay(self.row.attempts) else {
            metrics::counter!("hotline_mail_abandoned_total", "topic" => topic.to_string())
                .increment(1);
            tracing::error!(%error, topic, attempts = MAX_ATTEMPTS, "Mail given up.");
            let _ = store.ack_events(vec![self.row.id]).await;
            return;
        };
        tracing::warn!(%error, topic, "SMTP did not take a mail; will retry.");
        let next = now_ms + delay;
        let payload = match self.vars.as_object_mut() {
            Some(obj) if !self.done.is_empty() => {
                obj.insert(DONE.into(), serde_json::json!(self.done));
                Some(self.vars.to_string())
            }
            _ => None,
        };
        let _ = store.retry_event(self.row.id, next, payload).await;
    }
}

/// This node's claim on the events of one round. Where nodes share the event outbox
/// (PostgreSQL), a node takes events for `storage.lease`, and another node takes any whose
/// claim has run out. A round mails one message after another, and a slow SMTP server makes it
/// outlast the lease (a round of 20 alerts to three supervisors at 2 s a message takes two
/// minutes): the other node then took the alerts not yet settled and mailed them again. So
/// before each message, and before an event is settled, the claim on every event still in the
/// round is renewed for [`HOLD`], longer than a message may take ([`SEND_TIMEOUT`]); an event
/// another node took meanwhile is left to it, neither mailed nor settled here.
struct Claim {
    /// Each event still in the round, with its lease.
    leases: HashMap<i64, i64>,
}

impl Claim {
    fn new(rows: &[EventRow]) -> Claim {
        Claim {
            leases: rows.iter().map(|r| (r.id, r.lease)).collect(),
        }
    }

    /// Renews the claim on the events still in the round; those another node took since drop
    /// out. A store that cannot be reached renews none: all drop out, and are taken again once
    /// their claim runs out.
    async fn hold(&mut self, store: &dyn Store) {
        if self.leases.is_empty() {
            return;
        }
        let held: Vec<(i64, i64)> = self.leases.iter().map(|(id, l)| (*id, *l)).collect();
        match store.hold_events(held, HOLD).await {
            Ok((lease, ids)) => {
                if ids.len() < self.leases.len() {
                    tracing::warn!(
                        taken = self.leases.len() - ids.len(),
                        "Mail events were taken by another node while this one was mailing; left to it."
                    );
                }
                self.leases = ids.into_iter().map(|id| (id, lease)).collect();
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot renew the claim on mail events; leaving them.");
                self.leases.clear();
            }
        }
    }

    /// Renews the claim, then says whether the event `id` is still this node's to act on.
    async fn keeps(&mut self, store: &dyn Store, id: i64) -> bool {
        self.hold(store).await;
        self.leases.contains_key(&id)
    }

    /// Takes a settled event out of the round.
    fn settled(&mut self, id: i64) {
        self.leases.remove(&id);
    }
}

/// How long to wait (ms) before the next attempt at an event that failed `attempts` times
/// before this one: 2^attempts seconds, capped at 2^9 (8.5 minutes). `None`: this was the last.
fn retry_delay(attempts: u32) -> Option<i64> {
    (attempts.saturating_add(1) < MAX_ATTEMPTS).then(|| 1000i64 << attempts.min(9))
}

/// The longest [`retry_delay`].
const MAX_RETRY_DELAY_MS: i64 = 1000 << 9;

/// Events taken per round. Dead letters due together make one digest, so a larger round
/// makes fewer mails in a flood of them.
const ROUND: usize = 100;

/// Whether an alert is about an emergency: never rate-limited, mailed first.
fn is_emergency(topic: &str) -> bool {
    topic.starts_with("emergency/")
}

/// Mails the emergency alerts due now, before anything else: at the start of each round and
/// between the round's other mails, so that one waits at most for the message being sent,
/// never for a backlog of receipts or digests ahead of it (their own query finds them through
/// a partial index, whatever the backlog).
async fn mail_urgent(
    cfg: &MailSettings,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    store: &dyn Store,
    limit: &Limit,
) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let rows = store
        .due_events("mail", Topics::Emergency, now_ms, ROUND)
        .await
        .unwrap_or_default();
    let mut claim = Claim::new(&rows);
    for row in rows {
        mail_one(cfg, transport, store, &mut claim, limit, row, now_ms).await;
    }
}

/// The rate limit on non-emergency alerts, and how long an alert over it waits.
struct Limit {
    alerts: DefaultDirectRateLimiter,
    /// One token's worth of time: an alert deferred this long finds the limit has room.
    defer_ms: i64,
}

impl Limit {
    /// Whether a new alert may go now; `false` counts it as deferred.
    fn admits(&self, topic: &str) -> bool {
        if self.alerts.check().is_ok() {
            return true;
        }
        metrics::counter!("hotline_mail_deferred_total", "topic" => topic.to_string()).increment(1);
        tracing::warn!(
            topic,
            "Alert mail over the rate limit; deferred, sent once the limit allows."
        );
        false
    }
}

/// The SMTP transport `mail.smtp_url` names, read as the mail sender reads it: `check-config`
/// asks the same (see `Config::check`), so that a URL the sender cannot use, with which mail is
/// off (supervisors' emergency alerts included), is reported before the restart. Until
/// 2026-12-07 `check-config` said ok for `…:99999` or `?tls=<junk>`.
pub fn smtp_transport(
    url: &str,
) -> Result<lettre::transport::smtp::AsyncSmtpTransportBuilder, lettre::transport::smtp::Error> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
}

/// Whether `mail.smtp_url` sends credentials that may cross the network in clear: a
/// password with neither `smtps://` (TLS from the start) nor `?tls=required` (STARTTLS or
/// nothing). lettre logs in with AUTH PLAIN (the password, base64) on a plain `smtp://`, and on
/// `?tls=opportunistic` too when the server (or someone in between) offers no STARTTLS.
pub fn sends_credentials_in_clear(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    // lettre logs in only when the URL has a password (a user alone sends nothing).
    let credentials = u.password().is_some();
    let tls = u.scheme() == "smtps" || u.query_pairs().any(|(k, v)| k == "tls" && v == "required");
    credentials && !tls
}

/// Runs the mail sender until shutdown.
pub async fn run(cfg: MailSettings, store: Arc<dyn Store>, mut shutdown: watch::Receiver<bool>) {
    let transport = match smtp_transport(&cfg.smtp_url) {
        Ok(b) => b.timeout(Some(Duration::from_secs(10))).build(),
        Err(e) => {
            tracing::error!(error = %e, "mail.smtp_url is not usable; mail is off.");
            return;
        }
    };
    let per_minute = NonZeroU32::new(cfg.alerts_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    let limit = Limit {
        alerts: RateLimiter::direct(Quota::per_minute(per_minute)),
        defer_ms: (60_000 / i64::from(per_minute.get())).max(1),
    };
    let digest_ms = cfg.digest_every.as_millis().max(1) as i64;
    let mut next_digest_ms = chrono::Utc::now().timestamp_millis() + digest_ms;
    // When to look for events put off or claimed by a clock ahead of this one.
    let mut clock = crate::store::ClockWatch::new();
    // The furthest this sender puts an event off: a retry's backoff cap, an alert over the
    // limit (at most a minute), a suspension waiting for its digest.
    let furthest = Duration::from_millis(MAX_RETRY_DELAY_MS as u64)
        .max(Duration::from_secs(60))
        .max(cfg.digest_every);
    loop {
        if *shutdown.borrow() {
            return;
        }
        super::reschedule_future(store.as_ref(), &mut clock, "mail", furthest, HOLD).await;
        mail_urgent(&cfg, &transport, store.as_ref(), &limit).await;
        let now_ms = chrono::Utc::now().timestamp_millis();
        // The next digest was timed on the clock as it was: after a step back it would hold
        // the suspensions for as long as the step.
        next_digest_ms = next_digest_ms.min(now_ms.saturating_add(digest_ms));
        let rows = store
            .due_events("mail", Topics::All, now_ms, ROUND)
            .await
            .unwrap_or_default();
        if rows.is_empty() {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
            continue;
        }
        let mut claim = Claim::new(&rows);
        // Emergencies first: nothing else in the round may hold them up.
        let (urgent, rows): (Vec<EventRow>, Vec<EventRow>) =
            rows.into_iter().partition(|r| is_emergency(&r.topic));
        for row in urgent {
            mail_one(
                &cfg,
                &transport,
                store.as_ref(),
                &mut claim,
                &limit,
                row,
                now_ms,
            )
            .await;
        }
        // Suspensions wait for the next digest; when it is due they go out as one mail.
        let (suspensions, rows): (Vec<EventRow>, Vec<EventRow>) = rows
            .into_iter()
            .partition(|r| r.topic == "callers/suspended");
        if !suspensions.is_empty() {
            if now_ms < next_digest_ms {
                // Just taken: still this node's without a renewal.
                for r in &suspensions {
                    let _ = store.defer_event(r.id, next_digest_ms).await;
                    claim.settled(r.id);
                }
            } else if send_digests(
                &cfg,
                &transport,
                store.as_ref(),
                &mut claim,
                "callers/suspended",
                suspensions,
                now_ms,
            )
            .await
            {
                next_digest_ms = now_ms + digest_ms;
            }
        }
        // Dead letters due together go as one digest, under one pass of the limit.
        let (dead, mut rows): (Vec<EventRow>, Vec<EventRow>) =
            rows.into_iter().partition(|r| r.topic == "orders/dead");
        // One dead letter alone is mailed like any other alert, below.
        if dead.len() == 1 {
            rows.extend(dead);
        } else if !dead.is_empty() {
            mail_urgent(&cfg, &transport, store.as_ref(), &limit).await;
            // A digest only for recipients still owed some of them passed the limit before.
            let fresh = dead
                .iter()
                .any(|r| serde_json::from_str(&r.payload).is_ok_and(|v| done_of(&v).is_empty()));
            if fresh && !limit.admits("orders/dead") {
                claim.hold(store.as_ref()).await;
                for r in &dead {
                    if claim.leases.contains_key(&r.id) {
                        let _ = store.defer_event(r.id, now_ms + limit.defer_ms).await;
                        claim.settled(r.id);
                    }
                }
            } else {
                send_digests(
                    &cfg,
                    &transport,
                    store.as_ref(),
                    &mut claim,
                    "orders/dead",
                    dead,
                    now_ms,
                )
                .await;
            }
        }
        for row in rows {
            mail_urgent(&cfg, &transport, store.as_ref(), &limit).await;
            mail_one(
                &cfg,
                &transport,
                store.as_ref(),
                &mut claim,
                &limit,
                row,
                now_ms,
            )
            .await;
        }
    }
}

/// Mails one event to its recipients still owed it and settles it. An alert other than an
/// emergency passes the limit once (a retry for the recipients still owed it is the same
/// alert); over it, it is deferred.
async fn mail_one(
    cfg: &MailSettings,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    store: &dyn Store,
    claim: &mut Claim,
    limit: &Limit,
    row: EventRow,
    now_ms: i64,
) {
    if !claim.keeps(store, row.id).await {
        return;
    }
    let mut p = Progress::new(row);
    let limited = p.row.topic != "orders/accepted" && !is_emergency(&p.row.topic);
    if limited && p.done.is_empty() && !limit.admits(&p.row.topic) {
        let _ = store.defer_event(p.row.id, now_ms + limit.defer_ms).await;
        claim.settled(p.row.id);
        return;
    }
    let mut ours = true;
    for (i, (to, m)) in messages(cfg, &p.row).into_iter().enumerate() {
        // The first message goes under the renewal above.
        if i > 0 && !claim.keeps(store, p.row.id).await {
            ours = false;
            break;
        }
        let sent = send(transport, m).await;
        report(&to, &p.row.topic, &sent);
        if !p.note(&to, &sent) {
            break;
        }
    }
    if ours && claim.keeps(store, p.row.id).await {
        claim.settled(p.row.id);
        p.settle(store, now_ms).await;
    }
}

/// Mails the events of `topic` in a round (suspensions, dead letters) as one digest to each
/// supervisor, renewing the claim on them before each. Whether every supervisor got every one
/// of them.
async fn send_digests(
    cfg: &MailSettings,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    store: &dyn Store,
    claim: &mut Claim,
    topic: &str,
    suspensions: Vec<EventRow>,
    now_ms: i64,
) -> bool {
    let mut progress: HashMap<i64, Progress> = suspensions
        .iter()
        .map(|r| (r.id, Progress::new(r.clone())))
        .collect();
    let mut queue: std::collections::VecDeque<_> = digest(cfg, topic, &suspensions).into();
    while let Some((to, m, ids)) = queue.pop_front() {
        claim.hold(store).await;
        let before = progress.len();
        progress.retain(|id, _| claim.leases.contains_key(id));
        if progress.len() < before {
            // Another node took some of them: it mails those. The digests still to send
            // list the rest.
            let mut held: Vec<EventRow> = progress.values().map(|p| p.row.clone()).collect();
            held.sort_by_key(|r| r.id);
            let left: BTreeSet<String> = queue.iter().map(|d| d.0.clone()).chain([to]).collect();
            queue = digest(cfg, topic, &held)
                .into_iter()
                .filter(|d| left.contains(&d.0))
                .collect();
            continue;
        }
        let sent = send(transport, m).await;
        report(&to, topic, &sent);
        let mut answered = true;
        for id in ids {
            if let Some(p) = progress.get_mut(&id) {
                answered = p.note(&to, &sent);
            }
        }
        if !answered {
            break;
        }
    }
    claim.hold(store).await;
    progress.retain(|id, _| claim.leases.contains_key(id));
    let all_done = progress.values().all(|p| p.owed.is_none());
    for (id, p) in progress {
        claim.settled(id);
        p.settle(store, now_ms).await;
    }
    all_done
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Credentials cross in clear unless the URL asks for TLS from the start or required
    /// STARTTLS (lettre's URL forms); opportunistic STARTTLS can be stripped.
    #[test]
    fn credentials_without_required_tls_are_said() {
        for clear in [
            "smtp://user:pass@mail.example:25",
            "smtp://user:pass@mail.example:587?tls=opportunistic",
        ] {
            assert!(sends_credentials_in_clear(clear), "{clear}");
        }
        for safe in [
            "smtps://user:pass@mail.example:465",
            "smtp://user:pass@mail.example:587?tls=required",
            "smtp://mail.example:25",
            // A user without a password: lettre sends no credentials.
            "smtp://user@mail.example:25",
            "",
            "not a url",
        ] {
            assert!(!sends_credentials_in_clear(safe), "{safe}");
        }
    }

    /// The alert says what happened: the rules sure of an agent's or a voicemail's matter
    /// (nobody on the line told), the model doubting the rules, or the model suspecting what
    /// the rules did not find; a missing score is said so, not `null` (until 2026-12-07 every
    /// such mail said the rules found nothing and the person had been told).
    #[test]
    fn a_suspected_emergency_is_told_as_it_came_about() {
        let words = |v: serde_json::Value| suspicion_words(v.as_object().unwrap());
        let (assessed, sure) = words(serde_json::json!(
            {"by": "rules", "sure": true, "rule": "fire", "number": "119", "score": null}));
        assert_eq!(assessed, "模型未评分");
        assert!(
            sure.starts_with("规则判定为紧急情况（fire）") && sure.contains("未被告知"),
            "{sure}"
        );
        let (assessed, doubted) = words(serde_json::json!(
            {"by": "rules", "sure": false, "rule": "fire", "number": "119", "score": -1.5}));
        assert_eq!(assessed, "模型评分 -1.5");
        assert!(
            doubted.contains("可能性很低") && doubted.contains("已被告知"),
            "{doubted}"
        );
        let (_, suspected) = words(serde_json::json!(
            {"by": "second_opinion", "number": "120", "score": 2.1}));
        assert!(suspected.starts_with("规则未判定"), "{suspected}");
    }

    #[test]
    fn placeholders_fill_and_control_characters_cannot_inject_headers() {
        let vars =
            serde_json::json!({"number": "2026112901000001", "reason": "a\r\nBcc: x@evil.cn"});
        assert_eq!(fill("工单{number}", &vars), "工单2026112901000001");
        assert!(!fill("{reason}", &vars).contains('\n'));
        let cfg = MailSettings {
            smtp_url: "smtp://mailer:sm7p-pa55@mail.example:587".into(),
            from: "12345@example.gov.cn".into(),
            supervisors: vec!["boss@example.gov.cn".into(), "not an address".into()],
            templates: None,
            alerts_per_minute: 30,
            digest_every: Duration::from_secs(3600),
            tz: chrono_tz::Asia::Shanghai,
        };
        let row = EventRow {
            id: 1,
            topic: "callers/suspended".into(),
            payload: vars.to_string(),
            attempts: 0,
            lease: 0,
        };
        let msgs = messages(&cfg, &row);
        assert_eq!(msgs.len(), 1, "the bad address is skipped");
        let raw = String::from_utf8(msgs[0].1.formatted()).unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        let shown = format!("{cfg:?}");
        assert!(
            shown.contains("mail.example") && !shown.contains("sm7p-pa55"),
            "{shown}"
        );
    }

    #[test]
    fn recipients_done_with_are_not_sent_the_mail_again() {
        let cfg = MailSettings {
            smtp_url: "smtp://127.0.0.1:25".into(),
            from: "12345@example.gov.cn".into(),
            supervisors: vec!["first@example.gov.cn".into(), "last@example.gov.cn".into()],
            templates: None,
            alerts_per_minute: 30,
            digest_every: Duration::from_secs(3600),
            tz: chrono_tz::Asia::Shanghai,
        };
        let row = |id, done: &[&str]| EventRow {
            id,
            topic: "callers/suspended".into(),
            payload: serde_json::json!({"identity": "138****0000", DONE: done}).to_string(),
            attempts: 0,
            lease: 0,
        };
        let to: Vec<String> = messages(&cfg, &row(1, &["first@example.gov.cn"]))
            .into_iter()
            .map(|(to, _)| to)
            .collect();
        assert_eq!(to, ["last@example.gov.cn"]);
        let d: Vec<(String, Vec<i64>)> = digest(
            &cfg,
            "callers/suspended",
            &[row(1, &["first@example.gov.cn"]), row(2, &[]), row(3, &[])],
        )
        .into_iter()
        .map(|(to, _, ids)| (to, ids))
        .collect();
        assert_eq!(
            d,
            [
                ("first@example.gov.cn".to_string(), vec![2, 3]),
                ("last@example.gov.cn".to_string(), vec![1, 2, 3]),
            ]
        );
    }

    #[test]
    fn a_failing_mail_is_retried_with_backoff_for_about_a_day_then_given_up() {
        assert_eq!(retry_delay(0), Some(1000));
        assert_eq!(retry_delay(9), Some(512_000));
        assert_eq!(retry_delay(10), Some(512_000));
        assert_eq!(retry_delay(MAX_ATTEMPTS - 2), Some(512_000));
        assert_eq!(retry_delay(MAX_ATTEMPTS - 1), None, "the last attempt");
        assert_eq!(retry_delay(u32::MAX), None);
        assert_eq!(
            (0..MAX_ATTEMPTS).filter_map(retry_delay).max(),
            Some(MAX_RETRY_DELAY_MS),
            "the clock-step horizon covers every retry"
        );
        let total_ms: i64 = (0..MAX_ATTEMPTS).filter_map(retry_delay).sum();
        let hours = total_ms / 3_600_000;
        assert!((22..=26).contains(&hours), "{hours} h");
    }
}
