//! The OpenAPI document of the public and admin endpoints, built with utoipa's builders from
//! one table so a new route is one new row; the schemas it names are written as JSON.
//!
//! What the rows do not repeat is derived: each `{name}` in a path becomes a required path
//! parameter of every operation on it (OpenAPI requires them, and validators and client
//! generators refuse a document without), `/admin/` operations need the bearer scheme, and a
//! 429 or 503 carries `Retry-After`. The tests hold the table to the routes `http::routes`
//! registers, and `faults::the_served_openapi_document_passes_a_validator` runs a validator
//! written by others on what `/openapi.json` serves.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr, Required,
    ResponseBuilder,
};

/// What an answer's (or a request's) body is, as far as the document says.
enum Body {
    /// No body worth describing.
    None,
    /// JSON following the schema of this name in `components.schemas`.
    Json(&'static str),
    /// A body of these media types, not described further (XML, TwiML, text).
    Media(&'static [&'static str]),
    /// A request read as JSON under the first schema and, in the form encodings, under the
    /// second (the forms take every value as text and ignore names that are not theirs).
    JsonOrForm(&'static str, &'static str),
}

/// Every refusal the HTTP layer makes (`http::error::ApiError`): `{status, error, message}`.
const E: Body = Body::Json("Error");

/// One operation of the table.
struct Op {
    method: HttpMethod,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    /// The request body (required when given), of each of its media types.
    request: Option<(&'static [&'static str], Body)>,
    /// (status, description, body).
    responses: &'static [(&'static str, &'static str, Body)],
}

/// The telephony callbacks' request media types, over all formats: JSON (generic, Zammad),
/// form posts (Zammad, Twilio). Which one a profile takes depends on its format, which the
/// document cannot tell from the path: the summaries say it, and the 415 row answers the rest
/// (undocumented until 2026-12-07, though every format refuses the others' types so).
const CTI_MEDIA: &[&str] = &["application/json", "application/x-www-form-urlencoded"];

/// A telephony callback's answer to a media type its profile's format does not take.
const CTI_415: (&str, &str, Body) = (
    "415",
    "the profile's format does not take this media type (generic: application/json; \
     Zammad: application/json or application/x-www-form-urlencoded; Twilio: \
     application/x-www-form-urlencoded), or a Content-Encoding other than identity",
    E,
);

/// A telephony decision: JSON for `generic`, `{}` or a rejection for Zammad, TwiML for Twilio.
const CTI_REPLY: Body = Body::Media(&["application/json", "text/xml"]);

/// The admin operations' answer to a missing or wrong bearer token (or admin turned off).
const UNAUTHORIZED: (&str, &str, Body) = ("401", "missing or wrong bearer token", E);

