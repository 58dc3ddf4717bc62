//! MQTT events (rumqttc): `{prefix}/orders/accepted`, `.../orders/delivered`, `.../orders/dead`,
//! `.../emergency/redirected`, `.../emergency/suspected`, `.../callers/warned`,
//! `.../callers/suspended` (QoS 1, JSON with an `event_id` for consumers to dedupe, personal data
//! masked), and `{prefix}/gateway/status` (retained; the last will says offline).
//!
//! The status names its node: `{"status": "online", "node": 7}`. With several nodes on one
//! broker the topic says whether the gateway serves: one node's last will (or goodbye) says
//! `offline` for that node, and every node still connected answers it by saying `online` again,
//! so the retained status is `offline` only once the last node is gone. Each node subscribes to
//! the topic for this; one node alone sees only its own messages and does nothing more.
//!
//! Delivery: the publisher takes a batch from the event outbox, publishes it, and deletes it only
//! when the broker has acknowledged every message (PUBACK). A reconnect in between publishes the
//! batch again; the `event_id` makes that harmless. While the broker is away, events wait on disk
//! up to `queue_bound`; beyond it the oldest are dropped, counted and logged.

use crate::store::{Store, Topics};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Publisher settings (from `[mqtt]`).
#[derive(Debug, Clone)]
pub struct MqttSettings {
    /// Broker address, credentials, TLS.
    pub broker: BrokerUrl,
    /// PEM file of the CA that signed the broker's certificate (TLS only).
    pub ca_file: Option<std::path::PathBuf>,
    /// Topic prefix.
    pub prefix: String,
    /// Client id (unique per node).
    pub client_id: String,
    /// `server.node_id`, named in the status.
    pub node_id: u8,
    /// Most events kept while the broker is away.
    pub queue_bound: u64,
}

/// A broker address from `[mqtt] url`: `mqtt://[user:pass@]host[:port]` or `mqtts://…` (TLS).
/// `Debug` shows the user name, not the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or address.
    pub host: String,
    /// Port (1883, or 8883 with TLS, unless given).
    pub port: u16,
    /// TLS (`mqtts://`).
    pub tls: bool,
    /// Username and password, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(user, _)| (user, "***")),
            )
            .finish()
    }
}

/// Parses `mqtt://[user:pass@]host[:port]` or `mqtts://…`; `None` when it is neither.
pub fn parse_url(url: &str) -> Option<BrokerUrl> {
    let (tls, rest) = match url.strip_prefix("mqtts://") {
        Some(r) => (true, r),
        None => (false, url.strip_prefix("mqtt://")?),
    };
    let rest = rest.split('/').next()?;
    let (credentials, hostport) = match rest.rsplit_once('@') {
        Some((userinfo, hp)) => {
            let (u, p) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let dec = |s: &str| percent_decode(s);
            (Some((dec(u)?, dec(p)?)), hp)
        }
        None => (None, rest),
    };
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().ok()?),
        None => (hostport.to_string(), default_port),
    };
    if host.is_empty() {
        return None;
    }
    Some(BrokerUrl {
        host,
        port,
        tls,
        credentials,
    })
}

