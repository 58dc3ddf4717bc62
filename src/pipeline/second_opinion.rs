//! A second opinion on emergencies: a model learnt from labelled example lines (a logistic
//! regression over characters, character pairs and words), asked only when the rules found no
//! emergency.
//!
//! The rules (`emergency.rs`) are explainable and decide redirects, but on text written by people
//! who never saw them they miss emergencies described in words nobody listed (BENCHMARKS.md:
//! 56/80 on the never-tuned blind set). This model learns from examples instead of words, so it
//! catches many of those; it is also wrong in ways nobody can read off a rule. So it can only
//! **add**: a submission it suspects is still accepted as an order (nothing a citizen sent is
//! dropped on a statistical guess, which a redirect would do: a redirect makes no order), the
//! order is marked for urgent review, supervisors are alerted, and the citizen's answer names
//! the number to dial if the danger is happening now. It never withholds or delays anything.
//!
//! Training happens at start-up and on reload from `emergency-examples.jsonl` (compiled in; a
//! file of that name in the rules folder replaces it). The hotline improves it by adding its own
//! labelled lines: real traffic beats any set written for a test.
//!
//! The features of a text are each distinct character, each pair of neighbouring characters
//! inside a clause (the clause's start and end counting as characters), and each run of ASCII
//! letters and digits as one word. Two models share them:
//! - **whether** it is an emergency: a logistic regression, `score = b + Σ_{f∈F} w(f)`, the
//!   log-odds of "emergency" under the examples' own mix (about half and half, so not a
//!   probability for real traffic). Trained by stochastic gradient descent in a fixed order
//!   (the same examples always give the same weights), with an L2 penalty. Naive Bayes was tried
//!   first and dropped: its features are far from independent, so a long transcript's many
//!   everyday words added up to a confident emergency once long emergency lines were among the
//!   examples (cross-validation: at least 12 % of routine lines above any useful threshold);
//! - **which** service: naive Bayes among the emergencies, `ln(n_k/n_none) + Σ w_k(f)` with
//!   `w_k(f) = ln((c_k(f)+α)/(n_k+2α)) − ln((c_none(f)+α)/(n_none+2α))` (`c_k(f)`: examples of
//!   class k holding f, α = 0.1), highest wins; it only ranks services, where it does well.
//!
//! A long text is also scored in windows of about [`WINDOW`] characters, the best counting.
//! Features never seen in training weigh nothing. The hyper-parameters, the window and the
//! default threshold were chosen by cross-validation on the compiled-in examples
//! (`examples/second_opinion_cv`), never on the sets that measure it (BENCHMARKS.md).

use std::collections::HashMap;

/// The compiled-in labelled examples (`config/rules/emergency-examples.jsonl`).
pub const BUILTIN_EXAMPLES: &str = include_str!("../../config/rules/emergency-examples.jsonl");

/// Default threshold on the emergency log-odds: where 2 % of the held-out routine lines score
/// above it in cross-validation on the compiled-in examples (5 folds: 0.40, 92 % of the
/// emergencies above; 10 folds: 0.36, 94 %). Most of those routine lines were written to look
/// like emergencies; on plain traffic far fewer are marked.
pub const DEFAULT_THRESHOLD: f64 = 0.4;

/// Default score below which the model overrules the rules' redirect of a text (see
/// `rules.second_opinion_doubt`): in the same cross-validation, 0.2 % of the held-out
/// emergencies score below -1.0, and 80 % of the routine lines (most of them written to look
/// like emergencies). Chosen there, not on the sets that measure it.
pub const DEFAULT_DOUBT: f64 = -1.0;

/// Additive smoothing of the feature counts (naive Bayes, for the service).
const ALPHA: f64 = 0.1;

/// Stand-ins for a clause's start and end in character pairs: above every `char`, within the
/// 21 bits a character is packed into.
const START: u64 = 0x11_0000;
const END: u64 = 0x11_0001;
/// Where a piece of a clause was cut from the rest: no pair with the character before.
const OPEN: u64 = 0x11_0002;

/// One labelled line: the text and the number it should go to (`None`: a routine matter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The citizen's text.
    pub text: String,
    /// `110`/`119`/`120`/`122`, or `None` for a routine matter.
    pub number: Option<String>,
    /// Other numbers a dispatcher would accept; on a routine line, redirects it would forgive
    /// (for measuring, not training).
    pub alt: Vec<String>,
}

#[derive(serde::Deserialize)]
struct RawExample {
    text: String,
    #[serde(default)]
    expect: Option<Vec<String>>,
    #[serde(default)]
    expected: Option<String>,
    #[serde(default)]
    alt: Vec<String>,
}

/// Reads labelled JSON lines: `{"text": "...", "expect": ["119"]}` (`[]`: routine) or
/// `{"text": "...", "expected": "119" | "none", "alt": ["120"]}`. Blank lines are skipped; a
/// broken line is an error naming its line number.
pub fn parse_examples(text: &str) -> Result<Vec<Example>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let raw: RawExample =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        let (number, alt) = match (raw.expected, raw.expect) {
            (Some(e), _) => ((e != "none").then_some(e), raw.alt),
            (None, Some(list)) => {
                let mut it = list.into_iter();
                (it.next(), it.chain(raw.alt).collect())
            }
            (None, None) => {
                return Err(format!("line {}: needs `expected` or `expect`", i + 1));
            }
        };
        out.push(Example {
            text: raw.text,
            number,
            alt,
        });
    }
    Ok(out)
}

