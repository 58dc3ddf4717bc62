//! actix-web wiring: one route line per channel, shared request plumbing (bounded body reads,
//! client address, admin auth), and the app factory used by `run` and by tests.

pub mod admin;
pub mod conn;
pub mod cti;
pub mod error;
pub mod ops;
pub mod social;
pub mod web;

use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::relay::RelayState;
use crate::store::Store;
use actix_web::web::{Bytes, BytesMut, Data, Payload};
use actix_web::HttpRequest;
use error::ApiError;
use futures_util::StreamExt;
use hotline_adapters::AdapterError;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Everything a handler needs, shared by all workers.
pub struct AppState {
    /// The validated configuration.
    pub cfg: Arc<Config>,
    /// The intake decisions.
    pub pipeline: Arc<Pipeline>,
    /// The durable store.
    pub store: Arc<dyn Store>,
    /// The relay's observable state.
    pub relay: Arc<RelayState>,
    /// Renders `/metrics`.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Client for status look-ups at the dispatch API.
    pub http: reqwest::Client,
    /// Parsed `web.trusted_proxies`.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Telephony profiles by name.
    pub cti: HashMap<String, cti::CtiSetup>,
    /// WeChat accounts by name.
    pub wechat: HashMap<String, social::WechatSetup>,
    /// Weibo accounts by name.
    pub weibo: HashMap<String, hotline_adapters::weibo::WeiboAccount>,
    /// Recent order statuses from dispatch, by number (see [`ops::STATUS_TTL`]).
    pub status_cache: std::sync::Mutex<HashMap<String, (std::time::Instant, serde_json::Value)>>,
    /// Pushes answered `success` past their reply budget, until their intake is stored.
    pub late_pushes: crate::journal::PushJournal,
    /// This node's claim on its `server.node_id` (another node running under it makes this
    /// one not ready).
    pub node: crate::store::node_lock::NodeClaim,
}

/// The channel settings of a config, in the adapters' terms.
pub fn channel_setups(
    cfg: &Config,
) -> (
    HashMap<String, cti::CtiSetup>,
    HashMap<String, social::WechatSetup>,
    HashMap<String, hotline_adapters::weibo::WeiboAccount>,
) {
    use hotline_adapters::cti::{CtiFormat, CtiProfile};
    let cti = cfg
        .channels
        .cti
        .iter()
        .map(|(name, c)| {
            let profile = CtiProfile {
                format: CtiFormat::parse(&c.format).unwrap_or_default(),
                token: c.token.expose().to_string(),
                auth_token: c.auth_token.expose().to_string(),
                shared_key_secret: c.shared_key_secret.expose().to_string(),
                public_url: c.public_url.clone(),
                continue_twiml: if c.continue_twiml.trim().is_empty() {
                    hotline_adapters::cti::twilio::DEFAULT_CONTINUE.to_string()
                } else {
                    c.continue_twiml.clone()
                },
                say_voice: c.say_voice.clone(),
                // Checked entry by entry at load (`sip_number_hosts[i]`): a config with a bad
                // one never starts, and none listed trusts no SIP host either way.
                sip_number_hosts: hotline_adapters::cti::SipNumberHosts::new(&c.sip_number_hosts)
                    .unwrap_or_default(),
            };
            let setup = cti::CtiSetup {
                profile,
                transfer: c.transfers(),
                status_prefix: c.status_prefix.clone(),
            };
            (name.clone(), setup)
        })
        .collect();
    let wechat = cfg
        .channels
        .wechat
        .iter()
        .map(|(name, w)| {
            let mut account =
                hotline_adapters::wechat::WechatAccount::new(w.token.expose(), w.app_id.clone());
            if !w.encoding_aes_key.is_empty() {
                account = account.with_aes_key(w.encoding_aes_key.expose());
            }
            account.require_encryption = w.require_encryption;
            let setup = social::WechatSetup {
                account,
                welcome: w.welcome.clone(),
                status_menu_key: w.status_menu_key.clone(),
            };
            (name.clone(), setup)
        })
        .collect();
    let weibo = cfg
        .channels
        .weibo
        .iter()
        .map(|(name, w)| {
            (
                name.clone(),
                hotline_adapters::weibo::WeiboAccount::new(w.app_secret.expose()),
            )
        })
        .collect();
    (cti, wechat, weibo)
}

