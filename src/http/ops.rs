//! Operations endpoints: health, readiness, metrics, OpenAPI, order status (art. 11).

use super::error::ApiError;
use super::{now, AppState};
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use std::sync::atomic::Ordering;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: the store takes writes, the relay loop is alive, and no other node runs under
/// this one's `server.node_id` (`node_error` `node_id_in_use`: the balancer should send the
/// other one the traffic; this one still answers, emergencies included, and is ready again once
/// it holds its id, see [`crate::store::node_lock`]). Whether dispatch answers
/// is not readiness, nor are rule files replaced by their compiled-in defaults at start-up:
/// both are shown, not judged. In an outage the outbox keeps the orders, and a broken rule file
/// is usually on every node (a shared volume): a 503 for either would take every node out of
/// the balancer, emergency redirects with them, which is what serving the defaults is for.
pub async fn readyz(state: Data<AppState>) -> HttpResponse {
    let store = state.store.probe_write().await;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let relay_alive = state.relay.alive(now_ms);
    let breaker_open = state.relay.breaker_open.load(Ordering::Relaxed);
    let rules = state.pipeline.rules();
    let rules_ok = rules.problems.is_empty();
    // Rule problems name files: /readyz answers anyone, so a fixed code, and the detail in the
    // log (at start-up and at each reload that finds them).
    let rules_error = (!rules_ok).then_some("rules_invalid");
    // Only a clash seen is judged: a claim unknown because the database cannot be reached is
    // the store's reason already, and the lock must never be what takes a working node out.
    let node_ok = state.node.now() != crate::store::node_lock::Claim::Clash;
    if store.is_ok() && relay_alive && node_ok {
        return HttpResponse::Ok().json(json!({
            "status": "ready",
            "breaker_open": breaker_open,
            "rules": rules_ok,
            "rules_error": rules_error,
        }));
    }
    // The store's error names files and hosts: the same fixed-code treatment.
    let store_error = store.err().map(|e| {
        tracing::warn!(error = %e, relay_alive, "Not ready: the store does not take writes.");
        match e {
            crate::store::StoreError::Unavailable(_) => "store_unavailable",
            crate::store::StoreError::Internal(_) => "store_internal",
        }
    });
    if !relay_alive {
        tracing::warn!(
            silent_for_ms = state.relay.silent_for_ms(now_ms),
            "Not ready: the relay loop has shown no sign of life for too long (stuck)."
        );
    }
    if !node_ok {
        tracing::warn!(
            node_id = state.cfg.server.node_id,
            "Not ready: another node runs with this server.node_id."
        );
    }
    HttpResponse::ServiceUnavailable()
        .insert_header(("Retry-After", super::error::RETRY_AFTER_S.to_string()))
        .json(json!({
            "status": "unavailable",
            "store": store_error.is_none(),
            "store_error": store_error,
            "node": node_ok,
            "node_error": (!node_ok).then_some("node_id_in_use"),
            "relay": relay_alive,
            "breaker_open": breaker_open,
            "rules": rules_ok,
            "rules_error": rules_error,
        }))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: Data<AppState>) -> HttpResponse {
    if let Ok(stats) = state.store.outbox_stats(now()).await {
        metrics::gauge!("hotline_outbox_depth").set(stats.depth as f64);
        metrics::gauge!("hotline_outbox_dead").set(stats.dead as f64);
        metrics::gauge!("hotline_outbox_oldest_age_seconds")
            .set(stats.oldest_age_s.unwrap_or(0) as f64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// `GET /openapi.json`
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::document())
}

/// `GET /v1/orders/{number}`: status for the submitter. The number is the key (as with a
/// parcel); the answer never holds personal data. Look-ups are capped per client address
/// (`web.lookup_quota`), and a confidential order is answered with its status word alone.
pub async fn order_status(
    req: HttpRequest,
    number: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // Counted first, whatever the number: order numbers are sequential (day, node, sequence),
    // and a loop over a day's range, mostly 404s, listed every order of the day until
    // 2026-12-07 (the privacy review's F4). A 404 spends the budget as a hit does.
    let ip = super::client_ip(&req, &state.trusted_proxies);
    if let Some(retry_after) = state.pipeline.over_lookup_cap(&ip).await {
        return Err(ApiError::TooManyLookups { retry_after });
    }
    let number = number.into_inner();
    if number.is_empty() || number.len() > 24 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::NotFound("order"));
    }
    // Dispatch and the store are asked together, and the store is waited for at most the
    // reply budget (as in `status_sentence`): dispatch's answer is the status, and the store
    // adds only the category and when it was received. Until 2026-12-07 the store was asked
    // first with no time limit, so a locked orders table held the answer for as long as the
    // lock (9 s in the review) although dispatch answered at once.
    let deadline = tokio::time::Instant::now() + super::social::REPLY_BUDGET;
    let (remote, local) = tokio::join!(
        dispatch_status(&state, &number),
        tokio::time::timeout_at(deadline, state.store.order_state(number.clone()))
    );
    let local = match (local, &remote) {
        (Ok(local), _) => local?,
        (Err(_), Some(_)) => {
            status_late("order");
            None
        }
        (Err(_), None) => {
            status_late("order");
            return Err(ApiError::Unavailable(
                "the order's record could not be read in time".into(),
            ));
        }
    };
    let rfc = |s: i64| crate::messages::rfc3339(s, state.cfg.derived.tz);
    // A confidential order (art. 29) is answered with its status word alone, to anyone asking
    // by its number: its category (`report`), times and handling unit told a stranger walking
    // the numbers that someone filed a confidential report, and when (until 2026-12-07).
    if let Some(l) = local.as_ref().filter(|l| l.is_confidential()) {
        return Ok(HttpResponse::Ok().json(json!({
            "number": number,
            "status": confidential_status(remote.as_ref(), l),
        })));
    }
    match (remote, local) {
        (Some(r), local) => {
            let sent = local.as_ref().map(|l| l.sent.as_str());
            let (status, unit, updated_at) = submitter_view(&r, rfc, sent);
            Ok(HttpResponse::Ok().json(json!({
                "number": number,
                "status": status,
                "unit": unit,
                "updated_at": updated_at,
                "category": local.as_ref().map(|l| l.category.clone()),
                "received_at": local.as_ref().map(|l| rfc(l.created_at)),
            })))
        }
        (None, Some(l)) => Ok(HttpResponse::Ok().json(json!({
            "number": number,
            "status": if l.delivery == "delivered" { "forwarded" } else { "received" },
            "unit": null,
            "category": l.category,
            "received_at": rfc(l.created_at),
            "forwarded_at": l.delivered_at.map(rfc),
        }))),
        (None, None) => Err(ApiError::NotFound("order")),
    }
}

