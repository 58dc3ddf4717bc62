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
        let pace = Pace::new(deadline, state.cfg.derived.upload_timeout);
        let parts = match multipart_parts(&req, content_type, payload, limit, pace).await {
            Ok(parts) => parts,
            Err(Cut { error, read }) => return cut_off(&state, error, read, charset, &ip),
        };
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
    answer(&state, sub, t, &ip).await
}

/// The answer to a multipart form refused after some of it was read: cut off at its deadline
/// ([`Pace`], 408), past `server.body_limit` or [`MULTIPART_CAP`] (413), or past
/// [`MULTIPART_MAX_PARTS`] (422). The text read by then goes to the emergency rules, as a
/// refused form's does (see `submit`), and is never an order. A redirect is answered as any
/// other; a possible emergency gets the refusal with the number first
/// ([`ApiError::TimeoutAdvice`], [`ApiError::AdviceFirst`]); anything else the bare refusal.
/// Until 2026-12-07 a slow upload of "楼下着火了" with a photo got the 408 alone, and a text
/// past the limit the 413 alone.
fn cut_off(
    state: &AppState,
    error: ApiError,
    read: Vec<form::Part>,
    charset: Option<&str>,
    ip: &str,
) -> Result<HttpResponse, ApiError> {
    if read.is_empty() {
        return Err(error);
    }
    let t = now();
    let readable = match form::from_parts(read, charset, ip, t) {
        Ok(sub) => sub,
        Err(FormError {
            readable: Some(sub),
            ..
        }) => *sub,
        Err(_) => return Err(error),
    };
    match state.pipeline.redirect_if_emergency(&readable, t) {
        Ok(d) => Ok(render(d)),
        Err(Some(number)) => Err(match error {
            ApiError::RequestTimeout => ApiError::TimeoutAdvice { number },
            ApiError::Adapter(error) => ApiError::AdviceFirst { number, error },
            other => other,
        }),
        Err(None) => Err(error),
    }
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

/// Runs a web submission from the client address `ip` through the pipeline (the address is
/// counted against `web.address_quota`) and renders the contract's JSON answer.
async fn answer(
    state: &AppState,
    sub: Submission,
    t: i64,
    ip: &str,
) -> Result<HttpResponse, ApiError> {
    let d = state
        .pipeline
        .submit_from(sub, t, crate::pipeline::Policy::WEBHOOK, Some(ip))
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

/// The most parts a multipart form may have (422 `invalid_field`, field `body`, past it). A
/// form the contract knows has at most some 70: its dozen fields, `items[N][content]` and
/// `items[N][category]` for 20 items, `attachments[N][url]` and `[kind]` for 10 links; a
/// page adds its submit button, `_charset_`, a CSRF token and a few file inputs. 256 leaves
/// room for fields a page adds that the gateway ignores, and bounds what a body of empty parts
/// costs (until 2026-12-07 a 16 MiB body of some 330,000 of them was kept whole: 13 MB a
/// request, and both workers busy parsing).
pub const MULTIPART_MAX_PARTS: usize = 256;

/// The least average pace, bytes a second, at which a multipart body earns time past
/// `server.request_timeout` (see [`Pace`]): a photo on a poor mobile link (GPRS, some 5 KB/s)
/// is well above it, a slowloris that trickles bytes to hold its connection well below.
pub const UPLOAD_MIN_RATE: u64 = 1024;

/// When a multipart body must have arrived by, reset by its progress. A body may pause at
/// most `server.request_timeout` between two chunks; in all it has `server.request_timeout`
/// plus a second for each [`UPLOAD_MIN_RATE`] bytes it has sent, and never more than
/// `server.upload_timeout`. So an honest upload slower than `server.request_timeout` (a 5 MB
/// photo on a slow mobile link) is read to its end, while one that stalls is cut off after
/// `server.request_timeout` of silence, and one that trickles a few bytes at a time (to hold
/// its connection, one of `server.max_connections`) after little more than
/// `server.request_timeout`, as before. Until 2026-12-07 the whole body had
/// `server.request_timeout` (5 s), and such a photo got 408 before its text was heard.
#[derive(Debug)]
pub struct Pace {
    start: tokio::time::Instant,
    /// The last chunk's arrival.
    last: std::cell::Cell<tokio::time::Instant>,
    /// Bytes received so far.
    seen: std::cell::Cell<u64>,
    idle: std::time::Duration,
    cap: std::time::Duration,
}

impl Pace {
    /// A pace starting now: `idle` is `server.request_timeout`, `cap` `server.upload_timeout`.
    pub fn new(idle: std::time::Duration, cap: std::time::Duration) -> Pace {
        let now = tokio::time::Instant::now();
        Pace {
            start: now,
            last: std::cell::Cell::new(now),
            seen: std::cell::Cell::new(0),
            idle,
            cap: cap.max(idle),
        }
    }

    /// `n` more bytes arrived.
    fn progress(&self, n: usize) {
        self.seen.set(self.seen.get().saturating_add(n as u64));
        self.last.set(tokio::time::Instant::now());
    }

    /// When the next bytes must have arrived by.
    fn deadline(&self) -> tokio::time::Instant {
        let earned = std::time::Duration::from_millis(
            self.seen.get().saturating_mul(1000) / UPLOAD_MIN_RATE,
        );
        let overall = self.start + self.idle.saturating_add(earned).min(self.cap);
        (self.last.get() + self.idle).min(overall)
    }

    /// `fut`'s output, or `None` once the deadline passes without `fut` done; bytes arriving
    /// meanwhile (a part's headers, which the parser yields only whole) move the deadline.
    async fn within<F: std::future::Future>(&self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            let by = self.deadline();
            tokio::select! {
                out = &mut fut => return Some(out),
                () = tokio::time::sleep_until(by) => {
                    if self.deadline() <= tokio::time::Instant::now() {
                        return None;
                    }
                }
            }
        }
    }
}

/// A multipart body refused before its end: why, and the parts read until then (for a body
/// cut off at its deadline, past a limit or past [`MULTIPART_MAX_PARTS`]: the text part being
/// read then too, cut where it was; none for a malformed body).
#[derive(Debug)]
pub struct Cut {
    /// The refusal.
    pub error: ApiError,
    /// The parts read, for the emergency rules (see [`cut_off`]).
    pub read: Vec<form::Part>,
}

impl From<ApiError> for Cut {
    fn from(error: ApiError) -> Self {
        Cut {
            error,
            read: Vec::new(),
        }
    }
}

/// Reads multipart parts as they stream in, at the [`Pace`] (else 408), keeping at most
/// `limit` bytes of text parts (else 413) and one byte of each file part: the adapter skips an
/// empty file input and refuses a file (the gateway stores links, not media), and one byte says
/// which it is. So a form with a photo of a few MB still reaches the emergency rules through
/// the refusal's readable text (`submit`); until 2026-12-07 the whole body was read first under
/// `body_limit` (64 KB) and such a form got 413 before anything was checked, even
/// "楼下饭店着火了" with a photo of the fire. The whole body is bounded by [`MULTIPART_CAP`].
/// A body cut off at the pace's deadline, or refused past a limit, comes back with the parts
/// read by then ([`Cut`]). A part's headers count against `limit` as its value does, and a
/// form has at most [`MULTIPART_MAX_PARTS`] parts; a part is a file as [`is_file`] says.
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
    pace: Pace,
) -> Result<Vec<form::Part>, Cut>
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>
        + 'static,
{
    use std::rc::Rc;
    if param(content_type, "boundary").is_none_or(str::is_empty) {
        return Err(ApiError::from(AdapterError::InvalidForm(
            "multipart without a boundary".into(),
        ))
        .into());
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
        return Err(over_cap().into());
    }
    // The stream stops with an error past the cap; the flag tells that error from others.
    let capped = Rc::new(std::cell::Cell::new(false));
    let pace = Rc::new(pace);
    let (flag, counter) = (capped.clone(), pace.clone());
    let stream = payload.map(move |chunk| {
        let chunk = chunk?;
        counter.progress(chunk.len());
        if counter.seen.get() > MULTIPART_CAP as u64 {
            flag.set(true);
            return Err(actix_web::error::PayloadError::Overflow);
        }
        Ok(chunk)
    });
    let mut mp = actix_multipart::Multipart::new(req.headers(), stream);
    let form_charset = param(content_type, "charset");
    let mut parts = Vec::new();
    let mut kept = 0usize;
    // A refusal after text was read: the parts read, the one being read too (its text cut at
    // a whole character; a form field labelled octet-stream that is no text a file, see
    // `settle`), go back for the emergency rules (`cut_off`).
    let cut = |error: ApiError, mut parts: Vec<form::Part>, part: Option<(form::Part, bool)>| {
        if let Some((mut part, lenient)) = part {
            if !part.file {
                // A UTF-8 sequence cut in two would make the whole form unreadable.
                if let Err(e) = std::str::from_utf8(&part.value) {
                    if e.error_len().is_none() {
                        part.value.truncate(e.valid_up_to());
                    }
                }
            }
            parts.push(settle(part, lenient, form_charset));
        }
        Cut { error, read: parts }
    };
    // Past the cap the stream stops, and the parser's error is the 413; any other is the
    // body's own fault, and nothing is checked.
    let failed = |e: actix_multipart::MultipartError,
                  parts: Vec<form::Part>,
                  part: Option<(form::Part, bool)>| {
        if capped.get() {
            cut(over_cap(), parts, part)
        } else {
            Cut::from(ApiError::Adapter(AdapterError::InvalidForm(e.to_string())))
        }
    };
    loop {
        let Some(field) = pace.within(mp.next()).await else {
            return Err(cut(ApiError::RequestTimeout, parts, None));
        };
        let Some(field) = field else {
            return Ok(parts);
        };
        let mut field = match field {
            Ok(field) => field,
            Err(e) => return Err(failed(e, parts, None)),
        };
        if parts.len() >= MULTIPART_MAX_PARTS {
            return Err(cut(too_many_parts(), parts, None));
        }
        // A part's head is kept (its name) or held while it is read (its headers): it counts
        // against the limit as a JSON body's keys do, so that a body of empty parts is bounded
        // by `limit` as one of text is (until 2026-12-07 only values counted, and 16 MiB of
        // empty parts, some 330,000, were all kept).
        kept += field
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
        if kept > limit {
            return Err(cut(
                ApiError::Adapter(AdapterError::TooLarge { limit }),
                parts,
                None,
            ));
        }
        let (name, named_file) = match field.content_disposition() {
            Some(cd) => (
                cd.get_name().unwrap_or_default().to_string(),
                cd.get_filename().is_some() || cd.get_filename_ext().is_some(),
            ),
            None => (String::new(), false),
        };
        let own_type = field
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        let charset = own_type
            .and_then(|ct| param(ct, "charset"))
            .map(str::to_string);
        let file = is_file(&name, named_file, own_type);
        // Text only while it reads as text (`settle`): a form field labelled octet-stream.
        let lenient = !file && own_type.is_some_and(|ct| media_type(ct) == OCTET_STREAM);
        // Such a part's bytes that are not UTF-8 make it a file at once, so a photo past the
        // limit is dropped as it streams, not refused 413 (unless a charset names another
        // encoding: then the whole part is judged at its end). `checked`: bytes seen valid.
        let utf8_only = lenient && form::utf8_only(charset.as_deref().or(form_charset));
        let mut checked = 0usize;
        let mut part = form::Part {
            name,
            file,
            charset,
            value: Vec::new(),
        };
        loop {
            let Some(chunk) = pace.within(field.next()).await else {
                // The text being read is heard as far as it came.
                return Err(cut(ApiError::RequestTimeout, parts, Some((part, lenient))));
            };
            let Some(chunk) = chunk else {
                break;
            };
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => return Err(failed(e, parts, Some((part, lenient)))),
            };
            if part.file {
                // Whether it has bytes is all the adapter asks; the rest is dropped.
                if part.value.is_empty() {
                    part.value.extend(chunk.first());
                }
                continue;
            }
            let room = limit.saturating_sub(kept);
            let take = chunk.len().min(room);
            part.value.extend_from_slice(&chunk[..take]);
            kept += take;
            if utf8_only && !utf8_so_far(&part.value, &mut checked) {
                // No text: a file, its first byte kept and its bytes no longer counted.
                kept -= part.value.len();
                part.file = true;
                part.value.truncate(1);
                continue;
            }
            if chunk.len() > room {
                // The text up to the limit is heard, as a cut-off's is.
                return Err(cut(
                    ApiError::Adapter(AdapterError::TooLarge { limit }),
                    parts,
                    Some((part, lenient)),
                ));
            }
        }
        parts.push(settle(part, lenient, form_charset));
    }
}

