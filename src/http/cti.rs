//! `POST /v1/cti/{profile}` and `/v1/cti/{profile}/{token}`: telephony callbacks.
//!
//! Answers come from local state only (suspension list in memory, rules, the embedded store)
//! so they meet the platform's ringing deadline; dispatch, MQTT and mail follow after the answer.
//! Every event is idempotent per call and step: a retried callback gets the first answer.

use super::error::ApiError;
use super::{read_inbound, AppState};
use crate::pipeline::emergency::Redirect;
use crate::pipeline::{Decision, Pipeline, Policy, RuleSet};
use crate::store::StoreError;
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use hotline_adapters::cti::{
    CallDecision, CallDirection, CallEvent, CallKind, CtiFormat, CtiProfile,
};
use hotline_adapters::{AdapterError, Identity, IdentityKind, Outcome};
use std::sync::Arc;
use std::time::Duration;

/// One configured telephony profile.
pub struct CtiSetup {
    /// Parser and renderer settings.
    pub profile: CtiProfile,
    /// Transfer emergencies (true) or tell the caller to dial (false).
    pub transfer: bool,
    /// IVR prefix of a status query (`*2026112901000123`).
    pub status_prefix: String,
}

/// `POST /v1/cti/{profile}` (and `GET` for a Twilio profile)
pub async fn callback(
    req: HttpRequest,
    profile: Path<String>,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    handle(req, profile.into_inner(), None, payload, state).await
}

/// `POST /v1/cti/{profile}/{token}` (and `GET` for a Twilio profile)
pub async fn callback_with_token(
    req: HttpRequest,
    path: Path<(String, String)>,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (profile, token) = path.into_inner();
    handle(req, profile, Some(token), payload, state).await
}

async fn handle(
    req: HttpRequest,
    name: String,
    token: Option<String>,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(setup) = state.cti.get(&name) else {
        return Err(ApiError::NotFound("telephony profile"));
    };
    // Only Twilio's voice URLs can be set to GET (the parameters then come in the query); the
    // route's GET takes HEAD too, which is never a callback of another format either.
    if req.method() != actix_web::http::Method::POST && setup.profile.format != CtiFormat::Twilio {
        return Err(ApiError::MethodNotAllowed("POST"));
    }
    let inbound = read_inbound(&req, payload, &state).await?;
    let t = inbound.now;
    let ev = match setup.profile.parse(&inbound, token.as_deref()) {
        Ok(ev) => ev,
        // Twilio's convention for a request that fails validation is 403.
        Err(AdapterError::BadSignature) if setup.profile.format == CtiFormat::Twilio => {
            return Err(ApiError::Forbidden(AdapterError::BadSignature))
        }
        Err(e) => return Err(e.into()),
    };
    let key = format!("cti:{name}:{}", ev.dedupe_key);
    // A status query from the IVR (prefix + order number): read-only, answered at once. Not
    // when the same step also names an emergency (a caller who keyed an order number and then
    // said 着火了): that is transferred first, like every emergency (art. 17).
    if let CallKind::Input {
        digits: Some(d),
        speech,
    } = &ev.kind
    {
        let rules = state.pipeline.rules();
        let status = status_digits(d, &setup.status_prefix).filter(|_| {
            matches!(
                emergency_hits(&rules, Some(d), speech.as_deref()),
                (None, None)
            )
        });
        if let Some(number) = status {
            let deadline = tokio::time::Instant::now() + STEP_BUDGET;
            // Counted per caller; a withheld number without the platform's id for it is
            // counted per call (it cannot be told from other such callers).
            let who = caller_of(&name, &ev)
                .map(|i| i.to_string())
                .unwrap_or_else(|| format!("cti:{name}:call:{}", ev.call_id));
            let text = super::ops::queried_status_sentence(&state, &who, &number, deadline).await;
            let reply = setup.profile.render(&CallDecision::Continue {
                orders: Vec::new(),
                text: Some(text),
                flag: Some("status".into()),
            });
            return Ok(HttpResponse::Ok()
                .content_type(reply.content_type)
                .body(reply.body));
        }
    }
    // Emergency first, before the key lock and the retry record (art. 17), as `submit` does
    // for the written channels: the rules need no I/O, so a locked or slow store cannot hold
    // up the transfer (until 2026-12-07 a locked dedupe table held it for 19 s, past
    // Twilio's 15 s). The records follow in the background.
    let d = match emergency_step(&state, &name, &ev, &key, t) {
        Some(d) => d,
        None => within_budget(&state, &name, &ev, key, t).await?,
    };
    metrics::counter!("hotline_cti_events_total", "profile" => name.clone(), "event" => ev.kind.tag())
        .increment(1);
    let call = to_call(&d, setup.transfer, &ev);
    let reply = setup.profile.render(&call);
    Ok(HttpResponse::Ok()
        .content_type(reply.content_type)
        .body(reply.body))
}

