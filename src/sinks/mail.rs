//! Mail (lettre): receipts to submitters who gave an address, alerts to supervisors (emergency
//! redirects, suspensions, dead letters, dispatch outages), from the durable event outbox.
//!
//! A mail the SMTP server does not take is retried with backoff; SMTP being down never slows
//! intake because nothing on the request path waits for it. Alerts are rate-limited
//! (`alerts_per_minute`) so an outage cannot become a mail storm: alerts over the limit are
//! counted (`hotline_mail_suppressed_total`) and logged, not sent. Receipts are not limited.
//! Suspensions are not urgent: they are collected and sent as one digest every `digest_every`.
//!
//! Templates: compiled-in Chinese defaults; a file `<topic with / as _>.txt` in `[mail] templates`
//! overrides one (first line = subject, the rest = body). Variables are the event's fields in
//! braces: `{number}`, `{category}`, `{channel}`, `{identity}` (masked), `{reason}`, `{until}`,
//! `{rule}`, `{error}`, `{open}`, `{at}`.

use crate::store::{EventRow, Store};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
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
        "时间：{at}\n渠道：{channel}\n来访人：{identity}\n工单号：{order}\n疑似需要：{number}（模型评分 {score}）\n\n规则未判定为紧急情况，工单已受理并标记为紧急复核；来访人已被告知如危险正在发生请拨打{number}。\n请值班长立即查看该工单，必要时回拨来访人或联系{number}。",
    ),
    (
        "callers/suspended",
        "【暂停受理】{identity}",
        "来访人：{identity}\n暂停至：{until}\n原因：{reason}\n决定方：{decided_by}\n时间：{at}",
    ),
    (
        "orders/dead",
        "【派单失败】工单{number}",
        "工单{number}被派单接口拒收，已转入死信队列，请核查后通过管理接口重新投递。\n原因：{error}\n时间：{at}",
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

/// Builds the messages for one event: a receipt to the submitter, or an alert to each
/// supervisor. Bad addresses are skipped (logged masked), never retried.
pub fn messages(cfg: &MailSettings, row: &EventRow) -> Vec<Message> {
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
    let subject = fill(&subject, &vars);
    let body = fill(&body, &vars);
    let recipients: Vec<String> = if row.topic == "orders/accepted" {
        vars["to"]
            .as_str()
            .map(|s| vec![s.to_string()])
            .unwrap_or_default()
    } else {
        cfg.supervisors.clone()
    };
    recipients
        .iter()
        .filter_map(|to| {
            let Ok(to) = to.parse::<Mailbox>() else {
                tracing::warn!(to = %hotline_adapters::mask::mask_email(to), "Not a mail address; skipped.");
                return None;
            };
            Message::builder()
                .from(from.clone())
                .to(to)
                .subject(subject.clone())
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(body.clone())
                .ok()
        })
        .collect()
}

/// One digest mail to each supervisor listing the suspensions in `rows`.
pub fn digest(cfg: &MailSettings, rows: &[EventRow]) -> Vec<Message> {
    let Some((_, body)) = template(cfg, "callers/suspended") else {
        return Vec::new();
    };
    let Ok(from) = cfg.from.parse::<Mailbox>() else {
        return Vec::new();
    };
    let parts: Vec<String> = rows
        .iter()
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(&r.payload).ok())
        .map(|v| fill(&body, &v))
        .collect();
    let subject = format!("【暂停受理汇总】{}人", parts.len());
    let text = parts.join("\n\n---\n\n");
    cfg.supervisors
        .iter()
        .filter_map(|to| to.parse::<Mailbox>().ok())
        .filter_map(|to| {
            Message::builder()
                .from(from.clone())
                .to(to)
                .subject(subject.clone())
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(text.clone())
                .ok()
        })
        .collect()
}

/// Runs the mail sender until shutdown.
pub async fn run(cfg: MailSettings, store: Arc<dyn Store>, mut shutdown: watch::Receiver<bool>) {
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(&cfg.smtp_url) {
        Ok(b) => b.timeout(Some(Duration::from_secs(10))).build(),
        Err(e) => {
            tracing::error!(error = %e, "mail.smtp_url is not usable; mail is off.");
            return;
        }
    };
    let per_minute = NonZeroU32::new(cfg.alerts_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    let alerts: DefaultDirectRateLimiter = RateLimiter::direct(Quota::per_minute(per_minute));
    let digest_ms = cfg.digest_every.as_millis().max(1) as i64;
    let mut next_digest_ms = chrono::Utc::now().timestamp_millis() + digest_ms;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        let rows = store
            .due_events("mail", now_ms, 20)
            .await
            .unwrap_or_default();
        if rows.is_empty() {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
            continue;
        }
        // Suspensions wait for the next digest; when it is due they go out as one mail.
        let (suspensions, rows): (Vec<EventRow>, Vec<EventRow>) = rows
            .into_iter()
            .partition(|r| r.topic == "callers/suspended");
        if !suspensions.is_empty() {
            if now_ms < next_digest_ms {
                for r in &suspensions {
                    let _ = store.retry_event(r.id, next_digest_ms).await;
                }
            } else {
                let mut failed = None;
                for m in digest(&cfg, &suspensions) {
                    if let Err(e) = transport.send(m).await {
                        failed = Some(e.to_string());
                        break;
                    }
                }
                let ids: Vec<i64> = suspensions.iter().map(|r| r.id).collect();
                if let Some(error) = failed {
                    tracing::warn!(%error, "SMTP refused the suspension digest; will retry.");
                    for r in &suspensions {
                        let _ = store.retry_event(r.id, now_ms + 60_000).await;
                    }
                } else {
                    metrics::counter!("hotline_mail_sent_total", "topic" => "callers/suspended")
                        .increment(1);
                    let _ = store.ack_events(ids).await;
                    next_digest_ms = now_ms + digest_ms;
                }
            }
        }
        for row in rows {
            let is_alert = row.topic != "orders/accepted";
            if is_alert && alerts.check().is_err() {
                metrics::counter!("hotline_mail_suppressed_total").increment(1);
                tracing::warn!(topic = %row.topic, "Alert mail over the rate limit; not sent.");
                let _ = store.ack_events(vec![row.id]).await;
                continue;
            }
            let mut failed = None;
            for m in messages(&cfg, &row) {
                if let Err(e) = transport.send(m).await {
                    failed = Some(e.to_string());
                    break;
                }
            }
            match failed {
                None => {
                    metrics::counter!("hotline_mail_sent_total", "topic" => row.topic.clone())
                        .increment(1);
                    let _ = store.ack_events(vec![row.id]).await;
                }
                Some(error) => {
                    // Backoff 2^attempts seconds, capped at 10 minutes.
                    let delay = 1000i64 << row.attempts.min(9);
                    tracing::warn!(%error, topic = %row.topic, "SMTP refused a mail; will retry.");
                    metrics::counter!("hotline_mail_failures_total").increment(1);
                    let _ = store.retry_event(row.id, now_ms + delay.min(600_000)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        let row = EventRow {
            id: 1,
            topic: "callers/suspended".into(),
            payload: vars.to_string(),
            attempts: 0,
        };
        let msgs = messages(&cfg, &row);
        assert_eq!(msgs.len(), 1, "the bad address is skipped");
        let raw = String::from_utf8(msgs[0].formatted()).unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        let shown = format!("{cfg:?}");
        assert!(
            shown.contains("mail.example") && !shown.contains("sm7p-pa55"),
            "{shown}"
        );
    }
}
