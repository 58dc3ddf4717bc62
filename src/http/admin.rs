//! The operator API under `/admin/v1` (bearer token): outbox, callers, rules.

use super::error::ApiError;
use super::{now, read_body, require_admin, AppState};
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use hotline_adapters::Identity;
use serde::Deserialize;
use serde_json::json;

/// Dead letters shown at once unless `?limit=` says otherwise, and the most.
const DEAD_PAGE: usize = 100;
const DEAD_PAGE_MAX: usize = 1000;

/// `GET /admin/v1/outbox`: depth, oldest age, dead letters (newest first, a page at a time:
/// `?limit=` up to 1000, `?before=KEY` for those parked before that dead letter; `next_before`
/// names the next page while there may be one), breaker.
pub async fn outbox(req: HttpRequest, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Page {
        limit: Option<usize>,
        before: Option<String>,
    }
    let page: Page = serde_urlencoded::from_str(req.query_string())
        .ok()
        .filter(|p: &Page| p.limit.is_none_or(|l| (1..=DEAD_PAGE_MAX).contains(&l)))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "invalid_query",
                format!("expected ?limit=1..{DEAD_PAGE_MAX} and/or ?before=KEY"),
            )
        })?;
    let limit = page.limit.unwrap_or(DEAD_PAGE);
    let (stats, dead_letters) = futures_util::try_join!(
        state.store.outbox_stats(now()),
        state.store.dead_letters(limit, page.before)
    )?;
    let next_before = (dead_letters.len() == limit)
        .then(|| dead_letters.last().map(|d| d.key.clone()))
        .flatten();
    let breaker = state
        .relay
        .breaker_open
        .load(std::sync::atomic::Ordering::Relaxed);
    Ok(HttpResponse::Ok().json(json!({
        "depth": stats.depth,
        "oldest_age_s": stats.oldest_age_s,
        "dead": stats.dead,
        "dead_letters": dead_letters,
        "next_before": next_before,
        "breaker_open": breaker,
    })))
}

/// `POST /admin/v1/outbox/dead/replay`: puts every dead letter the body's filter takes back in
/// the queue (`{}` takes them all; `status`, `kind`, `since`, `until` narrow it), after a mass
/// refusal such as a wrong `dispatch.secret` (every order 401). A body is required, so that
/// replaying everything is said, not implied.
pub async fn replay_dead(
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        /// Read as a JSON number: `401.0` is the integer 401 to JSON (and to the document's
        /// `"type": "integer"`), and was refused 400 until 2026-12-07.
        status: Option<f64>,
        kind: Option<String>,
        since: Option<String>,
        until: Option<String>,
    }
    const EXAMPLE: &str = r#"{} or {"status": 401, "kind": "order", "since": "2026-12-07T08:00:00+08:00", "until": "…"}"#;
    let body: Body = json_body(&req, payload, &state, EXAMPLE).await?;
    let time = |t: Option<String>| -> Result<Option<i64>, ApiError> {
        t.map(|t| {
            chrono::DateTime::parse_from_rfc3339(&t)
                .map(|t| t.timestamp())
                .map_err(|_| {
                    ApiError::BadRequest(
                        "invalid_body",
                        format!(
                            "since and until are RFC 3339 times; expected a body like {EXAMPLE}"
                        ),
                    )
                })
        })
        .transpose()
    };
    // A status no HTTP answer has matches no dead letter: said, as the document's range says,
    // rather than a replay of nothing (until 2026-12-07 `0` or `700` answered `count: 0`).
    let status = match body.status {
        None => None,
        Some(s) if s.fract() == 0.0 && (100.0..=599.0).contains(&s) => Some(s as u16),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "invalid_body",
                "status is an HTTP status, 100 to 599".into(),
            ))
        }
    };
    if body
        .kind
        .as_deref()
        .is_some_and(|k| k != "order" && k != "contact")
    {
        return Err(ApiError::BadRequest(
            "invalid_body",
            "kind is \"order\" or \"contact\"".into(),
        ));
    }
    let filter = crate::store::DeadFilter {
        status,
        kind: body.kind,
        since: time(body.since)?,
        until: time(body.until)?,
    };
    let count = state
        .store
        .retry_dead_matching(filter.clone(), chrono::Utc::now().timestamp_millis())
        .await?;
    tracing::info!(count, ?filter, "Dead letters replayed by an operator.");
    Ok(HttpResponse::Accepted().json(json!({"status": "requeued", "count": count})))
}