/// Reads a webhook's bounded body and stamps its arrival: the adapters' input, in one place
/// for every channel that hands raw requests to an adapter.
pub async fn read_inbound(
    req: &HttpRequest,
    payload: Payload,
    state: &AppState,
) -> Result<hotline_adapters::Inbound, ApiError> {
    let body = read_body(
        req,
        payload,
        state.cfg.server.body_limit,
        state.cfg.derived.request_timeout,
    )
    .await?;
    Ok(inbound(req, body, now()))
}

/// The adapters' view of a request: query, lower-cased headers, body, arrival time.
pub fn inbound(req: &HttpRequest, body: Bytes, now: i64) -> hotline_adapters::Inbound {
    hotline_adapters::Inbound {
        query: req.query_string().to_string(),
        headers: req
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().ok()?.to_string(),
                ))
            })
            .collect(),
        body: body.to_vec(),
        now,
    }
}

/// Registers every route. One line per channel.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    use actix_web::web::{delete, post, put};
    cfg.service(resource_at("/v1/web/submissions", "POST").route(post().to(web::submit)))
        .service(
            resource_at("/v1/wechat/{account}", "GET, HEAD, POST")
                .route(get().to(social::wechat_verify))
                .route(post().to(social::wechat_push)),
        )
        .service(
            resource_at("/v1/weibo/{account}", "GET, HEAD, POST")
                .route(get().to(social::weibo_verify))
                .route(post().to(social::weibo_push)),
        )
        .service(
            resource_at("/v1/cti/{profile}", "GET, HEAD, POST")
                .route(post().to(cti::callback))
                .route(get().to(cti::callback)),
        )
        .service(
            resource_at("/v1/cti/{profile}/{token}", "GET, HEAD, POST")
                .route(post().to(cti::callback_with_token))
                .route(get().to(cti::callback_with_token)),
        )
        .service(resource_at("/v1/orders/{number}", "GET, HEAD").route(get().to(ops::order_status)))
        .service(resource_at("/healthz", "GET, HEAD").route(get().to(ops::healthz)))
        .service(resource_at("/readyz", "GET, HEAD").route(get().to(ops::readyz)))
        .service(resource_at("/metrics", "GET, HEAD").route(get().to(ops::metrics)))
        .service(resource_at("/openapi.json", "GET, HEAD").route(get().to(ops::openapi)))
        .service(resource_at("/admin/v1/outbox", "GET, HEAD").route(get().to(admin::outbox)))
        .service(
            resource_at("/admin/v1/outbox/dead/{key}/retry", "POST")
                .route(post().to(admin::retry_dead)),
        )
        .service(
            resource_at("/admin/v1/outbox/dead/replay", "POST")
                .route(post().to(admin::replay_dead)),
        )
        .service(
            resource_at("/admin/v1/callers/{identity}", "GET, HEAD").route(get().to(admin::caller)),
        )
        .service(
            resource_at("/admin/v1/callers/{identity}/suspension", "PUT, DELETE")
                .route(put().to(admin::suspend))
                .route(delete().to(admin::lift)),
        )
        .service(
            resource_at("/admin/v1/callers/{identity}/allow", "PUT, DELETE")
                .route(put().to(admin::allow))
                .route(delete().to(admin::disallow)),
        )
        .service(
            resource_at("/admin/v1/callers/{identity}/link", "PUT").route(put().to(admin::link)),
        )
        .service(
            resource_at("/admin/v1/callers/{identity}/evidence", "GET, HEAD")
                .route(get().to(admin::evidence)),
        )
        .service(
            resource_at("/admin/v1/rules/reload", "POST").route(post().to(admin::reload_rules)),
        );
}