/// A confidential order's status: a status word dispatch APIs use as it came (`processing`:
/// it can hold nothing personal), else the gateway's own word (`received`, `forwarded`);
/// never dispatch's free text, which names units, people and times.
fn confidential_status(remote: Option<&serde_json::Value>, l: &crate::store::OrderState) -> String {
    let own = if l.delivery == "delivered" {
        "forwarded"
    } else {
        "received"
    };
    remote
        .and_then(|r| r.get("status")?.as_str())
        .filter(|s| known_status(s))
        .unwrap_or(own)
        .trim()
        .to_string()
}

/// What a submitter is shown of dispatch's answer `r` about the order `sent` (the JSON posted
/// to dispatch, when the gateway holds the order): its status, handling unit and time. The
/// answer is public and unauthenticated, so only text passes (anything else dispatch sends in
/// those fields, an object or a list, is shown as null); a time in RFC 3339 is shown like every
/// other time in the answer (the hotline's zone, to the second), other text as [`shown`] has it.
fn submitter_view(
    r: &serde_json::Value,
    rfc: impl Fn(i64) -> String,
    sent: Option<&str>,
) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let text = |k: &str| r.get(k).and_then(|v| v.as_str());
    let shown = |k: &str| {
        text(k)
            .and_then(|s| shown(s, sent))
            .map_or(serde_json::Value::Null, |s| json!(s))
    };
    let updated_at = text("updated_at")
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| json!(rfc(t.timestamp())))
        .unwrap_or_else(|| shown("updated_at"));
    // A status word dispatch APIs use (`processing`) holds nothing personal, so it is shown
    // even without the order's data to mask with.
    let status = match text("status") {
        Some(s) if known_status(s) && !has_data(sent) => json!(s),
        _ => shown("status"),
    };
    (status, shown("unit"), updated_at)
}

/// Dispatch's text about an order (its status, the handling unit) as anyone with the order's
/// number may see it: dispatch cores write who handles the matter and who reported it into
/// their statuses ("网格员…已联系反映人…（1391…）"), and the contract says the status answer
/// never holds personal data. So the order's own submitter data is masked wherever it stands
/// (as in a dead letter), then any part of it ([`crate::order_text::mask_order_text`]), then numbers, e-mail
/// addresses and openids; order numbers and dates stay readable. Until 2026-12-07 the text was shown as it came. `None` without the order's
/// data to mask with (the store did not answer in time, the order is not the gateway's, or
/// `storage.retain` has cleared its body): then only a known status word is shown, never
/// dispatch's free text, in which a name or an address would pass unmasked (the merge review
/// of 2026-12-07 saw `孙八` and `上城区解放路9号` in full once the body was pruned).
fn shown(text: &str, sent: Option<&str>) -> Option<String> {
    let sent = sent.filter(|s| has_data(Some(s)))?;
    let masked = crate::order_text::mask_order_text(text, sent);
    let masked = mask_staff_names(&masked);
    Some(hotline_adapters::mask::scrub_text_and_ids(&masked))
}