/// How long a call step may wait for the store (the key lock, the retry record, the ladder's
/// records) before it is answered from memory. Twilio drops a webhook after 15 s and a caller
/// hears an application error; a PBX's ringing callback waits less. A healthy store answers a
/// step in milliseconds, and its own waits are 5 s (a pool connection): a step still waiting
/// after 3 s is behind a lock or a dead connection, and more waiting only adds silence. 3 s
/// is under one ring cadence (1 s on, 4 s off), and leaves 12 s of Twilio's 15 for the
/// network and the platform. The step's work goes on in the background (see `within_budget`).
pub const STEP_BUDGET: Duration = Duration::from_secs(3);

/// The step's store work (`step`) on the background runtime, waited for at most
/// [`STEP_BUDGET`]; past it, the answer from memory. The work is not cancelled: an agent's
/// registered order or flag is still stored, and its answer under the step's key answers the
/// platform's retry.
async fn within_budget(
    state: &Data<AppState>,
    name: &str,
    ev: &CallEvent,
    key: String,
    t: i64,
) -> Result<Decision, ApiError> {
    let mut work = {
        let (state, name, ev) = (state.clone(), name.to_string(), ev.clone());
        state
            .pipeline
            .background()
            .clone()
            .spawn(async move { step(&state, &name, &ev, key, t).await })
    };
    match tokio::time::timeout(STEP_BUDGET, &mut work).await {
        Ok(Ok(d)) => d,
        Ok(Err(join)) => Err(ApiError::Internal(format!("call step failed: {join}"))),
        Err(_) => {
            metrics::counter!("hotline_cti_budget_exceeded_total", "profile" => name.to_string(), "event" => ev.kind.tag())
                .increment(1);
            let caller = ev.caller.clone();
            tracing::warn!(profile = name, caller = %mask(&caller), call = %logged_call(&ev.call_id, caller.as_ref()), event = ev.kind.tag(), "A call step ran out of its time for the store; answered from memory, the step's work goes on.");
            let (profile, call, event) = (
                name.to_string(),
                logged_call(&ev.call_id, caller.as_ref()),
                ev.kind.tag(),
            );
            state.pipeline.background().spawn(async move {
                if let Ok(Err(e)) = work.await {
                    tracing::warn!(profile, caller = %mask(&caller), call = %call, event, error = %e, "A call step answered from memory failed afterwards.");
                }
            });
            Ok(from_memory(state, name, ev, t))
        }
    }
}

/// One decision per event even when the platform's retries arrive together: the first answer
/// under the step's key, else a fresh decision.
async fn step(
    state: &AppState,
    name: &str,
    ev: &CallEvent,
    key: String,
    t: i64,
) -> Result<Decision, ApiError> {
    // The lock is on a key of its own: a registered order's submission locks the dedupe key.
    let _guard = state.pipeline.lock_key(&format!("call:{key}")).await;
    match state.pipeline.recall(&key, t).await {
        Ok(Some(outcome)) => {
            if let CallKind::Registered { order } = &ev.kind {
                if order.transcription {
                    late_transcription(state, name, ev, &key, order, &outcome, t).await?;
                }
            }
            Ok(decision_of(state, outcome))
        }
        _ => decide(state, name, ev, key, t).await,
    }
}

