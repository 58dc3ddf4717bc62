//! WeChat official accounts (`/v1/wechat/{account}`) and Weibo (`/v1/weibo/{account}`).
//!
//! Both platforms resend a push when the answer is late, so the reply must leave within their
//! deadline (WeChat: 5 s) whatever dispatch, MQTT or SMTP are doing: the pipeline runs in its
//! own task and the handler waits at most [`REPLY_BUDGET`]; past it the platform gets the
//! "no reply" answer while the task finishes the durable write (the dedupe record then answers
//! any retry with the first result).

use super::error::ApiError;
use super::{inbound, now, read_inbound, AppState};
use crate::pipeline::{Decision, Policy};
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use hotline_adapters::query::StatusQuery;
use hotline_adapters::wechat::{self, EventKind, Message, WechatAccount};
use hotline_adapters::weibo;
use hotline_adapters::{Outcome, Submission};
use rand::Rng;
use std::time::Duration;

/// How long a push may wait for the pipeline before answering "no reply".
pub const REPLY_BUDGET: Duration = Duration::from_secs(4);

/// One configured WeChat account.
pub struct WechatSetup {
    /// Protocol settings.
    pub account: WechatAccount,
    /// Reply to new followers.
    pub welcome: String,
    /// Menu CLICK key for "my orders' status".
    pub status_menu_key: String,
}

/// `GET /v1/wechat/{account}`: the server-URL check.
pub async fn wechat_verify(
    req: HttpRequest,
    name: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(setup) = state.wechat.get(name.as_str()) else {
        return Err(ApiError::NotFound("wechat account"));
    };
    let echo = wechat::verify_url(&setup.account, &inbound(&req, Default::default(), now()))?;
    Ok(HttpResponse::Ok().content_type("text/plain").body(echo))
}

/// `POST /v1/wechat/{account}`: a message push; answers a passive XML reply.
pub async fn wechat_push(
    req: HttpRequest,
    name: Path<String>,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let Some(setup) = state.wechat.get(&name) else {
        return Err(ApiError::NotFound("wechat account"));
    };
    let inbound = read_inbound(&req, payload, &state).await?;
    let t = inbound.now;
    let push = match wechat::parse_push_readable(&setup.account, &inbound) {
        Ok(push) => push,
        Err(refused) => {
            let text = heard_refusal(&state, &name, refused.readable, refused.error, t)?;
            // `heard_refusal` answers only a refusal whose push could be read.
            let Some(push) = refused.push else {
                return Err(ApiError::Internal(
                    "a refusal's answer without its push".into(),
                ));
            };
            return wechat_reply(setup, &push, Some(&text), t);
        }
    };
    let deadline = tokio::time::Instant::now() + REPLY_BUDGET;
    // A text or a voice note asking for an order's status (and naming no emergency) is
    // answered with it; speech recognition writes what was said, as a text would.
    let asked = match &push.message {
        Message::Text { content, .. } => status_query(&state, content),
        Message::Voice {
            recognition: Some(said),
            ..
        } => status_query(&state, said),
        _ => None,
    };
    let text: Option<String> = match &push.message {
        Message::Event(ev) => match &ev.kind {
            EventKind::Subscribe { .. } if !setup.welcome.is_empty() => Some(setup.welcome.clone()),
            EventKind::Click { .. }
                if ev.key.as_deref() == Some(setup.status_menu_key.as_str()) =>
            {
                let who = format!("wechat:{}", push.from_user);
                Some(super::ops::recent_status_sentence(&state, &who, t, deadline).await)
            }
            // An unfollow deletes nothing: see `EventKind::Unsubscribe` for why.
            _ => None,
        },
        Message::Unknown { msg_type } => {
            // Not an error (WeChat adds types over time), but recorded so operators see them.
            // The metric's label is bounded (whoever signs pushes could otherwise add series);
            // the log line has the type as sent, escaped and scrubbed: whoever signs pushes may
            // put anything there, and until 2026-12-07 an e-mail address in it was logged at
            // INFO as sent (the privacy review's F7).
            let kind: String = msg_type.chars().take(32).collect();
            let kind = hotline_adapters::mask::scrub_text_and_ids(&kind);
            let label = unknown_type_label(msg_type);
            metrics::counter!("hotline_wechat_unknown_messages_total", "type" => label)
                .increment(1);
            tracing::info!(account = %name, msg_type = ?kind, "Unknown WeChat message type recorded.");
            // A person who sent a file (evidence in a PDF) or a card is told it was not
            // taken and how to send the matter; a device's report is nobody's message.
            (!DEVICE_TYPES.contains(&label)).then(|| crate::messages::UNSUPPORTED.to_string())
        }
        _ => {
            let key = format!("wechat:{name}:{}", push.dedupe_key());
            let sub = push.to_submission(&name);
            let who = format!("wechat:{}", push.from_user);
            answer(&state, &who, asked, sub, key, t, deadline)
                .await?
                .map(|(status, d)| joined(status, d.map(|d| d.message)))
        }
    };
    wechat_reply(setup, &push, text.as_deref().filter(|t| !t.is_empty()), t)
}