/// Whether a multipart part is a file: its Content-Disposition names a file, with `filename`
/// or only with RFC 5987's `filename*` (what older Python clients and some Java and Go
/// libraries send for a name such as `火.jpg`), or its own Content-Type is not text (`text/*`,
/// or `application/json`, the form's JSON-array fields), except `application/octet-stream` on
/// one of the form's own fields ([`hotline_adapters::web::is_form_field`]) other than
/// `attachments`: that is text while it reads as text (see [`settle`]). Until 2026-12-07 a
/// photo named only with `filename*` was read as text: 413 for any photo past
/// `server.body_limit`, a fire included, and no 422 naming `attachments`. Until 2026-12-07 too,
/// a part named `content` with `application/octet-stream` (client libraries that label every
/// part so) was taken for a file: its text was dropped and the form refused with "file uploads
/// are not accepted", the matter unheard. For a few hours on 2026-12-07 a form field of any
/// type was text, so a photo sent as `attachments` with `image/jpeg` and no file name (Python
/// requests' `(None, data, 'image/jpeg')`, OkHttp, `curl -F attachments=<photo.jpg`) made the
/// form 413 or 422 `invalid_utf8`, and a fire with it got no 119.
fn is_file(name: &str, named_file: bool, content_type: Option<&str>) -> bool {
    if named_file {
        return true;
    }
    let Some(media) = content_type.map(media_type) else {
        return false;
    };
    if media.is_empty() || media.starts_with("text/") || media == "application/json" {
        return false;
    }
    // `attachments` is where a page's photo goes (a file input so named is the natural
    // choice), never text a library labelled: its links come as `attachments[N][url]`.
    media != OCTET_STREAM || name == "attachments" || !form::is_form_field(name)
}