/// Why a topic prefix cannot be used, if it cannot: the broker refuses a will or a publish
/// under a topic with a wildcard (`+`, `#`) or NUL, `$` topics are the broker's own, and an
/// empty level (empty, or `/` at either end) is a mistake more likely than a wish. The broker
/// would refuse every CONNECT and events would pile up unseen.
pub fn prefix_problem(prefix: &str) -> Option<&'static str> {
    if prefix.is_empty() {
        Some("must not be empty")
    } else if prefix.contains(['+', '#', '\0']) {
        Some("must not contain the wildcards + or #, or NUL")
    } else if prefix.starts_with('$') {
        Some("must not start with $ (the broker's own topics)")
    } else if prefix.starts_with('/') || prefix.ends_with('/') {
        Some("must not start or end with / (an empty topic level)")
    } else {
        None
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_another_nodes_offline_calls_for_online_again() {
        assert!(another_node_offline(br#"{"status":"offline","node":8}"#, 7));
        assert!(!another_node_offline(
            br#"{"status":"offline","node":7}"#,
            7
        ));
        assert!(!another_node_offline(br#"{"status":"online","node":8}"#, 7));
        // An older gateway's status names no node: another node's.
        assert!(another_node_offline(br#"{"status":"offline"}"#, 7));
        assert!(!another_node_offline(b"not json", 7));
        assert_eq!(
            status("city", 7, true),
            (
                "city/gateway/status".to_string(),
                r#"{"node":7,"status":"online"}"#.to_string()
            )
        );
    }

    #[test]
    fn broker_urls_parse_with_credentials_and_tls() {
        let b = parse_url("mqtt://127.0.0.1:1884").unwrap();
        assert_eq!(
            (b.host.as_str(), b.port, b.tls, b.credentials),
            ("127.0.0.1", 1884, false, None)
        );
        let b = parse_url("mqtts://gw:p%40ss@broker.example").unwrap();
        assert_eq!((b.port, b.tls), (8883, true));
        assert_eq!(b.credentials, Some(("gw".into(), "p@ss".into())));
        assert!(parse_url("http://x").is_none());
        assert!(parse_url("mqtt://:1883").is_none());
        assert!(parse_url("mqtt://h:notaport").is_none());
        let shown = format!("{b:?}");
        assert!(shown.contains("gw") && !shown.contains("p@ss"), "{shown}");
    }
}

#[derive(Default)]
struct Tracking {
    /// Event ids (None for a status message) in the order they were handed to the client.
    sent: VecDeque<Option<i64>>,
    /// pkid -> event id, once the event loop has assigned one.
    inflight: HashMap<u16, Option<i64>>,
    /// Event ids the broker acknowledged.
    acked: HashSet<i64>,
    connected: bool,
    /// Another node said `offline` on the shared status topic while this one serves.
    reassert: bool,
}

fn status(prefix: &str, node: u8, online: bool) -> (String, String) {
    (
        format!("{prefix}/gateway/status"),
        serde_json::json!({"status": if online { "online" } else { "offline" }, "node": node})
            .to_string(),
    )
}

/// Whether a message on the status topic is another node saying it is offline.
fn another_node_offline(payload: &[u8], node: u8) -> bool {
    serde_json::from_slice::<serde_json::Value>(payload)
        .is_ok_and(|v| v["status"] == "offline" && v["node"].as_u64() != Some(u64::from(node)))
}

/// Runs the publisher until shutdown.
pub async fn run(cfg: MqttSettings, store: Arc<dyn Store>, mut shutdown: watch::Receiver<bool>) {
    let mut opts = MqttOptions::new(
        cfg.client_id.clone(),
        cfg.broker.host.clone(),
        cfg.broker.port,
    );
    opts.set_keep_alive(Duration::from_secs(15));
    if let Some((user, pass)) = &cfg.broker.credentials {
        opts.set_credentials(user.clone(), pass.clone());
    }
    if cfg.broker.tls {
        let ca = match cfg.ca_file.as_ref().map(std::fs::read) {
            Some(Ok(pem)) => pem,
            _ => {
                tracing::error!(
                    "mqtt.ca_file is missing or unreadable; events stay queued, up to mqtt.queue_bound."
                );
                trim_until_shutdown(&cfg, store.as_ref(), &mut shutdown).await;
                return;
            }
        };
        opts.set_transport(rumqttc::Transport::tls(ca, None, None));
    }
    let (will_topic, will_payload) = status(&cfg.prefix, cfg.node_id, false);
    let status_topic = will_topic.clone();
    opts.set_last_will(LastWill::new(
        will_topic,
        will_payload,
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    let track = Arc::new(Mutex::new(Tracking::default()));
    let changed = Arc::new(Notify::new());

    // The event loop: connection state and acknowledgements. rumqttc reconnects on the next
    // poll after an error; the pause keeps a dead broker from being hammered.
    let poller = {
        let track = track.clone();
        let changed = changed.clone();
        let broker = format!("{}:{}", cfg.broker.host, cfg.broker.port);
        let status_topic = status_topic.clone();
        let node = cfg.node_id;
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(200);
            // When a connection that would not come up was last logged: a wrong password or a
            // TLS problem otherwise left no line at all, and a long outage must not flood.
            let mut warned: Option<tokio::time::Instant> = None;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if let Ok(mut t) = track.lock() {
                            t.connected = true;
                            // Whatever was in flight on the old connection is lost with it.
                            t.sent.clear();
                            t.inflight.clear();
                        }
                        pause = Duration::from_millis(200);
                        warned = None;
                        tracing::info!("MQTT connected.");
                        changed.notify_waiters();
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        if let Ok(mut t) = track.lock() {
                            let id = t.sent.pop_front().flatten();
                            t.inflight.insert(pkid, id);
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if p.topic == status_topic && another_node_offline(&p.payload, node) {
                            if let Ok(mut t) = track.lock() {
                                t.reassert = true;
                            }
                            changed.notify_waiters();
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        if let Ok(mut t) = track.lock() {
                            if let Some(Some(id)) = t.inflight.remove(&ack.pkid) {
                                t.acked.insert(id);
                            }
                        }
                        changed.notify_waiters();
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let was = track
                            .lock()
                            .map(|mut t| std::mem::replace(&mut t.connected, false))
                            .unwrap_or(false);
                        // rumqttc's errors name neither the URL nor the credentials.
                        if was {
                            tracing::warn!(error = %e, "MQTT connection lost; events wait on disk.");
                            warned = Some(tokio::time::Instant::now());
                        } else if warned.is_none_or(|w| w.elapsed() >= CONNECT_WARN_EVERY) {
                            tracing::warn!(
                                error = %e,
                                %broker,
                                "MQTT cannot connect; events wait on disk (logged again at most once a minute)."
                            );
                            warned = Some(tokio::time::Instant::now());
                        }
                        metrics::counter!("hotline_mqtt_errors_total").increment(1);
                        changed.notify_waiters();
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(10));
                    }
                }
            }
        })
    };

    let mut announced = false;
    // When to look for events claimed by a clock ahead of this one (PostgreSQL).
    let mut clock = crate::store::ClockWatch::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let connected = track.lock().map(|t| t.connected).unwrap_or(false);
        if !connected {
            announced = false;
            trim(store.as_ref(), cfg.queue_bound).await;
            if wait(&mut shutdown, &changed, TRIM_EVERY).await {
                break;
            }
            continue;
        }
        let reassert = track
            .lock()
            .map(|mut t| std::mem::take(&mut t.reassert))
            .unwrap_or(false);
        if !announced || reassert {
            if !announced {
                // Other nodes' goodbyes and wills arrive here (a subscription lasts as long as
                // the connection).
                let _ = client
                    .subscribe(status_topic.clone(), QoS::AtLeastOnce)
                    .await;
            }
            let (topic, payload) = status(&cfg.prefix, cfg.node_id, true);
            if let Ok(mut t) = track.lock() {
                t.sent.push_back(None);
            }
            if client
                .publish(topic, QoS::AtLeastOnce, true, payload)
                .await
                .is_ok()
            {
                announced = true;
            }
        }
        trim(store.as_ref(), cfg.queue_bound).await;
        // The publisher never puts an event off (a batch not acknowledged is handed back at
        // once) and holds one no longer than the store's lease.
        super::reschedule_future(
            store.as_ref(),
            &mut clock,
            "mqtt",
            Duration::ZERO,
            Duration::ZERO,
        )
        .await;
        let batch = match store.due_events("mqtt", Topics::All, i64::MAX, 100).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read the event outbox.");
                Vec::new()
            }
        };
        if batch.is_empty() {
            if wait(&mut shutdown, &changed, Duration::from_millis(300)).await {
                break;
            }
            continue;
        }
        let ids: Vec<i64> = batch.iter().map(|e| e.id).collect();
        for e in batch {
            if let Ok(mut t) = track.lock() {
                t.sent.push_back(Some(e.id));
            }
            let topic = format!("{}/{}", cfg.prefix, e.topic);
            if client
                .publish(topic, QoS::AtLeastOnce, false, e.payload)
                .await
                .is_err()
            {
                break;
            }
        }
        // Wait for every PUBACK of the batch, or give up and resend after a reconnect.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (all, connected) = track
                .lock()
                .map(|t| (ids.iter().all(|i| t.acked.contains(i)), t.connected))
                .unwrap_or((false, false));
            if all {
                if store.ack_events(ids.clone()).await.is_ok() {
                    if let Ok(mut t) = track.lock() {
                        for i in &ids {
                            t.acked.remove(i);
                        }
                    }
                    metrics::counter!("hotline_events_published_total").increment(ids.len() as u64);
                }
                break;
            }
            if !connected || tokio::time::Instant::now() > deadline {
                // Hand the batch back for the next attempt now: a shared store holds claimed
                // events for its lease otherwise, delaying them long after the broker is back.
                for id in &ids {
                    let _ = store.retry_event(*id, 0, None).await;
                }
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), changed.notified()).await;
        }
    }
    // Say goodbye so subscribers need not wait for the will.
    let (topic, payload) = status(&cfg.prefix, cfg.node_id, false);
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        client.publish(topic, QoS::AtLeastOnce, true, payload),
    )
    .await;
    let _ = tokio::time::timeout(Duration::from_millis(500), client.disconnect()).await;
    poller.abort();
}