/// The passive reply to `push` (`success` without a text), sealed when the push was.
fn wechat_reply(
    setup: &WechatSetup,
    push: &wechat::Push,
    text: Option<&str>,
    t: i64,
) -> Result<HttpResponse, ApiError> {
    let mut random16 = [0u8; 16];
    rand::thread_rng().fill(&mut random16);
    let nonce: String = (0..10)
        .map(|_| char::from(b'a' + rand::thread_rng().gen_range(0..26)))
        .collect();
    let reply = wechat::render_reply(&setup.account, push, text, t, &nonce, random16)?;
    Ok(HttpResponse::Ok()
        .content_type("text/xml; charset=utf-8")
        .body(reply))
}

/// The answer to a (signed) push refused for a field sent twice
/// ([`hotline_adapters::PushRefusal`]), as the web form answers its refused forms: nothing is
/// stored, and the emergency rules hear its `readable` submission (the push read with each
/// field's first value, and every value of the repeated text fields). A redirect is answered
/// as any other (its record kept); a possible emergency gets the number and that the message
/// was not taken ([`crate::messages::unread_emergency`]); both as the platform's reply (200),
/// since the platform shows the person a reply, never a refusal's body. Anything else, or a
/// push too broken to address a reply to (`readable` is `None`), is the refusal: 422
/// `invalid_field`.
fn heard_refusal(
    state: &AppState,
    account: &str,
    readable: Option<Box<Submission>>,
    error: hotline_adapters::AdapterError,
    t: i64,
) -> Result<String, ApiError> {
    let Some(mut sub) = readable else {
        return Err(error.into());
    };
    sub.account = account.to_string();
    match state.pipeline.redirect_if_emergency(&sub, t) {
        Ok(d) => Ok(d.message),
        Err(Some(number)) => Ok(crate::messages::unread_emergency(&number)),
        Err(None) => Err(error.into()),
    }
}

/// `GET /v1/weibo/{account}`: the URL check.
pub async fn weibo_verify(
    req: HttpRequest,
    name: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(acc) = state.weibo.get(name.as_str()) else {
        return Err(ApiError::NotFound("weibo account"));
    };
    let echo = weibo::verify_url(acc, &inbound(&req, Default::default(), now()))?;
    Ok(HttpResponse::Ok().content_type("text/plain").body(echo))
}