/// The media type a client library gives every multipart part it is not told the type of.
const OCTET_STREAM: &str = "application/octet-stream";

/// Whether `value` is still UTF-8 but for a character cut at its end, `checked` the bytes of
/// it found valid before (moved on), so that a part read in many small chunks is checked once.
fn utf8_so_far(value: &[u8], checked: &mut usize) -> bool {
    match std::str::from_utf8(&value[*checked..]) {
        Ok(_) => {
            *checked = value.len();
            true
        }
        Err(e) => {
            *checked += e.valid_up_to();
            e.error_len().is_none()
        }
    }
}

/// A part as read, with a form field labelled octet-stream (`lenient`) whose bytes do not read
/// as text ([`form::reads_as_text`], in its own charset or else the request's `form_charset`)
/// made a file, its first byte kept: its text would make the whole form unreadable (422
/// `invalid_utf8`, the `content` beside it unheard), and a field of bytes is an upload. The
/// form is then refused for `attachments` as for any file, its text still heard.
fn settle(mut part: form::Part, lenient: bool, form_charset: Option<&str>) -> form::Part {
    if lenient
        && !part.file
        && !form::reads_as_text(&part.value, part.charset.as_deref().or(form_charset))
    {
        part.file = true;
        part.value.truncate(1);
    }
    part
}