/// The answer to a step that ran out of [`STEP_BUDGET`]: what memory knows. A suspended
/// caller is still rejected when the call rings (the ladder mirrors suspensions); everything
/// else goes on (no reminder is given without its record).
fn from_memory(state: &AppState, profile: &str, ev: &CallEvent, t: i64) -> Decision {
    let outcome = match (&ev.kind, caller_of(profile, ev)) {
        (CallKind::Started, Some(id)) if ev.direction == CallDirection::Inbound => state
            .pipeline
            .ladder
            // The carrier's caller id: only a suspension for every channel refuses it, not
            // one the web form earned under a number anyone can type.
            .refusal_if_suspended(&id, crate::store::Scope::All, t)
            .unwrap_or(Outcome::Nothing),
        // An agent's registration or a voicemail naming an emergency gets its number from the
        // rules and the model, which need no store, like the written channels past their
        // budget: a locked store used to answer it a bare `continue` at the budget (SQLite
        // waits 5 s for a lock, longer than the step's 3), with no number and no flag.
        (CallKind::Registered { .. }, _) => ev
            .to_submission(profile)
            .and_then(|sub| state.pipeline.possible_emergency(&sub))
            .map_or(Outcome::Nothing, |number| Outcome::Advised { number }),
        _ => Outcome::Nothing,
    };
    decision_of(state, outcome)
}

/// A withheld number is never throttled by number; the platform's stable id for the caller,
/// when it sends one, stands in (`cti:PROFILE:ID`).
fn caller_of(profile: &str, ev: &CallEvent) -> Option<Identity> {
    ev.caller.clone().or_else(|| {
        ev.caller_ref
            .as_ref()
            .map(|r| Identity::new(IdentityKind::Cti, format!("{profile}:{r}")))
    })
}

/// The emergency a `call.input` step names, answered from the rules alone: the transfer (or
/// the dial advice for speech the second opinion strongly doubts), with its records in the
/// background. `None` for any other step, or an input that names none.
fn emergency_step(
    state: &AppState,
    profile: &str,
    ev: &CallEvent,
    key: &str,
    t: i64,
) -> Option<Decision> {
    let CallKind::Input { digits, speech } = &ev.kind else {
        return None;
    };
    let pipeline = &state.pipeline;
    let rules = pipeline.rules();
    let (said, keyed) = emergency_hits(&rules, digits.as_deref(), speech.as_deref());
    if said.is_none() && keyed.is_none() {
        return None;
    }
    let caller = caller_of(profile, ev);
    // What the caller said, when the second opinion strongly doubts it (a question about last
    // year's crash): told the number, kept on the line for an agent, rather than transferred
    // away from 12345. Keys pressed are never doubted: 110 keyed in the same step as doubted
    // speech is transferred.
    let advised = said
        .as_ref()
        .filter(|(text, r)| pipeline.doubts(&rules, text, r, "cti").is_some())
        .map(|(_, r)| r.clone());
    let redirect = if advised.is_some() {
        keyed
    } else {
        said.or(keyed)
    };
    // A call that named an emergency is never a long-call offence, whatever its length: a
    // transferred call's duration includes the leg to 120.
    excuse_long_call(pipeline, &ev.call_id, caller.as_ref(), t);
    if let Some((text, r)) = redirect {
        let who = caller
            .as_ref()
            .map(|i| i.to_string())
            .unwrap_or_else(|| "phone:anonymous".into());
        return Some(pipeline.redirect(&who, "cti", &text, r, t, Some(key.to_string())));
    }
    let r = advised?;
    tracing::info!(profile, caller = %mask(&caller), call = %logged_call(&ev.call_id, caller.as_ref()), number = %r.number, rule = %r.rule, "Caller told the emergency number; the call goes on to an agent.");
    let outcome = Outcome::Advised { number: r.number };
    // The step's record only serves a retry, which the rules answer the same way anyway.
    let (store, key, remembered) = (pipeline.store().clone(), key.to_string(), outcome.clone());
    pipeline.background().spawn(async move {
        let _ = store.remember(key, remembered, t).await;
    });
    Some(decision_of(state, outcome))
}

fn decision_of(state: &AppState, outcome: Outcome) -> Decision {
    let message = crate::messages::for_outcome(&outcome, state.cfg.derived.tz);
    Decision { outcome, message }
}