/// A resource whose wrong methods get the JSON error body every other refusal has (actix's own
/// 405 has an empty body), with the `Allow` header RFC 9110 §15.5.6 requires of a 405 (missing
/// until 2026-12-07). `allow` lists the methods its routes take, as the header writes them
/// (a unit test holds it to the routes).
fn resource_at(path: &str, allow: &'static str) -> actix_web::Resource {
    actix_web::web::resource(path).default_service(actix_web::web::to(move || async move {
        Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed(allow))
    }))
}

/// A GET route that answers HEAD too (RFC 9110 §9.1: a general-purpose server must). Until
/// 2026-12-07 `HEAD /healthz` got 405, and a load balancer or uptime check probing with HEAD
/// marked every node down. actix-http sends a HEAD answer's headers without its body.
fn get() -> actix_web::Route {
    use actix_web::guard;
    actix_web::web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Whether the body comes in a content coding other than `identity` (a value that is not
/// text counts as one: no coding can be read from it).
fn content_coded(req: &HttpRequest) -> bool {
    req.headers()
        .get_all("content-encoding")
        .any(|v| match v.to_str() {
            Ok(v) => v
                .split(',')
                .map(str::trim)
                .any(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity")),
            Err(_) => true,
        })
}

/// Reads a body of at most `limit` bytes within `deadline` (`server.request_timeout`). A body
/// in any content coding but `identity` is refused (415) before it is read. A
/// declared Content-Length over the limit is refused before reading anything; an undeclared one
/// is refused as soon as it passes the limit. A body still arriving at the deadline is answered
/// 408 (actix closes the connection, the body being unread): actix's own request timeout covers
/// only a connection's first request head, and a client that sent a head and then a byte every
/// few seconds held a connection and a handler for as long as it liked.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::Adapter(AdapterError::TooLarge { limit });
    if content_coded(req) {
        return Err(ApiError::UnsupportedEncoding);
    }
    if let Some(len) = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large());
        }
    }
    let read = async {
        let mut buf = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ApiError::InvalidBody(e.to_string()))?;
            if buf.len() + chunk.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    };
    // actix feeds even a body that came with its head to the payload after the handler has
    // started, so the timer is registered for every body (bench/callgrind: ~150 instructions
    // a post; polling the read once first does not avoid it).
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or(Err(ApiError::RequestTimeout))
}

/// The client's address: the peer, or the right-most untrusted X-Forwarded-For hop when the peer
/// is a trusted proxy. Anyone else's X-Forwarded-For is ignored, so an identity cannot be spoofed.
/// IPv4 seen through a dual-stack listener (`::ffff:203.0.113.9`) is the IPv4 address it is:
/// for the trust check (a `10.0.0.0/8` entry covers the proxy however it arrives) and for the
/// `ip:` identity (one person, one quota, whichever way the socket was opened).
///
/// A hop is a bare address or one with a port or brackets as proxies write them
/// (`203.0.113.6:5555`, `[2001:db8::1]`, `[2001:db8::1]:443`; see [`hop_address`]). The walk
/// from the right stops at the first hop that is none of these (`unknown`, an obfuscated
/// `_hidden`, junk) and answers the nearest trusted address read before it, the proxy that
/// wrote it, as when the hops run out: everything to its left came through that proxy from
/// the client, who could have written it. So the proxy's own address is counted, never
/// "unknown" (which no cap counts): a proxy that names nobody makes its clients share one
/// bucket, which shows in the caps' 429s, rather than silently switching the caps off. Only
/// the `X-Forwarded-For` header is read (RFC 7239 `Forwarded` is not). Until 2026-12-07 a hop
/// that was no bare address was skipped, so behind a proxy that adds the port the hop it
/// wrote was dropped and one the client wrote further left believed: rotating it escaped
/// `web.address_quota` and `web.lookup_quota`.
pub fn client_ip(req: &HttpRequest, trusted: &[ipnet::IpNet]) -> String {
    let peer = req.peer_addr().map(|a| a.ip().to_canonical());
    let Some(peer) = peer else {
        return "unknown".into();
    };
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer.to_string();
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut nearest = peer;
    for hop in hops.into_iter().rev() {
        let Some(ip) = hop_address(hop) else {
            break;
        };
        if !is_trusted(&ip) {
            return ip.to_string();
        }
        nearest = ip;
    }
    nearest.to_string()
}