/// The refusal of a multipart form of more than [`MULTIPART_MAX_PARTS`] parts: 422
/// `invalid_field`, field `body` (no page sends such a form).
fn too_many_parts() -> ApiError {
    ApiError::Adapter(AdapterError::InvalidField {
        field: "body",
        reason: format!("a multipart form has at most {MULTIPART_MAX_PARTS} parts"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use actix_web::web::Bytes;
    use std::time::Duration;

    const CT: &str = "multipart/form-data; boundary=abc";

    fn ten_seconds() -> Pace {
        Pace::new(Duration::from_secs(10), Duration::from_secs(10))
    }

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
        let pace = Pace::new(Duration::from_millis(50), Duration::from_millis(50));
        let parse = multipart_parts(&req, CT, stream, 65_536, pace);
        match tokio::time::timeout(Duration::from_secs(10), parse).await {
            Ok(Err(e)) => {
                assert_eq!(e.error.code(), "request_timeout");
                // The part being read then comes back, for the emergency rules.
                assert_eq!(e.read.len(), 1);
                assert_eq!(e.read[0].name, "content");
            }
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
            let parse = multipart_parts(&req, CT, once(body), 65_536, ten_seconds());
            match tokio::time::timeout(Duration::from_secs(20), parse).await {
                Ok(Err(e)) => assert_eq!(e.error.code(), "invalid_form", "{end:?}"),
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
            ten_seconds(),
        )
        .await;
        assert_eq!(empty.err().map(|e| e.error.code()), Some("invalid_form"));
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
        let parts = multipart_parts(&req, CT, once(body.into()), 1 << 20, ten_seconds())
            .await
            .unwrap_or_else(|e| panic!("{}", e.error));
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].value, text.as_bytes());
    }

    /// `n` chunks of `size` bytes of `body` (the rest in the last), one every `every`.
    fn paced(
        body: Vec<u8>,
        size: usize,
        every: Duration,
    ) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> {
        futures_util::stream::unfold(body, move |mut rest| async move {
            if rest.is_empty() {
                return None;
            }
            tokio::time::sleep(every).await;
            let tail = rest.split_off(size.min(rest.len()));
            Some((Ok(Bytes::from(std::mem::replace(&mut rest, tail))), rest))
        })
        // The parser may ask again after the end, as actix's payload allows.
        .fuse()
    }

    /// A form with a text part and a photo of `photo` bytes.
    fn with_photo(text: &str, photo: usize) -> Vec<u8> {
        let mut body = format!(
            "--abc\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\n{text}\r\n\
             --abc\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\n\
             Content-Type: image/jpeg\r\n\r\n"
        )
        .into_bytes();
        body.extend(std::iter::repeat_n(0xd8u8, photo));
        body.extend_from_slice(b"\r\n--abc--\r\n");
        body
    }

    /// An honest upload slower than the request time-out, its bytes steady, is read to its
    /// end: the deadline is reset by progress (until 2026-12-07 it was 408 at the time-out).
    #[actix_web::test]
    async fn a_slow_but_steady_upload_is_read_to_its_end() {
        let req = TestRequest::default()
            .insert_header(("content-type", CT))
            .to_http_request();
        // 30 KB at 100 KB/s: 0.3 s, three times the 100 ms time-out, never pausing as long.
        let body = paced(
            with_photo("路灯坏了", 30_000),
            500,
            Duration::from_millis(5),
        );
        let pace = Pace::new(Duration::from_millis(100), Duration::from_secs(10));
        let started = std::time::Instant::now();
        let parts = multipart_parts(&req, CT, body, 65_536, pace)
            .await
            .unwrap_or_else(|e| panic!("{}", e.error));
        assert!(
            started.elapsed() > Duration::from_millis(100),
            "not slow enough to test"
        );
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].value, "路灯坏了".as_bytes());
        assert!(parts[1].file && parts[1].value.len() == 1);
    }

    /// A stalled upload is cut off after the time-out of silence, the text read by then
    /// returned (the handler checks it for an emergency); a trickle of a few bytes a second is
    /// cut off after little more than the time-out, however steady (slowloris).
    #[actix_web::test]
    async fn a_stalled_or_trickling_upload_is_cut_off_with_the_text_read() {
        let req = TestRequest::default()
            .insert_header(("content-type", CT))
            .to_http_request();
        let mut head = with_photo("楼下着火了", 1_000);
        head.truncate(head.len() - 500);
        let stalled =
            paced(head, 4_096, Duration::from_millis(1)).chain(futures_util::stream::pending());
        let pace = Pace::new(Duration::from_millis(100), Duration::from_secs(10));
        let cut = tokio::time::timeout(
            Duration::from_secs(10),
            multipart_parts(&req, CT, stalled, 65_536, pace),
        )
        .await
        .expect("cut off, not waiting")
        .expect_err("a stalled body is refused");
        assert_eq!(cut.error.code(), "request_timeout");
        assert_eq!(cut.read.len(), 2, "{:?}", cut.read);
        assert_eq!(cut.read[0].value, "楼下着火了".as_bytes());
        assert!(cut.read[1].file);

        let trickle = paced(with_photo("路灯坏了", 1_000), 1, Duration::from_millis(10));
        let pace = Pace::new(Duration::from_millis(100), Duration::from_secs(10));
        let started = std::time::Instant::now();
        let cut = tokio::time::timeout(
            Duration::from_secs(10),
            multipart_parts(&req, CT, trickle, 65_536, pace),
        )
        .await
        .expect("cut off, not waiting")
        .expect_err("a trickle is refused");
        assert_eq!(cut.error.code(), "request_timeout");
        let took = started.elapsed();
        assert!(took < Duration::from_millis(600), "{took:?}");
    }

    /// A multipart body of `parts`, each its headers after the name, and its value.
    fn form_of(parts: &[(&str, &str, &[u8])]) -> Bytes {
        let mut body = Vec::new();
        for (name, headers, value) in parts {
            body.extend_from_slice(
                format!(
                    "--abc\r\nContent-Disposition: form-data; name=\"{name}\"{headers}\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(value);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--abc--\r\n");
        body.into()
    }

    /// A part named only with `filename*=` (RFC 5987), or whose own Content-Type is not text,
    /// is a file: one byte of it kept, however large (until 2026-12-07 it was read as text and
    /// the form refused 413). Text parts with a text or JSON type stay text.
    #[actix_web::test]
    async fn a_part_named_with_filename_star_or_not_text_is_a_file() {
        let req = TestRequest::default()
            .insert_header(("content-type", CT))
            .to_http_request();
        let photo = vec![0xd8u8; 5_000];
        let body = form_of(&[
            ("content", "", "楼下着火了".as_bytes()),
            (
                "photo",
                "; filename*=UTF-8''%E7%81%AB.jpg\r\nContent-Type: image/jpeg",
                &photo,
            ),
            ("scan", "\r\nContent-Type: application/octet-stream", &photo),
            // A form field a client library labels octet-stream is text (until 2026-12-07 a
            // file, and the form refused).
            (
                "address",
                "\r\nContent-Type: application/octet-stream",
                "南京路".as_bytes(),
            ),
            (
                "name",
                "\r\nContent-Type: text/plain; charset=utf-8",
                "张三".as_bytes(),
            ),
            ("items", "\r\nContent-Type: application/json", b"[]"),
            // A form field of any other non-text type is a file (for a few hours on 2026-12-07
            // text: the form 422 `invalid_utf8`), and `attachments` is one even when labelled
            // octet-stream; a form field labelled octet-stream whose bytes are no text too.
            ("attachments", "\r\nContent-Type: image/jpeg", &photo),
            (
                "attachments",
                "\r\nContent-Type: application/octet-stream",
                &photo,
            ),
            ("phone", "\r\nContent-Type: image/jpeg", &photo),
            ("lat", "\r\nContent-Type: application/octet-stream", &photo),
            // Text in its own charset is text.
            (
                "category",
                "\r\nContent-Type: application/octet-stream; charset=gbk",
                b"\xb7\xb5",
            ),
        ]);
        let parts = multipart_parts(&req, CT, once(body), 1_000, ten_seconds())
            .await
            .unwrap_or_else(|e| panic!("{}", e.error));
        let kinds: Vec<(&str, bool, usize)> = parts
            .iter()
            .map(|p| (p.name.as_str(), p.file, p.value.len()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("content", false, 15),
                ("photo", true, 1),
                ("scan", true, 1),
                ("address", false, 9),
                ("name", false, 6),
                ("items", false, 2),
                ("attachments", true, 1),
                ("attachments", true, 1),
                ("phone", true, 1),
                ("lat", true, 1),
                ("category", false, 2),
            ]
        );
        // A binary form field past the limit is a file at its first bytes, not a 413.
        let body = form_of(&[
            ("content", "", "楼下着火了".as_bytes()),
            (
                "address",
                "\r\nContent-Type: application/octet-stream",
                &photo,
            ),
        ]);
        let parts = multipart_parts(&req, CT, once(body), 1_000, ten_seconds())
            .await
            .unwrap_or_else(|e| panic!("{}", e.error));
        assert_eq!((parts[1].file, parts[1].value.len()), (true, 1));
        assert!(is_file(
            "attachments",
            false,
            Some("application/octet-stream")
        ));
        assert!(is_file("content", false, Some("image/jpeg")));
        assert!(!is_file("content", false, Some("Application/Octet-Stream")));
        assert!(is_file("scan", false, Some("Image/PNG")));
        assert!(!is_file("scan", false, None));
        assert!(!is_file("scan", false, Some("TEXT/plain")));
        assert!(is_file("content", true, Some("text/plain")));
    }

    /// A form of more than [`MULTIPART_MAX_PARTS`] parts is refused (422), and one whose part
    /// heads pass the limit (413), however empty its parts; each returns the text read by then,
    /// for the emergency rules. Until 2026-12-07 only text values counted, and a body of empty
    /// parts was kept whole.
    #[actix_web::test]
    async fn many_parts_or_heads_past_the_limit_are_refused_with_the_text_read() {
        let req = TestRequest::default()
            .insert_header(("content-type", CT))
            .to_http_request();
        let fire = ("content", "", "楼下着火了".as_bytes());
        let mut parts = vec![fire];
        parts.extend(std::iter::repeat_n(("x", "", &b""[..]), 300));
        let cut = multipart_parts(&req, CT, once(form_of(&parts)), 65_536, ten_seconds())
            .await
            .expect_err("300 parts are refused");
        assert_eq!(
            (cut.error.code(), cut.read.len()),
            ("invalid_field", MULTIPART_MAX_PARTS)
        );
        assert_eq!(cut.read[0].value, "楼下着火了".as_bytes());

        // 40 heads of some 150 bytes: past a limit of 2,000 however empty the values.
        let name = "n".repeat(100);
        let mut parts = vec![fire];
        parts.extend(std::iter::repeat_n((name.as_str(), "", &b""[..]), 40));
        let cut = multipart_parts(&req, CT, once(form_of(&parts)), 2_000, ten_seconds())
            .await
            .expect_err("heads past the limit are refused");
        assert_eq!(cut.error.code(), "body_too_large");
        assert!(
            cut.read.len() > 1 && cut.read.len() < 20,
            "{}",
            cut.read.len()
        );
        assert_eq!(cut.read[0].value, "楼下着火了".as_bytes());
    }

    /// A text part past the limit is refused (413) with the text up to it, cut at a whole
    /// character, for the emergency rules (until 2026-12-07 a 413 returned no text).
    #[actix_web::test]
    async fn a_text_past_the_limit_is_refused_with_the_text_read() {
        let req = TestRequest::default()
            .insert_header(("content-type", CT))
            .to_http_request();
        let long = "着火了".repeat(100);
        let cut = multipart_parts(
            &req,
            CT,
            once(form_of(&[("content", "", long.as_bytes())])),
            200,
            ten_seconds(),
        )
        .await
        .expect_err("text past the limit is refused");
        assert_eq!(cut.error.code(), "body_too_large");
        assert_eq!(cut.read.len(), 1);
        let text = std::str::from_utf8(&cut.read[0].value).expect("whole characters");
        assert!(text.starts_with("着火了") && text.len() < 200, "{text}");
    }
}