async fn decide(
    state: &AppState,
    profile: &str,
    ev: &CallEvent,
    key: String,
    t: i64,
) -> Result<Decision, ApiError> {
    let pipeline = &state.pipeline;
    let store = pipeline.store();
    let caller = caller_of(profile, ev);
    // The hotline calling a citizen back (or an outbound survey) is not the citizen occupying
    // the line: such calls are never rejected, never count against the citizen's quota and a
    // long one is no offence. An agent's explicit abuse flag still counts on either direction.
    let citizen_calls = ev.direction == CallDirection::Inbound;
    let outcome = match &ev.kind {
        CallKind::Started => match &caller {
            // Withheld numbers are never throttled by number.
            None => Outcome::Nothing,
            Some(_) if !citizen_calls => Outcome::Nothing,
            // A suspension is known from memory; only a reminder over quota needs the store. A
            // store that cannot record it lets the call through: an error here would be a 503,
            // on which Twilio hangs up, and the caller could not reach the IVR even to report a
            // fire (art. 17).
            Some(id) => match pipeline.ladder.check_identity(id, "cti", "来电", t).await {
                Ok(refusal) => refusal.unwrap_or(Outcome::Nothing),
                Err(e) => {
                    tracing::warn!(profile, caller = %mask(&caller), call = %logged_call(&ev.call_id, caller.as_ref()), error = %e, "Quota reminder not recorded (store unavailable); the call goes on.");
                    Outcome::Nothing
                }
            },
        },
        // An input naming an emergency was answered before (`emergency_step`).
        CallKind::Input { .. } => Outcome::Nothing,
        CallKind::Registered { .. } => {
            let Some(mut sub) = ev.to_submission(profile) else {
                return Err(ApiError::Internal("registered event without order".into()));
            };
            sub.dedupe_key = Some(key);
            let d = pipeline.submit(sub, t, Policy::AGENT).await?;
            // Remember that this call produced a matter, so its end is not an offence. The
            // order is stored by now: a failure here must not answer 503 for it.
            if let Err(e) = store
                .remember(matter_key(&ev.call_id), Outcome::Nothing, t)
                .await
            {
                unremembered(profile, ev, &caller, &e);
            }
            return Ok(d);
        }
        CallKind::Ended {
            duration_s,
            answered,
            ..
        } => {
            if !answered && citizen_calls {
                if was_rejected(state, profile, ev, &caller, t).await {
                    // The hotline rejected it (a suspended caller): the platform's hangup or
                    // `busy`/`no-answer` after `<Reject>` is no call to return.
                    tracing::debug!(profile, caller = %mask(&ev.caller), call = %logged_call(&ev.call_id, ev.caller.as_ref()), "Rejected call ended; not a missed call.");
                } else {
                    // A missed call: kept for call-back in the metrics and log (masked).
                    metrics::counter!("hotline_missed_calls_total", "profile" => profile.to_string())
                        .increment(1);
                    tracing::info!(profile, caller = %mask(&ev.caller), call = %logged_call(&ev.call_id, ev.caller.as_ref()), "Missed call recorded for call-back.");
                }
                Outcome::Nothing
            } else if citizen_calls && *duration_s >= state.cfg.derived.long_call.as_secs() {
                // Agents often save the call's matter after hanging up: whether the call had
                // one is judged once they have had the time to (see `settle_long_call`).
                if let Some(id) = &caller {
                    tokio::spawn(settle_long_call(
                        state.pipeline.clone(),
                        profile.to_string(),
                        ev.call_id.clone(),
                        id.clone(),
                        *duration_s,
                        late_registration_grace(state.cfg.derived.long_call),
                    ));
                }
                Outcome::Nothing
            } else {
                Outcome::Nothing
            }
        }
        CallKind::Flagged { agent, reason } => match &caller {
            Some(id) => {
                // The agent's id and words stay in the evidence: an abusive caller is not told
                // who reported them, nor anything else the agent wrote (a neighbour's name and
                // address); the public reason names the kind of offence only.
                let evidence = format!("话务员{agent}标记：{reason}");
                let public = crate::pipeline::nuisance::flagged_offence(reason);
                pipeline
                    .ladder
                    .offence(id, "cti", &evidence, &public, 2, t)
                    .await?
            }
            None => Outcome::Nothing,
        },
        CallKind::Answered | CallKind::Other(_) => Outcome::Nothing,
    };
    // The record only lets a platform's retry of this step get the same answer. A store that
    // cannot write it (a damaged store at start-up, a full disk) must not fail the step: a 503
    // makes Twilio hang up, before the IVR could hear an emergency. The step is answered; a
    // retry of it is decided afresh.
    // On several nodes the same step's retry may have been decided on another at the same
    // moment: the answer remembered first stands, so the platform hears one.
    let outcome = match store.remember(key, outcome.clone(), t).await {
        Ok(earlier) => earlier.unwrap_or(outcome),
        Err(e) => {
            unremembered(profile, ev, &caller, &e);
            outcome
        }
    };
    Ok(decision_of(state, outcome))
}

