//! MQTT events against a real Mosquitto broker started on a free port: topics, masking, the
//! retained status with its last will, and a broker outage that loses nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// A mosquitto process on `port`, killed on drop.
struct Broker(Child);

impl Broker {
    fn start(dir: &Path, port: u16) -> Broker {
        Broker::start_with(dir, port, "persistence false\n")
    }

    /// A broker that keeps sessions across a graceful restart (saved on SIGTERM, loaded on
    /// start), as a production broker does: a persistent subscriber then misses nothing that
    /// was published while it was reconnecting.
    fn start_persistent(dir: &Path, port: u16) -> Broker {
        // Mosquitto started as root drops to its own user: give it a folder it can write.
        use std::os::unix::fs::PermissionsExt;
        let state = dir.join("mqtt-state");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
        Broker::start_with(
            dir,
            port,
            &format!(
                "persistence true\npersistence_location {}/\n",
                state.display()
            ),
        )
    }

    fn start_with(dir: &Path, port: u16, extra: &str) -> Broker {
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}"),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto must be installed (scripts/test installs it)");
        wait_until("mosquitto to listen", LONG, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Broker(child)
    }
}

impl Broker {
    /// SIGTERM and wait: the broker saves its sessions and exits.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A subscriber to `hotline/#` that keeps (topic, payload, retained) and reconnects.
struct Subscriber {
    got: Arc<Mutex<Vec<(String, Value, bool)>>>,
}

impl Subscriber {
    fn start(port: u16, id: &str) -> Subscriber {
        Subscriber::start_with(port, id, true)
    }

    /// With `clean_session` false the broker queues QoS 1 messages for it while it is away.
    fn start_with(port: u16, id: &str, clean_session: bool) -> Subscriber {
        let mut opts = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        opts.set_clean_session(clean_session);
        Subscriber::with_options(opts)
    }

    /// A subscriber with its own connection options (TLS, credentials).
    fn with_options(mut opts: rumqttc::MqttOptions) -> Subscriber {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                opts.set_keep_alive(Duration::from_secs(5));
                let (client, mut ev) = rumqttc::AsyncClient::new(opts, 100);
                loop {
                    match ev.poll().await {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                            let _ = client
                                .subscribe("hotline/#", rumqttc::QoS::AtLeastOnce)
                                .await;
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                            let v: Value =
                                serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                            sink.lock().unwrap().push((p.topic.clone(), v, p.retain));
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            });
        });
        Subscriber { got }
    }

    fn on(&self, topic: &str) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _)| t == topic)
            .map(|(_, v, _)| v.clone())
            .collect()
    }

    fn wait_for(&self, topic: &str, pred: impl Fn(&Value) -> bool) -> Value {
        wait_until(&format!("an event on {topic}"), LONG, || {
            self.on(topic).into_iter().find(|v| pred(v))
        })
    }
}

fn mqtt_extra(port: u16) -> String {
    format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\ntopic_prefix = \"hotline\"\n\
         [nuisance]\nquota = 2\nwarnings = 1\n"
    )
}