/// Words that name a person's role right before the person's name, as dispatch cores write
/// them (`网格员张伟`, `联系人：李四`): the hotline's staff and the people a matter is about.
/// The longest first, so `社区网格员` is not read as `网格员` after `社区`.
const ROLES_BEFORE_NAME: [&str; 24] = [
    "工作人员",
    "社区干部",
    "网格员",
    "经办人",
    "承办人",
    "办理人",
    "处理人",
    "联系人",
    "负责人",
    "责任人",
    "话务员",
    "接线员",
    "督办员",
    "回访员",
    "维修工",
    "维修员",
    "管理员",
    "反映人",
    "来电人",
    "投诉人",
    "举报人",
    "诉求人",
    "当事人",
    "民警",
];

/// Titles said after a surname (`王师傅`, `李科长`): a surname and a title are what staff say
/// at the door, and stay.
const TITLES: [&str; 20] = [
    "师傅", "科长", "主任", "书记", "队长", "经理", "局长", "处长", "所长", "站长", "组长", "部长",
    "警官", "老师", "同志", "先生", "女士", "阿姨", "大姐", "大爷",
];

/// Characters that, after a role word, begin what is not a name (`网格员已上门`,
/// `联系人电话`, `工作人员将于`), and that end a name before them (`张伟已联系`): verbs,
/// prepositions and particles dispatch text puts there. A given name may hold one of them
/// (`李向东`), and then the rest of it shows; the common ones are not here.
const NOT_A_NAME: &str = "已于在将对到与和及的为称表联上电回前去来说并经会告打致向把被给等均也都再又就了是不没\
                          未按根依督协随即们现核处进入多次员人系由派请找叫姓仍暂尚该此这那需应可能以从通均现";

/// Whether `c` is a Chinese character (CJK Unified Ideographs and their Extension A).
fn han(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c) || ('\u{3400}'..='\u{4DBF}').contains(&c)
}

/// Whether `c` may be a character of a name.
fn name_char(c: char) -> bool {
    han(c) && !NOT_A_NAME.contains(c)
}

/// Two-character surnames, kept whole (`欧阳**`).
const COMPOUND_SURNAMES: [&str; 12] = [
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容", "夏侯", "公孙", "司徒", "端木",
];

