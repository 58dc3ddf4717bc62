//! The one table that maps every refusal to an HTTP status, a stable code and a message
//! (the meilisearch pattern): handlers return `Err(ApiError)` and never build error bodies.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use hotline_adapters::AdapterError;
use serde_json::json;

/// Seconds a client is asked to wait after a 503.
pub const RETRY_AFTER_S: u64 = 5;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The channel adapter refused the input.
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    /// The adapter refused the input and the platform's convention is 403 (Twilio signatures).
    #[error("forbidden: {0}")]
    Forbidden(AdapterError),
    /// A refusal of the web form (422 and the rest of [`ApiError::Adapter`]'s answers,
    /// unchanged) whose readable text is a possible emergency: its message begins with the
    /// number to dial (see `Pipeline::redirect_if_emergency`).
    #[error("{error} (possible emergency: {number})")]
    AdviceFirst {
        /// The number to dial.
        number: String,
        /// Why the form was refused.
        error: AdapterError,
    },
    /// The store cannot take writes, or back-pressure: 503 with Retry-After.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Missing or wrong admin token.
    #[error("unauthorized")]
    Unauthorized,
    /// No such thing.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The path exists, the method does not (405); the methods it takes, for `Allow`.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// The request's body did not arrive within `server.request_timeout` (408).
    #[error("request body not received in time")]
    RequestTimeout,
    /// [`ApiError::RequestTimeout`] for a multipart form whose text, read before it was cut
    /// off, is a possible emergency: the same 408 and code, its message beginning with the
    /// number to dial (see `http::web::cut_off`).
    #[error("request body not received in time (possible emergency: {number})")]
    TimeoutAdvice {
        /// The number to dial.
        number: String,
    },
    /// The body broke off or was malformed in transit (a bad chunk size, a connection cut
    /// mid-body): 400 `invalid_body`. Until 2026-12-07 this was `invalid_form` ("the form
    /// encoding is invalid") whatever the body was meant to be.
    #[error("body could not be read: {0}")]
    InvalidBody(String),
    /// A `Content-Encoding` other than `identity` (415, RFC 9110 §15.5.16): the gateway reads
    /// bodies as sent, and a compressed one read so was a false `invalid_json`, an unknown
    /// coding silently ignored (until 2026-12-07).
    #[error("unsupported content coding")]
    UnsupportedEncoding,
    /// A bad admin request.
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// An admin body that is well-formed JSON of the right shape, with a field whose value is
    /// unusable (a link's `to` that names no identity): 422 with `code` and `field`, as the web
    /// form answers a bad field. The message never quotes the value.
    #[error("{message}")]
    InvalidAdminField {
        /// The stable code (`invalid_identity`).
        code: &'static str,
        /// The body's field.
        field: &'static str,
        /// What is wrong, in English, for the operator.
        message: String,
    },
    /// Too many status look-ups from one client address (`web.lookup_quota`): 429
    /// `too_many_lookups` with `Retry-After` and `retry_after` (seconds).
    #[error("too many status look-ups; retry after {retry_after} s")]
    TooManyLookups {
        /// Seconds until the next look-up is allowed (at least 1).
        retry_after: u64,
    },
    /// A bug or a broken invariant; details are logged, not returned.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<crate::pipeline::IntakeError> for ApiError {
    fn from(e: crate::pipeline::IntakeError) -> Self {
        match e {
            crate::pipeline::IntakeError::Unavailable(m) => ApiError::Unavailable(m),
            crate::pipeline::IntakeError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        crate::pipeline::IntakeError::from(e).into()
    }
}