#[test]
fn state_changes_arrive_as_masked_events_and_status_is_retained() {
    let dir = tempfile::tempdir().unwrap();
    let bport = free_port();
    let _broker = Broker::start(dir.path(), bport);
    let sub = Subscriber::start(bport, "test-sub-1");
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let mut gw = Gateway::start(dir.path(), &sim.url, &mqtt_extra(bport));

    let online = sub.wait_for("hotline/gateway/status", |v| v["status"] == "online");
    assert_eq!(online["status"], "online");

    let (s, b) = gw.submit(
        json!({"content": "人行道地砖松动", "phone": "13812345678", "email": "li@example.cn"}),
    );
    assert_eq!(s, 202, "{b}");
    let number = b["orders"][0]["number"].as_str().unwrap().to_string();
    let accepted = sub.wait_for("hotline/orders/accepted", |v| {
        v["number"] == number.as_str()
    });
    assert_eq!(accepted["identity"], "phone:138****5678");
    assert_eq!(accepted["channel"], "web");
    assert!(accepted["event_id"].as_str().is_some_and(|s| !s.is_empty()));
    sub.wait_for("hotline/orders/delivered", |v| {
        v["number"] == number.as_str()
    });

    let (s, _) =
        gw.submit(json!({"content": "路口两车相撞，有人受伤流血", "phone": "13812345678"}));
    assert_eq!(s, 200);
    let red = sub.wait_for("hotline/emergency/redirected", |_| true);
    assert_eq!(red["identity"], "phone:138****5678");
    assert!(
        ["110", "120", "122"].contains(&red["number"].as_str().unwrap()),
        "{red}"
    );

    // A possible emergency the rules do not find: still an order, marked for urgent review,
    // its number told to the person, and an event for the duty desk (second opinion).
    let (s, b) = gw.submit(
        json!({"content": "工地上有个师傅从架子上掉下来了 躺着一动不动", "phone": "13812345678"}),
    );
    assert_eq!(s, 202, "{b}");
    assert_urgent_review(&b, "120");
    let suspected_number = b["orders"][0]["number"].as_str().unwrap().to_string();
    let ev = sub.wait_for("hotline/emergency/suspected", |_| true);
    assert_eq!(ev["order"], suspected_number.as_str());
    assert_eq!(ev["number"], "120");
    assert_eq!(ev["identity"], "phone:138****5678");
    // At or above the default threshold (rules.second_opinion_threshold = 0.4).
    assert!(ev["score"].as_f64().is_some_and(|s| s >= 0.4), "{ev}");
    let body = sim.wait_order(&suspected_number);
    assert_eq!(body["emergency_review"]["number"], "120", "{body}");
    assert_eq!(body["emergency_review"]["by"], "second_opinion", "{body}");
    // A routine order carries no suspicion, and gets no such event.
    let (_, routine) = gw.submit(json!({"content": "人行道地砖又松了", "phone": "13712345678"}));
    assert!(
        routine["orders"][0].get("suspected_emergency").is_none(),
        "{routine}"
    );
    assert_eq!(sub.on("hotline/emergency/suspected").len(), 1);

    // Over quota (2): a reminder, then a suspension.
    for i in 0..4 {
        gw.submit(json!({"content": format!("重复反映第{i}次：停车难"), "phone": "13900001111"}));
    }
    let warned = sub.wait_for("hotline/callers/warned", |_| true);
    assert_eq!(warned["identity"], "phone:139****1111");
    let susp = sub.wait_for("hotline/callers/suspended", |_| true);
    assert!(susp["until"].is_string() && susp["reason"].is_string());
    // The suspension keeps the submission over quota as its evidence, for operators only: the
    // event carries the public reason and leaves the evidence out.
    let view = gw.admin_get("/admin/v1/callers/phone:13900001111");
    let evidence = view["suspension"]["evidence"].as_str().unwrap_or_default();
    assert!(evidence.contains("停车难"), "{view}");
    assert!(!susp.to_string().contains("停车难"), "{susp}");
    assert!(susp.get("evidence").is_none(), "{susp}");

    // Nothing personal anywhere in any event.
    let all = sub.got.lock().unwrap().clone();
    for (topic, v, _) in &all {
        let text = v.to_string();
        for secret in ["13812345678", "13900001111", "li@example.cn"] {
            assert!(!text.contains(secret), "{topic} leaks {secret}: {text}");
        }
    }

    // A killed gateway leaves its last will: offline, retained.
    gw.kill9();
    sub.wait_for("hotline/gateway/status", |v| v["status"] == "offline");
    let late = Subscriber::start(bport, "test-sub-late");
    let retained = wait_until("the retained status", LONG, || {
        late.got
            .lock()
            .unwrap()
            .iter()
            .find(|(t, _, r)| t == "hotline/gateway/status" && *r)
            .cloned()
    });
    assert_eq!(retained.1["status"], "offline");
}