/// `text` with the names and work numbers of the people dispatch writes about masked to their
/// surname (`网格员张伟` → `网格员张**`, `张三（工号1234）` → `张**（工号****）`); a
/// surname with a title (`王师傅`, `联系人李科长`) stays. Written down on 2026-12-07 (the
/// review's staff names): whoever has an order's number may ask its status, and that is not
/// always the person who filed it (numbers are sequential), so the answer names a role and a
/// surname, what a citizen needs to recognise who came, and never a whole name or a work
/// number, by which a member of staff can be found and a submitter's neighbour identified. A
/// citizen who needs more (a complaint about the handler) calls 12345, which knows who asks.
/// A name is found after a role word ([`ROLES_BEFORE_NAME`]) or before `工号`; one written
/// with neither (`张伟已上门`) cannot be told from other words and shows.
fn mask_staff_names(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let starts = |at: usize, word: &str| {
        let mut word = word.chars();
        let rest = chars.get(at..).unwrap_or_default();
        rest.iter().zip(word.by_ref()).all(|(a, b)| *a == b) && word.next().is_none()
    };
    let number_at = |at: usize| starts(at, "工号") || starts(at, "警号");
    let title_at = |at: usize| TITLES.iter().any(|t| starts(at, t));
    let name_at = |at: usize| chars.get(at).is_some_and(|c| name_char(*c));
    let space = |c: &char| matches!(c, '：' | ':' | ' ' | '\u{3000}');
    let mut out: Vec<char> = Vec::with_capacity(chars.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        if let Some(role) = ROLES_BEFORE_NAME.iter().find(|r| starts(i, r)) {
            i += role.chars().count();
            out.extend(role.chars());
            while let Some(c) = chars.get(i).filter(|c| space(c)) {
                out.push(*c);
                i += 1;
            }
            let surname = match COMPOUND_SURNAMES.iter().find(|s| starts(i, s)) {
                Some(s) => s.chars().count(),
                None => 1,
            };
            let given = i + surname;
            // A compound surname is one even when its first character begins words (`上官`).
            if (surname == 2 || name_at(i)) && name_at(given) && !title_at(given) {
                out.extend(&chars[i..given]);
                out.extend(['*', '*']);
                i = given + 1;
                // A second given character, unless a title, a work number or a verb follows.
                if name_at(i) && !title_at(i) && !number_at(i) {
                    i += 1;
                }
            }
            continue;
        }
        let paren = matches!(chars[i], '（' | '(') && number_at(i + 1);
        if number_at(i) || paren {
            // The name before it (spaces between): up to three characters back, the first
            // kept as its surname.
            let spaces = out.iter().rev().take_while(|c| space(c)).count();
            let end = out.len() - spaces;
            let back = out[..end]
                .iter()
                .rev()
                .take(3)
                .take_while(|c| name_char(**c))
                .count();
            if back >= 2 {
                let tail: Vec<char> = out.split_off(end);
                out.truncate(end - back + 1);
                out.extend(['*', '*']);
                out.extend(tail);
            }
            let after = if paren { i + 3 } else { i + 2 };
            out.extend(&chars[i..after]);
            i = after;
            while let Some(c) = chars.get(i).filter(|c| space(c)) {
                out.push(*c);
                i += 1;
            }
            let digits = chars[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || ('０'..='９').contains(*c))
                .count();
            if digits > 0 {
                out.extend(['*', '*', '*', '*']);
                i += digits;
            }
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out.into_iter().collect()
}

/// Whether `sent` holds the order as it was posted (not absent, not cleared by the retention).
fn has_data(sent: Option<&str>) -> bool {
    sent.is_some_and(|s| !s.trim().is_empty())
}

/// Whether dispatch's status is one of the words dispatch APIs use ([`status_words`]).
fn known_status(status: &str) -> bool {
    status_words(status) != status
}

/// Asks the dispatch API for an order's status; `None` when unknown there or unreachable.
async fn dispatch_status(state: &AppState, number: &str) -> Option<serde_json::Value> {
    if state.cfg.dispatch.url.is_empty() {
        return None;
    }
    // Built like the relay's addresses: `dispatch.url` may carry a query (an API key), which
    // appending the path as text put in front of it (`?key=K/work-orders/N`): every look-up
    // then missed and the citizen saw only the gateway's own status.
    let url = crate::relay::dispatch_url(
        &reqwest::Url::parse(&state.cfg.dispatch.url).ok()?,
        &format!("/work-orders/{number}"),
    );
    // A short cache: citizens refresh, and the dispatch core should not feel it.
    if let Ok(cache) = state.status_cache.lock() {
        if let Some((at, v)) = cache.get(number) {
            if at.elapsed() < STATUS_TTL {
                return Some(v.clone());
            }
        }
    }
    let fetch = {
        let request = state.http.get(url);
        async move {
            let resp = request.send().await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            resp.json::<serde_json::Value>().await.ok()
        }
    };
    // On the shared runtime, like the store's connections: reqwest keeps the connection it
    // makes on the runtime that asked, and an HTTP worker's runtime stops at a SIGTERM under
    // the other workers' lookups still using it (see `crate::shared_io_runtime`).
    let v = crate::on_shared_io(fetch).await.flatten()?;
    if let Ok(mut cache) = state.status_cache.lock() {
        if cache.len() >= STATUS_CACHE_CAP {
            cache.retain(|_, (at, _)| at.elapsed() < STATUS_TTL);
            if cache.len() >= STATUS_CACHE_CAP {
                cache.clear();
            }
        }
        cache.insert(number.to_string(), (std::time::Instant::now(), v.clone()));
    }
    Some(v)
}

/// How long a status from dispatch is reused.
pub const STATUS_TTL: std::time::Duration = std::time::Duration::from_secs(30);
const STATUS_CACHE_CAP: usize = 10_000;

/// The statuses of an identity's most recent orders, one sentence (WeChat menu), by
/// `deadline` like [`status_sentence`].
pub async fn recent_status_sentence(
    state: &AppState,
    identity: &str,
    now: i64,
    deadline: tokio::time::Instant,
) -> String {
    let recent =
        state
            .store
            .recent_orders_of(identity.to_string(), String::new(), now - 90 * 24 * 3600);
    let recent = match tokio::time::timeout_at(deadline, recent).await {
        Ok(Ok(recent)) => recent,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "A follower's recent orders could not be read for the status menu.");
            return LATER_ALL.into();
        }
        Err(_) => {
            status_late("menu");
            return LATER_ALL.into();
        }
    };
    if recent.is_empty() {
        return "您近期没有提交过诉求。如需查询，请发送“查询 工单号”。".into();
    }
    // Asked together: one after another, three slow answers from dispatch (2 s each at most)
    // would miss WeChat's 5 s reply deadline, and the citizen would see an error instead.
    let parts = futures_util::future::join_all(
        recent
            .iter()
            .take(3)
            .map(|o| status_sentence(state, &o.number, deadline)),
    )
    .await;
    parts.join("\n")
}

/// The answer when a follower's orders cannot be read in time.
const LATER_ALL: &str = "暂时无法查询您的工单，请稍后再查询。";

/// Counts and logs a status reply that ran out of its time (`what`: `number`, `menu` or
/// `order`, the web lookup).
fn status_late(what: &'static str) {
    metrics::counter!("hotline_status_budget_exceeded_total", "query" => what).increment(1);
    tracing::warn!(
        query = what,
        "A status reply ran out of its reply budget; answered with what was known."
    );
}

/// [`status_sentence`] for a query by number from `who` (an identity: `wechat:…`, `weibo:…`,
/// `phone:…`), counted first against the sender's look-up budget
/// ([`crate::pipeline::Pipeline::over_query_cap`]): over it, the wait instead of the status,
/// and neither dispatch nor the store is asked.
pub async fn queried_status_sentence(
    state: &AppState,
    who: &str,
    number: &str,
    deadline: tokio::time::Instant,
) -> String {
    if let Some(retry_after) = state.pipeline.over_query_cap(who).await {
        return crate::messages::queries_throttled(retry_after);
    }
    status_sentence(state, number, deadline).await
}