/// `POST /admin/v1/outbox/dead/{key}/retry`: puts a dead letter back in the queue.
pub async fn retry_dead(
    req: HttpRequest,
    key: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let key = key.into_inner();
    if state
        .store
        .retry_dead(key.clone(), chrono::Utc::now().timestamp_millis())
        .await?
    {
        tracing::info!(%key, "Dead letter replayed by an operator.");
        Ok(HttpResponse::Accepted().json(json!({"status": "requeued", "key": key})))
    } else {
        Err(ApiError::NotFound("dead letter"))
    }
}

/// Largest admin body.
const ADMIN_BODY_LIMIT: usize = 64 * 1024;

/// The JSON body of an admin call, or a 400 that shows the expected shape. JSON whatever the
/// Content-Type says: an operator's `curl -d '{...}'` sends `x-www-form-urlencoded`, and
/// refusing it would only teach people to add a header. Call it after [`require_admin`]: an
/// extractor read the body before the token was checked, so anyone could hold a handler with
/// a body sent a byte at a time.
async fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: Payload,
    state: &AppState,
    example: &str,
) -> Result<T, ApiError> {
    let body = read_body(
        req,
        payload,
        ADMIN_BODY_LIMIT,
        state.cfg.derived.request_timeout,
    )
    .await?;
    serde_json::from_slice(&body).map_err(|_| {
        ApiError::BadRequest(
            "invalid_body",
            format!("expected a JSON body like {example}"),
        )
    })
}

/// Unix seconds as RFC 3339 in the hotline's time zone.
fn rfc(state: &AppState, t: i64) -> String {
    crate::messages::rfc3339(t, state.cfg.derived.tz)
}

/// The parts of a caller record as JSON, shared by the caller view and the evidence packet.
/// The view lists the warnings that count (since the last lift's reset); the packet lists all,
/// those a lift reset marked `"before_reset": true`.
fn record_json(
    state: &AppState,
    rec: &crate::store::CallerRecord,
    all_warnings: bool,
) -> serde_json::Value {
    let reset = rec.reset_at.unwrap_or(i64::MIN);
    let warnings: Vec<_> = rec
        .warnings
        .iter()
        .filter(|w| all_warnings || w.at > reset)
        .map(|w| {
            let mut v =
                json!({"at": rfc(state, w.at), "channel": w.channel, "evidence": w.evidence});
            if all_warnings {
                v["before_reset"] = json!(w.at <= reset);
            }
            v
        })
        .collect();
    json!({
        "warnings": warnings,
        "suspensions": rec.suspensions.iter().map(|s| suspension_json(state, s)).collect::<Vec<_>>(),
        "contacts": rec.orders.iter().map(|(n, c, content, at)| json!({"kind": "order", "number": n, "category": c, "content": content, "at": rfc(state, *at)})).collect::<Vec<_>>(),
        "redirects": rec.redirects.iter().map(|r| json!({"number": r.number, "reason": r.reason, "rule": r.rule, "channel": r.channel, "text": r.text, "at": rfc(state, r.at)})).collect::<Vec<_>>(),
    })
}

fn suspension_json(state: &AppState, s: &crate::store::Suspension) -> serde_json::Value {
    json!({"start": rfc(state, s.start), "until": rfc(state, s.until), "reason": s.reason,
           "decided_by": s.decided_by, "lifted_at": s.lifted_at.map(|t| rfc(state, t)),
           // Where it holds: `web` for the web form's own (its phone is only typed), else `all`.
           "scope": s.scope().as_str(),
           // What started it (the offence's words, or the operator's note): operators only,
           // here and in the evidence packet; `""` when none was kept.
           "evidence": s.evidence})
}

fn identity(raw: &str) -> Result<Identity, ApiError> {
    Identity::parse(raw).ok_or_else(|| {
        ApiError::BadRequest(
            "invalid_identity",
            "identity must be KIND:VALUE, e.g. phone:13800000000".into(),
        )
    })
}

