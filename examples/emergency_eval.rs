//! Measures the emergency rules on a labelled JSON-lines file: recall per service, wrong
//! numbers, false redirects, and every failure; then what the second opinion adds (orders
//! marked for urgent review where the rules found nothing), and what its doubt takes back
//! (redirects it scores below `rules.second_opinion_doubt`, taken as orders on written channels).
//!
//! `cargo run --release --example emergency_eval -- FILE.jsonl [RULES_DIR|-] [THRESHOLD]`
//!
//! A line is `{"text": "...", "expect": ["119"]}` (the format of `tests/data/`; `[]` = routine)
//! or `{"text": "...", "expected": "119" | "none", "alt": ["110"]}` (`alt`: other numbers a
//! dispatcher would accept; for a routine line, redirects it would forgive). `RULES_DIR` takes
//! the rule files an operator edited (as `[rules] dir`, with its
//! `emergency-examples.jsonl` if any), else (or with `-`) the compiled-in rules; `THRESHOLD`
//! the second opinion's (default: the gateway's). Use it on a
//! set written without looking at the rules: that is what says how they generalise.

use hotline_gateway::pipeline::second_opinion::{self, DEFAULT_DOUBT, DEFAULT_THRESHOLD};
use hotline_gateway::pipeline::RuleSet;
use std::collections::BTreeMap;

#[derive(Default)]
struct Tally {
    lines: usize,
    detected: usize,
    right: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: emergency_eval FILE.jsonl [RULES_DIR|-] [THRESHOLD]");
        std::process::exit(2);
    };
    let threshold = match args.get(2).map(|t| t.parse::<f64>()) {
        None => DEFAULT_THRESHOLD,
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            eprintln!("threshold: {e}");
            std::process::exit(2);
        }
    };
    let dir = args
        .get(1)
        .filter(|d| d.as_str() != "-")
        .map(std::path::Path::new);
    let set = match RuleSet::load(dir, Some(threshold)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rules: {e}");
            std::process::exit(1);
        }
    };
    let (rules, model) = (set.emergency, set.second_opinion);
    let examples = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| second_opinion::parse_examples(&t))
    {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{file}: {e}");
            std::process::exit(1);
        }
    };
    let suspect = |text: &str| model.as_ref().and_then(|m| m.check(text));
    // On written channels the gateway takes a redirect the model scores below the doubt
    // (`rules.second_opinion_doubt`) as an order for urgent review instead.
    let doubts = |text: &str| {
        model
            .as_ref()
            .is_some_and(|m| m.doubts(text, DEFAULT_DOUBT).is_some())
    };
    let (mut doubted_routine, mut doubted_emergencies) = (0, 0);
    let mut by_service: BTreeMap<String, Tally> = BTreeMap::new();
    let (mut routine, mut false_redirects, mut forgiven) = (0, 0, 0);
    // The second opinion, asked where the rules found nothing (as the gateway does).
    let (mut reviewed, mut reviewed_right, mut routine_reviewed) = (0, 0, 0);
    let mut failures = Vec::new();
    for (i, line) in examples.iter().enumerate() {
        let got = rules.check(&line.text);
        let n = i + 1;
        let Some(service) = line.number.clone() else {
            routine += 1;
            match got {
                Some(g) if line.alt.contains(&g.number) => forgiven += 1,
                Some(g) => {
                    false_redirects += 1;
                    doubted_routine += usize::from(doubts(&line.text));
                    failures.push((
                        line.text.as_str(),
                        format!("{n} FALSE {} ({}) {}", g.number, g.rule, line.text),
                    ));
                }
                None => {
                    if let Some(s) = suspect(&line.text) {
                        routine_reviewed += 1;
                        failures.push((
                            line.text.as_str(),
                            format!("{n} REVIEW {} {}", s.number, line.text),
                        ));
                    }
                }
            }
            continue;
        };
        // The labelled number names the service; `alt` are also right.
        let want: Vec<String> = std::iter::once(service.clone())
            .chain(line.alt.iter().cloned())
            .collect();
        let t = by_service.entry(service).or_default();
        t.lines += 1;
        match got {
            None => {
                let review = suspect(&line.text);
                if let Some(s) = &review {
                    reviewed += 1;
                    reviewed_right += usize::from(want.contains(&s.number));
                }
                let review =
                    review.map_or("not reviewed".into(), |s| format!("review {}", s.number));
                failures.push((
                    line.text.as_str(),
                    format!("{n} MISSED {want:?} ({review}) {}", line.text),
                ));
            }
            Some(g) => {
                t.detected += 1;
                if doubts(&line.text) {
                    doubted_emergencies += 1;
                    failures.push((
                        line.text.as_str(),
                        format!("{n} DOUBTED {} ({}) {}", g.number, g.rule, line.text),
                    ));
                }
                if want.contains(&g.number) {
                    t.right += 1;
                } else {
                    failures.push((
                        line.text.as_str(),
                        format!(
                            "{n} NUMBER want {want:?} got {} ({}) {}",
                            g.number, g.rule, line.text
                        ),
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
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    println!(
        "emergencies: {detected}/{lines} detected ({:.1} %), {} wrong number; routine: {false_redirects}/{routine} false redirects ({:.1} %), {forgiven} forgiven by alt",
        pct(detected, lines),
        detected - right,
        pct(false_redirects, routine)
    );
    match &model {
        None => println!("second opinion: off"),
        Some(m) => println!(
            "second opinion ({} examples): {reviewed} of the {} missed marked for review ({reviewed_right} with an accepted number); redirected or reviewed {}/{lines} ({:.1} %); routine lines marked for review {routine_reviewed}/{routine} ({:.1} %)",
            m.examples(),
            lines - detected,
            detected + reviewed,
            pct(detected + reviewed, lines),
            pct(routine_reviewed, routine)
        ),
    }
    if model.is_some() {
        println!(
            "doubt on written channels (score below {DEFAULT_DOUBT}): {doubted_routine} of the {false_redirects} false redirects taken as orders for review; {doubted_emergencies} of the {detected} redirected emergencies taken as orders for review instead"
        );
    }
    // EXPLAIN=1: under each failure, what every trigger's rule made of the text.
    let explain = std::env::var_os("EXPLAIN").is_some();
    for (text, f) in &failures {
        println!("  {f}");
        if explain {
            for why in rules.explain(text) {
                println!("      {why}");
            }
        }
    }
}
