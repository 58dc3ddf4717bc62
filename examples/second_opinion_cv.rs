//! Chooses the second opinion's threshold honestly: k-fold cross-validation on the labelled
//! examples it trains on, so no measuring set is looked at.
//!
//! `cargo run --release --example second_opinion_cv -- [EXAMPLES.jsonl] [K]`
//!
//! Line `i` is held out in fold `i % K` (default 5); each fold is scored by a model trained on
//! the others. Prints, per threshold on the emergency log-odds, the share of held-out
//! emergencies above it (caught for review) and of held-out routine lines above it (reviewed
//! for nothing). Default file: the compiled-in `config/rules/emergency-examples.jsonl`.
//!
//! Then, per window length, the same at the default threshold for the held-out lines and for
//! **run-on texts** made of them: each held-out emergency joined, with every punctuation mark
//! and space removed, to two held-out routine lines (first, middle or last in turn), and each
//! routine line to the next two. People who are upset write like that, and the sets that
//! measure the model have few such texts; these are made only of lines the fold never saw.
//! (A window length `w` here is the ordinary windows'; inside a run-on clause longer than `w`
//! the model also reads windows two thirds as long.)

use hotline_gateway::pipeline::second_opinion::{
    parse_examples, Example, SecondOpinion, BUILTIN_EXAMPLES, DEFAULT_THRESHOLD,
};

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
    // Per window length: (score, is_emergency) of the held-out lines and of the run-on texts.
    let mut by_window: Vec<(usize, Scored, Scored)> = WINDOWS
        .iter()
        .map(|&w| (w, Vec::new(), Vec::new()))
        .collect();
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
        let fold_lines: Vec<_> = examples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % k == fold)
            .map(|(_, e)| e)
            .collect();
        for e in &fold_lines {
            held_out.push((model.score(&e.text).0, e.number.is_some()));
        }
        let runs = run_ons(&fold_lines);
        for (w, plain, run_on) in by_window.iter_mut() {
            let m = model.clone().with_window(*w);
            plain.extend(
                fold_lines
                    .iter()
                    .map(|e| (m.score(&e.text).0, e.number.is_some())),
            );
            run_on.extend(runs.iter().map(|(t, e)| (m.score(t).0, *e)));
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
    println!("\nat the default threshold ({DEFAULT_THRESHOLD}), by window length:");
    println!("window  lines: emergencies / routine above  run-on: emergencies / routine above");
    for (w, plain, run_on) in &by_window {
        let (a, b) = shares(plain, DEFAULT_THRESHOLD);
        let (c, d) = shares(run_on, DEFAULT_THRESHOLD);
        println!("{w:>6}  {a:>12.1} % / {b:>5.1} %  {c:>20.1} % / {d:>5.1} %");
    }
}

/// `(score, is_emergency)` of held-out texts.
type Scored = Vec<(f64, bool)>;

/// The window lengths compared (characters).
const WINDOWS: [usize; 6] = [20, 30, 40, 60, 90, 120];

/// The shares (%) of emergencies and of routine lines scoring at or above `t`.
fn shares(scored: &[(f64, bool)], t: f64) -> (f64, f64) {
    let share = |emergency: bool| {
        let all = scored
            .iter()
            .filter(|(_, e)| *e == emergency)
            .count()
            .max(1);
        let above = scored
            .iter()
            .filter(|(s, e)| *e == emergency && *s >= t)
            .count();
        100.0 * above as f64 / all as f64
    };
    (share(true), share(false))
}

/// Run-on texts from `lines`: each emergency with two routine lines, each routine line with the
/// next two, without any punctuation or space.
fn run_ons(lines: &[&Example]) -> Vec<(String, bool)> {
    let bare = |e: &Example| -> String { e.text.chars().filter(|c| c.is_alphanumeric()).collect() };
    let routine: Vec<String> = lines
        .iter()
        .filter(|e| e.number.is_none())
        .map(|e| bare(e))
        .collect();
    if routine.len() < 3 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let emergencies = lines.iter().filter(|e| e.number.is_some());
    for (j, e) in emergencies.enumerate() {
        let (a, b) = (
            &routine[(2 * j) % routine.len()],
            &routine[(2 * j + 1) % routine.len()],
        );
        let e = bare(e);
        let text = match j % 3 {
            0 => format!("{e}{a}{b}"),
            1 => format!("{a}{e}{b}"),
            _ => format!("{a}{b}{e}"),
        };
        out.push((text, true));
    }
    for j in 0..routine.len() {
        let next = |d: usize| &routine[(j + d) % routine.len()];
        out.push((format!("{}{}{}", next(0), next(1), next(2)), false));
    }
    out
}
