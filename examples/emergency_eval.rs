//! Measures the emergency rules on a labelled JSON-lines file: recall per service, wrong
//! numbers, false redirects, and every failure.
//!
//! `cargo run --release --example emergency_eval -- FILE.jsonl [RULES_DIR]`
//!
//! A line is `{"text": "...", "expect": ["119"]}` (the format of `tests/data/`; `[]` = routine)
//! or `{"text": "...", "expected": "119" | "none", "alt": ["110"]}` (`alt`: other numbers a
//! dispatcher would accept; for a routine line, redirects it would forgive). `RULES_DIR` takes
//! the rule files an operator edited (as `[rules] dir`), else the compiled-in rules. Use it on a
//! set written without looking at the rules: that is what says how they generalise.

use hotline_gateway::pipeline::RuleSet;
use std::collections::BTreeMap;

#[derive(serde::Deserialize)]
struct Line {
    text: String,
    #[serde(default)]
    expect: Option<Vec<String>>,
    #[serde(default)]
    expected: Option<String>,
    #[serde(default)]
    alt: Vec<String>,
}

#[derive(Default)]
struct Tally {
    lines: usize,
    detected: usize,
    right: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: emergency_eval FILE.jsonl [RULES_DIR]");
        std::process::exit(2);
    };
    let rules = match RuleSet::load(args.get(1).map(std::path::Path::new)) {
        Ok(r) => r.emergency,
        Err(e) => {
            eprintln!("rules: {e}");
            std::process::exit(1);
        }
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{file}: {e}");
            std::process::exit(1);
        }
    };
    let mut by_service: BTreeMap<String, Tally> = BTreeMap::new();
    let (mut routine, mut false_redirects, mut forgiven) = (0, 0, 0);
    let mut failures = Vec::new();
    for (i, raw) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line: Line = match serde_json::from_str(raw) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{file}:{}: {e}", i + 1);
                std::process::exit(1);
            }
        };
        // The first expected number names the service; `alt` and the rest are also right.
        let mut want: Vec<String> = match (&line.expect, &line.expected) {
            (Some(v), _) => v.clone(),
            (None, Some(e)) if e != "none" && !e.is_empty() => vec![e.clone()],
            _ => Vec::new(),
        };
        let got = rules.check(&line.text);
        let n = i + 1;
        if want.is_empty() {
            routine += 1;
            if let Some(g) = got {
                if line.alt.contains(&g.number) {
                    forgiven += 1;
                } else {
                    false_redirects += 1;
                    failures.push(format!("{n} FALSE {} ({}) {}", g.number, g.rule, line.text));
                }
            }
            continue;
        }
        let service = want[0].clone();
        want.extend(line.alt.iter().cloned());
        let t = by_service.entry(service).or_default();
        t.lines += 1;
        match got {
            None => failures.push(format!("{n} MISSED {want:?} {}", line.text)),
            Some(g) => {
                t.detected += 1;
                if want.contains(&g.number) {
                    t.right += 1;
                } else {
                    failures.push(format!(
                        "{n} NUMBER want {want:?} got {} ({}) {}",
                        g.number, g.rule, line.text
                    ));
                }
            }
        }
    }
    let (mut lines, mut detected, mut right) = (0, 0, 0);
    for (service, t) in &by_service {
        println!(
            "{service}: {}/{} detected ({:.0} %), {} with an accepted number",
            t.detected,
            t.lines,
            100.0 * t.detected as f64 / t.lines.max(1) as f64,
            t.right
        );
        lines += t.lines;
        detected += t.detected;
        right += t.right;
    }
    println!(
        "emergencies: {detected}/{lines} detected ({:.1} %), {} wrong number; routine: {false_redirects}/{routine} false redirects ({:.1} %), {forgiven} forgiven by alt",
        100.0 * detected as f64 / lines.max(1) as f64,
        detected - right,
        100.0 * false_redirects as f64 / routine.max(1) as f64
    );
    for f in &failures {
        println!("  {f}");
    }
}