/// `POST /v1/weibo/{account}`: a message push; answers a passive JSON reply (or nothing).
pub async fn weibo_push(
    req: HttpRequest,
    name: Path<String>,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let Some(acc) = state.weibo.get(&name) else {
        return Err(ApiError::NotFound("weibo account"));
    };
    let inbound = read_inbound(&req, payload, &state).await?;
    let t = inbound.now;
    let push = match weibo::parse_push_readable(acc, &inbound) {
        Ok(push) => push,
        Err(refused) => {
            let text = heard_refusal(&state, &name, refused.readable, refused.error, t)?;
            let Some(push) = refused.push else {
                return Err(ApiError::Internal(
                    "a refusal's answer without its push".into(),
                ));
            };
            return Ok(HttpResponse::Ok()
                .content_type("application/json; charset=utf-8")
                .body(weibo::render_reply(&push, Some(&text))));
        }
    };
    let deadline = tokio::time::Instant::now() + REPLY_BUDGET;
    let asked = match push.message {
        weibo::WeiboMessage::Text | weibo::WeiboMessage::Mention => {
            status_query(&state, &push.text)
        }
        _ => None,
    };
    let key = format!("weibo:{name}:{}", push.dedupe_key());
    let sub = push.to_submission(&name);
    let who = format!("weibo:{}", push.sender_id);
    let text = answer(&state, &who, asked, sub, key, t, deadline)
        .await?
        .map(|(status, d)| {
            // Weibo takes fewer than 300 characters: many order numbers become a range, in
            // the room the status leaves (the adapter cuts whatever is still too long).
            let room = weibo::MAX_REPLY_CHARS
                .saturating_sub(status.as_ref().map_or(0, |s| s.chars().count() + 1));
            let ack = d.map(|d| {
                if d.message.chars().count() <= room {
                    d.message
                } else {
                    crate::messages::for_outcome_within(&d.outcome, state.cfg.derived.tz, room)
                }
            });
            joined(status, ack)
        });
    let reply = weibo::render_reply(&push, text.as_deref().filter(|t| !t.is_empty()));
    Ok(HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .body(reply))
}

/// WeChat message types the gateway does not turn into orders but knows by name (see the
/// official-account and device docs); the label of `hotline_wechat_unknown_messages_total`.
const KNOWN_UNHANDLED_TYPES: [&str; 12] = [
    "file",
    "miniprogrampage",
    "music",
    "news",
    "mpnews",
    "mpvideo",
    "wxcard",
    "card",
    "device_text",
    "device_event",
    "device_status",
    "hardware",
];

/// Message types that devices send (WeChat's hardware platform), not people: not answered.
const DEVICE_TYPES: [&str; 4] = ["device_text", "device_event", "device_status", "hardware"];

/// The metric label for an unknown message type: its name if it is a known one, else `other`,
/// so the number of series stays fixed.
fn unknown_type_label(msg_type: &str) -> &'static str {
    let lower = msg_type.trim().to_ascii_lowercase();
    KNOWN_UNHANDLED_TYPES
        .iter()
        .find(|t| **t == lower)
        .copied()
        .unwrap_or("other")
}

/// What a push is answered: a status (when it asks for one) and the decision on its matter
/// (when it has one). A query for the number alone is only answered; a query followed by more
/// (`查询 2026…，另外反映一下：路灯坏了`) is answered, and the rest is taken as a submission
/// (art. 13: no matter is lost): a new matter alone, or a complaint about the asked order
/// (`查询 2026… 为什么还没人处理`) with the number in front ([`StatusQuery::rest`]). The words
/// before the number are the query, not a matter: taken whole, the text made an order of
/// `查询 2026…` too when it split at `另外反映`. Both are asked at once, within the reply
/// budget, the query counted against its sender's (`who`) look-up budget. `None`: nothing to
/// say.
async fn answer(
    state: &Data<AppState>,
    who: &str,
    asked: Option<StatusQuery>,
    mut sub: Option<Submission>,
    dedupe_key: String,
    t: i64,
    deadline: tokio::time::Instant,
) -> Result<Option<(Option<String>, Option<Decision>)>, ApiError> {
    if let (Some(q), Some(sub)) = (&asked, sub.as_mut()) {
        sub.content = hotline_adapters::text::clean_text(&q.rest);
    }
    let intake = async {
        match sub {
            Some(sub) => reply_text(state, sub, dedupe_key, t).await,
            None => Ok(None),
        }
    };
    Ok(match asked {
        Some(q) if q.only => Some((
            Some(super::ops::queried_status_sentence(state, who, &q.number, deadline).await),
            None,
        )),
        Some(q) => {
            let (status, d) = tokio::join!(
                super::ops::queried_status_sentence(state, who, &q.number, deadline),
                intake
            );
            Some((Some(status), d?))
        }
        None => intake.await?.map(|d| (None, Some(d))),
    })
}

