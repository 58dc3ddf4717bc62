//! `POST /v1/web/submissions`: the web portal form.

use super::error::ApiError;
use super::{client_ip, now, read_body, AppState};
use crate::pipeline::Decision;
use actix_web::http::StatusCode;
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use hotline_adapters::web::FormError;
use hotline_adapters::{web as form, AdapterError, Outcome, Submission};
use serde_json::json;

/// Takes a web form submission (JSON, urlencoded or multipart) and answers per the contract.
pub async fn submit(
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = (!content_type.is_empty()).then(|| media_type(content_type));
    // Refuse an unsupported type before reading the body.
    match media.as_deref() {
        Some("application/json" | "application/x-www-form-urlencoded" | "multipart/form-data") => {}
        other => {
            return Err(AdapterError::UnsupportedMediaType(other.unwrap_or_default().into()).into())
        }
    }
    let charset = param(content_type, "charset");
    let (limit, deadline) = (
        state.cfg.server.body_limit,
        state.cfg.derived.request_timeout,
    );
    let ip = client_ip(&req, &state.trusted_proxies);
    let parsed = if media.as_deref() == Some("multipart/form-data") {
        let parts = multipart_parts(&req, content_type, payload, limit, deadline).await?;
        form::from_parts(parts, charset, &ip, now())
    } else {
        let body = read_body(&req, payload, limit, deadline).await?;
        form::parse(media.as_deref(), charset, &body, &ip, now())
    };
    let t = now();
    let sub = match parsed {
        Ok(sub) => sub,
        Err(FormError { error, readable }) => {
            // A form refused for a field (an optional one mistyped, a photo attached) whose
            // text can be read is still heard by the emergency rules: a person in danger is
            // told the number, not to correct an e-mail address first (art. 17(1)). A possible
            // emergency (doubted or suspected) keeps the refusal, the number to dial first.
            let Some(readable) = readable else {
                return Err(error.into());
            };
            return match state.pipeline.redirect_if_emergency(&readable, t) {
                Ok(d) => Ok(render(d)),
                Err(Some(number)) => Err(ApiError::AdviceFirst { number, error }),
                Err(None) => Err(error.into()),
            };
        }
    };
    answer(&state, sub, t).await
}

/// The media type of a Content-Type value, lower-cased, without parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A parameter of a Content-Type value (`charset`), its name matched without regard to case.
fn param<'a>(content_type: &'a str, name: &str) -> Option<&'a str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// Runs a web submission through the pipeline and renders the contract's JSON answer.
async fn answer(state: &AppState, sub: Submission, t: i64) -> Result<HttpResponse, ApiError> {
    let d = state
        .pipeline
        .submit(sub, t, crate::pipeline::Policy::WEBHOOK)
        .await?;
    Ok(render(d))
}