/// The address of one X-Forwarded-For hop, canonical (IPv4-mapped IPv6 is IPv4): `192.0.2.1`,
/// `2001:db8::1`, with a port `192.0.2.1:5555`, in brackets `[2001:db8::1]`, or both
/// `[2001:db8::1]:443`. `None` for anything else, an empty hop included.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            hop.strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<std::net::Ipv6Addr>()
                .ok()
                .map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

/// Unix seconds now; the one place the request path reads the clock.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Checks the admin bearer token in constant time. An empty configured token disables admin.
pub fn require_admin(req: &HttpRequest, state: &Data<AppState>) -> Result<(), ApiError> {
    use subtle::ConstantTimeEq;
    let want = state.cfg.admin.token.expose();
    if want.is_empty() {
        return Err(ApiError::Unauthorized);
    }
    let got = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .unwrap_or_default();
    if got.as_bytes().ct_eq(want.as_bytes()).into() {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// The credentials of an `Authorization: Bearer …` header. The scheme is case-insensitive
/// (RFC 9110 §11.1): clients and proxies send `bearer` too.
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    /// Every 405 says `Allow`, and what it says is what the document lists for the path (the
    /// document is held to the routes by a test of its own), HEAD with each GET. HEAD answers
    /// as GET does.
    #[actix_web::test]
    async fn every_405_carries_the_methods_of_its_path_and_head_answers_as_get() {
        use actix_web::http::Method;
        let app = actix_web::test::init_service(actix_web::App::new().configure(routes)).await;
        let doc = crate::openapi::document();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        assert!(paths.len() >= 15, "{paths:?}");
        for (path, item) in paths {
            let mut want: Vec<String> = item
                .as_object()
                .map(|ops| ops.keys().map(|m| m.to_uppercase()).collect())
                .unwrap_or_default();
            want.retain(|m| ["GET", "POST", "PUT", "DELETE"].contains(&m.as_str()));
            if want.iter().any(|m| m == "GET") {
                want.push("HEAD".into());
            }
            want.sort();
            let concrete = path.replace(['{', '}'], "");
            let req = actix_web::test::TestRequest::default()
                .method(Method::TRACE)
                .uri(&concrete)
                .to_request();
            let resp = actix_web::test::call_service(&app, req).await;
            assert_eq!(resp.status().as_u16(), 405, "{path}");
            let mut allow: Vec<String> = resp
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .split(',')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect();
            allow.sort();
            assert_eq!(allow, want, "{path}");
        }
        let req = actix_web::test::TestRequest::default()
            .method(Method::HEAD)
            .uri("/healthz")
            .to_request();
        let resp = actix_web::test::call_service(&app, req).await;
        assert_eq!(resp.status().as_u16(), 200);
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer t0k"), Some("t0k"));
        assert_eq!(bearer("bearer t0k"), Some("t0k"));
        assert_eq!(bearer("BEARER  t0k"), Some("t0k"));
        assert_eq!(bearer("Basic t0k"), None);
        assert_eq!(bearer("Bearert0k"), None);
    }

    fn ip_of(peer: &str, forwarded: Option<&str>, trusted: &[&str]) -> String {
        let trusted: Vec<ipnet::IpNet> = trusted
            .iter()
            .filter_map(|t| crate::config::parse_proxy(t))
            .collect();
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap_or_else(|e| {
            panic!("{peer}: {e}");
        }));
        if let Some(f) = forwarded {
            req = req.insert_header(("x-forwarded-for", f));
        }
        client_ip(&req.to_http_request(), &trusted)
    }

    #[test]
    fn a_proxy_in_a_trusted_range_names_the_client_however_its_address_is_written() {
        let range = ["10.0.0.0/8"];
        // A proxy anywhere in the range, as IPv4 or through a dual-stack socket.
        for peer in ["10.1.2.3:80", "[::ffff:10.1.2.3]:80"] {
            assert_eq!(
                ip_of(peer, Some("203.0.113.9"), &range),
                "203.0.113.9",
                "{peer}"
            );
        }
        // The client's own address through a dual-stack socket is its IPv4 address.
        assert_eq!(
            ip_of("[::ffff:203.0.113.9]:80", None, &range),
            "203.0.113.9"
        );
        assert_eq!(
            ip_of("10.1.2.3:80", Some("::ffff:203.0.113.9"), &range),
            "203.0.113.9"
        );
        // Outside the range the header is ignored: it cannot be spoofed.
        assert_eq!(
            ip_of("192.0.2.1:80", Some("203.0.113.9"), &range),
            "192.0.2.1"
        );
        // The right-most hop outside the range, not one the client wrote before it.
        assert_eq!(
            ip_of(
                "10.1.2.3:80",
                Some("198.51.100.7, 203.0.113.9, 10.9.9.9"),
                &range
            ),
            "203.0.113.9"
        );
        // An entry written as IPv6-mapped IPv4 covers the IPv4 peer too.
        assert_eq!(
            ip_of("10.0.0.5:80", Some("203.0.113.9"), &["::ffff:10.0.0.5"]),
            "203.0.113.9"
        );
    }

    /// A hop with a port or brackets (as Azure Application Gateway and some ingresses write
    /// the client) is that address; until 2026-12-07 it was skipped and the hop the client
    /// wrote to its left believed.
    #[test]
    fn a_hop_with_a_port_or_brackets_is_its_address() {
        let range = ["10.0.0.0/8"];
        for (hop, client) in [
            ("203.0.113.6:5555", "203.0.113.6"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            (" [::ffff:203.0.113.6]:80 ", "203.0.113.6"),
        ] {
            assert_eq!(
                ip_of("10.1.2.3:80", Some(&format!("198.51.100.7, {hop}")), &range),
                client,
                "{hop}"
            );
            // Behind a second, trusted proxy that adds the port too.
            assert_eq!(
                ip_of(
                    "10.1.2.3:80",
                    Some(&format!("198.51.100.7, {hop}, 10.9.9.9:8080")),
                    &range
                ),
                client,
                "{hop}"
            );
        }
    }

    /// A hop that is no address at all stops the walk: the answer is the nearest trusted
    /// address read before it (the proxy that wrote it), never a hop further left, which the
    /// client could have written. Until 2026-12-07 the walk skipped it and believed the left.
    #[test]
    fn an_unreadable_hop_stops_the_walk_at_the_nearest_trusted_address() {
        let range = ["10.0.0.0/8"];
        for junk in [
            "unknown",
            "_hidden",
            "",
            "[2001:db8::1",
            "203.0.113.6:port",
            "[203.0.113.6]",
        ] {
            assert_eq!(
                ip_of(
                    "10.1.2.3:80",
                    Some(&format!("198.51.100.7, {junk}")),
                    &range
                ),
                "10.1.2.3",
                "{junk:?}"
            );
            assert_eq!(
                ip_of(
                    "10.1.2.3:80",
                    Some(&format!("198.51.100.7, {junk}, 10.9.9.9")),
                    &range
                ),
                "10.9.9.9",
                "{junk:?}"
            );
        }
        // A client's junk left of the proxy's hop is never reached.
        assert_eq!(
            ip_of("10.1.2.3:80", Some("unknown, 203.0.113.6:5555"), &range),
            "203.0.113.6"
        );
    }
}