/// One reply of a status and an answer, the status first (it was asked first).
fn joined(status: Option<String>, answer: Option<String>) -> String {
    match (status, answer) {
        (Some(s), Some(a)) if !a.is_empty() => format!("{s}\n{a}"),
        (Some(s), _) => s,
        (None, a) => a.unwrap_or_default(),
    }
}

/// The decision on a push's submission, keyed for the platform's retries; `None` past the
/// budget or when there is nothing to say.
async fn reply_text(
    state: &Data<AppState>,
    mut sub: Submission,
    dedupe_key: String,
    t: i64,
) -> Result<Option<Decision>, ApiError> {
    sub.dedupe_key = Some(dedupe_key);
    run_within_budget(state, sub, t).await
}

/// Runs the pipeline in its own task; `None` when it did not finish within the budget (the
/// platform gets `success`), unless the submission is a possible emergency, which then gets
/// the number to dial ([`crate::messages::pending_emergency`]). The push is then kept in the
/// journal (`crate::journal`) before the answer (a possible emergency waits for it at most
/// [`EMERGENCY_JOURNAL_WAIT`], then is told the number without a promise of its order,
/// [`crate::messages::unsaved_emergency`]), and the task goes on, on the background
/// runtime (`crate::background`), which a graceful shutdown waits for: the platform was
/// answered and will not resend. Its result answers the platform's retries, if any, and
/// removes the journal's entry; when the process dies first, or the intake fails, the entry
/// is taken again at the next start.
async fn run_within_budget(
    state: &Data<AppState>,
    sub: Submission,
    t: i64,
) -> Result<Option<Decision>, ApiError> {
    let pipeline = state.pipeline.clone();
    // A Weibo push's channel_ref (and a WeChat one's without a MsgId) is its dedupe key, which
    // holds the sender's id: logged with that part masked like the identity.
    let (channel, identity, channel_ref) = (
        sub.channel.as_str(),
        sub.identity.masked(),
        sub.identity.mask_in(&sub.channel_ref),
    );
    // Kept for the journal and for the late reply's number, should the budget run out (a
    // copy of a few strings per push).
    let copy = sub.clone();
    let mut task = state
        .pipeline
        .background()
        .spawn(async move { pipeline.submit(sub, t, Policy::WEBHOOK).await });
    match tokio::time::timeout(REPLY_BUDGET, &mut task).await {
        Ok(Ok(r)) => {
            let d = r?;
            Ok((!matches!(d.outcome, Outcome::Nothing)).then_some(d))
        }
        Ok(Err(join)) => Err(ApiError::Internal(format!("intake task failed: {join}"))),
        Err(_) => {
            metrics::counter!("hotline_reply_budget_exceeded_total").increment(1);
            // A possible emergency is known without the store (see the reply below).
            let advice = state.pipeline.possible_emergency(&copy);
            // The platform will not resend after `success`: the push is on disk first, and
            // taken again at the next start if the process dies before its intake is stored
            // (until 2026-12-07 a kill -9 here lost it). Without that copy there is no
            // promise to make: the platform is told to resend (its retry finds the intake's
            // record, or makes it).
            let journal = state.late_pushes.clone();
            let started = std::time::Instant::now();
            let write = tokio::task::spawn_blocking(move || journal.keep(&copy, t));
            // A possible emergency waits for the write at most EMERGENCY_JOURNAL_WAIT: the
            // write is what lets the reply promise the order, but the number to dial must not
            // wait behind a disk that is stuck (the store is late often because the disk is,
            // and on ext4 an fsync waits for every file's dirty data). The rest waits for it.
            let wait = advice.is_some().then_some(EMERGENCY_JOURNAL_WAIT);
            let journal_state = journal_write(write, wait).await;
            let waited_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let (kept, writing, promised) = match journal_state {
                JournalWrite::Kept(path) => (Some(path), None, true),
                // Still writing: the number goes now, with no promise of the order (the
                // sentence says it is not saved yet); the write and the intake go on.
                JournalWrite::Writing(write) => {
                    tracing::warn!(channel, identity = %identity, channel_ref = %channel_ref, waited_us, "A possible emergency past its reply budget was told the number to dial before its journal entry was written (the disk is slow); the answer does not promise its order.");
                    (None, Some(write), false)
                }
                // A possible emergency still gets its number: being told to dial matters more
                // than the platform's resend (which its retry would not bring in time).
                JournalWrite::Failed(e) if advice.is_some() => {
                    tracing::error!(channel, identity = %identity, channel_ref = %channel_ref, error = %e, "A possible emergency past its reply budget could not be kept in the journal; told the number to dial, its intake goes on in memory only.");
                    (None, None, false)
                }
                JournalWrite::Failed(e) => {
                    tracing::error!(channel, identity = %identity, channel_ref = %channel_ref, error = %e, "A push past its reply budget could not be kept in the journal; answered as unavailable so that the platform resends it.");
                    return Err(ApiError::Unavailable(format!("push journal: {e}")));
                }
            };
            tracing::warn!(channel, identity = %identity, channel_ref = %channel_ref, told_number = advice.is_some(), waited_us, "A push was answered before its intake finished; the intake goes on.");
            let journal = state.late_pushes.clone();
            state.pipeline.background().spawn(async move {
                // A write still going on when the number went: its entry is removed like any
                // other once the intake is stored (awaited first, so none is left behind).
                let kept = match writing {
                    Some(write) => match journal_write(write, None).await {
                        JournalWrite::Kept(path) => Some(path),
                        _ => None,
                    },
                    None => kept,
                };
                let failed = match task.await {
                    Ok(Ok(d)) if crate::journal::stored(&d) => {
                        if let Some(kept) = &kept {
                            journal.done(kept);
                        }
                        tracing::info!(channel, identity = %identity, channel_ref = %channel_ref, "A push answered past its reply budget is stored.");
                        return;
                    }
                    Ok(Ok(_)) => "the store could not take it".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Err(join) => join.to_string(),
                };
                metrics::counter!("hotline_late_intake_failed_total", "channel" => channel)
                    .increment(1);
                let path = kept.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
                tracing::error!(channel, identity = %identity, channel_ref = %channel_ref, error = %failed, path, "A push answered past its reply budget could not be stored; kept in the journal (unless its path is empty), it is taken again at the next start.");
            });
            // A possible emergency is known without the store: it gets the number to dial
            // now, not `success` (which WeChat shows as nothing, and after which it does not
            // resend). Until 2026-12-07 a doubted or suspected emergency behind a slow or
            // locked store got `success`, and its number was in a reply nobody saw.
            Ok(advice.map(|number| Decision {
                message: if promised {
                    crate::messages::pending_emergency(&number)
                } else {
                    crate::messages::unsaved_emergency(&number)
                },
                outcome: Outcome::Advised { number },
            }))
        }
    }
}