/// What the model suspects about a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Suspicion {
    /// The service it looks like: `110`, `119`, `120` or `122` with the shipped examples.
    pub number: String,
    /// The emergency log-odds (see the module's documentation); above the threshold.
    pub score: f64,
}

/// The trained model.
#[derive(Debug, Clone)]
pub struct SecondOpinion {
    /// Service numbers, in the order of the weights after the first (`e`).
    services: Vec<String>,
    /// Per feature, the row of its weights in `weights`. Looked up ~40 times a submission, and
    /// SipHash (std's default) was 4 % of an HTTP worker's instructions for it (callgrind,
    /// BENCHMARKS.md fourteenth session); the keys are already char codes and FNV hashes, and
    /// a text can only look entries up, never add one, so flooding is not a concern here.
    rows: foldhash::HashMap<u64, u32>,
    /// `1 + services.len()` weights per row: the logistic regression's, then each service's.
    weights: Vec<f32>,
    /// The regression's intercept, then each service's prior log-odds.
    bias: Vec<f64>,
    threshold: f64,
    examples: usize,
    /// The length of the windows a long text is also read in ([`WINDOW`] unless measuring).
    window: usize,
}

impl SecondOpinion {
    /// Trains on `examples`. Refused when they hold no emergency or no routine line (a model
    /// needs both to weigh anything).
    pub fn train(examples: &[Example], threshold: f64) -> Result<SecondOpinion, String> {
        if !threshold.is_finite() {
            return Err("the threshold must be a number".into());
        }
        let mut services: Vec<String> = examples.iter().filter_map(|e| e.number.clone()).collect();
        services.sort();
        services.dedup();
        let classes = 1 + services.len();
        // Counts: index 0 = every emergency, 1.. = each service, last = routine.
        let none = classes;
        let mut n = vec![0u32; classes + 1];
        let mut counts: HashMap<u64, Vec<u32>> = HashMap::new();
        let mut feats = Vec::new();
        let mut texts: Vec<(Vec<u64>, bool)> = Vec::with_capacity(examples.len());
        for ex in examples {
            let class = match &ex.number {
                Some(num) => services.binary_search(num).map(|i| i + 1).ok(),
                None => None,
            };
            let targets: Vec<usize> = match class {
                Some(c) => vec![0, c],
                None => vec![none],
            };
            for &t in &targets {
                n[t] += 1;
            }
            features(&ex.text, &mut feats);
            for f in &feats {
                let row = counts.entry(*f).or_insert_with(|| vec![0; classes + 1]);
                for &t in &targets {
                    row[t] += 1;
                }
            }
            texts.push((feats.clone(), class.is_some()));
        }
        if n[0] == 0 || n[none] == 0 {
            return Err("the examples need both emergencies and routine lines".into());
        }
        let ln_p = |c: u32, total: u32| ((c as f64 + ALPHA) / (total as f64 + 2.0 * ALPHA)).ln();
        // Rows in a fixed order (sorted features), so that training is the same on every run.
        let mut counts: Vec<(u64, Vec<u32>)> = counts.into_iter().collect();
        counts.sort_unstable_by_key(|(f, _)| *f);
        let rows: foldhash::HashMap<u64, u32> =
            (0u32..).zip(&counts).map(|(r, (f, _))| (*f, r)).collect();
        let examples_rows: Vec<(Vec<usize>, bool)> = texts
            .iter()
            .map(|(f, e)| {
                let r = f.iter().filter_map(|f| rows.get(f)).map(|&r| r as usize);
                (r.collect(), *e)
            })
            .collect();
        let (lr, intercept) = logistic(&examples_rows, counts.len());
        // Per row: the regression's weight, then each service's naive Bayes weight.
        let mut weights = Vec::with_capacity(counts.len() * classes);
        for ((_, c), w) in counts.iter().zip(lr) {
            let base = ln_p(c[none], n[none]);
            weights.push(w);
            weights.extend((1..classes).map(|k| (ln_p(c[k], n[k]) - base) as f32));
        }
        let bias = std::iter::once(intercept)
            .chain((1..classes).map(|k| (n[k].max(1) as f64 / n[none] as f64).ln()))
            .collect();
        Ok(SecondOpinion {
            services,
            rows,
            weights,
            bias,
            threshold,
            examples: examples.len(),
            window: WINDOW,
        })
    }

    /// Trained on the compiled-in examples with the default threshold.
    ///
    /// # Panics
    /// Only if the compiled-in examples are broken, which the `builtin_trains` test rules out
    /// before any release; the text is part of the program, not input.
    #[allow(clippy::expect_used)]
    pub fn builtin() -> SecondOpinion {
        parse_examples(BUILTIN_EXAMPLES)
            .and_then(|ex| Self::train(&ex, DEFAULT_THRESHOLD))
            .expect("config/rules/emergency-examples.jsonl compiled into the binary must be valid")
    }

    /// The same model with another threshold.
    pub fn with_threshold(mut self, threshold: f64) -> Result<SecondOpinion, String> {
        if !threshold.is_finite() {
            return Err("the threshold must be a number".into());
        }
        self.threshold = threshold;
        Ok(self)
    }