const ROUTES: &[Op] = &[
    Op {
        method: HttpMethod::Post,
        path: "/v1/web/submissions",
        tag: "web",
        summary: "Web form submission",
        request: Some((
            &[
                "application/json",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ],
            Body::JsonOrForm("WebSubmission", "WebSubmissionForm"),
        )),
        responses: &[
            (
                "202",
                "accepted: orders stored durably",
                Body::Json("WebAccepted"),
            ),
            (
                "200",
                "duplicate, redirected or informed; no new order",
                Body::Json("WebDecided"),
            ),
            ("400", "rejected: malformed body", E),
            ("403", "suspended", Body::Json("WebSuspended")),
            ("408", "rejected: body not received in time", E),
            ("413", "rejected: body too large", E),
            (
                "415",
                "rejected: unsupported media type, or a Content-Encoding other than identity",
                E,
            ),
            ("422", "rejected: invalid fields", E),
            ("429", "throttled", Body::Json("WebThrottled")),
            ("503", "unavailable: nothing stored, retry later", E),
        ],
    },
    Op {
        method: HttpMethod::Get,
        path: "/v1/wechat/{account}",
        tag: "wechat",
        summary: "WeChat server-URL check: echoes echostr when the signature holds",
        request: None,
        responses: &[
            ("200", "echostr", Body::Media(&["text/plain"])),
            ("400", "undecryptable echostr (safe mode)", E),
            ("401", "bad signature", E),
            ("404", "unknown account", E),
            ("422", "no echostr", E),
        ],
    },
    Op {
        method: HttpMethod::Post,
        path: "/v1/wechat/{account}",
        tag: "wechat",
        summary: "WeChat message push (plaintext, compatible or safe mode); passive XML reply",
        request: Some((&["text/xml"], Body::None)),
        responses: &[
            (
                "200",
                "passive reply, or success",
                Body::Media(&["text/xml", "text/plain"]),
            ),
            ("400", "malformed or undecryptable", E),
            ("401", "bad signature, stale timestamp or wrong appid", E),
            ("403", "encryption required", E),
            ("404", "unknown account", E),
            ("408", "body not received in time", E),
            ("413", "body too large", E),
            ("422", "a required field is missing", E),
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Get,
        path: "/v1/weibo/{account}",
        tag: "weibo",
        summary: "Weibo URL check: echoes echostr when the signature holds",
        request: None,
        responses: &[
            ("200", "echostr", Body::Media(&["text/plain"])),
            ("401", "bad signature", E),
            ("404", "unknown account", E),
            ("422", "no echostr", E),
        ],
    },
    Op {
        method: HttpMethod::Post,
        path: "/v1/weibo/{account}",
        tag: "weibo",
        summary: "Weibo message push (JSON); passive JSON reply or empty body",
        request: Some((&["application/json"], Body::None)),
        responses: &[
            ("200", "reply", Body::Media(&["application/json"])),
            ("400", "malformed", E),
            ("401", "bad signature or stale timestamp", E),
            ("404", "unknown account", E),
            ("408", "body not received in time", E),
            ("413", "body too large", E),
            ("422", "a required field is missing or invalid", E),
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Post,
        path: "/v1/cti/{profile}",
        tag: "cti",
        summary: "Telephony callback in the profile's format: generic takes application/json, \
         Zammad application/json or application/x-www-form-urlencoded, Twilio \
         application/x-www-form-urlencoded (415 for any other)",
        request: Some((CTI_MEDIA, Body::None)),
        responses: &[
            (
                "200",
                "decision: continue, reject, transfer, say (JSON or TwiML)",
                CTI_REPLY,
            ),
            ("400", "malformed body", E),
            ("401", "bad token", E),
            ("403", "bad Twilio signature", E),
            ("404", "unknown profile", E),
            ("408", "body not received in time", E),
            ("413", "body too large", E),
            CTI_415,
            ("422", "invalid event", E),
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Get,
        path: "/v1/cti/{profile}",
        tag: "cti",
        summary:
            "Twilio voice webhook from a number whose voice URL uses method GET (the parameters in \
         the signed query); 405 for other formats",
        request: None,
        responses: &[
            ("200", "TwiML decision", Body::Media(&["text/xml"])),
            ("400", "malformed query", E),
            ("403", "bad Twilio signature", E),
            ("404", "unknown profile", E),
            ("405", "not a Twilio profile", E),
            ("422", "invalid event", E),
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Post,
        path: "/v1/cti/{profile}/{token}",
        tag: "cti",
        summary: "Telephony callback with the token in the path (Zammad, generic), media types \
         as for POST /v1/cti/{profile}",
        request: Some((CTI_MEDIA, Body::None)),
        responses: &[
            ("200", "decision", CTI_REPLY),
            ("400", "malformed body", E),
            ("401", "bad token", E),
            ("403", "bad Twilio signature", E),
            ("404", "unknown profile", E),
            ("408", "body not received in time", E),
            ("413", "body too large", E),
            CTI_415,
            ("422", "invalid event", E),
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Get,
        path: "/v1/cti/{profile}/{token}",
        tag: "cti",
        summary: "As GET /v1/cti/{profile}, for a Twilio voice URL that carries a token in its \
         path; 405 for other formats",
        request: None,
        responses: &[
            ("200", "TwiML decision", Body::Media(&["text/xml"])),
            ("400", "malformed query", E),
            ("403", "bad Twilio signature", E),
            ("404", "unknown profile", E),
            ("405", "not a Twilio profile", E),
            ("422", "invalid event", E),
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Get,
        path: "/v1/orders/{number}",
        tag: "orders",
        summary: "Order status for its submitter (no personal data)",
        request: None,
        responses: &[
            ("200", "status", Body::Json("OrderStatus")),
            ("404", "unknown order", E),
            (
                "429",
                "too_many_lookups: over web.lookup_quota from this client address (404s count); Retry-After",
                E,
            ),
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Get,
        path: "/healthz",
        tag: "ops",
        summary: "Liveness",
        request: None,
        responses: &[("200", "alive", Body::Media(&["application/json"]))],
    },
    Op {
        method: HttpMethod::Get,
        path: "/readyz",
        tag: "ops",
        summary: "Readiness: store writable, relay alive",
        request: None,
        responses: &[
            ("200", "ready", Body::Json("Readiness")),
            ("503", "not ready", Body::Json("Readiness")),
        ],
    },
    Op {
        method: HttpMethod::Get,
        path: "/metrics",
        tag: "ops",
        summary: "Prometheus metrics",
        request: None,
        responses: &[("200", "text format 0.0.4", Body::Media(&["text/plain"]))],
    },
    Op {
        method: HttpMethod::Get,
        path: "/openapi.json",
        tag: "ops",
        summary: "This document",
        request: None,
        responses: &[("200", "OpenAPI 3.1", Body::Media(&["application/json"]))],
    },
    Op {
        method: HttpMethod::Get,
        path: "/admin/v1/outbox",
        tag: "admin",
        summary: "Outbox depth, oldest age, dead letters newest first, a page at a time \
                  (?limit=1..1000, default 100; ?before=KEY, the page's next_before)",
        request: None,
        responses: &[
            ("200", "figures", Body::Media(&["application/json"])),
            ("400", "limit out of range or an unknown query parameter", E),
            UNAUTHORIZED,
            ("503", "the store cannot be read", E),
        ],
    },
    Op {
        method: HttpMethod::Post,
        path: "/admin/v1/outbox/dead/{key}/retry",
        tag: "admin",
        summary: "Replay a dead letter",
        request: None,
        responses: &[
            ("202", "requeued", Body::Media(&["application/json"])),
            UNAUTHORIZED,
            ("404", "no such dead letter", E),
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Post,
        path: "/admin/v1/outbox/dead/replay",
        tag: "admin",
        summary: "Replay every dead letter the filter takes ({} for all)",
        request: Some((&["application/json"], Body::Json("ReplayFilter"))),
        responses: &[
            (
                "202",
                "requeued, with their count",
                Body::Media(&["application/json"]),
            ),
            ("400", "bad body", E),
            UNAUTHORIZED,
            ("408", "body not received in time", E),
            ("413", "body over 64 KiB", E),
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Get,
        path: "/admin/v1/callers/{identity}",
        tag: "admin",
        summary: "Caller: warnings, suspensions, contacts",
        request: None,
        responses: &[
            ("200", "caller view", Body::Media(&["application/json"])),
            ("400", "not an identity (KIND:VALUE)", E),
            UNAUTHORIZED,
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Put,
        path: "/admin/v1/callers/{identity}/suspension",
        tag: "admin",
        summary: "Suspend now",
        request: Some((&["application/json"], Body::Json("SuspendRequest"))),
        responses: &[
            ("200", "suspended", Body::Media(&["application/json"])),
            ("400", "bad identity, body, duration, reason or note", E),
            UNAUTHORIZED,
            ("408", "body not received in time", E),
            ("413", "body over 64 KiB", E),
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Delete,
        path: "/admin/v1/callers/{identity}/suspension",
        tag: "admin",
        summary: "Lift a suspension, reset warnings and quota",
        request: None,
        responses: &[
            ("200", "lifted", Body::Media(&["application/json"])),
            ("400", "not an identity (KIND:VALUE)", E),
            UNAUTHORIZED,
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Put,
        path: "/admin/v1/callers/{identity}/allow",
        tag: "admin",
        summary: "Allow-list an identity on every node until taken off",
        request: None,
        responses: &[
            ("200", "allowed", Body::Media(&["application/json"])),
            ("400", "not an identity (KIND:VALUE)", E),
            UNAUTHORIZED,
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Delete,
        path: "/admin/v1/callers/{identity}/allow",
        tag: "admin",
        summary: "Take an identity off the operators' allow list (nuisance.allow entries stay)",
        request: None,
        responses: &[
            (
                "200",
                "allowed is false unless nuisance.allow names it",
                Body::Media(&["application/json"]),
            ),
            ("400", "not an identity (KIND:VALUE)", E),
            UNAUTHORIZED,
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Put,
        path: "/admin/v1/callers/{identity}/link",
        tag: "admin",
        summary: "Link an identity to another (same person): one shared ladder",
        request: Some((&["application/json"], Body::Json("LinkRequest"))),
        responses: &[
            ("200", "linked", Body::Media(&["application/json"])),
            ("400", "bad identity (path) or body", E),
            (
                "422",
                "`to` is not an identity (code invalid_identity, field to)",
                E,
            ),
            UNAUTHORIZED,
            ("408", "body not received in time", E),
            ("413", "body over 64 KiB", E),
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Get,
        path: "/admin/v1/callers/{identity}/evidence",
        tag: "admin",
        summary:
            "Evidence packet: all contacts, redirects, warnings, suspensions (art. 32 para. 3)",
        request: None,
        responses: &[
            ("200", "JSON packet", Body::Media(&["application/json"])),
            ("400", "not an identity (KIND:VALUE)", E),
            UNAUTHORIZED,
            ("503", "unavailable", E),
        ],
    },
    Op {
        method: HttpMethod::Post,
        path: "/admin/v1/rules/reload",
        tag: "admin",
        summary: "Reload rule files",
        request: None,
        responses: &[
            ("200", "reloaded", Body::Media(&["application/json"])),
            ("400", "a rule file is invalid; old rules kept", E),
            UNAUTHORIZED,
        ],
    },
];

/// What a path parameter is, by its name in the path.
fn parameter_description(name: &str) -> &'static str {
    match name {
        "account" => {
            "the official account's name, as under `[channels.wechat.*]`/`[channels.weibo.*]`"
        }
        "profile" => "the telephony profile's name, as under `[channels.cti.*]`",
        "token" => "the profile's token, for platforms that put it in the URL (Zammad)",
        "number" => "the order number (digits)",
        "identity" => "KIND:VALUE, e.g. phone:13800000000",
        "key" => "the dead letter's idempotency key (an order number for an order)",
        _ => "",
    }
}

/// The schema of a path parameter: a string, and for `identity` the `Identity` component, the
/// shapes `Identity::parse` reads (until 2026-12-07 one pattern `KIND:.+`, so a checker's
/// `phone:0` was a valid request refused 400).
fn parameter_schema(name: &str) -> RefOr<Schema> {
    match name {
        "identity" => RefOr::Ref(Ref::from_schema_name("Identity")),
        _ => RefOr::T(Schema::Object(
            ObjectBuilder::new().schema_type(Type::String).build(),
        )),
    }
}

/// The names in a path template's `{name}` segments, in order.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

/// The bearer scheme of `/admin/v1/*`, by its name in `components.securitySchemes`.
const ADMIN_SCHEME: &str = "adminToken";

/// Builds the document (JSON: the components are written as JSON, and utoipa's types would not
/// hold all of them, such as an `anyOf` beside `properties`).
pub fn document() -> serde_json::Value {
    let mut paths = PathsBuilder::new();
    for op in ROUTES {
        let mut o = OperationBuilder::new()
            .summary(Some(op.summary))
            .tag(op.tag);
        for name in path_parameters(op.path) {
            let description = parameter_description(name);
            o = o.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .description((!description.is_empty()).then_some(description))
                    .schema(Some(parameter_schema(name))),
            );
        }
        if let Some((media, schema)) = &op.request {
            let mut body = RequestBodyBuilder::new().required(Some(Required::True));
            for m in media.iter() {
                let schema = match schema {
                    Body::JsonOrForm(json, _) if *m == "application/json" => &Body::Json(json),
                    Body::JsonOrForm(_, form) => &Body::Json(form),
                    other => other,
                };
                body = body.content(*m, content(schema));
            }
            o = o.request_body(Some(body.build()));
        }
        for (code, description, body) in op.responses {
            let mut r = ResponseBuilder::new().description(*description);
            match body {
                Body::None => {}
                Body::Json(_) | Body::JsonOrForm(..) => {
                    r = r.content("application/json", content(body))
                }
                Body::Media(media) => {
                    for m in media.iter() {
                        r = r.content(*m, content(body));
                    }
                }
            }
            if matches!(*code, "429" | "503") {
                r = r.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::Integer))
                        .description(Some("seconds to wait before trying again"))
                        .build(),
                );
            }
            o = o.response(*code, r.build());
        }
        // Every body is refused in a content coding other than identity (`http::read_body`).
        if op.request.is_some() && !op.responses.iter().any(|(code, ..)| *code == "415") {
            let r = ResponseBuilder::new()
                .description("a Content-Encoding other than identity")
                .content("application/json", content(&E));
            o = o.response("415", r.build());
        }
        if op.path.starts_with("/admin/") {
            o = o.security(SecurityRequirement::new(ADMIN_SCHEME, Vec::<String>::new()));
        }
        paths = paths.path(op.path, PathItem::new(op.method.clone(), o.build()));
    }
    let doc: OpenApi = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("hotline-gateway")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Front door of the 12345 government-service hotline."))
                .build(),
        )
        .paths(paths.build())
        .build();
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    if let Some(o) = doc.as_object_mut() {
        o.insert("components".into(), components());
    }
    doc
}

/// A body's content entry: its schema when it names one.
fn content(body: &Body) -> utoipa::openapi::Content {
    match body {
        Body::Json(name) => ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(*name)))
            .build(),
        Body::JsonOrForm(name, _) => ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(*name)))
            .build(),
        Body::None | Body::Media(_) => ContentBuilder::new().build(),
    }
}

/// A text with something to read: one character that is not white space, a control
/// character or an invisible format character (general category Cf in the Basic Multilingual
/// Plane; those beyond it, such as tag characters, are in the descriptions only). What
/// `text::clean_text` leaves of a text without such a character is empty, and refused.
const VISIBLE: &str = r"[^\s\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]";

/// A character `text::clean_text` removes or trims away: white space and control characters.
const TRIMMED: &str = r"[\s\x00-\x1f\x7f-\x9f]";

/// A character of a text that reads as blank: [`TRIMMED`], or an invisible format character
/// (a text of nothing else is empty to `text::clean_text`).
const INVISIBLE: &str = r"[\s\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]";

/// A phone number as the web form and the admin API store it: 3 to 20 digits (the separators,
/// full-width digits and `+86` that `text::normalize_phone` also reads are in the descriptions:
/// a pattern for all of them would be one for a normaliser).
const PHONE_DIGITS: &str = "[0-9]{3,20}";

/// An e-mail address in ASCII as `Identity::parse` takes it: a local part, one `@`, two or
/// more dot-separated labels, none of `"(),;<>@[\]`, white space or control characters.
const EMAIL_ASCII: &str =
    r"[!#-'*+\-./0-9:=?A-Z^-~]+@[!#-'*+\-/0-9:=?A-Z^-~]+(\.[!#-'*+\-/0-9:=?A-Z^-~]+)+";

/// An IPv4 address as Rust's parser reads it (no leading zeros).
const IPV4: &str = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}";

/// An IPv6 address of hexadecimal groups, `::` at most once (no zone; the forms ending in an
/// IPv4 address are in the description).
const IPV6: &str = r"(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}|:((:[0-9a-fA-F]{1,4}){1,7}|:))";

/// A suspension's length as `config::parse_duration` reads it, one number and unit, each
/// unit's number short enough to stay under its ten years (`1h30m`, `1year` and the other
/// spellings humantime reads are in the description).
const DURATION: &str =
    r"^([1-9][0-9]{0,5}(s|m|min)|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d|[1-9][0-9]?w)$";

/// An attachment link as `web::attachment` takes it: http or https (any case), a host without
/// user information, no white space, control characters or `<>"`.
const LINK_URL: &str = r#"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\x00-\x1f\x7f-\x9f<>"/?#@]+([/?#][^\s\x00-\x1f\x7f-\x9f<>"]*)?$"#;

/// `base` (an object) with `extra`'s members added.
fn dict(base: &serde_json::Value, extra: &[(&str, serde_json::Value)]) -> serde_json::Value {
    let mut v = base.clone();
    if let Some(o) = v.as_object_mut() {
        for (k, x) in extra {
            o.insert((*k).to_string(), x.clone());
        }
    }
    v
}

/// The schemas the table names, and the admin bearer scheme. Written as JSON: the shapes are
/// CONTRACT.md's, and read more easily so than as builder calls.
fn components() -> serde_json::Value {
    // The names `Category::parse` reads; it also reads the English ones in any case and any
    // of them with white space around, which the description says.
    let categories = [
        "consultation",
        "help",
        "complaint",
        "report",
        "suggestion",
        "praise",
        "咨询",
        "求助",
        "投诉",
        "举报",
        "建议",
        "表扬",
    ];
    let category_text = "consultation, help, complaint, report, suggestion or praise (any \
                         case; or 咨询, 求助, 投诉, 举报, 建议, 表扬), white space around it \
                         read away; blank, null or absent: classified by the gateway";
    let mut names: Vec<serde_json::Value> = vec!["".into()];
    names.extend(categories.iter().map(|c| serde_json::Value::from(*c)));
    let form_category =
        serde_json::json!({"type": "string", "enum": names, "description": category_text});
    names.push(serde_json::Value::Null);
    let category = serde_json::json!({"type": ["string", "null"], "enum": names, "description": category_text});
    let visible = VISIBLE;
    let phone = serde_json::json!({
        "pattern": format!("^({INVISIBLE}*|{TRIMMED}*{PHONE_DIGITS}{TRIMMED}*)$"),
        "description": "a phone number, 3 to 20 digits; also read with spaces, dashes, dots, \
                        brackets, full-width digits or a +86/0086 prefix (40 characters at \
                        most, besides white space around it). The identity when given; blank: \
                        none",
    });
    let email = serde_json::json!({
        "pattern": format!(r"^({INVISIBLE}*|{TRIMMED}*[!-;=?A-~]+@[!-;=?-~]*\.[!-;=?-~]*{TRIMMED}*)$"),
        "maxLength": 200,
        "description": "an address: a local part, an @, a domain with a dot, no white space, \
                        control characters or <>; non-ASCII addresses are read too. Blank: none",
    });
    let order_ref = serde_json::json!({
        "type": "object",
        "required": ["number", "category"],
        "properties": {
            "number": {"type": "string", "pattern": "^[0-9]+$"},
            "category": {"type": "string"},
            "suspected_emergency": {
                "type": "string",
                "description": "the emergency number a second opinion suspects the matter \
                                needs: the order is marked for urgent review",
            },
        },
    });
    let answer = |statuses: &[&str], required: &[&str], extra: serde_json::Value| {
        let mut properties = serde_json::json!({
            "status": {"type": "string", "enum": statuses},
            "message": {"type": "string", "description": "a sentence in Chinese for the citizen"},
        });
        if let (Some(p), Some(extra)) = (properties.as_object_mut(), extra.as_object()) {
            p.extend(extra.clone());
        }
        let mut req = vec!["status", "message"];
        req.extend_from_slice(required);
        serde_json::json!({"type": "object", "required": req, "properties": properties})
    };
    let orders =
        serde_json::json!({"type": "array", "items": {"$ref": "#/components/schemas/OrderRef"}});
    serde_json::json!({
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["status", "error", "message"],
                "properties": {
                    "status": {
                        "type": "string",
                        "enum": ["rejected", "unavailable", "error"],
                        "description": "`unavailable` with 503 (nothing was stored), `error` with 500 (the gateway's fault), else `rejected` (bad input)",
                    },
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string", "description": "a stable machine code"},
                            "message": {"type": "string", "description": "the sentence of `message`: Chinese for citizens on the public endpoints, English for operators on `/admin/v1/*`"},
                            "field": {"type": "string", "description": "the refused field (`missing_field`, `invalid_field`), e.g. `email`, `items.content`; `body` for the request as a whole"},
                            "detail": {"type": "string", "description": "what is wrong, in English, for the developer; on the web form it never quotes the submitted value, and personal data (phone numbers, e-mails, ids) is masked in every channel's"},
                        },
                    },
                    "message": {"type": "string"},
                },
            },
            "OrderRef": order_ref,
            // The form encodings' own schema (until 2026-12-07 they shared WebSubmission, whose
            // `additionalProperties: false` and typed values they do not follow: a checker's
            // extra field or `confidential=0` was a valid form "wrongly" accepted).
            "WebSubmissionForm": {
                "type": "object",
                "description": "The fields of WebSubmission as text (urlencoded or multipart). \
                                Names the gateway does not know are ignored (a submit button's \
                                name, `_charset_`, a CSRF token), except keys meant as items or \
                                links in another shape than `items[N][content]`, \
                                `items[N][category]`, `attachments[N][url]`, \
                                `attachments[N][kind]` (N from 0), which are refused (422, field \
                                `items` or `attachments`); a field of these sent twice is \
                                refused too. `items` and `attachments` may also be one field \
                                holding the JSON array of WebSubmission (a blank one is none); \
                                with items so given, `content` may be left out. A schema cannot \
                                say which text is such an array: the document admits the blank \
                                field only, and the indexed names are beyond a schema's \
                                properties. `lat`/`lon` are decimal numbers (an exponent is read \
                                too), `confidential` one of true, false, 1, 0, on, off, yes, no \
                                in any case.",
                "required": ["content"],
                "properties": {
                    "content": {"type": "string", "maxLength": 4000, "pattern": visible,
                                "description": "the matter; something to read besides white space and invisible characters"},
                    "name": {"type": "string", "maxLength": 200},
                    "phone": dict(&phone, &[("type", "string".into())]),
                    "email": dict(&email, &[("type", "string".into())]),
                    "category": form_category,
                    "address": {"type": "string", "maxLength": 500},
                    "lat": {"type": "string", "pattern": r"^[ \t]*(-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?))?[ \t]*$", "description": "a decimal number, -90 to 90; blank: none"},
                    "lon": {"type": "string", "pattern": r"^[ \t]*(-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?))?[ \t]*$", "description": "a decimal number, -180 to 180; blank: none"},
                    "confidential": {"type": "string", "enum": ["true", "false", "1", "0", "on", "off", "yes", "no", ""]},
                    "items": {"type": "string", "maxLength": 0, "description": "blank, or a JSON array of items (WebSubmission.items)"},
                    "attachments": {"type": "string", "maxLength": 0, "description": "blank, or a JSON array of links (WebSubmission.attachments)"},
                    "client_ref": {"type": "string", "maxLength": 128},
                },
            },
            "WebSubmission": {
                "type": "object",
                "description": "The form encodings carry the same names; there `items` is a \
                                JSON array in one field, or `items[N][content]` and \
                                `items[N][category]` pairs, and `attachments` likewise \
                                (`attachments[N][url]`, `attachments[N][kind]`). `content` may \
                                be left out (or blank) when `items` are given: they are the \
                                matter then. Every field may be null, as if absent. JSON refuses \
                                unknown fields and a field sent twice; the form encodings ignore \
                                unknown names (a submit button's name, `_charset_`), read text \
                                in the Content-Type `charset` or the `_charset_` field, else \
                                UTF-8, else GB18030 (GBK pages), and skip an empty file input; a \
                                file is refused: upload it elsewhere and send its link. A \
                                refused field does not keep an emergency in `content` or `items` \
                                from its redirect. Lengths are in characters, counted after \
                                white space around the text and control characters are removed.",
                "additionalProperties": false,
                "anyOf": [
                    {"required": ["content"], "properties": {"content": {"type": "string", "pattern": visible}}},
                    {"required": ["items"], "properties": {"items": {"type": "array", "minItems": 1}}},
                ],
                "properties": {
                    "content": {"type": ["string", "null"], "maxLength": 4000,
                                "description": "the matter: something to read besides white space and invisible characters (format characters, category Cf), unless items are given"},
                    "name": {"type": ["string", "null"], "maxLength": 200},
                    "phone": dict(&phone, &[("type", serde_json::json!(["string", "null"]))]),
                    "email": dict(&email, &[("type", serde_json::json!(["string", "null"]))]),
                    "category": category,
                    "address": {"type": ["string", "null"], "maxLength": 500},
                    "lat": {"type": ["number", "null"], "minimum": -90, "maximum": 90, "description": "with lon; alone, or both 0, no position"},
                    "lon": {"type": ["number", "null"], "minimum": -180, "maximum": 180},
                    "confidential": {"type": ["boolean", "null"], "default": false},
                    "items": {
                        "type": ["array", "null"],
                        "maxItems": 20,
                        "description": "one order per item",
                        "items": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["content"],
                            "properties": {
                                "content": {"type": "string", "maxLength": 4000, "pattern": visible},
                                "category": category,
                            },
                        },
                    },
                    "attachments": {
                        "type": ["array", "null"],
                        "maxItems": 10,
                        "description": "links to media the page uploaded elsewhere; each goes into the work order's `attachments`",
                        "items": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["url"],
                            "properties": {
                                "kind": {
                                    "type": ["string", "null"],
                                    "enum": ["image", "voice", "video", "file", "link", "", null],
                                    "default": "link",
                                    "description": "blank or null: link",
                                },
                                "url": {"type": "string", "maxLength": 2048, "pattern": LINK_URL, "description": "http or https, with a host and no user name or password; no white space, control characters or <>\""},
                            },
                        },
                    },
                    "client_ref": {
                        "type": ["string", "null"],
                        "maxLength": 128,
                        "description": "the page's idempotency key, new for each submission (a UUID): a retry gets the first answer (with no phone given, a retry of the same form, from any address; a ref a page reuses for everyone makes two identical anonymous forms one order)",
                    },
                },
            },
            "WebAccepted": answer(&["accepted"], &["orders"], serde_json::json!({"orders": orders})),
            "WebDecided": answer(
                &["duplicate", "redirected", "informed", "accepted"],
                &[],
                serde_json::json!({
                    "orders": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/OrderRef"},
                        "description": "duplicate: the earlier open order(s) of this matter",
                    },
                    "redirect": {
                        "type": "object",
                        "required": ["number", "reason"],
                        "description": "redirected: no order was made; dial this number",
                        "properties": {
                            "number": {"type": "string", "enum": ["110", "119", "120", "122"]},
                            "reason": {"type": "string"},
                        },
                    },
                }),
            ),
            "WebThrottled": answer(
                &["throttled"],
                &["retry_after", "warnings_left"],
                serde_json::json!({
                    "retry_after": {"type": "integer", "description": "seconds"},
                    "warnings_left": {
                        "type": "integer",
                        "description": "reminders left before a suspension; over the cap per client address (web.address_quota) no reminder is used and this is the full nuisance.warnings"
                    },
                }),
            ),
            "WebSuspended": answer(
                &["suspended"],
                &["until", "reason"],
                serde_json::json!({
                    "until": {"type": "string", "format": "date-time"},
                    "reason": {"type": "string"},
                }),
            ),
            "OrderStatus": {
                "type": "object",
                "required": ["number", "status"],
                "properties": {
                    "number": {"type": "string"},
                    "status": {"description": "dispatch's status, or received / forwarded; for a confidential order only a status word, and no other field but number"},
                    "unit": {"description": "the handling unit, when dispatch names one"},
                    "category": {"type": ["string", "null"]},
                    "received_at": {"type": ["string", "null"], "format": "date-time"},
                    "updated_at": {"description": "dispatch's last change"},
                    "forwarded_at": {"type": ["string", "null"], "format": "date-time"},
                },
            },
            "Readiness": {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": {"type": "string", "enum": ["ready", "unavailable"]},
                    "store": {"type": "boolean"},
                    "store_error": {"type": ["string", "null"], "enum": ["store_unavailable", "store_internal", null]},
                    "relay": {"type": "boolean"},
                    "node": {"type": "boolean", "description": "no other node runs under this one's server.node_id"},
                    "node_error": {"type": ["string", "null"], "enum": ["node_id_in_use", null]},
                    "breaker_open": {"type": "boolean", "description": "dispatch is failing; shown, not judged"},
                    "rules": {"type": "boolean", "description": "every rule file in force was used"},
                    "rules_error": {"type": ["string", "null"], "enum": ["rules_invalid", null], "description": "compiled-in defaults serve for a file that could not be used; shown, not judged"},
                },
            },
            "SuspendRequest": {
                "type": "object",
                "additionalProperties": false,
                "required": ["duration", "reason"],
                "properties": {
                    "duration": {"type": "string", "pattern": DURATION, "description": "longer than zero and at most ten years: a number and a unit (s, m, h, d, w), e.g. 24h, 7d; humantime's other spellings and sums (1h 30m, 2days, 1month) are read too"},
                    "reason": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": r"\S", "description": "public: the person is told it, and events and mail carry it; 1 to 500 characters besides white space around it"},
                    "note": {"type": ["string", "null"], "maxLength": 2000, "description": "private (optional): kept as the suspension's `evidence`, shown only in the caller view and the evidence packet; never to the person, nor in events or mail"},
                },
            },
            "ReplayFilter": {
                "type": "object",
                "additionalProperties": false,
                "description": "every member may be null, as if absent",
                "properties": {
                    "status": {"type": ["integer", "null"], "minimum": 100, "maximum": 599, "description": "the HTTP status dispatch refused them with"},
                    "kind": {"type": ["string", "null"], "enum": ["order", "contact", null]},
                    "since": {"type": ["string", "null"], "format": "date-time", "description": "queued at or after"},
                    "until": {"type": ["string", "null"], "format": "date-time", "description": "queued before"},
                },
            },
            "LinkRequest": {
                "type": "object",
                "additionalProperties": false,
                "required": ["to"],
                "properties": {"to": {"$ref": "#/components/schemas/Identity", "description": "another identity than the path's"}},
            },
            "Identity": {
                "type": "string",
                "description": "KIND:VALUE, as Identity::parse reads it. phone: a number of 3 to \
                                20 digits (also read with spaces, dashes, dots, brackets, \
                                full-width digits or a +86/0086 prefix); wechat, weibo: the \
                                openid or uid, 1 to 256 bytes besides white space around it; \
                                email: one address (a local part, one @, two or more \
                                dot-separated labels, no white space, control characters or \
                                \"(),;<>[\\]), 256 bytes at most, matched in lower case; ip: an \
                                IPv4 or IPv6 address (also the IPv6 forms ending in an IPv4 \
                                address); cti: PROFILE:ID. The patterns say the ASCII forms; \
                                values in other scripts are read as described.",
                "anyOf": [
                    {"pattern": format!("^phone:{PHONE_DIGITS}$")},
                    {"pattern": r"^wechat:[!-~]([ -~]*[!-~])?$", "maxLength": 263},
                    {"pattern": r"^weibo:[!-~]([ -~]*[!-~])?$", "maxLength": 262},
                    {"pattern": format!("^email:{EMAIL_ASCII}$"), "maxLength": 262},
                    {"pattern": format!("^ip:({IPV4}|{IPV6})$")},
                    {"pattern": r"^cti:[ -~]*:[ -~]*$", "maxLength": 260},
                ],
                "examples": ["phone:13800000000", "wechat:oABC123", "email:name@example.gov.cn", "ip:203.0.113.9", "cti:desk:caller-42"],
            },
        },
        "securitySchemes": {
            ADMIN_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer <admin.token>`",
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn doc() -> Value {
        document()
    }

    const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

    /// Every (method, path) in the document.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if METHODS.contains(&method.as_str()) {
                    ops.push((method.clone(), path.clone(), op.clone()));
                }
            }
        }
        ops
    }

    #[test]
    fn every_operation_declares_its_path_parameters() {
        let doc = doc();
        let ops = operations(&doc);
        assert!(ops.len() >= ROUTES.len());
        for (method, path, op) in &ops {
            let names: Vec<&str> = path_parameters(path).collect();
            let declared: Vec<&Value> = op["parameters"]
                .as_array()
                .map(|a| a.iter().filter(|p| p["in"] == "path").collect())
                .unwrap_or_default();
            for name in &names {
                assert!(
                    declared
                        .iter()
                        .any(|p| p["name"] == *name && p["required"] == true),
                    "{method} {path} does not declare the path parameter {name}: {op}"
                );
            }
            assert_eq!(
                declared.len(),
                names.len(),
                "{method} {path} declares a path parameter its path does not have"
            );
        }
    }

    #[test]
    fn admin_operations_need_the_bearer_token_and_say_401() {
        let doc = doc();
        assert_eq!(
            doc["components"]["securitySchemes"][ADMIN_SCHEME],
            serde_json::json!({"type": "http", "scheme": "bearer",
                "description": "`Authorization: Bearer <admin.token>`"})
        );
        let mut admin = 0;
        for (method, path, op) in operations(&doc) {
            let secured = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get(ADMIN_SCHEME).is_some()));
            if path.starts_with("/admin/") {
                admin += 1;
                assert!(secured, "{method} {path} has no bearer requirement");
                assert!(
                    op["responses"].get("401").is_some(),
                    "{method} {path} has no 401"
                );
            } else {
                assert!(!secured, "{method} {path} is public");
            }
        }
        assert!(admin >= 9);
    }

    #[test]
    fn every_schema_a_document_names_is_in_its_components() {
        let doc = doc();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert!(schemas.len() >= 10, "{schemas:?}");
        for part in text.split("#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(
                schemas.contains_key(name),
                "{name} is referred to, not defined"
            );
        }
    }

    /// The routes `http::routes` registers, as (method, path): read from its source, so a route
    /// added there and not here fails this test. Each route is a `resource_at("PATH")` with its
    /// `.route(METHOD()...)` calls; a service registered any other way fails it too.
    fn registered_routes() -> BTreeSet<(String, String)> {
        let source = include_str!("http/mod.rs");
        let start = source
            .find("pub fn routes(")
            .expect("http::routes in src/http/mod.rs");
        let body = &source[start..];
        let body = &body[..body.find("\n}\n").expect("the end of http::routes")];
        assert_eq!(
            body.matches(".service(").count(),
            body.matches("resource_at(\"").count(),
            "every service of http::routes is a resource_at(PATH): {body}"
        );
        let mut routes = BTreeSet::new();
        for chunk in body.split("resource_at(\"").skip(1) {
            let path = chunk.split('"').next().unwrap();
            let mut methods = 0;
            for method in METHODS {
                methods += chunk.matches(&format!(".route({method}()")).count();
                if chunk.contains(&format!(".route({method}()")) {
                    routes.insert((method.to_string(), path.to_string()));
                }
            }
            assert_eq!(
                methods,
                chunk.matches(".route(").count(),
                "a route of {path} whose method this test does not read"
            );
            assert!(methods > 0, "{path} has no route");
        }
        routes
    }

    #[test]
    fn the_document_has_exactly_the_routes_the_server_registers() {
        let registered = registered_routes();
        assert!(registered.len() >= 20, "{registered:?}");
        let documented: BTreeSet<(String, String)> = operations(&doc())
            .into_iter()
            .map(|(method, path, _)| (method, path))
            .collect();
        let missing: Vec<_> = registered.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "served, not in /openapi.json: {missing:?}"
        );
        let extra: Vec<_> = documented.difference(&registered).collect();
        assert!(extra.is_empty(), "in /openapi.json, not served: {extra:?}");
    }

    /// Every operation that reads a body documents 415 (a media type its format does not
    /// take, a content coding): the telephony callbacks did not until 2026-12-07.
    #[test]
    fn every_operation_with_a_body_documents_415() {
        for (method, path, op) in operations(&doc()) {
            if op.get("requestBody").is_some() {
                assert!(op["responses"].get("415").is_some(), "{method} {path}");
            }
        }
        let doc = doc();
        let cti = &doc["paths"]["/v1/cti/{profile}"]["post"];
        let text = cti["responses"]["415"]["description"].to_string();
        assert!(
            text.contains("Twilio: application/x-www-form-urlencoded"),
            "{text}"
        );
    }

    /// The form encodings have their own schema, an identity its shape, a replay's status
    /// its range: a checker's valid requests are ones the server takes.
    #[test]
    fn schemas_are_as_strict_as_the_server() {
        let doc = doc();
        let web = &doc["paths"]["/v1/web/submissions"]["post"]["requestBody"]["content"];
        assert_eq!(
            web["application/json"]["schema"]["$ref"],
            "#/components/schemas/WebSubmission"
        );
        for form in ["application/x-www-form-urlencoded", "multipart/form-data"] {
            assert_eq!(
                web[form]["schema"]["$ref"], "#/components/schemas/WebSubmissionForm",
                "{form}"
            );
        }
        let param = &doc["paths"]["/admin/v1/callers/{identity}"]["get"]["parameters"][0];
        assert_eq!(param["name"], "identity");
        assert_eq!(
            param["schema"]["$ref"], "#/components/schemas/Identity",
            "{param}"
        );
        let identity = &doc["components"]["schemas"]["Identity"]["anyOf"];
        assert_eq!(identity.as_array().map(Vec::len), Some(6), "{identity}");
        let status = &doc["components"]["schemas"]["ReplayFilter"]["properties"]["status"];
        assert_eq!(
            (status["minimum"].as_i64(), status["maximum"].as_i64()),
            (Some(100), Some(599))
        );
    }

    #[test]
    fn throttled_and_unavailable_answers_carry_retry_after() {
        for (method, path, op) in operations(&doc()) {
            for code in ["429", "503"] {
                if let Some(r) = op["responses"].get(code) {
                    assert!(
                        r["headers"].get("Retry-After").is_some(),
                        "{method} {path} {code}"
                    );
                }
            }
        }
    }
}