#[test]
fn a_broker_outage_never_slows_intake_and_loses_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let bport = free_port();
    let broker = Broker::start_persistent(dir.path(), bport);
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &mqtt_extra(bport));
    // A persistent session: whichever of the gateway and the subscriber reconnects first after
    // the outage, the broker holds the events for the subscriber (with a clean session, the
    // gateway could publish before the subscriber had subscribed again, and the test would
    // lose what the gateway delivered correctly).
    let sub = Subscriber::start_with(bport, "test-sub-2", false);
    sub.wait_for("hotline/gateway/status", |v| v["status"] == "online");
    broker.stop();
    assert!(
        dir.path().join("mqtt-state/mosquitto.db").exists(),
        "the broker saved its sessions"
    );

    // Broker down: intake goes on.
    let mut numbers = Vec::new();
    for i in 0..10 {
        let (s, b) = gw.submit(json!({"content": format!("停电期间第{i}件：下水道堵塞"), "phone": format!("1350000{i:04}")}));
        assert_eq!(s, 202, "{b}");
        numbers.push(b["orders"][0]["number"].as_str().unwrap().to_string());
    }
    // Broker back on the same port: every accepted event arrives.
    let _broker = Broker::start_persistent(dir.path(), bport);
    wait_until(
        "all ten accepted events after the outage",
        Duration::from_secs(60),
        || {
            let seen: Vec<String> = sub
                .on("hotline/orders/accepted")
                .iter()
                .filter_map(|v| v["number"].as_str().map(String::from))
                .collect();
            numbers.iter().all(|n| seen.contains(n)).then_some(())
        },
    );
}