    /// The same model reading long texts in windows of `chars` characters (at least 8), for
    /// measuring other window lengths (`examples/second_opinion_cv`).
    pub fn with_window(mut self, chars: usize) -> SecondOpinion {
        self.window = chars.max(8);
        self
    }

    /// How many examples it learnt from.
    pub fn examples(&self) -> usize {
        self.examples
    }

    /// The emergency log-odds of `text` and the service it looks most like.
    ///
    /// A long text is also read in windows of neighbouring clauses (about [`WINDOW`] characters
    /// each), and the highest score counts: a transcript that tells of a person collapsing in
    /// one sentence among ten about street lights would otherwise be outweighed by them. A
    /// run-on clause longer than a window is cut into pieces, and also read in windows two
    /// thirds as long: nothing in it marks where one matter ends and the next begins.
    pub fn score(&self, text: &str) -> (f64, Option<&str>) {
        // A text's features are the union of its clauses' (no pair crosses a clause break), so
        // each clause is looked up once and a window only merges the rows of its clauses.
        // (The shorter windows' length was chosen by cross-validation: run-on texts made of
        // held-out lines, at the operating point of the ordinary lines.)
        let short = self.window * 2 / 3;
        let spans = clauses(text, short / 2);
        let mut feats = Vec::new();
        // The rows of every clause, one after another; clause i's are `rows[at[i]..at[i + 1]]`.
        let mut rows: Vec<u32> = Vec::with_capacity(text.len());
        let mut at = Vec::with_capacity(spans.len() + 1);
        for c in &spans {
            at.push(rows.len());
            let piece = text.get(c.bytes.clone()).unwrap_or("");
            piece_features(piece, c.open_start, c.open_end, &mut feats);
            rows.extend(feats.iter().filter_map(|f| self.rows.get(f).copied()));
        }
        at.push(rows.len());
        let mut merged = Vec::new();
        let mut best = self.sum(&rows, &mut merged);
        let long = spans.last().is_some_and(|c| c.chars.end > self.window);
        if long && spans.len() > 1 {
            let shorter = run_ons(&spans, self.window).flat_map(|r| {
                let first = r.start;
                let pieces = spans.get(r).unwrap_or_default();
                windows(pieces, short)
                    .into_iter()
                    .map(move |w| w.start + first..w.end + first)
            });
            for w in windows(&spans, self.window).into_iter().chain(shorter) {
                let from = at.get(w.start).copied().unwrap_or(0);
                let to = at.get(w.end).copied().unwrap_or(rows.len());
                let s = self.sum(rows.get(from..to).unwrap_or_default(), &mut merged);
                if s.0 > best.0 {
                    best = s;
                }
            }
        }
        best
    }

    /// The scores of the distinct rows among `rows` (`merged`: scratch space).
    fn sum(&self, rows: &[u32], merged: &mut Vec<u32>) -> (f64, Option<&str>) {
        merged.clear();
        merged.extend_from_slice(rows);
        merged.sort_unstable();
        merged.dedup();
        let classes = self.bias.len();
        let mut sum = self.bias.clone();
        for &row in merged.iter() {
            let at = row as usize * classes;
            if let Some(w) = self.weights.get(at..at + classes) {
                for (s, w) in sum.iter_mut().zip(w) {
                    *s += f64::from(*w);
                }
            }
        }
        let best = sum
            .iter()
            .skip(1)
            .zip(&self.services)
            .max_by(|a, b| a.0.total_cmp(b.0))
            .map(|(_, s)| s.as_str());
        (sum.first().copied().unwrap_or(f64::NEG_INFINITY), best)
    }

    /// A suspicion when `text` scores at or above the threshold.
    pub fn check(&self, text: &str) -> Option<Suspicion> {
        let (score, best) = self.score(text);
        if score < self.threshold {
            return None;
        }
        Some(Suspicion {
            number: best?.to_string(),
            score,
        })
    }

    /// The score of `text` when it is below `below` (`rules.second_opinion_doubt`): the model
    /// strongly doubts that a text the rules redirect is an emergency.
    pub fn doubts(&self, text: &str, below: f64) -> Option<f64> {
        let (score, _) = self.score(text);
        (score < below).then_some(score)
    }
}

/// The length, in characters, of the windows a long text is also read in.
pub const WINDOW: usize = 60;

/// A clause of a text, or a piece of a long one: a run of letters and digits (anything else
/// breaks clauses, as in [`features`]), by byte range and by character range. A piece cut
/// from a longer clause is `open` at the cut: it shares the cut's character with its
/// neighbour (so the pairs across the cut are kept) and has no clause start or end there.
#[derive(Debug, Clone, PartialEq)]
struct Clause {
    bytes: std::ops::Range<usize>,
    chars: std::ops::Range<usize>,
    open_start: bool,
    open_end: bool,
}

