//! `POST /v1/web/submissions`: the web portal form.

use super::error::ApiError;
use super::{client_ip, now, read_body, AppState};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use hotline_adapters::{web as form, AdapterError, Outcome, Submission};
use serde_json::json;

/// Takes a web form submission (JSON, urlencoded or multipart) and answers per the contract.
pub async fn submit(
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let media = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    // Refuse an unsupported type before reading the body.
    match media.as_deref() {
        Some("application/json" | "application/x-www-form-urlencoded" | "multipart/form-data") => {}
        other => {
            return Err(AdapterError::UnsupportedMediaType(other.unwrap_or_default().into()).into())
        }
    }
    let body = read_body(
        &req,
        payload,
        state.cfg.server.body_limit,
        state.cfg.derived.request_timeout,
    )
    .await?;
    let ip = client_ip(&req, &state.trusted_proxies);
    let t = now();
    let sub = if media.as_deref() == Some("multipart/form-data") {
        let fields = multipart_fields(&req, body).await?;
        form::from_fields(fields, &ip, t)?
    } else {
        form::parse(media.as_deref(), &body, &ip, t)?
    };
    answer(&state, sub, t).await
}

/// Runs a web submission through the pipeline and renders the contract's JSON answer.
async fn answer(state: &AppState, sub: Submission, t: i64) -> Result<HttpResponse, ApiError> {
    let d = state
        .pipeline
        .submit(sub, t, crate::pipeline::Policy::WEBHOOK)
        .await?;
    // The status word is a static label: a `String` label cost an allocation and a hash of it in
    // the metrics registry on every submission.
    let (status, label, mut body) = match &d.outcome {
        Outcome::Accepted { orders } => {
            (StatusCode::ACCEPTED, "accepted", json!({"orders": orders}))
        }
        Outcome::Duplicate { orders } | Outcome::Attached { orders } => {
            (StatusCode::OK, "duplicate", json!({"orders": orders}))
        }
        Outcome::Redirected { number, reason } => (
            StatusCode::OK,
            "redirected",
            json!({"redirect": {"number": number, "reason": reason}}),
        ),
        // Only a caller's speech is advised (see `Outcome::Advised`); should a form ever be,
        // the contract's redirect shape still names the number.
        Outcome::Advised { number } => (
            StatusCode::OK,
            "redirected",
            json!({"redirect": {"number": number, "reason": ""}}),
        ),
        Outcome::Throttled {
            retry_after,
            warnings_left,
        } => (
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            json!({"retry_after": retry_after, "warnings_left": warnings_left}),
        ),
        Outcome::Suspended { until, reason } => (
            StatusCode::FORBIDDEN,
            "suspended",
            json!({"until": until, "reason": reason}),
        ),
        Outcome::Informed => (StatusCode::OK, "informed", json!({})),
        Outcome::Nothing => (StatusCode::OK, "accepted", json!({"orders": []})),
    };
    body["status"] = json!(label);
    body["message"] = json!(d.message);
    metrics::counter!("hotline_submissions_total", "channel" => "web", "status" => label)
        .increment(1);
    let mut resp = HttpResponse::build(status);
    if let Outcome::Throttled { retry_after, .. } = &d.outcome {
        resp.insert_header(("Retry-After", retry_after.to_string()));
    }
    Ok(resp.json(body))
}

/// Reads multipart text fields. File parts are refused: the gateway stores references, not
/// media, so a page must upload elsewhere and send a link.
async fn multipart_fields(
    req: &HttpRequest,
    body: Bytes,
) -> Result<Vec<(String, String)>, ApiError> {
    let stream =
        futures_util::stream::once(async move { Ok::<_, actix_web::error::PayloadError>(body) });
    let mut mp = actix_multipart::Multipart::new(req.headers(), stream);
    let mut fields = Vec::new();
    while let Some(field) = mp.next().await {
        let mut field = field.map_err(|e| AdapterError::InvalidForm(e.to_string()))?;
        let (name, is_file) = match field.content_disposition() {
            Some(cd) => (
                cd.get_name().unwrap_or_default().to_string(),
                cd.get_filename().is_some(),
            ),
            None => (String::new(), false),
        };
        if is_file {
            return Err(AdapterError::InvalidField {
                field: "attachments",
                reason: "file uploads are not accepted here; send a link instead".into(),
            }
            .into());
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| AdapterError::InvalidForm(e.to_string()))?;
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value).map_err(|_| AdapterError::InvalidUtf8)?;
        fields.push((name, value));
    }
    Ok(fields)
}