/// A one-sentence status for WeChat, Weibo and the phone (`查询 <number>`), ready by
/// `deadline`: the platforms show their own error for a reply later than theirs (WeChat 5 s),
/// and the store may be slow (a locked table on PostgreSQL, a pool waiting for a connection)
/// or dispatch may be. Both are asked together: dispatch's answer is the status, and the
/// store's record is the order's personal data to mask in it ([`shown`]), and says whether
/// the gateway has the order, for when dispatch has none. At the deadline the reply is what is
/// known by then: dispatch's status (scrubbed of numbers, addresses and ids only), else the
/// gateway's own record, else a sentence asking to try again later.
pub async fn status_sentence(
    state: &AppState,
    number: &str,
    deadline: tokio::time::Instant,
) -> String {
    let remote = dispatch_status(state, number);
    let local = state.store.order_state(number.to_string());
    tokio::pin!(remote, local);
    let mut remote_done = false;
    let mut remote_answer: Option<serde_json::Value> = None;
    let mut known: Option<LocalAnswer> = None;
    let sent = |l: &LocalAnswer| {
        l.as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map(|o| o.sent.clone())
    };
    // Read from the stored flag as well as the body: the retention clears the body.
    let confidential = |l: &LocalAnswer| matches!(l, Ok(Some(o)) if o.is_confidential());
    loop {
        tokio::select! {
            biased;
            r = &mut remote, if !remote_done => {
                remote_done = true;
                match (r, known.take()) {
                    (Some(r), Some(l)) => {
                        return remote_sentence(number, &r, sent(&l).as_deref(), confidential(&l))
                    }
                    (None, Some(l)) => return local_sentence(number, l),
                    // The store's record is waited for: it holds what to mask.
                    (r, None) => remote_answer = r,
                }
            }
            l = &mut local, if known.is_none() => {
                if remote_done {
                    return match &remote_answer {
                        Some(r) => remote_sentence(number, r, sent(&l).as_deref(), confidential(&l)),
                        None => local_sentence(number, l),
                    };
                }
                known = Some(l);
            }
            () = tokio::time::sleep_until(deadline) => {
                status_late("number");
                if let Some(r) = &remote_answer {
                    return remote_sentence(number, r, None, false);
                }
                return match known {
                    Some(Ok(Some(l))) => local_sentence(number, Ok(Some(l))),
                    _ => format!("工单{number}的办理进度暂时无法查询，请稍后再查询。"),
                };
            }
        }
    }
}

/// A dispatch status as a person hears it: the sentence is read to a caller by a Mandarin voice
/// and shown to followers, so the common machine words of dispatch APIs (and dispatch-sim's)
/// are said in Chinese; anything else (a dispatch that already answers in Chinese) as it is.
fn status_words(status: &str) -> &str {
    match status
        .trim()
        .to_ascii_lowercase()
        .replace(['-', ' '], "_")
        .as_str()
    {
        "received" | "accepted" | "new" | "created" | "registered" => "已受理",
        "assigned" | "dispatched" | "forwarded" => "已派单",
        "processing" | "in_progress" | "handling" | "open" | "pending" => "办理中",
        "resolved" | "done" | "completed" | "finished" => "已办结",
        "closed" => "已关闭",
        "returned" | "rejected" => "已退回",
        "suspended" | "on_hold" => "暂缓办理",
        _ => status,
    }
}

/// What the store said about an order.
type LocalAnswer = Result<Option<crate::store::OrderState>, crate::store::StoreError>;

/// The status sentence from dispatch's answer about the order `sent` ([`shown`]);
/// `confidential` as the store's record says ([`crate::store::OrderState::is_confidential`]).
fn remote_sentence(
    number: &str,
    r: &serde_json::Value,
    sent: Option<&str>,
    confidential: bool,
) -> String {
    // A confidential order: the status word alone, as on the web (see `order_status`).
    if confidential {
        let status = r["status"]
            .as_str()
            .filter(|s| known_status(s))
            .map_or("办理中", status_words);
        return format!("工单{number}：{status}");
    }
    let status = match r["status"].as_str() {
        None => "处理中".to_string(),
        Some(s) => shown(status_words(s), sent).unwrap_or_else(|| {
            if known_status(s) {
                status_words(s).to_string()
            } else {
                "办理中".to_string()
            }
        }),
    };
    let unit = r["unit"]
        .as_str()
        .and_then(|u| shown(u, sent))
        .unwrap_or_default();
    format!(
        "工单{number}：{status}{}",
        if unit.is_empty() {
            String::new()
        } else {
            format!("，承办单位：{unit}")
        }
    )
}