/// Drops the oldest MQTT events beyond `bound`, counted and logged. Runs whether or not the
/// broker is there: an outage is when the queue grows.
async fn trim(store: &dyn Store, bound: u64) {
    match store.trim_events("mqtt", bound).await {
        Ok(0) | Err(_) => {}
        Ok(n) => {
            metrics::counter!("hotline_events_dropped_total").increment(n);
            tracing::warn!(
                dropped = n,
                "Event queue over its bound; oldest events dropped."
            );
        }
    }
}

/// Keeps the queue within its bound until shutdown, for a publisher that cannot run.
async fn trim_until_shutdown(
    cfg: &MqttSettings,
    store: &dyn Store,
    shutdown: &mut watch::Receiver<bool>,
) {
    loop {
        trim(store, cfg.queue_bound).await;
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(TRIM_EVERY) => {}
        }
    }
}

/// How often the queue is trimmed while the broker is away.
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// How often a connection that does not come up is logged again.
const CONNECT_WARN_EVERY: Duration = Duration::from_secs(60);

async fn wait(shutdown: &mut watch::Receiver<bool>, changed: &Notify, d: Duration) -> bool {
    tokio::select! {
        _ = shutdown.changed() => true,
        _ = changed.notified() => false,
        _ = tokio::time::sleep(d) => false,
    }
}