/// The clauses of `text`, a clause longer than `piece` characters cut into pieces of that
/// length, so that a window can hold part of it. People who are upset often write without
/// any punctuation (and speech recognition often gives none), and an emergency in one run-on
/// sentence with a long everyday matter was otherwise read only as a whole, and outweighed.
fn clauses(text: &str, piece: usize) -> Vec<Clause> {
    let mut out = Vec::new();
    // The piece being read: its first byte and character, and whether it starts at a cut.
    let mut open: Option<(usize, usize, bool)> = None;
    let mut n = 0;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            let (b, ch, cut) = *open.get_or_insert((i, n, false));
            // Pieces start `piece` characters apart (so windows, whose starts are half their
            // length apart, can start at every piece); each also holds the next one's first
            // character. Cut only at a character that is not part of an ASCII word: a word is
            // one feature.
            if n - ch >= piece && !c.is_ascii_alphanumeric() {
                out.push(Clause {
                    bytes: b..i + c.len_utf8(),
                    chars: ch..n + 1,
                    open_start: cut,
                    open_end: true,
                });
                open = Some((i, n, true));
            }
        } else if let Some(piece) = open.take() {
            close(&mut out, piece, i, n);
        }
        n += 1;
    }
    if let Some(piece) = open {
        close(&mut out, piece, text.len(), n);
    }
    out
}

/// Ends the clause (or last piece of one) that started at `(byte, char, cut)` before byte
/// `end` and character `n`.
fn close(out: &mut Vec<Clause>, (b, ch, cut): (usize, usize, bool), end: usize, n: usize) {
    if cut && n - ch == 1 {
        // Only the cut's character, which the piece before holds: that piece ends the clause.
        if let Some(last) = out.last_mut() {
            last.open_end = false;
        }
        return;
    }
    out.push(Clause {
        bytes: b..end,
        chars: ch..n,
        open_start: cut,
        open_end: false,
    });
}

/// The clauses longer than `window` characters, as ranges of their pieces in `clauses`.
fn run_ons(clauses: &[Clause], window: usize) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut start = 0;
    clauses.iter().enumerate().filter_map(move |(i, c)| {
        if c.open_end {
            return None;
        }
        let first = std::mem::replace(&mut start, i + 1);
        let span = clauses
            .get(first)
            .map_or(0, |f| c.chars.end - f.chars.start);
        (span > window).then_some(first..i + 1)
    })
}

/// Windows over `clauses`, as ranges of them: from a clause's start, the clauses that follow
/// until the window spans `window` characters or the text ends. Each window starts at the
/// first clause at least half a window after the previous one's start, so every stretch is
/// read about twice, not once per clause.
fn windows(clauses: &[Clause], window: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut next = 0;
    for (i, c) in clauses.iter().enumerate() {
        if c.chars.start < next {
            continue;
        }
        next = c.chars.start + window / 2;
        let end = clauses
            .iter()
            .skip(i)
            .position(|d| d.chars.end - c.chars.start >= window)
            .map_or(clauses.len(), |p| i + p + 1);
        out.push(i..end);
    }
    out
}

/// Training passes over the examples.
const EPOCHS: usize = 30;
/// Learning rate of the gradient steps.
const RATE: f64 = 0.05;
/// L2 penalty per step on the weights of the features present.
const L2: f64 = 0.3;

/// Logistic regression of "emergency or not" on binary features (`rows` present per example):
/// stochastic gradient descent in a fixed order that interleaves the classes, so the same
/// examples always give the same weights. Returns the weight per row and the intercept.
fn logistic(examples: &[(Vec<usize>, bool)], rows: usize) -> (Vec<f32>, f64) {
    let mut w = vec![0f64; rows];
    let mut b = 0f64;
    // A fixed shuffle: examples ordered by a multiplicative hash of their index.
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| {
        (i as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17)
    });
    for _ in 0..EPOCHS {
        for &i in &order {
            let Some((x, y)) = examples.get(i) else {
                continue;
            };
            let z = b + x.iter().filter_map(|&r| w.get(r)).sum::<f64>();
            let g = 1.0 / (1.0 + (-z).exp()) - f64::from(u8::from(*y));
            b -= RATE * g;
            for &r in x {
                if let Some(wr) = w.get_mut(r) {
                    *wr -= RATE * (g + L2 * *wr);
                }
            }
        }
    }
    (w.into_iter().map(|w| w as f32).collect(), b)
}

/// The distinct features of `text` into `out` (cleared first), sorted.
///
/// Full-width letters and digits count as their ASCII forms, ASCII letters in lower case;
/// anything not a letter or digit (punctuation, spaces, emoji) ends a clause. Each character is
/// a feature, and each pair of neighbours in a clause, the clause's ends counting as characters;
/// a run of ASCII letters and digits is one word feature instead, and ends a clause.
fn features(text: &str, out: &mut Vec<u64>) {
    piece_features(text, false, false, out);
}