/// `GET /admin/v1/callers/{identity}`: warnings, suspensions, recent contacts.
pub async fn caller(
    req: HttpRequest,
    id: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let id = identity(&id)?;
    let t = now();
    let ladder = &state.pipeline.ladder;
    let canonical = ladder.canonical(&id.to_string());
    let rec = state.store.caller_record(canonical.clone()).await?;
    // The one for every channel first; else the web form's own (which refuses only the form).
    let active = ladder.suspension_shown(&id.to_string(), t);
    let mut view = record_json(&state, &rec, false);
    view["identity"] = json!(id.to_string());
    view["ladder_of"] = json!(canonical);
    view["linked"] = json!(ladder.linked_to(&canonical));
    view["allowed"] = json!(ladder.is_allowed(&id.to_string()));
    view["suspension"] = active
        .as_ref()
        .map(|s| suspension_json(&state, s))
        .unwrap_or(serde_json::Value::Null);
    Ok(HttpResponse::Ok().json(view))
}

/// Body of `PUT .../suspension`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuspendBody {
    /// e.g. `24h`.
    pub duration: String,
    /// Why (shown to the person).
    pub reason: String,
    /// What the operator knows of it, for operators and the police packet only (the caller
    /// view's and evidence packet's suspension `evidence`): never shown to the person, nor in
    /// events or mail. Optional.
    #[serde(default)]
    pub note: Option<String>,
}

/// The longest operator's note on a suspension, in characters.
const NOTE_MAX: usize = 2000;

/// `PUT /admin/v1/callers/{identity}/suspension`: suspend now.
pub async fn suspend(
    req: HttpRequest,
    id: Path<String>,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let id = identity(&id)?;
    let body: SuspendBody = json_body(
        &req,
        payload,
        &state,
        r#"{"duration": "24h", "reason": "...", "note": "... (optional, operators only)"}"#,
    )
    .await?;
    let d = crate::config::parse_duration(&body.duration)
        .and_then(|d| match d.is_zero() {
            true => Err("a suspension must be longer than zero".to_string()),
            false => Ok(d),
        })
        .map_err(|e| ApiError::BadRequest("invalid_duration", e))?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::BadRequest(
            "invalid_reason",
            "a reason of 1 to 500 characters is required".into(),
        ));
    }
    // The reason is what the person hears and what events and supervisors' mail carry: a
    // phone number, e-mail or openid an operator wrote into it is masked, as in an agent's
    // flag.
    let reason = hotline_adapters::mask::scrub_text_and_ids(reason);
    // The note is kept as written: only operators read it, and the evidence packet it goes
    // into is unmasked by design (art. 32 para. 3).
    let note = body.note.as_deref().map(str::trim).unwrap_or_default();
    if note.chars().count() > NOTE_MAX {
        return Err(ApiError::BadRequest(
            "invalid_note",
            format!("a note is at most {NOTE_MAX} characters"),
        ));
    }
    let s = state
        .pipeline
        .ladder
        .suspend(&id, Some(d), reason, note.to_string(), "operator", now())
        .await?;
    Ok(HttpResponse::Ok().json(
        json!({"identity": id.to_string(), "until": rfc(&state, s.until), "reason": s.reason}),
    ))
}

/// `DELETE /admin/v1/callers/{identity}/suspension`: lift, reset warnings and quota.
pub async fn lift(
    req: HttpRequest,
    id: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let id = identity(&id)?;
    let was = state.pipeline.ladder.lift(&id, now()).await?;
    tracing::info!(identity = %id.masked(), was_suspended = was, "Suspension lifted by an operator.");
    Ok(HttpResponse::Ok().json(json!({"identity": id.to_string(), "lifted": was})))
}

/// `PUT /admin/v1/callers/{identity}/allow`: never throttle this identity, on every node,
/// until an operator takes it off (`DELETE`).
pub async fn allow(
    req: HttpRequest,
    id: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    set_allowed(req, id, state, true).await
}