impl ApiError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Adapter(e)
            | ApiError::Forbidden(e)
            | ApiError::AdviceFirst { error: e, .. } => e.code(),
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::RequestTimeout | ApiError::TimeoutAdvice { .. } => "request_timeout",
            ApiError::InvalidBody(_) => "invalid_body",
            ApiError::UnsupportedEncoding => "unsupported_media_type",
            ApiError::BadRequest(code, _) | ApiError::InvalidAdminField { code, .. } => code,
            ApiError::TooManyLookups { .. } => "too_many_lookups",
            ApiError::Internal(_) => "internal",
        }
    }

    /// A sentence for the person at the other end (Chinese, as the citizens read it).
    fn message(&self) -> String {
        match self {
            ApiError::Forbidden(e) => ApiError::Adapter(e.clone()).message(),
            ApiError::AdviceFirst { number, error } => format!(
                "{}{}",
                crate::messages::emergency_first(number),
                ApiError::Adapter(error.clone()).message()
            ),
            ApiError::Adapter(e) => match e {
                AdapterError::InvalidJson(_) => "请求内容不是有效的JSON。".into(),
                AdapterError::InvalidXml(_) => "请求内容不是可接受的XML。".into(),
                AdapterError::InvalidForm(_) => "表单编码无效。".into(),
                AdapterError::InvalidUtf8 => {
                    "请求内容的文字编码无效（应为UTF-8或所声明的字符集）。".into()
                }
                AdapterError::MissingField(f) => format!("请填写{}。", field_name(f)),
                AdapterError::InvalidField { field: "body", .. } => {
                    "提交的内容格式有误，请刷新页面后重新提交。".into()
                }
                AdapterError::InvalidField { field, reason } => format!(
                    "{}{}，请修改后重新提交。",
                    field_name(field),
                    what_is_wrong(reason)
                ),
                AdapterError::TooLarge { limit } => format!("请求内容过大（上限{limit}字节）。"),
                AdapterError::UnsupportedMediaType(t) => format!("不支持的内容类型：{t}。"),
                AdapterError::BadSignature => "签名无效。".into(),
                AdapterError::BadToken => "令牌无效。".into(),
                AdapterError::StaleTimestamp => "时间戳超出允许范围。".into(),
                AdapterError::Decrypt(_) => "消息解密失败。".into(),
                AdapterError::AppIdMismatch => "AppID不匹配。".into(),
                AdapterError::EncryptionRequired => "该账号要求安全模式（加密）推送。".into(),
                AdapterError::UnknownEvent(e) => format!("未知事件：{e}。"),
            },
            // Names the numbers as the 429 and 403 do: every refusal does (art. 17(1)); until
            // 2026-12-07 a shed or unstored submission was told only to try again later.
            ApiError::Unavailable(_) => format!(
                "系统繁忙，您的诉求未能保存，请稍后重试。{}",
                crate::messages::EMERGENCY_NUMBERS
            ),
            ApiError::Unauthorized => "未授权。".into(),
            ApiError::NotFound(what) => not_found(what).into(),
            ApiError::MethodNotAllowed(_) => "该地址不支持此请求方法。".into(),
            ApiError::RequestTimeout => "请求内容发送超时，请重新提交。".into(),
            ApiError::TimeoutAdvice { number } => format!(
                "{}{}",
                crate::messages::emergency_first(number),
                ApiError::RequestTimeout.message()
            ),
            ApiError::InvalidBody(_) => "请求内容在传输中出错，请重新提交。".into(),
            ApiError::UnsupportedEncoding => {
                "不支持压缩的请求内容（Content-Encoding），请以未压缩的形式重新提交。".into()
            }
            ApiError::BadRequest(_, m) | ApiError::InvalidAdminField { message: m, .. } => {
                m.clone()
            }
            ApiError::TooManyLookups { retry_after } => {
                crate::messages::lookups_throttled(*retry_after)
            }
            ApiError::Internal(_) => "系统内部错误，请稍后重试。".into(),
        }
    }
}

/// A field as the citizen knows it, with the name a page developer looks for:
/// `电子邮箱（email）`. Fields of other channels (whose peers are programs) by name alone.
fn field_name(field: &str) -> String {
    let label = match field {
        "content" => "诉求内容",
        "name" => "姓名",
        "phone" => "联系电话",
        "email" => "电子邮箱",
        "category" => "诉求类别",
        "address" => "地址",
        "lat" => "纬度",
        "lon" => "经度",
        "confidential" => "是否保密",
        "items" => "诉求事项",
        "items.content" => "诉求事项的内容",
        "items.category" => "诉求事项的类别",
        "attachments" => "附件链接",
        "client_ref" => "提交编号",
        _ => return format!("字段{field}"),
    };
    format!("{label}（{field}）")
}

