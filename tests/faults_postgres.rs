//! Faults of the shared store: the PostgreSQL server goes away under a running gateway and comes
//! back. A test binary of its own, because stopping the server would pull the floor from under
//! every other test sharing the binary's cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::services::{postgres, storage_toml_for};
use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

#[test]
fn a_database_outage_answers_503_never_a_false_202_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(free_port(), &dir.path().join("sim.jsonl"), &[]);
    let node = NodeConfig {
        storage: storage_toml_for("postgres", dir.path()),
        ..NodeConfig::default()
    };
    let port = free_port();
    let gw = Gateway::start_with(node.write(dir.path(), port, &sim.url, ""), port);
    let mut acked = BTreeSet::new();
    let mut submit = |i: u32| {
        let (status, b) = gw.submit(json!({
            "phone": format!("1390000{i:04}"),
            "content": format!("第{i}号：楼道灯不亮，请物业维修"),
        }));
        if status == 202 {
            for o in b["orders"].as_array().unwrap() {
                acked.insert(o["number"].as_str().unwrap().to_string());
            }
        }
        (status, b)
    };
    for i in 0..5 {
        assert_eq!(submit(i).0, 202);
    }

    postgres().stop();
    // Pooled connections find out on first use: every answer from now on is a 503 with the
    // stable code, never a 202 for something that was not stored.
    let mut refused = 0;
    for i in 100..110 {
        let (status, b) = submit(i);
        assert_eq!(status, 503, "{b}");
        assert_eq!(b["status"], "unavailable", "{b}");
        refused += 1;
    }
    assert_eq!(refused, 10);
    let ready = client().get(format!("{}/readyz", gw.url)).send().unwrap();
    assert_eq!(
        ready.status().as_u16(),
        503,
        "readyz while the database is down"
    );
    // Emergencies need no store and are still answered.
    let (status, b) = gw.submit(json!({"phone": "13900009999", "content": "我家着火了，有人被困"}));
    assert_eq!(b["status"], "redirected", "{status} {b}");

    postgres().start_again();
    let mut i = 200;
    wait_until("intake to accept again", LONG, || {
        i += 1;
        (submit(i).0 == 202).then_some(())
    });
    for j in 300..305 {
        assert_eq!(submit(j).0, 202);
    }
    wait_until("every acknowledged order at dispatch", LONG, || {
        let got: BTreeSet<String> = delivered_orders(&sim.lines()).into_iter().collect();
        (got == acked).then_some(())
    });
    assert!(acked.len() >= 11, "{acked:?}");
    assert!(
        !gw.logs().contains("13900001"),
        "raw phone numbers in the logs"
    );
}