/// `DELETE /admin/v1/callers/{identity}/allow`: takes an identity off the operators' allow
/// list. One in `nuisance.allow` stays allowed (`"allowed": true` in the answer).
pub async fn disallow(
    req: HttpRequest,
    id: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    set_allowed(req, id, state, false).await
}

async fn set_allowed(
    req: HttpRequest,
    id: Path<String>,
    state: Data<AppState>,
    allowed: bool,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let id = identity(&id)?;
    let ladder = &state.pipeline.ladder;
    ladder.allow(&id, allowed, now()).await?;
    tracing::info!(identity = %id.masked(), allowed, "Allow list changed by an operator.");
    let now_allowed = ladder.is_allowed(&id.to_string());
    Ok(HttpResponse::Ok().json(json!({"identity": id.to_string(), "allowed": now_allowed})))
}

/// `POST /admin/v1/rules/reload`: reloads rule files; a broken file keeps the old rules.
/// Only on this node (as SIGHUP): on several nodes, each is reloaded through its own address,
/// and the answer names the node (`node`) so an operator going through a balancer sees which
/// one did (until 2026-12-07 it did not say, and a fixed rule was in force on one node only).
pub async fn reload_rules(
    req: HttpRequest,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let rules = &state.cfg.rules;
    match crate::pipeline::RuleSet::load(rules.dir.as_deref(), rules.second_opinion()) {
        Ok(set) => {
            state.pipeline.set_rules(set);
            tracing::info!("Rules reloaded.");
            Ok(HttpResponse::Ok()
                .json(json!({"status": "reloaded", "node": state.cfg.server.node_id})))
        }
        Err(e) => Err(ApiError::BadRequest("invalid_rules", e)),
    }
}

/// Body of `PUT .../link`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// The identity whose ladder to share, e.g. `phone:13800000000`.
    pub to: String,
}

/// `PUT /admin/v1/callers/{identity}/link`: the same person by another channel; from now on
/// both share one ladder (quota, warnings, suspensions).
pub async fn link(
    req: HttpRequest,
    id: Path<String>,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let id = identity(&id)?;
    let body: LinkBody = json_body(&req, payload, &state, r#"{"to": "KIND:VALUE"}"#).await?;
    // The body is as asked, its value is not an identity: 422 naming the field (the path's
    // identity is part of the address, 400). Until 2026-12-07 a malformed e-mail passed
    // (`email:a@b.cn@@`), linking the caller to a ladder nobody could ever reach.
    let to = Identity::parse(&body.to).ok_or_else(|| ApiError::InvalidAdminField {
        code: "invalid_identity",
        field: "to",
        message: "to must be an identity KIND:VALUE, e.g. phone:13800000000 or \
                  email:name@example.gov.cn"
            .into(),
    })?;
    if to == id {
        return Err(ApiError::BadRequest(
            "invalid_link",
            "an identity cannot be linked to itself".into(),
        ));
    }
    let target = state.pipeline.ladder.link(&id, &to).await?;
    tracing::info!(identity = %id.masked(), "Identity linked by an operator.");
    Ok(HttpResponse::Ok().json(json!({"identity": id.to_string(), "ladder_of": target})))
}

/// `GET /admin/v1/callers/{identity}/evidence`: everything recorded about a caller and the
/// identities linked to it, unmasked, as one JSON packet for handing to the police
/// (art. 32 para. 3). Access is logged.
pub async fn evidence(
    req: HttpRequest,
    id: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let id = identity(&id)?;
    let ladder = &state.pipeline.ladder;
    let canonical = ladder.canonical(&id.to_string());
    let mut identities = vec![canonical.clone()];
    identities.extend(ladder.linked_to(&canonical));
    let mut records = Vec::new();
    for who in &identities {
        let rec = state.store.caller_record(who.clone()).await?;
        let mut r = record_json(&state, &rec, true);
        r["identity"] = json!(who);
        records.push(r);
    }
    tracing::warn!(identity = %id.masked(), "Evidence packet exported by an operator.");
    Ok(HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"evidence-{}.json\"", now()),
        ))
        .json(json!({
            "generated_at": rfc(&state, now()),
            "basis": "《天津市政务服务便民热线管理办法》第三十二条",
            "identity": id.to_string(),
            "ladder_of": canonical,
            "records": records,
        })))
}