/// The adapters' reason (English, for the log and `error.detail`) as the citizen reads it.
/// The reasons are the adapters' own wording, never the submitted value.
fn what_is_wrong(reason: &str) -> &'static str {
    const TABLE: [(&str, &str); 11] = [
        ("longer than", "超过长度上限"),
        ("not a phone number", "不是有效的电话号码"),
        ("not an email address", "不是有效的电子邮箱地址"),
        ("not a number", "应为数字"),
        ("not a boolean", "应为是或否"),
        ("must be within", "超出取值范围"),
        ("one of ", "不在可选范围内"),
        ("at most", "数量超过上限"),
        ("kind is one of", "的类型不在可选范围内"),
        ("url ", "应为http或https链接"),
        (
            "file uploads",
            "不接受直接上传的文件，请上传到别处后填写链接",
        ),
    ];
    TABLE
        .iter()
        .find(|(prefix, _)| reason.starts_with(prefix))
        .map_or("格式有误", |(_, zh)| zh)
}

/// Longest quoted value a refusal's DEBUG line keeps as sent ([`logged`]).
const LOGGED_QUOTE_MAX_CHARS: usize = 64;

/// A refusal's text (its `Display`) as the DEBUG "Request refused" line shows it. Refusals
/// quote what the client sent (a 415's content type, an unknown field's name, an admin's
/// duration), and the client may have put personal data there: until 2026-12-07 the line
/// showed `text/x-zhang.san@example.com`, `欧阳娜娜朝阳区建国路88号…` and `13912345678` as
/// sent (the privacy review's F7). A quoted value stays only when it reads like a name in a
/// protocol (ASCII letters, digits and `_-.+/[];=`, up to 64 characters: `sumbit`,
/// `text/plain;charset=gbk`, `5x`), else it becomes `***`; then the whole is scrubbed of numbers, e-mail
/// addresses and opaque ids. The answer's body, read only by whoever sent the input, keeps
/// the value (it tells a page's author what was wrong).
fn logged(text: &str) -> String {
    let plain = |q: &str| {
        q.chars().count() <= LOGGED_QUOTE_MAX_CHARS
            && q.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.+/[];=*".contains(c))
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('`') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let (quoted, next) = match after.find('`') {
            Some(close) => (&after[..close], &after[close + 1..]),
            None => (after, ""),
        };
        out.push('`');
        out.push_str(if plain(quoted) { quoted } else { "***" });
        out.push('`');
        rest = next;
    }
    out.push_str(rest);
    hotline_adapters::mask::scrub_text_and_ids(&out)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Adapter(e) => match e {
                AdapterError::InvalidJson(_)
                | AdapterError::InvalidXml(_)
                | AdapterError::InvalidForm(_)
                | AdapterError::InvalidUtf8
                | AdapterError::Decrypt(_) => StatusCode::BAD_REQUEST,
                AdapterError::MissingField(_)
                | AdapterError::InvalidField { .. }
                | AdapterError::UnknownEvent(_) => StatusCode::UNPROCESSABLE_ENTITY,
                AdapterError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                AdapterError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                AdapterError::BadSignature
                | AdapterError::BadToken
                | AdapterError::StaleTimestamp
                | AdapterError::AppIdMismatch => StatusCode::UNAUTHORIZED,
                AdapterError::EncryptionRequired => StatusCode::FORBIDDEN,
            },
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::AdviceFirst { error, .. } => ApiError::Adapter(error.clone()).status_code(),
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout | ApiError::TimeoutAdvice { .. } => {
                StatusCode::REQUEST_TIMEOUT
            }
            ApiError::InvalidBody(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::InvalidAdminField { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyLookups { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            ApiError::Internal(m) => tracing::error!(error = %m, "Internal error."),
            ApiError::Unavailable(m) => tracing::warn!(error = %m, "Answering 503."),
            other => {
                tracing::debug!(code = other.code(), error = %logged(&other.to_string()), "Request refused.")
            }
        }
        let mut resp = HttpResponse::build(status);
        if let ApiError::MethodNotAllowed(allow) = self {
            resp.insert_header(("Allow", *allow));
        }
        // RFC 9110 §12.5.3: a 415 for a content coding says which codings are taken.
        if let ApiError::UnsupportedEncoding = self {
            resp.insert_header(("Accept-Encoding", "identity"));
        }
        // `rejected` is the contract's word for bad input (4xx): a fault of ours is not the
        // citizen's, and a 500 labelled so (until 2026-12-07) told the page to stop resending.
        let label = if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.insert_header(("Retry-After", RETRY_AFTER_S.to_string()));
            "unavailable"
        } else if status.is_server_error() {
            "error"
        } else {
            "rejected"
        };
        let message = self.message();
        let mut error = json!({"code": self.code(), "message": message});
        // For the page's developer: which field, and what is wrong with it in the adapters'
        // words (which never quote the submitted value).
        if let ApiError::Adapter(e)
        | ApiError::Forbidden(e)
        | ApiError::AdviceFirst { error: e, .. } = self
        {
            error["detail"] = json!(e.to_string());
            if let AdapterError::MissingField(f) | AdapterError::InvalidField { field: f, .. } = e {
                error["field"] = json!(f);
            }
        }
        if let ApiError::InvalidAdminField { field, .. } = self {
            error["field"] = json!(field);
        }
        // As the contract's 429 `throttled` says the wait: header and field.
        if let ApiError::TooManyLookups { retry_after } = self {
            resp.insert_header(("Retry-After", retry_after.to_string()));
            error["retry_after"] = json!(retry_after);
        }
        resp.json(json!({"status": label, "error": error, "message": message}))
    }
}