#[test]
fn events_reach_a_broker_that_requires_tls_and_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sh = |cmd: &str| {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "{cmd}");
    };
    // A throwaway CA and a broker certificate for localhost.
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca");
    sh("openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost");
    sh("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext.cnf");
    sh("openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf");
    sh("mosquitto_passwd -b -c passwd gateway 's3cret pass'");
    // Mosquitto started as root drops to its own user: let it read what it needs.
    sh("chmod 755 . && chmod 644 ca.pem server.pem server.key passwd");
    let port = free_port();
    std::fs::write(
        d.join("tls.conf"),
        format!(
            "listener {port} 127.0.0.1\ncafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n\
             password_file {0}/passwd\nallow_anonymous false\npersistence false\n",
            d.display()
        ),
    )
    .unwrap();
    let broker = Command::new("mosquitto")
        .arg("-c")
        .arg(d.join("tls.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _broker = Broker(broker);
    wait_until("the TLS broker to listen", LONG, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    // A subscriber with the same CA and password.
    let mut opts = rumqttc::MqttOptions::new("tls-sub", "localhost", port);
    opts.set_credentials("gateway", "s3cret pass");
    let ca = std::fs::read(d.join("ca.pem")).unwrap();
    opts.set_transport(rumqttc::Transport::tls(ca, None, None));
    let sub = Subscriber::with_options(opts);
    let sim = Sim::start(free_port(), &d.join("sim.jsonl"), &[]);
    let extra = format!(
        "[mqtt]\nurl = \"mqtts://gateway:s3cret%20pass@localhost:{port}\"\nca_file = \"ca.pem\"\n"
    );
    let gw = Gateway::start(d, &sim.url, &extra);
    let (s, b) = gw.submit(json!({"content": "加密通道：路灯不亮", "phone": "13900002222"}));
    assert_eq!(s, 202, "{b}");
    let number = b["orders"][0]["number"].as_str().unwrap().to_string();
    sub.wait_for("hotline/orders/accepted", |v| {
        v["number"] == number.as_str()
    });
    assert!(
        !gw.logs().contains("s3cret"),
        "the broker password is never logged"
    );
}

/// The value of a counter without labels in Prometheus text, 0 when it is not there yet.
fn counter_of(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A broker that never answers (wrong address, password, TLS): the gateway says so in its log,
/// once and not once per attempt, without the URL's password; and the events waiting for it
/// keep to `mqtt.queue_bound`, the oldest dropped and counted, while it is away.
#[test]
fn a_broker_that_never_answers_is_logged_once_and_the_queue_keeps_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = free_port();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let extra = format!(
        "[mqtt]\nurl = \"mqtt://gw:s3cret-pw@127.0.0.1:{nobody}\"\ntopic_prefix = \"hotline\"\n\
         queue_bound = 5\n"
    );
    let gw = Gateway::start(dir.path(), &sim.url, &extra);
    for i in 0..20 {
        let (s, b) = gw.submit(
            json!({"content": format!("第{i}件：下水道堵塞"), "phone": format!("1351111{i:04}")}),
        );
        assert_eq!(s, 202, "{b}");
    }
    // 20 accepted and 20 delivered events: all but the newest five dropped.
    wait_until("the queue trimmed to its bound", LONG, || {
        let m = gw.metrics();
        (counter_of(&m, "hotline_events_dropped_total") >= 35.0).then_some(())
    });
    wait_until("several failed connection attempts", LONG, || {
        (counter_of(&gw.metrics(), "hotline_mqtt_errors_total") >= 4.0).then_some(())
    });
    let logs = gw.logs();
    assert_eq!(
        logs.matches("MQTT cannot connect").count(),
        1,
        "said once, not per attempt:\n{logs}"
    );
    assert!(!logs.contains("s3cret-pw"), "no password in the log");
}

/// A repeat contact that dispatch refuses (here 404: dispatch lost the order) is announced like
/// a dead order: `orders/dead` with `"kind": "contact"` and the order it is about.
#[test]
fn a_dead_contact_is_announced_like_a_dead_order() {
    let dir = tempfile::tempdir().unwrap();
    let bport = free_port();
    let _broker = Broker::start(dir.path(), bport);
    let sport = free_port();
    let mut sim = Sim::start(sport, &dir.path().join("sim.jsonl"), &[]);
    let gw = Gateway::start(dir.path(), &sim.url, &mqtt_extra(bport));
    let sub = Subscriber::start(bport, "test-sub-dead-contact");
    sub.wait_for("hotline/gateway/status", |v| v["status"] == "online");
    let phone = "13622229999";
    let (s, b) = gw.submit(
        json!({"content": "和平区南京路1号门口的路灯坏了一个月了，晚上很黑", "phone": phone}),
    );
    assert_eq!(s, 202, "{b}");
    let n = numbers(&b).remove(0);
    sim.wait_order(&n);
    // Dispatch forgets the order (a fresh record), then the citizen repeats the matter.
    sim.stop();
    let _sim = Sim::start(sport, &dir.path().join("sim-fresh.jsonl"), &[]);
    let (s, b) = gw.submit(
        json!({"content": "南京路1号门口的路灯坏了一个多月了，晚上很黑！", "phone": phone}),
    );
    assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")), "{b}");
    let dead = sub.wait_for("hotline/orders/dead", |v| v["kind"] == "contact");
    assert_eq!(dead["number"], n.as_str(), "{dead}");
    assert!(
        dead["key"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("{n}-c")),
        "{dead}"
    );
    assert!(
        dead["error"].as_str().unwrap_or("").starts_with("HTTP 404"),
        "{dead}"
    );
    assert!(!dead.to_string().contains(phone), "{dead}");
}

/// Two nodes on one broker: when one dies (kill -9, its last will says offline), the shared
/// retained status must not say the gateway is offline while the other still serves. The
/// status names its node, and the living node says `online` again.
#[test]
fn one_nodes_last_will_does_not_mark_the_gateway_offline_while_another_serves() {
    let dir = tempfile::tempdir().unwrap();
    let bport = free_port();
    let _broker = Broker::start(dir.path(), bport);
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let start = |node_id: u8| {
        let d = dir.path().join(format!("node{node_id}"));
        std::fs::create_dir_all(&d).unwrap();
        let port = free_port();
        let config = NodeConfig {
            node_id,
            storage: "path = \"data\"".into(),
            ..NodeConfig::default()
        }
        .write(&d, port, &sim.url, &mqtt_extra(bport));
        Gateway::start_with(config, port)
    };
    let sub = Subscriber::start(bport, "test-sub-nodes");
    let _seven = start(7);
    let mut eight = start(8);
    for node in [7, 8] {
        sub.wait_for("hotline/gateway/status", |v| {
            v["status"] == "online" && v["node"] == node
        });
    }
    eight.kill9();
    wait_until("node 8's will, then node 7 online again", LONG, || {
        let statuses = sub.on("hotline/gateway/status");
        let will = statuses
            .iter()
            .position(|v| v["status"] == "offline" && v["node"] == 8)?;
        statuses[will..]
            .iter()
            .any(|v| v["status"] == "online" && v["node"] == 7)
            .then_some(())
    });
    // Monitoring that looks now (a new subscriber gets the retained status) sees online.
    let late = Subscriber::start(bport, "test-sub-late");
    let retained = wait_until("the retained status, online again", LONG, || {
        let statuses = late.on("hotline/gateway/status");
        statuses
            .first()
            .filter(|v| v["status"] == "online")
            .cloned()
    });
    assert_eq!(retained["node"], 7, "{retained}");
}