/// As [`features`], for a piece of a clause: where it is `open` (cut from the rest of its
/// clause) there is no clause start or end.
fn piece_features(text: &str, open_start: bool, open_end: bool, out: &mut Vec<u64>) {
    out.clear();
    let mut prev = if open_start { OPEN } else { START };
    // The hash of the run of ASCII letters and digits being read (`None`: not in one).
    let mut word: Option<u64> = None;
    for c in text.chars() {
        let c = fold(c);
        if c.is_ascii_alphanumeric() {
            // Words and numbers (`120`, `sos`, `b2`) are one feature each, and a clause break
            // for the pairs: letter by letter they would learn from the few lines that hold
            // Latin script, and any English text would look like those lines.
            let h = word.unwrap_or(FNV_OFFSET);
            word = Some((h ^ u64::from(c as u8)).wrapping_mul(FNV_PRIME));
            continue;
        }
        if let Some(h) = word.take() {
            out.push(WORD | (h & WORD_BITS));
            if prev != START && prev != OPEN {
                out.push(pair(prev, END));
            }
            prev = START;
        }
        if c.is_alphanumeric() {
            let code = u64::from(c);
            out.push(code);
            if prev != OPEN {
                out.push(pair(prev, code));
            }
            prev = code;
        } else if prev != START && prev != OPEN {
            out.push(pair(prev, END));
            prev = START;
        }
    }
    if let Some(h) = word {
        out.push(WORD | (h & WORD_BITS));
    }
    if prev != START && prev != OPEN && !open_end {
        out.push(pair(prev, END));
    }
    out.sort_unstable();
    out.dedup();
}

/// Word features: a 42-bit hash under a tag bit of their own (pairs use bit 42).
const WORD: u64 = 1 << 43;
const WORD_BITS: u64 = (1 << 42) - 1;
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn pair(a: u64, b: u64) -> u64 {
    (1 << 42) | (a << 21) | b
}