/// How long after a long call ends its matter may still be registered before the call counts
/// as an offence: agents finish the order after the caller hangs up (after-call work, usually
/// a few minutes). Never longer than what counts as a long call (`nuisance.long_call`).
const LATE_REGISTRATION_GRACE: Duration = Duration::from_secs(15 * 60);

/// The grace for a hotline whose long calls start at `long_call`.
fn late_registration_grace(long_call: Duration) -> Duration {
    long_call.min(LATE_REGISTRATION_GRACE)
}

/// Where a call that carried a matter (an order registered for it) or an emergency (a step
/// redirected, or advised to dial) is marked, so that its length is no offence.
///
/// Keyed by the call id alone, not by profile: agents of a Twilio or Zammad hotline register
/// matters through a generic profile with the platform's call id (Twilio's `CallSid`), and
/// that registration belongs to the call whichever profile reported its end. Call ids are the
/// platforms' own (`CallSid` is globally unique; Zammad and PBX ids are unique on their
/// platform): two platforms that happen to use the same id for two calls at once can only
/// excuse a call that was not registered, which errs for the caller, the side a rule that
/// guesses errs on. (The `cti-matter:` prefix keeps it apart from the steps' `cti:` keys.)
fn matter_key(call_id: &str) -> String {
    format!("cti-matter:{call_id}")
}

/// Marks the call as one that named an emergency (see [`matter_key`]), after the answer: the
/// redirect itself is never held up by a store write.
fn excuse_long_call(pipeline: &Pipeline, call_id: &str, caller: Option<&Identity>, t: i64) {
    let store = pipeline.store().clone();
    let key = matter_key(call_id);
    let call = logged_call(call_id, caller);
    pipeline.background().spawn(async move {
        if let Err(e) = store.remember(key, Outcome::Nothing, t).await {
            tracing::warn!(call = %call, error = %e, "An emergency call could not be marked; a long one may count as an offence.");
        }
    });
}

/// Whether the hotline rejected this call when it rang (a suspended caller): the answer
/// remembered for its `Started` step, or, when none was kept, a suspension in force now.
/// Only asked for calls nobody answered.
async fn was_rejected(
    state: &AppState,
    profile: &str,
    ev: &CallEvent,
    caller: &Option<Identity>,
    t: i64,
) -> bool {
    let started = format!("cti:{profile}:{}", ev.started_key());
    match state.pipeline.recall(&started, t).await {
        Ok(Some(o)) => matches!(o, Outcome::Suspended { .. }),
        _ => caller.as_ref().is_some_and(|id| {
            state
                .pipeline
                .ladder
                .suspension(&id.to_string(), t)
                .is_some()
        }),
    }
}

