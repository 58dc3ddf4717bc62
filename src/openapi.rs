//! The OpenAPI document of the public and admin endpoints, built with utoipa's builders from
//! one table so a new route is one new row.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, ResponseBuilder,
};

/// (method, path, tag, summary, request media types, responses)
type Row = (
    HttpMethod,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

const ROUTES: &[Row] = &[
    (
        HttpMethod::Post,
        "/v1/web/submissions",
        "web",
        "Web form submission",
        &[
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ],
        &[
            ("202", "accepted: orders stored durably"),
            ("200", "duplicate, redirected or informed"),
            ("400", "rejected: malformed body"),
            ("403", "suspended"),
            ("413", "rejected: body too large"),
            ("415", "rejected: unsupported media type"),
            ("422", "rejected: invalid fields"),
            ("429", "throttled"),
            ("503", "unavailable: nothing stored, retry later"),
        ],
    ),
    (
        HttpMethod::Get,
        "/v1/wechat/{account}",
        "wechat",
        "WeChat server-URL check: echoes echostr when the signature holds",
        &[],
        &[
            ("200", "echostr"),
            ("401", "bad signature"),
            ("404", "unknown account"),
        ],
    ),
    (
        HttpMethod::Post,
        "/v1/wechat/{account}",
        "wechat",
        "WeChat message push (plaintext, compatible or safe mode); passive XML reply",
        &["text/xml"],
        &[
            ("200", "passive reply or success"),
            ("400", "malformed or undecryptable"),
            ("401", "bad signature, stale timestamp or wrong appid"),
            ("403", "encryption required"),
            ("413", "body too large"),
            ("503", "unavailable"),
        ],
    ),
    (
        HttpMethod::Get,
        "/v1/weibo/{account}",
        "weibo",
        "Weibo URL check: echoes echostr when the signature holds",
        &[],
        &[("200", "echostr"), ("401", "bad signature")],
    ),
    (
        HttpMethod::Post,
        "/v1/weibo/{account}",
        "weibo",
        "Weibo message push (JSON); passive JSON reply or empty body",
        &["application/json"],
        &[
            ("200", "reply"),
            ("400", "malformed"),
            ("401", "bad signature or stale timestamp"),
        ],
    ),
    (
        HttpMethod::Post,
        "/v1/cti/{profile}",
        "cti",
        "Telephony callback in the profile's format (generic JSON, Zammad, Twilio)",
        &["application/json", "application/x-www-form-urlencoded"],
        &[
            (
                "200",
                "decision: continue, reject, transfer, say (JSON or TwiML)",
            ),
            ("401", "bad token"),
            ("403", "bad Twilio signature"),
            ("422", "invalid event"),
        ],
    ),
    (
        HttpMethod::Get,
        "/v1/cti/{profile}",
        "cti",
        "Twilio voice webhook from a number whose voice URL uses method GET (the parameters in \
         the signed query); 405 for other formats",
        &[],
        &[
            ("200", "TwiML decision"),
            ("403", "bad Twilio signature"),
            ("405", "not a Twilio profile"),
            ("422", "invalid event"),
        ],
    ),
    (
        HttpMethod::Post,
        "/v1/cti/{profile}/{token}",
        "cti",
        "Telephony callback with the token in the path (Zammad, generic)",
        &["application/json", "application/x-www-form-urlencoded"],
        &[
            ("200", "decision"),
            ("401", "bad token"),
            ("422", "invalid event"),
        ],
    ),
    (
        HttpMethod::Get,
        "/v1/orders/{number}",
        "orders",
        "Order status for its submitter (no personal data)",
        &[],
        &[("200", "status"), ("404", "unknown order")],
    ),
    (
        HttpMethod::Get,
        "/healthz",
        "ops",
        "Liveness",
        &[],
        &[("200", "alive")],
    ),
    (
        HttpMethod::Get,
        "/readyz",
        "ops",
        "Readiness: store writable, relay alive",
        &[],
        &[("200", "ready"), ("503", "not ready")],
    ),
    (
        HttpMethod::Get,
        "/metrics",
        "ops",
        "Prometheus metrics",
        &[],
        &[("200", "text format 0.0.4")],
    ),
    (
        HttpMethod::Get,
        "/openapi.json",
        "ops",
        "This document",
        &[],
        &[("200", "OpenAPI 3.1")],
    ),
    (
        HttpMethod::Get,
        "/admin/v1/outbox",
        "admin",
        "Outbox depth, oldest age, dead letters",
        &[],
        &[("200", "figures"), ("401", "missing or wrong token")],
    ),
    (
        HttpMethod::Post,
        "/admin/v1/outbox/dead/{key}/retry",
        "admin",
        "Replay a dead letter",
        &[],
        &[("202", "requeued"), ("404", "no such dead letter")],
    ),
    (
        HttpMethod::Get,
        "/admin/v1/callers/{identity}",
        "admin",
        "Caller: warnings, suspensions, contacts",
        &[],
        &[("200", "caller view")],
    ),
    (
        HttpMethod::Put,
        "/admin/v1/callers/{identity}/suspension",
        "admin",
        "Suspend now",
        &["application/json"],
        &[("200", "suspended"), ("400", "bad duration or reason")],
    ),
    (
        HttpMethod::Delete,
        "/admin/v1/callers/{identity}/suspension",
        "admin",
        "Lift a suspension, reset warnings and quota",
        &[],
        &[("200", "lifted")],
    ),
    (
        HttpMethod::Put,
        "/admin/v1/callers/{identity}/allow",
        "admin",
        "Allow-list an identity",
        &[],
        &[("200", "allowed")],
    ),
    (
        HttpMethod::Put,
        "/admin/v1/callers/{identity}/link",
        "admin",
        "Link an identity to another (same person): one shared ladder",
        &["application/json"],
        &[("200", "linked"), ("400", "bad identity")],
    ),
    (
        HttpMethod::Get,
        "/admin/v1/callers/{identity}/evidence",
        "admin",
        "Evidence packet: all contacts, redirects, warnings, suspensions (art. 32 para. 3)",
        &[],
        &[("200", "JSON packet")],
    ),
    (
        HttpMethod::Post,
        "/admin/v1/rules/reload",
        "admin",
        "Reload rule files",
        &[],
        &[
            ("200", "reloaded"),
            ("400", "a rule file is invalid; old rules kept"),
        ],
    ),
];

/// Builds the document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for (method, path, tag, summary, media, responses) in ROUTES {
        let mut op = OperationBuilder::new().summary(Some(*summary)).tag(*tag);
        if !media.is_empty() {
            let mut body =
                RequestBodyBuilder::new().required(Some(utoipa::openapi::Required::True));
            for m in media.iter() {
                body = body.content(*m, ContentBuilder::new().build());
            }
            op = op.request_body(Some(body.build()));
        }
        for (code, desc) in responses.iter() {
            op = op.response(*code, ResponseBuilder::new().description(*desc).build());
        }
        paths = paths.path(*path, PathItem::new(method.clone(), op.build()));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("hotline-gateway")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Front door of the 12345 government-service hotline."))
                .build(),
        )
        .paths(paths.build())
        .build()
}
