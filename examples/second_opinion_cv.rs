//! Chooses the second opinion's threshold honestly: k-fold cross-validation on the labelled
//! examples it trains on, so no measuring set is looked at.
//!
//! `cargo run --release --example second_opinion_cv -- [EXAMPLES.jsonl] [K]`
//!
//! Line `i` is held out in fold `i % K` (default 5); each fold is scored by a model trained on
//! the others. Prints, per threshold on the emergency log-odds, the share of held-out
//! emergencies above it (caught for review) and of held-out routine lines above it (reviewed
//! for nothing). Default file: the compiled-in `config/rules/emergency-examples.jsonl`.

use hotline_gateway::pipeline::second_opinion::{parse_examples, SecondOpinion, BUILTIN_EXAMPLES};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = match args.first() {
        Some(f) => match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{f}: {e}");
                std::process::exit(1);
            }
        },
        None => BUILTIN_EXAMPLES.to_string(),
    };
    let k: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5).max(2);
    let examples = match parse_examples(&text) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("examples: {e}");
            std::process::exit(1);
        }
    };
    // (score, is_emergency) of every line, scored by a model that never saw it.
    let mut held_out = Vec::with_capacity(examples.len());
    for fold in 0..k {
        let train: Vec<_> = examples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % k != fold)
            .map(|(_, e)| e.clone())
            .collect();
        let model = match SecondOpinion::train(&train, 0.0) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("fold {fold}: {e}");
                std::process::exit(1);
            }
        };
        for (_, e) in examples.iter().enumerate().filter(|(i, _)| i % k == fold) {
            held_out.push((model.score(&e.text).0, e.number.is_some()));
        }
    }
    let pos = held_out.iter().filter(|(_, e)| *e).count().max(1);
    let neg = held_out.iter().filter(|(_, e)| !*e).count().max(1);
    println!("{} examples, {k} folds", examples.len());
    // The emergencies caught when the threshold lets through a given share of routine lines.
    let mut routine: Vec<f64> = held_out
        .iter()
        .filter(|(_, e)| !*e)
        .map(|(s, _)| *s)
        .collect();
    routine.sort_by(|a, b| b.total_cmp(a));
    for share in [0.01, 0.02, 0.05] {
        let at = routine
            .get((share * neg as f64) as usize)
            .copied()
            .unwrap_or(f64::NEG_INFINITY);
        let caught = held_out.iter().filter(|(s, e)| *e && *s > at).count();
        println!(
            "routine above {:.0} %: threshold {at:.2}, emergencies above {:.1} %",
            share * 100.0,
            100.0 * caught as f64 / pos as f64
        );
    }
    println!("threshold  emergencies above  routine above");
    for t in [-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0] {
        let caught = held_out.iter().filter(|(s, e)| *e && *s >= t).count();
        let flagged = held_out.iter().filter(|(s, e)| !*e && *s >= t).count();
        println!(
            "{t:>9.2}  {:>17.1} %  {:>11.1} %",
            100.0 * caught as f64 / pos as f64,
            100.0 * flagged as f64 / neg as f64
        );
    }
}