/// A voicemail's transcription that came after the recording made its order (Twilio sends
/// the `<Record action>` first, the `transcribeCallback` when the words are ready): sent to
/// that order as a supplement, so dispatch gets the caller's words, not only the placeholder.
/// A retry of it queues nothing more (the contact's key follows the step's).
async fn late_transcription(
    state: &AppState,
    profile: &str,
    ev: &CallEvent,
    key: &str,
    order: &hotline_adapters::cti::RegisteredOrder,
    outcome: &Outcome,
    t: i64,
) -> Result<(), ApiError> {
    let (Outcome::Accepted { orders }
    | Outcome::Duplicate { orders }
    | Outcome::Attached { orders }) = outcome
    else {
        return Ok(());
    };
    let rules = state.pipeline.rules();
    let emergency = rules.emergency.check(&order.content);
    for o in orders {
        let mut body = serde_json::json!({
            "number": o.number,
            "kind": "supplement",
            "channel": "cti",
            "channel_ref": ev.call_id,
            "received_at": crate::messages::rfc3339(ev.at, state.cfg.derived.tz),
            "content": order.content,
        });
        if let Some(url) = &order.recording_url {
            body["attachments"] =
                serde_json::json!([{"kind": "recording", "url": url, "media_id": ""}]);
        }
        // The caller has hung up: an emergency in the words can only be looked at by a person,
        // and the supervisors hear of it as of any order marked for urgent review.
        let alert = emergency.as_ref().map(|r| {
            body["emergency_review"] =
                serde_json::json!({"by": "rules", "number": r.number, "rule": r.rule});
            tracing::warn!(profile, caller = %mask(&ev.caller), call = %logged_call(&ev.call_id, ev.caller.as_ref()), number = %r.number, rule = %r.rule, "A voicemail's transcription names an emergency; sent to its order for urgent review.");
            serde_json::json!({
                "order": o.number, "number": r.number, "rule": r.rule, "by": "rules",
                "sure": true, "score": null, "category": o.category, "channel": "cti",
                "identity": mask(&ev.caller),
            })
        });
        state
            .pipeline
            .supplement(&o.number, &format!("{key}:transcription"), body, alert, t)
            .await?;
    }
    Ok(())
}

/// Counts a long call with no registered matter as an offence (art. 32), `grace` after it
/// ended, unless a matter for the call was registered by then, on any node (or it named an
/// emergency: see [`matter_key`]).
///
/// The wait is in memory, on the HTTP worker's runtime: a restart (or shutdown) within the
/// grace forgets the pending judgement and the call is not counted. That errs for the caller,
/// which is the side to err on for a rule that guesses (an agent's explicit `call.flagged`
/// is recorded at once). Pending waits are few: each stands for a call that held a line for
/// at least `long_call`, which is never shorter than the grace.
async fn settle_long_call(
    pipeline: Arc<Pipeline>,
    profile: String,
    call_id: String,
    id: Identity,
    duration_s: u64,
    grace: Duration,
) {
    tokio::time::sleep(grace).await;
    let call = logged_call(&call_id, Some(&id));
    match pipeline
        .store()
        .recall(matter_key(&call_id), super::now())
        .await
    {
        Ok(Some(_)) => return,
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(profile, caller = %id.masked(), call = %call, error = %e, "Long call not judged: the store cannot tell whether a matter was registered.");
            return;
        }
    }
    let evidence = format!("通话{}分钟未登记诉求", duration_s / 60);
    match pipeline
        .ladder
        .offence(&id, "cti", &evidence, &evidence, 1, super::now())
        .await
    {
        Ok(_) => {
            tracing::info!(profile, caller = %id.masked(), call = %call, "Long call with no registered matter counted (art. 32).");
        }
        Err(e) => {
            tracing::warn!(profile, caller = %id.masked(), call = %call, error = %e, "Long call with no registered matter could not be counted.");
        }
    }
}

/// Logs (masked) and counts a step whose record could not be kept.
fn unremembered(profile: &str, ev: &CallEvent, caller: &Option<Identity>, e: &StoreError) {
    metrics::counter!("hotline_cti_unremembered_total", "profile" => profile.to_string(), "event" => ev.kind.tag())
        .increment(1);
    tracing::warn!(profile, caller = %mask(caller), call = %logged_call(&ev.call_id, caller.as_ref()), event = ev.kind.tag(), error = %e, "Call step answered without its retry record (store unavailable).");
}