/// The contract's JSON answer to a decision.
fn render(d: Decision) -> HttpResponse {
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
        // A possible emergency whose order the store could not take (`Pipeline::unsaved`):
        // no order was made, so the contract's redirect shape, with the number to dial.
        Outcome::Advised { number } => (
            StatusCode::OK,
            "redirected",
            json!({"redirect": {"number": number, "reason": "可能是紧急情况"}}),
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
        Outcome::Informed { .. } => (StatusCode::OK, "informed", json!({})),
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
    resp.json(body)
}

/// Most bytes a multipart form may carry in all, its file parts included: a phone's photo
/// is 1–5 MB. Past it the form is refused (413) without its text being read.
pub const MULTIPART_CAP: usize = 16 * 1024 * 1024;

/// Reads multipart parts as they stream in, within `deadline` (else 408), keeping at most
/// `limit` bytes of text parts (else 413) and one byte of each file part: the adapter skips an
/// empty file input and refuses a file (the gateway stores links, not media), and one byte says
/// which it is. So a form with a photo of a few MB still reaches the emergency rules through
/// the refusal's readable text (`submit`); until 2026-12-07 the whole body was read first under
/// `body_limit` (64 KB) and such a form got 413 before anything was checked, even
/// "楼下饭店着火了" with a photo of the fire. The whole body is bounded by [`MULTIPART_CAP`].
///
/// The deadline also bounds the parser: until 2026-12-07 a body cut off before its closing
/// boundary (ending in `\r`, `\r\n` or `\r\n--ab`) made actix-multipart 0.7 wait for bytes that
/// would never come (upstream actix/actix-web#3202), so the request hung for good, holding its
/// connection, and a handful of them took every slot of a worker, emergencies and ringing calls
/// included. actix-multipart 0.8.2 and later answer such a body with an error (400
/// `invalid_form`; 0.8.5 is in use); the deadline stays, so that no other stall of the parser
/// can hold a connection. An empty `boundary=` is no multipart at all (400 `invalid_form`).
async fn multipart_parts<S>(
    req: &HttpRequest,
    content_type: &str,
    payload: S,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<Vec<form::Part>, ApiError>
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>
        + 'static,
{
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    if param(content_type, "boundary").is_none_or(str::is_empty) {
        return Err(AdapterError::InvalidForm("multipart without a boundary".into()).into());
    }
    let over_cap = || {
        ApiError::Adapter(AdapterError::TooLarge {
            limit: MULTIPART_CAP,
        })
    };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MULTIPART_CAP as u64) {
        return Err(over_cap());
    }
    // The stream stops with an error past the cap; the flag tells that error from others.
    let capped = Arc::new(AtomicBool::new(false));
    let seen = AtomicUsize::new(0);
    let flag = capped.clone();
    let stream = payload.map(move |chunk| {
        let chunk = chunk?;
        if seen.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len() > MULTIPART_CAP {
            flag.store(true, Ordering::Relaxed);
            return Err(actix_web::error::PayloadError::Overflow);
        }
        Ok(chunk)
    });
    let failed = |e: actix_multipart::MultipartError| {
        if capped.load(Ordering::Relaxed) {
            over_cap()
        } else {
            ApiError::Adapter(AdapterError::InvalidForm(e.to_string()))
        }
    };
    let read = async {
        let mut mp = actix_multipart::Multipart::new(req.headers(), stream);
        let mut parts = Vec::new();
        let mut kept = 0usize;
        while let Some(field) = mp.next().await {
            let mut field = field.map_err(failed)?;
            let (name, file) = match field.content_disposition() {
                Some(cd) => (
                    cd.get_name().unwrap_or_default().to_string(),
                    cd.get_filename().is_some(),
                ),
                None => (String::new(), false),
            };
            let charset = field
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .and_then(|ct| param(ct, "charset"))
                .map(str::to_string);
            let mut value = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(failed)?;
                if file {
                    // Whether it has bytes is all the adapter asks; the rest is dropped.
                    if value.is_empty() {
                        value.extend(chunk.first());
                    }
                    continue;
                }
                kept += chunk.len();
                if kept > limit {
                    return Err(ApiError::Adapter(AdapterError::TooLarge { limit }));
                }
                value.extend_from_slice(&chunk);
            }
            parts.push(form::Part {
                name,
                file,
                charset,
                value,
            });
        }
        Ok(parts)
    };
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or(Err(ApiError::RequestTimeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use actix_web::web::Bytes;
    use std::time::Duration;

    const CT: &str = "multipart/form-data; boundary=abc";

    fn once(
        body: Bytes,
    ) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> {
        futures_util::stream::once(async move { Ok(body) })
    }

    /// A multipart parse that stalls is answered at the deadline (408 `request_timeout`, as for
    /// a body that does not arrive in time), not left waiting: the stream here never ends, the
    /// way actix-multipart 0.7 waited forever on a body cut off after a `\r` (until 2026-12-07).
    /// The test's own bound is the outer timeout.
    #[actix_web::test]
    async fn a_stalled_multipart_parse_is_refused_at_the_deadline() {
        let req = TestRequest::default()
            .insert_header(("content-type", CT))
            .to_http_request();
        let head = Bytes::from_static(
            b"--abc\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\nhello\r",
        );
        let stream = once(head).chain(futures_util::stream::pending());
        let parse = multipart_parts(&req, CT, stream, 65_536, Duration::from_millis(50));
        match tokio::time::timeout(Duration::from_secs(10), parse).await {
            Ok(Err(e)) => assert_eq!(e.code(), "request_timeout"),
            Ok(Ok(parts)) => panic!("parsed {} parts of a stalled body", parts.len()),
            Err(_) => panic!("the parse was still waiting after 10 s"),
        }
    }

    /// A body cut off before its closing boundary, all of it arrived, is refused at once
    /// (actix-multipart 0.8.2 and later), and so is an empty `boundary=`.
    #[actix_web::test]
    async fn a_body_cut_off_before_its_closing_boundary_is_a_bad_form() {
        let req = TestRequest::default()
            .insert_header(("content-type", CT))
            .to_http_request();
        let part = "--abc\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\nhello";
        for end in ["\r", "\r\n", "\r\n-", "\r\n--ab"] {
            let body = Bytes::from(format!("{part}{end}"));
            let parse = multipart_parts(&req, CT, once(body), 65_536, Duration::from_secs(10));
            match tokio::time::timeout(Duration::from_secs(20), parse).await {
                Ok(Err(e)) => assert_eq!(e.code(), "invalid_form", "{end:?}"),
                Ok(Ok(parts)) => panic!("{end:?}: parsed {} parts", parts.len()),
                Err(_) => panic!("{end:?}: still waiting after 20 s"),
            }
        }
        let body = Bytes::from(format!("{part}\r\n--abc--\r\n"));
        let empty = multipart_parts(
            &req,
            "multipart/form-data; boundary=",
            once(body),
            65_536,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(empty.err().map(|e| e.code()), Some("invalid_form"));
    }

    /// A part larger than actix-multipart 0.8's 64 KiB parse buffer is read whole (an operator
    /// may raise `server.body_limit` past it; the body comes as one chunk).
    #[actix_web::test]
    async fn a_part_past_the_parser_buffer_is_read_whole() {
        let req = TestRequest::default()
            .insert_header(("content-type", CT))
            .to_http_request();
        let text = "灯".repeat(70_000);
        let body = format!(
            "--abc\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\n{text}\r\n--abc--\r\n"
        );
        let parts = multipart_parts(
            &req,
            CT,
            once(body.into()),
            1 << 20,
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].value, text.as_bytes());
    }
}