/// How long a possible emergency's late reply waits for its journal entry before the number
/// goes without it. The write takes ~0.6 ms on an idle disk (two fsyncs, measured on ext4 on
/// the development VM: write 0.07 ms, the file's fsync 0.3 ms, the folder's 0.2 ms;
/// `hotline_push_journal_write_seconds`), so this only matters when the disk itself is stuck;
/// WeChat gives up on a reply at 5 s, [`REPLY_BUDGET`] after 4.
pub const EMERGENCY_JOURNAL_WAIT: Duration = Duration::from_millis(500);

/// Where a push's journal write is.
#[derive(Debug)]
enum JournalWrite {
    /// Written and fsynced, at this path.
    Kept(std::path::PathBuf),
    /// Could not be written.
    Failed(std::io::Error),
    /// Still being written when the wait ran out.
    Writing(tokio::task::JoinHandle<std::io::Result<std::path::PathBuf>>),
}

/// Waits for a journal write, at most `wait` when given.
async fn journal_write(
    mut write: tokio::task::JoinHandle<std::io::Result<std::path::PathBuf>>,
    wait: Option<Duration>,
) -> JournalWrite {
    let done = match wait {
        Some(wait) => match tokio::time::timeout(wait, &mut write).await {
            Ok(done) => done,
            Err(_) => return JournalWrite::Writing(write),
        },
        None => write.await,
    };
    match done.map_err(std::io::Error::other).and_then(|r| r) {
        Ok(path) => JournalWrite::Kept(path),
        Err(e) => JournalWrite::Failed(e),
    }
}