fn fold(c: char) -> char {
    match c {
        '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
            char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
        }
        c => c,
    }
    .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::test_support::{cycled, micros_per_call, unpunctuated, EVERYDAY};

    fn model() -> SecondOpinion {
        SecondOpinion::builtin()
    }

    #[test]
    fn builtin_trains() {
        let m = model();
        assert!(m.examples() > 500, "{} examples", m.examples());
        assert_eq!(m.services, ["110", "119", "120", "122"]);
    }

    #[test]
    fn features_are_characters_and_pairs_within_clauses() {
        let mut f = Vec::new();
        features("着火，Ａb快打120", &mut f);
        let c = |x: char| u64::from(x);
        let word = |w: &str| {
            let mut f = Vec::new();
            features(w, &mut f);
            f
        };
        let (ab, n120) = (word("ab"), word("120"));
        assert!(ab.len() == 1 && ab.first().is_some_and(|w| w & WORD != 0));
        assert_eq!(ab, word("AB"), "one word, in lower case");
        let mut want = vec![
            c('着'),
            c('火'),
            c('快'),
            c('打'),
            pair(START, c('着')),
            pair(c('着'), c('火')),
            pair(c('火'), END),
            pair(START, c('快')),
            pair(c('快'), c('打')),
            pair(c('打'), END),
        ];
        want.extend(ab.iter().chain(&n120));
        want.sort_unstable();
        assert_eq!(f, want);
        features("，，  ", &mut f);
        assert!(f.is_empty());
    }

    #[test]
    fn parses_both_line_formats_and_names_a_broken_line() {
        let ex = parse_examples(
            "{\"text\":\"a\",\"expect\":[\"119\",\"120\"]}\n\n{\"text\":\"b\",\"expect\":[]}\n\
             {\"text\":\"c\",\"expected\":\"122\",\"alt\":[\"120\"]}\n{\"text\":\"d\",\"expected\":\"none\"}",
        );
        let ex = ex.unwrap_or_default();
        let got: Vec<_> = ex
            .iter()
            .map(|e| (e.text.as_str(), e.number.as_deref(), e.alt.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", Some("119"), vec!["120".to_string()]),
                ("b", None, vec![]),
                ("c", Some("122"), vec!["120".to_string()]),
                ("d", None, vec![]),
            ]
        );
        let err = parse_examples("{\"text\":\"a\",\"expect\":[]}\n{\"text\":1}").err();
        assert!(err.is_some_and(|e| e.starts_with("line 2:")));
        let err = parse_examples("{\"text\":\"a\"}").err();
        assert!(err.is_some_and(|e| e.contains("expected")));
    }

    #[test]
    fn needs_both_kinds_of_example() {
        let only = |n: Option<&str>| {
            vec![Example {
                text: "x".into(),
                number: n.map(str::to_string),
                alt: vec![],
            }]
        };
        assert!(SecondOpinion::train(&only(Some("119")), 1.0).is_err());
        assert!(SecondOpinion::train(&only(None), 1.0).is_err());
        assert!(SecondOpinion::train(&[], 1.0).is_err());
        assert!(model().with_threshold(f64::NAN).is_err());
    }

    #[test]
    fn suspects_emergencies_the_words_do_not_name_and_names_the_service() {
        let m = model();
        let rules = crate::pipeline::emergency::EmergencyRules::builtin();
        // Scenes described in words the rules do not hold (neither line is in the examples).
        for (text, number) in [
            ("工地上有个师傅从架子上掉下来了 躺着一动不动", "120"),
            ("小区后面河里好像有个人在扑腾 喊也喊不出声", "119"),
        ] {
            assert_eq!(rules.check(text), None, "the rules miss {text}");
            let s = m.check(text);
            assert_eq!(s.map(|s| s.number), Some(number.to_string()), "{text}");
        }
    }

    #[test]
    fn leaves_routine_matters_alone() {
        let m = model();
        for text in [
            "小区门口的路灯坏了很久了晚上很黑希望尽快修好",
            "请问社保卡丢了在哪里补办需要带什么材料",
            "楼上每天晚上十一点以后还在装修噪音太大",
            "",
            "，，，",
        ] {
            assert_eq!(m.check(text), None, "{text}");
        }
    }

    /// What the rules and the model do together on a labelled file, as the gateway asks them:
    /// `(emergencies neither redirected nor reviewed, routine lines reviewed)`.
    fn together(file: &str) -> (usize, usize) {
        let rules = crate::pipeline::emergency::EmergencyRules::builtin();
        let m = model();
        let (mut unseen, mut reviewed) = (0, 0);
        for ex in parse_examples(file).unwrap_or_default() {
            if rules.check(&ex.text).is_some() {
                continue;
            }
            let s = m.check(&ex.text);
            match ex.number {
                Some(_) => unseen += usize::from(s.is_none()),
                None => reviewed += usize::from(s.is_some()),
            }
        }
        (unseen, reviewed)
    }

    #[test]
    fn measured_sets_with_the_rules() {
        // None of these sets is in the examples, and none chose the hyper-parameters, the
        // window or the threshold (cross-validation on the examples did). Floors against
        // getting worse, not targets to tune to; figures in BENCHMARKS.md. blind3 and blind4
        // compared training sets before the regression came in, so they are not blind.
        // The eighth session's 300 examples (over-and-done emergencies, hearsay, screens and
        // drills, questions about the services, hazards, and emergencies told indirectly) cost
        // one borderline emergency on each: a threat with knife photos in a parents' group
        // ("tomorrow"), and a driver trying to leave a scrape nobody was hurt in. (2, 7) and
        // (2, 2) before them.
        let b3 = together(include_str!("../../tests/data/emergency-blind3.jsonl"));
        assert!(b3.0 <= 3 && b3.1 <= 2, "blind3 {b3:?}");
        let b4 = together(include_str!("../../tests/data/emergency-blind4.jsonl"));
        assert!(b4.0 <= 3 && b4.1 == 0, "blind4 {b4:?}");
        let plain = together(include_str!("../../tests/data/emergency-routine.jsonl"));
        assert_eq!(plain, (0, 0), "plain routine traffic");
        // Written blind after the regression came in and first measured before the windows
        // (99/100 redirected or reviewed, 1/100 and 1/300 routine lines reviewed); with the
        // windows 99/100, 2/100, 1/300.
        let b5 = together(include_str!("../../tests/data/emergency-blind5.jsonl"));
        assert!(b5.0 <= 1 && b5.1 == 0, "blind5 {b5:?}");
        let plain2 = together(include_str!("../../tests/data/emergency-routine2.jsonl"));
        assert!(plain2.1 <= 1, "plain routine traffic 2 {plain2:?}");
        // Three sets of the sixth session, as (unseen, reviewed) at d31f2ed (before), with
        // the shorter windows in run-on clauses, and with the rules' run-on reach and classes
        // (which leave more routine lines to the model): long texts written blind, tuned on
        // for the rules: (3, 6), (0, 9), (0, 14).
        let long = together(include_str!("../../tests/data/emergency-long.jsonl"));
        // With the eighth session's examples: (0, 10).
        assert!(long.0 == 0 && long.1 <= 10, "long texts {long:?}");
        // blind5's emergencies run on into plain routine lines without any punctuation
        // (`scripts/make-runon-set.py`): (52, 0), (10, 0), (5, 0).
        let runon = together(include_str!("../../tests/data/emergency-runon.jsonl"));
        assert!(runon.0 <= 4 && runon.1 == 0, "run-on texts {runon:?}");
        // Long texts, half without any punctuation, written blind and held out until then:
        // (0, 4), (0, 13), (0, 12). The shorter windows' cost: risky routine run-ons marked.
        // Then its own false redirects' classes were fixed in the rules, and the lines no
        // longer redirected went to the model: (0, 17).
        let long2 = together(include_str!("../../tests/data/emergency-long2.jsonl"));
        // With the eighth session's examples: (0, 10).
        assert!(long2.0 == 0 && long2.1 <= 10, "long texts 2 {long2:?}");
        // Caller transcripts written blind after every change above, measured once: (0, 19);
        // d31f2ed: (0, 8). Then tuned on for the rules, which leaves more to the model: (0, 22).
        let long3 = together(include_str!("../../tests/data/emergency-long3.jsonl"));
        // With the eighth session's examples: (0, 11).
        assert!(long3.0 == 0 && long3.1 <= 11, "long texts 3 {long3:?}");
        // Messages written blind after every change, measured once: (0, 8); d31f2ed (1, 5).
        // After long5's rule classes, one line the rules no longer redirect went to the
        // model: (0, 9).
        let long4 = together(include_str!("../../tests/data/emergency-long4.jsonl"));
        // With the eighth session's examples: (0, 6).
        assert!(long4.0 == 0 && long4.1 <= 6, "long texts 4 {long4:?}");
        // Written blind at the start of the seventh session, measured once: (0, 7); after its
        // classes were fixed in the rules: (0, 11).
        let long5 = together(include_str!("../../tests/data/emergency-long5.jsonl"));
        // With the eighth session's examples: (0, 7).
        assert!(long5.0 == 0 && long5.1 <= 7, "long texts 5 {long5:?}");
        // Written blind after that, measured once and never tuned on: (0, 2), the same as
        // before long5's classes.
        let long6 = together(include_str!("../../tests/data/emergency-long6.jsonl"));
        // With the eighth session's examples: (0, 1).
        assert!(long6.0 == 0 && long6.1 <= 1, "long texts 6 {long6:?}");
        // Written blind in the eighth session, measured once and never tuned on for the rules:
        // (1, 18). Its routine texts tell emergency scenes that are over, heard of or on screen
        // in detail. The classes of that session's examples were named after its failures (not
        // its texts), so for the model it is no longer blind: (1, 12) with them.
        let long7 = together(include_str!("../../tests/data/emergency-long7.jsonl"));
        assert!(long7.0 <= 1 && long7.1 <= 12, "long texts 7 {long7:?}");
        // Written blind after those examples, measured once with the model before and after
        // them: (1, 5) and (1, 3). Never tuned on.
        let long8 = together(include_str!("../../tests/data/emergency-long8.jsonl"));
        assert!(long8.0 <= 1 && long8.1 <= 3, "long texts 8 {long8:?}");
    }

    /// What the doubt takes back from the rules on a labelled file: `(false redirects the
    /// model scores below DEFAULT_DOUBT, redirected emergencies it scores below it)`.
    fn doubted(file: &str) -> (usize, usize) {
        let rules = crate::pipeline::emergency::EmergencyRules::builtin();
        let m = model();
        let (mut routine, mut emergencies) = (0, 0);
        for ex in parse_examples(file).unwrap_or_default() {
            let Some(r) = rules.check(&ex.text) else {
                continue;
            };
            let below = m.doubts(&ex.text, DEFAULT_DOUBT).is_some();
            match ex.number {
                Some(_) => emergencies += usize::from(below),
                None if !ex.alt.contains(&r.number) => routine += usize::from(below),
                None => {}
            }
        }
        (routine, emergencies)
    }

    #[test]
    fn the_doubt_takes_back_false_redirects_and_almost_no_emergency() {
        // The sets the model never saw (its threshold and the doubt were chosen by
        // cross-validation on its examples). Measured when the doubt came in: 23 of the rules'
        // 78 false redirects taken back, and 1 of their 685 emergencies (a run-on transcript)
        // made an order for urgent review instead; with the eighth session's examples 27 of
        // them on these nine sets (16 before). Floors against getting worse.
        let (mut routine, mut emergencies) = (0, 0);
        for file in [
            include_str!("../../tests/data/emergency-blind3.jsonl"),
            include_str!("../../tests/data/emergency-blind4.jsonl"),
            include_str!("../../tests/data/emergency-blind5.jsonl"),
            include_str!("../../tests/data/emergency-long.jsonl"),
            include_str!("../../tests/data/emergency-long2.jsonl"),
            include_str!("../../tests/data/emergency-long3.jsonl"),
            include_str!("../../tests/data/emergency-long4.jsonl"),
            include_str!("../../tests/data/emergency-long5.jsonl"),
            include_str!("../../tests/data/emergency-runon.jsonl"),
        ] {
            let (r, e) = doubted(file);
            routine += r;
            emergencies += e;
        }
        assert!(
            routine >= 27 && emergencies <= 1,
            "({routine}, {emergencies})"
        );
        // long6, held out from everything: 7 of its 15 false redirects, no emergency; 9 with
        // the eighth session's examples.
        let long6 = doubted(include_str!("../../tests/data/emergency-long6.jsonl"));
        assert!(long6.0 >= 9 && long6.1 == 0, "long6 {long6:?}");
        // long7, written after the doubt came in and measured once: 1 of its 18, no emergency;
        // 3 with the examples named after its failures.
        let long7 = doubted(include_str!("../../tests/data/emergency-long7.jsonl"));
        assert!(long7.0 >= 3 && long7.1 == 0, "long7 {long7:?}");
        // long8, written blind after those examples: 7 of 19 before them, 8 with them.
        let long8 = doubted(include_str!("../../tests/data/emergency-long8.jsonl"));
        assert!(long8.0 >= 8 && long8.1 == 0, "long8 {long8:?}");
        // The examples' own emergencies (the model learnt them) are never doubted.
        let dev = doubted(include_str!("../../tests/data/emergency-dev2.jsonl"));
        assert_eq!(dev.1, 0, "dev2 {dev:?}");
    }

    #[test]
    fn an_emergency_among_everyday_sentences_is_still_suspected() {
        let m = model();
        let everyday = EVERYDAY;
        let scene = "隔壁老王刚才吃着饭突然歪倒在桌上 叫他不答应 嘴角流口水";
        assert_eq!(m.check(everyday), None);
        let alone = m.check(scene).map(|s| s.number);
        assert_eq!(alone.as_deref(), Some("120"));
        let long = format!("{everyday}{scene}");
        assert_eq!(m.check(&long).map(|s| s.number), alone, "{long}");
    }

    /// The pieces `score` cuts run-on clauses into.
    const PIECE: usize = WINDOW / 3;

    #[test]
    fn an_emergency_in_a_run_on_sentence_is_still_suspected() {
        // As speech recognition or an upset caller gives it: no punctuation, no spaces.
        let everyday = &unpunctuated(EVERYDAY);
        let scene = "隔壁老王刚才吃着饭突然歪倒在桌上叫他不答应嘴角流口水";
        let m = model();
        for text in [
            format!("{everyday}{scene}"),
            format!("{scene}{everyday}"),
            format!("{everyday}{scene}{everyday}"),
        ] {
            assert_eq!(
                m.check(&text).map(|s| s.number).as_deref(),
                Some("120"),
                "{text}"
            );
            // Read as a whole, or in windows as long as the ordinary ones, it is outweighed.
            let whole = m.clone().with_window(10_000);
            assert_eq!(whole.check(&text), None, "{text}");
        }
        assert_eq!(m.check(everyday), None);
    }

    #[test]
    fn windows_start_at_clauses_and_end_at_clause_ends() {
        let text = format!(
            "{}，{}。{}",
            "甲".repeat(70),
            "乙".repeat(20),
            "丙".repeat(5)
        );
        let c = clauses(&text, PIECE);
        let spans: Vec<_> = c.iter().map(|c| c.chars.clone()).collect();
        // The 70 甲 are longer than a piece: cut every 20 characters, each piece also holding
        // the next one's first character. 乙 is exactly one piece long and not cut.
        assert_eq!(spans, [0..21, 20..41, 40..61, 60..70, 71..91, 92..97]);
        let open: Vec<_> = c.iter().map(|c| (c.open_start, c.open_end)).collect();
        assert_eq!(
            open,
            [
                (false, true),
                (true, true),
                (true, true),
                (true, false),
                (false, false),
                (false, false)
            ]
        );
        assert_eq!(text.get(c[4].bytes.clone()), Some("乙".repeat(20).as_str()));
        assert_eq!(text.get(c[3].bytes.clone()), Some("甲".repeat(10).as_str()));
        // From 甲 (0): to the piece that passes 60 characters. The next start at least 30
        // characters on is the piece at 40, to the end; then 乙 (71), to the end: an emergency
        // told last must not share every window with what came before it.
        assert_eq!(windows(&c, WINDOW), [0..3, 2..6, 4..6]);
        // Only the 甲 clause is longer than a window; in it, windows of 40 start at every piece.
        let long: Vec<_> = run_ons(&c, WINDOW).collect();
        assert_eq!(long.first(), Some(&(0..4)));
        assert_eq!(long.len(), 1);
        assert_eq!(
            windows(c.get(0..4).unwrap_or_default(), 2 * PIECE),
            [0..2, 1..3, 2..4, 3..4]
        );
        assert!(clauses("，。 ", PIECE).is_empty());
        // Never cut inside an ASCII word.
        let word = format!("{}abc{}", "戊".repeat(PIECE - 1), "己".repeat(5));
        let cut: Vec<_> = clauses(&word, PIECE)
            .iter()
            .map(|c| c.chars.clone())
            .collect();
        assert_eq!(cut, [0..PIECE + 3, PIECE + 2..PIECE + 7]);
    }

    #[test]
    fn pieces_of_a_long_clause_hold_exactly_its_features() {
        // A run-on text, with an ASCII word and a full-width digit, cut into pieces: together
        // they hold the features of the whole (no pair lost at a cut, no clause end invented).
        let text = "我家楼上那个装修队天天早上七点就开始打钻一直打到晚上十点物业也不管我打了\
                    好几次12345都说会处理然后今天那个工人从架子上摔下来了躺在地上一动不动流了\
                    好多血你们快点来人啊还有那个噪音的事情也一起处理一下谢谢ok好的再见";
        let mut whole = Vec::new();
        features(text, &mut whole);
        let pieces = clauses(text, PIECE);
        assert!(pieces.len() > 3, "{pieces:?}");
        let mut union = Vec::new();
        let mut f = Vec::new();
        for p in &pieces {
            let piece = text.get(p.bytes.clone()).unwrap_or("");
            piece_features(piece, p.open_start, p.open_end, &mut f);
            union.extend_from_slice(&f);
        }
        union.sort_unstable();
        union.dedup();
        assert_eq!(union, whole);
    }

    /// Timing, not a test: `cargo test --release -- --ignored second_opinion_timing --nocapture`.
    #[test]
    #[ignore]
    fn second_opinion_timing() {
        let m = model();
        // The same texts, and run on without any punctuation (cut into pieces, more windows).
        let bare = unpunctuated(EVERYDAY);
        for (len, from) in [
            (60, EVERYDAY),
            (500, EVERYDAY),
            (4000, EVERYDAY),
            (500, &bare),
            (4000, &bare),
        ] {
            let text = cycled(from, len);
            let (us, hits) =
                micros_per_call(20_000, || m.check(std::hint::black_box(&text)).is_some());
            let kind = if from == EVERYDAY { "" } else { " run-on" };
            println!("second opinion on {len}{kind} chars: {us:.2} µs ({hits} hits)");
        }
        let t0 = std::time::Instant::now();
        let m = SecondOpinion::builtin();
        println!("training on {} examples: {:?}", m.examples(), t0.elapsed());
    }

    #[test]
    fn a_higher_threshold_suspects_less() {
        let text = "老爷子刚才吃着饭突然一头栽地上了叫不醒嘴唇发紫";
        let (score, _) = model().score(text);
        assert!(model().check(text).is_some());
        let strict = model().with_threshold(score + 0.01).ok();
        assert_eq!(strict.and_then(|m| m.check(text)), None);
    }
}