/// The status sentence from the gateway's own record, when dispatch has none. A store that
/// could not be read does not say "no such order": the number may well be right.
fn local_sentence(number: &str, l: LocalAnswer) -> String {
    match l {
        Ok(Some(l)) if l.delivery == "delivered" => format!("工单{number}已转交办理，请耐心等待。"),
        Ok(Some(_)) => format!("工单{number}已受理，正在转交办理。"),
        Ok(None) => format!("未查询到工单{number}，请核对工单号。"),
        Err(e) => {
            tracing::warn!(error = %e, "An order's status could not be read from the store.");
            format!("工单{number}的办理进度暂时无法查询，请稍后再查询。")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order_text::{division_prefix, mask_house_numbers};

    /// An order's record as the store gives it, with `sent` as its body and `confidential`
    /// as its stored flag.
    fn record(sent: &str, confidential: bool) -> crate::store::OrderState {
        crate::store::OrderState {
            number: "2026120701000001".into(),
            category: "report".into(),
            delivery: "delivered".into(),
            created_at: 1_796_600_000,
            delivered_at: Some(1_796_600_001),
            sent: sent.into(),
            confidential,
        }
    }

    /// A confidential order asked for by `查询 <number>` (WeChat, Weibo, the IVR) is told its
    /// status word alone, as on the web: no unit, and no dispatch free text (until 2026-12-07
    /// the unit and dispatch's text were said for it as for any order).
    #[test]
    fn a_confidential_orders_sentence_is_its_status_word_alone() {
        let sent = r#"{"category":"report","confidential":true,"content":"举报"}"#;
        let said = |r: &serde_json::Value, l: &crate::store::OrderState| {
            remote_sentence("2026120701000001", r, Some(&l.sent), l.is_confidential())
        };
        let r = json!({"status": "processing", "unit": "市纪委监委"});
        assert_eq!(
            said(&r, &record(sent, true)),
            "工单2026120701000001：办理中"
        );
        let r = json!({"status": "已转市纪委监委核查", "unit": "市纪委监委"});
        assert_eq!(
            said(&r, &record(sent, true)),
            "工单2026120701000001：办理中"
        );
        // Not confidential: the unit is said.
        let open = r#"{"category":"complaint","confidential":false,"content":"路灯"}"#;
        let r = json!({"status": "processing", "unit": "市城管局"});
        assert!(said(&r, &record(open, false)).contains("市城管局"));
    }

    /// An order is confidential when its stored flag says so, whatever is left of its body (the
    /// retention clears it: until 2026-12-07 the body was the flag's only place, and such an
    /// order was then answered with its unit), or when its body says so (an order stored before
    /// the flag had a column of its own, while its body is kept).
    #[test]
    fn an_order_is_confidential_by_its_stored_flag_or_its_body() {
        let flagged = r#"{"category":"report","confidential":true,"content":"举报"}"#;
        // Cleared by the retention: the stored flag alone.
        assert!(record("", true).is_confidential());
        assert!(!record("", false).is_confidential());
        // Stored before the column: the body.
        assert!(record(flagged, false).is_confidential());
        assert!(record(flagged, true).is_confidential());
        // Text in the matter that reads like the flag is not it.
        let lookalike = r#"{"confidential":false,"content":"\"confidential\":true"}"#;
        assert!(!record(lookalike, false).is_confidential());
        // The sentence of a cleared confidential order names no unit.
        let r = json!({"status": "processing", "unit": "市纪委监委"});
        let l = record("", true);
        assert_eq!(
            remote_sentence("2026120701000001", &r, Some(&l.sent), l.is_confidential()),
            "工单2026120701000001：办理中"
        );
    }

    /// The IVR read `工单…：processing` to a Mandarin voice (until 2026-12-07).
    #[test]
    fn a_dispatch_status_is_said_in_chinese() {
        let said = |status: &str| {
            remote_sentence(
                "2026120701000001",
                &json!({"status": status}),
                Some("{}"),
                false,
            )
        };
        assert_eq!(said("processing"), "工单2026120701000001：办理中");
        assert_eq!(said("In Progress"), "工单2026120701000001：办理中");
        assert_eq!(said("resolved"), "工单2026120701000001：已办结");
        assert_eq!(said("已转办"), "工单2026120701000001：已转办");
        assert_eq!(
            remote_sentence("1", &json!({"unit": "市住建局"}), Some("{}"), false),
            "工单1：处理中，承办单位：市住建局"
        );
    }

    #[test]
    fn a_submitter_sees_only_text_from_dispatch() {
        let rfc = |t: i64| format!("t{t}");
        let view = submitter_view(
            &json!({"status": "办理中", "unit": "市住建局", "updated_at": "2026-12-07T10:00:00Z",
                    "phone": "13912345678"}),
            rfc,
            Some("{}"),
        );
        assert_eq!(
            view,
            (json!("办理中"), json!("市住建局"), json!("t1796637600"))
        );
        // Whatever else dispatch puts in those fields is not passed on to anyone who asks.
        let view = submitter_view(
            &json!({"status": {"code": 3, "handler": {"phone": "13912345678"}},
                    "unit": ["a", "b"], "updated_at": 1796637600}),
            rfc,
            None,
        );
        assert_eq!(view, (json!(null), json!(null), json!(null)));
        let view = submitter_view(&json!({"updated_at": "yesterday"}), rfc, Some("{}"));
        assert_eq!(view, (json!(null), json!(null), json!("yesterday")));
    }

    /// The review of 2026-12-07 (finding 3): the address's road and number written without
    /// its district (`南京路77号` of `和平区南京路77号`) came back in the clear, in the status
    /// and in the unit, to anyone walking the sequential order numbers.
    #[test]
    fn a_status_shows_no_part_of_the_orders_address_or_matter() {
        let sent = r#"{"content":"隔壁李四家（南京路79号）每晚噪音扰民","submitter":{
            "identity":"phone:13912345678","name":"张三丰","phone":"13912345678"},
            "location":{"address":"和平区南京路77号"}}"#;
        let r = json!({
            "status": "网格员王五已上门，南京路77号路灯已修复，联系人张先生 139 1234 5678，住址和平区南京路77号，已约谈李四家住户",
            "unit": "南京路77号物业"});
        let (status, unit, _) = submitter_view(&r, |t| format!("t{t}"), Some(sent));
        let said = remote_sentence("2026120801046141", &r, Some(sent), false);
        for shown in [status.to_string(), unit.to_string(), said.clone()] {
            for raw in ["南京路", "77", "李四家", "1234"] {
                assert!(!shown.contains(raw), "{raw}: {shown}");
            }
        }
        assert_eq!(unit, "***物业");
        let status = status.as_str().unwrap_or_default();
        assert!(
            // The grid worker's role and surname (the staff names' choice of 2026-12-07).
            status.starts_with("网格员王**已上门，***路灯已修复"),
            "what the citizen needs stays: {status}"
        );
        assert!(
            said.starts_with("工单2026120801046141：网格员王**已上门"),
            "{said}"
        );
    }

    /// Timing, not a test: `cargo test --lib -- --ignored punctuation_timing --nocapture`. A
    /// status of 1,000 `，` against a matter of 4,000: the shared-run search once looked for a
    /// run from every character, each the length of both texts.
    #[test]
    #[ignore]
    fn punctuation_timing() {
        let sent = serde_json::json!({"content": "，".repeat(4000)}).to_string();
        let text = "，".repeat(1000);
        let t0 = std::time::Instant::now();
        let masked = crate::order_text::mask_order_text(&text, &sent);
        println!(
            "mask_order_text, 1,000 against 4,000 punctuation marks: {:.1} ms ({} chars)",
            t0.elapsed().as_secs_f64() * 1e3,
            masked.chars().count()
        );
    }

    /// The address's leading divisions stay readable (a unit named after the district is what
    /// the citizen needs); its road does not, nor any house or room number, whoever's it is.
    /// Order numbers and dates stay.
    #[test]
    fn a_district_stays_readable_and_house_numbers_do_not() {
        let sent =
            r#"{"submitter":{"name":"孙八"},"location":{"address":"杭州市上城区解放路9号"}}"#;
        let view = |status: &str, unit: &str| {
            let r = json!({"status": status, "unit": unit});
            let (s, u, _) = submitter_view(&r, |t| format!("t{t}"), Some(sent));
            (
                s.as_str().unwrap_or_default().to_string(),
                u.as_str().unwrap_or_default().to_string(),
            )
        };
        assert_eq!(
            view(
                "已联系解放路11号住户，已并入工单2026120707784682，预计2026-12-10办结",
                "上城区城管局"
            ),
            (
                "已联系***号住户，已并入工单2026120707784682，预计2026-12-10办结".to_string(),
                "上城区城管局".to_string()
            )
        );
        assert_eq!(
            view("已转杭州市上城区", "杭州市城管局").0,
            "已转杭州市上城区"
        );
        assert_eq!(
            mask_house_numbers("3栋2单元501室，１２号"),
            "***栋***单元***室，***号"
        );
        assert_eq!(mask_house_numbers("预计12月8日办结"), "预计12月8日办结");
        // A housing estate (`小区`) is not a division.
        let estate: Vec<char> = "阳光小区5栋".chars().collect();
        assert!(division_prefix(&estate).is_empty());
    }

    /// The review's status (2026-12-07): dispatch wrote the handler's and the submitter's
    /// contact into its status, and anyone with the order number read it, on the web and in a
    /// `查询` reply.
    #[test]
    fn a_status_from_dispatch_shows_no_personal_data() {
        let sent = r#"{"number":"2026120707784681","submitter":{"identity":"phone:13512340001",
            "name":"孙八","phone":"13512340001","email":"sun.ba@example.cn"},
            "location":{"address":"上城区解放路9号"}}"#;
        let r = json!({
            "status": "已派单，网格员张伟（13957100001）已联系反映人孙八（13512340001，sun.ba@example.cn），地址上城区解放路9号，已并入工单2026120707784682，预计2026-12-10办结",
            "unit": "上城区城管局 联系人李科长 ０５７１－８７０００００１",
            "updated_at": "2026-12-07T10:00:00Z"});
        let (status, unit, _) = submitter_view(&r, |t| format!("t{t}"), Some(sent));
        assert_eq!(
            status,
            "已派单，网格员张**（139****0001）已联系反映人孙*（135****0001，s***@example.cn），地址***，已并入工单2026120707784682，预计2026-12-10办结"
        );
        assert_eq!(unit, "上城区城管局 联系人李科长 ０５７*－****０００１");
        let said = remote_sentence("2026120707784681", &r, Some(sent), false);
        assert!(said.starts_with("工单2026120707784681：已派单"), "{said}");
        for raw in [
            "孙八",
            "13512340001",
            "13957100001",
            "sun.ba",
            "解放路",
            "８７０",
        ] {
            assert!(!said.contains(raw), "{raw}: {said}");
        }
        // Without the order's data to mask with (not the gateway's order, a store too slow,
        // or a body `storage.retain` cleared): only a known status word, never the free text.
        for sent in [None, Some("")] {
            assert_eq!(
                remote_sentence("2026120707784681", &r, sent, false),
                "工单2026120707784681：办理中"
            );
            let (status, unit, _) = submitter_view(&r, |t| format!("t{t}"), sent);
            assert_eq!(
                (status, unit),
                (serde_json::Value::Null, serde_json::Value::Null)
            );
            let known = json!({"status": "processing", "unit": "上城区城管局"});
            assert_eq!(
                remote_sentence("2026120707784681", &known, sent, false),
                "工单2026120707784681：办理中"
            );
            let (status, unit, _) = submitter_view(&known, |t| format!("t{t}"), sent);
            assert_eq!(
                (status, unit),
                (json!("processing"), serde_json::Value::Null)
            );
        }
    }

    /// The review's gap (2026-12-07): house numbers written in Chinese numerals or full-width
    /// digits were shown; they are masked like Arabic ones, the district before them stays.
    #[test]
    fn house_numbers_in_chinese_numerals_are_masked() {
        for (text, masked) in [
            ("和平区南京路七十七号", "和平区南京路***号"),
            ("三单元五〇二室", "***单元***室"),
            ("十二栋", "***栋"),
            ("二十三号楼", "***号楼"),
            ("７７号", "***号"),
            ("解放路壹佰零捌号", "解放路***号"),
            ("幸福里三号", "幸福里***号"),
            ("五号院", "***号院"),
            ("一百二十弄三号", "***弄***号"),
        ] {
            assert_eq!(mask_house_numbers(text), masked, "{text}");
        }
        // A day is a date, not a house number; a numeral that is no house number stays.
        for text in [
            "预计十二月八号办结",
            "预计12月8号办结",
            "已合并为一单办理",
            "二十三名居民联名",
            // A day, a window, a line, an exit: `N号` in numerals after no road (the review of
            // this session's code found these masked).
            "维修人员八号上门，预计十五号办结",
            "请到三号窗口办理",
            "乘地铁三号线到一号口",
        ] {
            assert_eq!(mask_house_numbers(text), text);
        }
        // Through the whole status, with the order's own address elsewhere.
        let sent =
            r#"{"submitter":{"name":"孙八"},"location":{"address":"杭州市上城区解放路9号"}}"#;
        let r = json!({"status": "已联系和平区南京路七十七号三单元五〇二室住户，十二栋二十三号楼、７７号同查"});
        let (status, _, _) = submitter_view(&r, |t| format!("t{t}"), Some(sent));
        assert_eq!(
            status,
            "已联系和平区南京路***号***单元***室住户，***栋***号楼、***号同查"
        );
    }

    /// Staff names (written down 2026-12-07): a role and a surname are shown, never a whole
    /// name or a work number; a surname with a title stays.
    #[test]
    fn staff_names_show_a_role_and_a_surname_only() {
        for (text, masked) in [
            ("网格员张伟已上门", "网格员张**已上门"),
            ("社区网格员欧阳娜娜已联系", "社区网格员欧阳**已联系"),
            ("经办人：李小明，电话", "经办人：李**，电话"),
            ("维修工王五到场", "维修工王**到场"),
            ("张三（工号1234）已处理", "张**（工号****）已处理"),
            ("已联系张三丰(工号：A0023)", "已联系张**(工号：****)"),
            ("维修师傅张三 工号 ８８１２", "维修师傅** 工号 ****"),
            ("民警赵六警号012345到场", "民警赵**警号****到场"),
        ] {
            assert_eq!(mask_staff_names(text), masked, "{text}");
        }
        for text in [
            "王师傅已上门维修",
            "联系人李科长",
            "网格员已上门核实",
            "工作人员将于明日回访",
            "联系人电话已核实",
            "反映人孙*",
        ] {
            assert_eq!(mask_staff_names(text), text);
        }
        let sent = r#"{"submitter":{"name":"孙八"},"location":{"address":"上城区解放路9号"}}"#;
        let r = json!({"status": "已派单，处理人王伟（工号1234）", "unit": "上城区城管局 联系人李科长"});
        let (status, unit, _) = submitter_view(&r, |t| format!("t{t}"), Some(sent));
        assert_eq!(
            (status, unit),
            (
                json!("已派单，处理人王**（工号****）"),
                json!("上城区城管局 联系人李科长")
            )
        );
        assert_eq!(
            remote_sentence("1", &r, Some(sent), false),
            "工单1：已派单，处理人王**（工号****），承办单位：上城区城管局 联系人李科长"
        );
    }
}