/// A status query (`查询 2026112901000123` and the other forms of
/// [`hotline_adapters::query::status_query`]), unless the message also names an emergency
/// (查询 2026… 我家着火了): that goes to the pipeline alone, whose first step is the emergency
/// check (art. 17), and the reply is the number to dial.
fn status_query(state: &AppState, text: &str) -> Option<StatusQuery> {
    let q = hotline_adapters::query::status_query(text)?;
    state
        .pipeline
        .rules()
        .emergency
        .check(text)
        .is_none()
        .then_some(q)
}

#[cfg(test)]
mod tests {
    use hotline_adapters::{Identity, IdentityKind};

    #[test]
    fn a_logged_channel_ref_hides_the_sender() {
        let weibo = Identity::new(IdentityKind::Weibo, "2489518277");
        let r = weibo.mask_in("1902538057:2489518277:Mon Jul 16 18:09:20 +0800 2012:text:0a1b");
        assert!(!r.contains("2489518277"), "{r}");
        assert!(r.starts_with("1902538057:"), "{r}");
        assert!(
            r.ends_with(":Mon Jul 16 18:09:20 +0800 2012:text:0a1b"),
            "{r}"
        );
        let wechat = Identity::new(IdentityKind::Wechat, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
        let r = wechat.mask_in("nomsgid:oUpF8uMuAJO_M2pxb1Q9zNjWeS6o:1700000000:image:ff");
        assert!(!r.contains("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"), "{r}");
        assert_eq!(wechat.mask_in("1234567890123456"), "1234567890123456");
    }

    /// A journal write that is stuck (a disk held up) does not hold a possible emergency's
    /// number past [`super::EMERGENCY_JOURNAL_WAIT`]: the wait gives the write back still
    /// going, and it is finished later (its entry then removed once the intake is stored).
    /// Without a wait, as for any other push, the reply waits for the write. No time is
    /// asserted: the write is held on a channel, not on a clock.
    #[tokio::test]
    async fn a_stuck_journal_write_does_not_hold_the_number_to_dial() {
        use super::{journal_write, JournalWrite};
        let (release, held) = std::sync::mpsc::channel::<()>();
        let write = tokio::task::spawn_blocking(move || {
            let _ = held.recv();
            Ok(std::path::PathBuf::from("entry.json"))
        });
        let wait = Some(std::time::Duration::from_millis(50));
        // A guard, not a measurement: a reply that waits for the stuck write fails the test
        // instead of hanging it.
        let guard = std::time::Duration::from_secs(30);
        let Ok(JournalWrite::Writing(write)) =
            tokio::time::timeout(guard, journal_write(write, wait)).await
        else {
            panic!("the number waited for the stuck write");
        };
        release.send(()).unwrap();
        match journal_write(write, None).await {
            JournalWrite::Kept(p) => assert_eq!(p, std::path::PathBuf::from("entry.json")),
            other => panic!("{other:?}"),
        }
        let failing = tokio::task::spawn_blocking(|| Err(std::io::Error::other("disk full")));
        assert!(matches!(
            journal_write(failing, wait).await,
            JournalWrite::Failed(_)
        ));
    }

    #[test]
    fn unknown_wechat_types_have_a_bounded_label() {
        assert_eq!(
            super::unknown_type_label("miniprogrampage"),
            "miniprogrampage"
        );
        assert_eq!(super::unknown_type_label(" File "), "file");
        for odd in [
            "x".repeat(32).as_str(),
            "新类型",
            "a\u{7}b",
            "13912345678",
            "",
        ] {
            assert_eq!(super::unknown_type_label(odd), "other", "{odd:?}");
        }
    }
}