/// The emergencies an IVR step names: (in the speech, in the keys), each as what matched and
/// the redirect. Both are looked at: doubted speech must not hide keys (see `decide`).
type Hit = Option<(String, Redirect)>;
fn emergency_hits(rules: &RuleSet, digits: Option<&str>, speech: Option<&str>) -> (Hit, Hit) {
    let said = speech.and_then(|s| rules.emergency.check(s).map(|r| (s.to_string(), r)));
    let keyed = digits.and_then(|d| rules.emergency.check_digits(d).map(|r| (d.to_string(), r)));
    (said, keyed)
}

/// A call's id as it is logged: the caller's own value masked in it ([`Identity::mask_in`],
/// as WeChat and Weibo log their `channel_ref`), then any other number, e-mail address or
/// number in Chinese numerals ([`hotline_adapters::mask::scrub_text`]). A platform may build
/// its call ids from the caller's number or address (`in-13955556666-zhang.san@example.com`),
/// and until 2026-12-07 they were logged as sent, at INFO and WARN (the privacy review's F6).
/// Opaque ids (UUIDs, Twilio's `CallSid`) are not masked as ids, so an operator can still find
/// the call on the platform; a run of 7 or more digits in one is.
fn logged_call(call_id: &str, caller: Option<&Identity>) -> String {
    let call = caller.map_or_else(|| call_id.to_string(), |c| c.mask_in(call_id));
    hotline_adapters::mask::scrub_text(&call)
}

fn mask(id: &Option<Identity>) -> String {
    id.as_ref()
        .map(|i| i.masked())
        .unwrap_or_else(|| "withheld".into())
}

/// Maps the channel-neutral decision to what the telephony platform should do.
fn to_call(d: &Decision, transfer: bool, ev: &CallEvent) -> CallDecision {
    match &d.outcome {
        Outcome::Redirected { number, .. } if transfer => CallDecision::Transfer {
            number: number.clone(),
            text: d.message.clone(),
        },
        Outcome::Redirected { number, .. } => CallDecision::Say {
            number: number.clone(),
            text: d.message.clone(),
        },
        Outcome::Suspended { .. } => CallDecision::Reject {
            text: d.message.clone(),
        },
        Outcome::Throttled { .. } => CallDecision::Continue {
            orders: Vec::new(),
            text: Some(d.message.clone()),
            flag: Some(
                if matches!(ev.kind, CallKind::Started) {
                    "over_quota"
                } else {
                    "warned"
                }
                .into(),
            ),
        },
        // A registered matter that names an emergency is an order for urgent review; the
        // agent desk gets the flag, and the text begins with the number to dial.
        Outcome::Accepted { orders }
        | Outcome::Duplicate { orders }
        | Outcome::Attached { orders } => CallDecision::Continue {
            orders: orders.iter().map(|o| o.number.clone()).collect(),
            text: Some(d.message.clone()),
            flag: orders
                .iter()
                .any(|o| o.suspected_emergency.is_some())
                .then(|| "possible_emergency".into()),
        },
        Outcome::Informed { .. } => CallDecision::Continue {
            orders: Vec::new(),
            text: Some(d.message.clone()),
            flag: Some("outside_remit".into()),
        },
        Outcome::Advised { .. } => CallDecision::Continue {
            orders: Vec::new(),
            text: Some(d.message.clone()),
            flag: Some("possible_emergency".into()),
        },
        Outcome::Nothing => CallDecision::proceed(),
    }
}

/// `*2026112901000123` (prefix + 12 to 24 digits, an optional trailing `#`) -> the number.
fn status_digits(digits: &str, prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return None;
    }
    let rest = digits.trim().strip_prefix(prefix)?.trim_end_matches('#');
    (hotline_adapters::query::ORDER_NUMBER_DIGITS.contains(&rest.len())
        && rest.bytes().all(|b| b.is_ascii_digit()))
    .then(|| rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::status_digits;

    #[test]
    fn status_queries_need_the_prefix_and_a_whole_number() {
        assert_eq!(
            status_digits("*2026112901000123#", "*").as_deref(),
            Some("2026112901000123")
        );
        assert_eq!(status_digits("2026112901000123", "*"), None);
        assert_eq!(status_digits("*119", "*"), None);
        assert_eq!(status_digits("*20261129010001x3", "*"), None);
        assert_eq!(status_digits("*2026112901000123", ""), None);
    }
}