/// The sentence for a 404, by what was not found (the variant's English name is for the log).
fn not_found(what: &str) -> &'static str {
    match what {
        "order" => "未找到该工单，请核对工单号。",
        "wechat account" => "未找到该公众号接入配置。",
        "weibo account" => "未找到该微博账号接入配置。",
        "telephony profile" => "未找到该电话接入配置。",
        "dead letter" => "未找到该条未送达记录。",
        _ => "未找到请求的地址。",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    /// The answer's status code and JSON body.
    fn answer(e: ApiError) -> (u16, serde_json::Value, bool) {
        let r = e.error_response();
        let retry_after = r.headers().contains_key("retry-after");
        let status = r.status().as_u16();
        let body = match actix_web::body::to_bytes(r.into_body()).now_or_never() {
            Some(Ok(b)) => serde_json::from_slice(&b).unwrap_or_default(),
            _ => serde_json::Value::Null,
        };
        (status, body, retry_after)
    }

    /// The `message` is a sentence in Chinese for the citizen (`未找到：order。` until
    /// 2026-12-07).
    #[test]
    fn a_not_found_names_what_in_chinese() {
        for what in [
            "order",
            "wechat account",
            "weibo account",
            "telephony profile",
            "dead letter",
            "route",
        ] {
            let (status, body, _) = answer(ApiError::NotFound(what));
            assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
            let m = body["message"].as_str().unwrap_or_default();
            assert!(
                m.starts_with("未找到") && !m.chars().any(|c| c.is_ascii_alphabetic()),
                "{what}: {m}"
            );
        }
        let (_, body, _) = answer(ApiError::NotFound("order"));
        assert_eq!(body["message"], "未找到该工单，请核对工单号。");
    }

    #[test]
    fn only_bad_input_is_labelled_rejected() {
        let (status, body, _) = answer(ApiError::Internal("a bug".into()));
        assert_eq!((status, &body["status"]), (500, &json!("error")), "{body}");
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("a bug"), "{body}");
        let (status, body, retry_after) = answer(ApiError::Unavailable("disk".into()));
        assert_eq!(
            (status, &body["status"], retry_after),
            (503, &json!("unavailable"), true)
        );
        let (status, body, _) = answer(ApiError::Adapter(AdapterError::MissingField("content")));
        assert_eq!((status, &body["status"]), (422, &json!("rejected")));
    }

    /// A 503 names the emergency numbers, as the 429 and 403 do (until 2026-12-07 it named
    /// none); a refusal of a possible emergency keeps its status, code and field, and its
    /// message begins with the number to dial.
    #[test]
    fn refusals_name_the_numbers_to_dial() {
        let (_, body, _) = answer(ApiError::Unavailable("outbox over its mark".into()));
        let m = body["message"].as_str().unwrap_or_default();
        assert!(m.ends_with(crate::messages::EMERGENCY_NUMBERS), "{m}");
        let email = AdapterError::InvalidField {
            field: "email",
            reason: "not an email address".into(),
        };
        let (status, body, _) = answer(ApiError::AdviceFirst {
            number: "120".into(),
            error: email,
        });
        assert_eq!(
            (
                status,
                &body["status"],
                &body["error"]["code"],
                &body["error"]["field"]
            ),
            (
                422,
                &json!("rejected"),
                &json!("invalid_field"),
                &json!("email")
            ),
            "{body}"
        );
        assert_eq!(
            body["message"],
            "您反映的情况可能是紧急情况：如果危险正在发生，请立即拨打120。\
             电子邮箱（email）不是有效的电子邮箱地址，请修改后重新提交。"
        );
        assert_eq!(body["error"]["message"], body["message"]);
    }

    /// The privacy review's F7 (2026-12-07): the DEBUG line quoted what the client sent (a
    /// content type, a field's name, a duration) as sent; names in a protocol stay readable.
    #[test]
    fn a_refusals_log_line_shows_no_personal_data_the_client_sent() {
        let media = |t: &str| ApiError::Adapter(AdapterError::UnsupportedMediaType(t.into()));
        let field = |name: &str| {
            ApiError::Adapter(AdapterError::InvalidField {
                field: "body",
                reason: format!("unknown field `{name}`"),
            })
        };
        for (e, want) in [
            (
                media("text/x-zhang.san@example.com"),
                "unsupported media type `***`",
            ),
            (
                field("欧阳娜娜朝阳区建国路88号华贸中心3号楼1502室"),
                "field `body` is invalid: unknown field `***`",
            ),
            (
                ApiError::BadRequest(
                    "invalid_duration",
                    "`13912345678` is not a duration: unknown time unit".into(),
                ),
                "`139****5678` is not a duration: unknown time unit",
            ),
            (
                ApiError::BadRequest("invalid_reason", "不是13912345678的原因".into()),
                "不是139****5678的原因",
            ),
            // Names in a protocol stay, for the page's author reading the log.
            (
                media("text/plain;charset=gbk"),
                "unsupported media type `text/plain;charset=gbk`",
            ),
            (
                field("sumbit"),
                "field `body` is invalid: unknown field `sumbit`",
            ),
            (
                ApiError::Adapter(AdapterError::MissingField("content")),
                "field `content` is required",
            ),
            // A backtick in the value breaks the pairing; what falls outside is still
            // scrubbed.
            (
                media("text/x`13912345678"),
                "unsupported media type `text/x`139****5678``",
            ),
        ] {
            assert_eq!(logged(&e.to_string()), want, "{e}");
        }
    }

    /// A field refusal names the field for the citizen (Chinese) and the developer (`field`,
    /// `detail`), and quotes no submitted value.
    #[test]
    fn a_field_refusal_names_the_field_in_chinese_and_for_the_developer() {
        let (status, body, _) = answer(ApiError::Adapter(AdapterError::InvalidField {
            field: "email",
            reason: "not an email address".into(),
        }));
        assert_eq!(status, 422);
        assert_eq!(
            body["message"],
            "电子邮箱（email）不是有效的电子邮箱地址，请修改后重新提交。"
        );
        assert_eq!(body["error"]["message"], body["message"]);
        assert_eq!(body["error"]["code"], "invalid_field");
        assert_eq!(body["error"]["field"], "email");
        assert_eq!(
            body["error"]["detail"],
            "field `email` is invalid: not an email address"
        );
        let (_, body, _) = answer(ApiError::Adapter(AdapterError::MissingField("content")));
        assert_eq!(body["message"], "请填写诉求内容（content）。");
        let (_, body, _) = answer(ApiError::Adapter(AdapterError::InvalidField {
            field: "body",
            reason: "unknown field `sumbit`".into(),
        }));
        assert!(
            body["error"]["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("sumbit"),
            "{body}"
        );
        assert!(!body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("body"));
    }
}
