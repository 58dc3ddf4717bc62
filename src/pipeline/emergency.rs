//! Emergency redirection (Tianjin 12345 measures, article 17(1)).
//!
//! A submission that describes an emergency must not become a work order: the citizen is told,
//! at once, which number to dial (119 fire and rescue, 120 medical, 110 police, 122 traffic
//! accidents) and why. This module decides *whether* and *where*; recording, publishing and
//! answering are the caller's job.
//!
//! ## Invariants
//! - Pure: no clock, no I/O, no randomness. Rules arrive as TOML text
//!   ([`EmergencyRules::from_toml`]); the default set is compiled in ([`EmergencyRules::builtin`]).
//! - Loading validates everything and reports every problem at once ([`RulesError`]); a caller
//!   that reloads keeps its old rules when the new text fails, so a typo never disables
//!   redirection. An empty rule set is refused for the same reason.
//! - No panics on any input text.
//! - Cost: one Aho-Corasick pass over the normalised text plus work proportional to the number
//!   of hits (target < 20 µs for 500 characters with the full rule set).
//!
//! ## How a text is judged
//! 1. Normalise: full-width letters and digits to half-width, ASCII lower case, whitespace
//!    dropped (people type 着 火 了 with spaces), line breaks kept as sentence ends. Spaces
//!    between two CJK words of three or more characters are a clause break instead
//!    (`着火了 现在想问赔偿`: phone and WeChat users separate clauses with spaces).
//! 2. Cut into clauses (，,、：: plus sentence ends) and sentences (。！？!?；; and line breaks).
//!    A clause of more than 40 characters (`RUN_ON`; speech recognition, an upset caller) is not
//!    one scope: there a clause or sentence cue in the trigger's clause counts only within
//!    15 characters of it (`RUN_ON_REACH`).
//! 3. Find every trigger, context cue and mask phrase in one overlapping Aho-Corasick scan.
//!    A hit overlapping a *mask* (火锅, 跳楼价, 被困扰) is dropped unless it contains the mask;
//!    a cue overlapping one of its context's `except` phrases (是不是 for 不是) is dropped.
//! 4. A trigger fires its rule when every `require` list has a cue in scope and no `suppress`
//!    context has one (a suppressing context is lifted by a cue of one of its `unless`
//!    contexts, typically present-tense urgency: 去年着过火 is suppressed, 以前着过，现在又着火了
//!    is not).
//! 5. The firing rule with the highest priority wins; ties go to the earliest trigger.
//!
//! Missing an emergency is the worst error, a false redirect the second worst: the shipped
//! rules keep suppression narrow and let urgency cues override it. See
//! `config/rules/emergency.toml` for the file format and the choices between services.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use serde::{Deserialize, Serialize};

/// The default rule file, compiled into the binary so the gateway can start without `config/`.
pub const BUILTIN_TOML: &str = include_str!("../../config/rules/emergency.toml");

/// The answer to a submission that describes an emergency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// The number to dial: `110`, `119`, `120` or `122` with the shipped rules.
    pub number: String,
    /// A short reason in Chinese, addressed to the citizen.
    pub reason: String,
    /// Name of the rule that decided (`digits:119` for [`EmergencyRules::check_digits`]), for
    /// the redirect record and for tuning.
    pub rule: String,
}

/// One thing wrong in a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// The rule, context or service concerned (`rule "fire"`), or empty for the whole file.
    pub rule: String,
    /// What is wrong, in English, for the operator.
    pub message: String,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rule.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.rule, self.message)
        }
    }
}

/// A rules file that cannot be used, with every problem found (not just the first).
///
/// Shared by the other rule families of the pipeline (`category`, `guidance`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RulesError {
    /// The file label given to the loader (a path, or the default file name).
    pub file: String,
    /// Every problem found; never empty.
    pub problems: Vec<RuleProblem>,
}

impl RulesError {
    /// A single problem, for loaders that stop early (a TOML syntax error).
    pub fn single(file: &str, rule: &str, message: impl Into<String>) -> Self {
        RulesError {
            file: file.to_string(),
            problems: vec![RuleProblem {
                rule: rule.to_string(),
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} problem(s)", self.file, self.problems.len())?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// Collects problems while validating, so the operator sees all of them in one reload attempt.
#[derive(Default)]
struct Problems(Vec<RuleProblem>);

impl Problems {
    fn push(&mut self, rule: impl Into<String>, message: impl Into<String>) {
        self.0.push(RuleProblem {
            rule: rule.into(),
            message: message.into(),
        });
    }
}

// ------------------------------------------------------------------------------------------
// File format (serde). `deny_unknown_fields` so a misspelt key is an error, not a silently
// ignored rule.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: u32,
    #[serde(default)]
    service: Vec<RawService>,
    #[serde(default)]
    masks: RawMasks,
    #[serde(default)]
    context: Vec<RawContext>,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    number: String,
    #[serde(default)]
    name: String,
    reason: String,
    #[serde(default)]
    digits: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMasks {
    #[serde(default)]
    phrases: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default)]
    suppress: Vec<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Effect {
    Suppress,
    Cue,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Scope {
    Clause,
    Sentence,
    Text,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Position {
    Before,
    After,
    Any,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContext {
    name: String,
    effect: Effect,
    scope: Scope,
    #[serde(default = "any_position")]
    position: Position,
    #[serde(default)]
    window: usize,
    #[serde(default)]
    like: Option<String>,
    #[serde(default)]
    cues: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    #[serde(default)]
    unless: Vec<String>,
}

fn any_position() -> Position {
    Position::Any
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    number: String,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    reason: Option<String>,
    triggers: Vec<String>,
    #[serde(default)]
    require: Vec<String>,
    #[serde(default)]
    require_also: Vec<String>,
    #[serde(default)]
    suppress: Option<Vec<String>>,
}

// ------------------------------------------------------------------------------------------
// Compiled form.

#[derive(Debug, Clone, Copy)]
enum Role {
    Mask,
    Trigger(usize),
    Cue(usize),
    Except(usize),
}

#[derive(Debug, Clone)]
struct Service {
    number: String,
    reason: String,
    digits: Vec<String>,
}

#[derive(Debug, Clone)]
struct Context {
    /// For [`EmergencyRules::explain`].
    name: String,
    scope: Scope,
    position: Position,
    window: usize,
    unless: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    number: String,
    reason: String,
    priority: i32,
    require: Vec<usize>,
    require_also: Vec<usize>,
    suppress: Vec<usize>,
}

/// A validated, compiled emergency rule set. Cheap to share behind an `Arc`; swap the whole
/// value on reload.
#[derive(Debug, Clone)]
pub struct EmergencyRules {
    /// Trigger phrases only: decides quickly that a routine text needs no further look.
    trigger_matcher: AhoCorasick,
    /// Every phrase (triggers, cues, excepts, masks) for the full overlapping scan.
    matcher: AhoCorasick,
    /// Roles of each distinct pattern, indexed by Aho-Corasick pattern id (one phrase may be a
    /// trigger of one rule and a cue of several contexts).
    roles: Vec<Vec<Role>>,
    services: Vec<Service>,
    contexts: Vec<Context>,
    rules: Vec<Rule>,
}

/// A clause longer than this many characters is a run-on (see [`Units::run_on`]).
const RUN_ON: usize = 40;
/// In a run-on clause, how far (characters) from a trigger a cue of clause or sentence scope
/// in the same clause may be.
const RUN_ON_REACH: usize = 15;

/// A phrase found in the normalised text, in byte offsets.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn overlaps(self, other: Span) -> bool {
        self.start < other.end && other.start < self.end
    }
    fn contains(self, other: Span) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

/// Clause and sentence boundaries of one normalised text.
struct Units {
    clause: Vec<usize>,
    sentence: Vec<usize>,
}

impl Units {
    fn of(text: &str) -> Units {
        // Byte-level: every boundary is ASCII or a three-byte sequence, and Chinese text is
        // three bytes a character, so this is markedly cheaper than decoding chars.
        let mut clause = Vec::new();
        let mut sentence = Vec::new();
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let (kind, len) = boundary_at(b, i);
            match kind {
                Boundary::Sentence => {
                    sentence.push(i);
                    clause.push(i);
                }
                Boundary::Clause => clause.push(i),
                Boundary::None => {}
            }
            i += len;
        }
        Units { clause, sentence }
    }

    /// Whether the clause at `at` is a run-on: longer than [`RUN_ON`] characters without a
    /// break. Speech recognition and upset callers run everything together, and a cue a
    /// hundred characters away is about something else.
    fn run_on(&self, text: &str, at: At) -> bool {
        let start = match at.clause.checked_sub(1) {
            // The clause starts after its break (one character, at most three bytes).
            Some(i) => self.clause.get(i).map_or(0, |&b| {
                b + text
                    .get(b..)
                    .and_then(|t| t.chars().next())
                    .map_or(1, char::len_utf8)
            }),
            None => 0,
        };
        let end = self.clause.get(at.clause).copied().unwrap_or(text.len());
        text.get(start..end)
            .is_some_and(|c| c.chars().nth(RUN_ON).is_some())
    }

    /// Which clause and sentence an offset lies in.
    fn locate(&self, pos: usize) -> At {
        At {
            clause: self.clause.partition_point(|&x| x < pos),
            sentence: self.sentence.partition_point(|&x| x < pos),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Boundary {
    None,
    Clause,
    Sentence,
}

/// Classifies the character starting at byte `i` and returns its UTF-8 length.
/// Sentence ends: 。！？；… ! ? ; and line breaks. Clause ends: ，、：（） , : ( ).
fn boundary_at(b: &[u8], i: usize) -> (Boundary, usize) {
    let Some(&lead) = b.get(i) else {
        return (Boundary::None, 1);
    };
    let len = match lead {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xFF => 4,
        _ => 1,
    };
    let kind = match (lead, b.get(i + 1), b.get(i + 2)) {
        (b'!' | b'?' | b';' | b'\n', _, _) => Boundary::Sentence,
        (b',' | b':' | b'(' | b')', _, _) => Boundary::Clause,
        // 。(U+3002) 、(U+3001)
        (0xE3, Some(0x80), Some(0x82)) => Boundary::Sentence,
        (0xE3, Some(0x80), Some(0x81)) => Boundary::Clause,
        // …(U+2026)
        (0xE2, Some(0x80), Some(0xA6)) => Boundary::Sentence,
        // ！(FF01) ？(FF1F) ；(FF1B)
        (0xEF, Some(0xBC), Some(0x81 | 0x9F | 0x9B)) => Boundary::Sentence,
        // ，(FF0C) ：(FF1A) （(FF08) ）(FF09)
        (0xEF, Some(0xBC), Some(0x8C | 0x9A | 0x88 | 0x89)) => Boundary::Clause,
        _ => Boundary::None,
    };
    (kind, len)
}

/// Whether `normalize` would change anything. A byte scan: the characters it rewrites are ASCII,
/// full-width letters/digits (EF BC/BD ..) or a handful of Unicode spaces.
fn needs_normalizing(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let x = b[i];
        if x < 0x80 {
            if x.is_ascii_uppercase() || (x.is_ascii_whitespace() && x != b'\n') {
                return true;
            }
            i += 1;
            continue;
        }
        // 0xF0 and 0xF3 lead emoji and tags (see `is_dropped`).
        if matches!(x, 0xC2 | 0xE1 | 0xE2 | 0xE3 | 0xEF | 0xF0 | 0xF3) {
            // Rare lead bytes: decode this one char and decide exactly.
            if let Some(c) = text.get(i..).and_then(|t| t.chars().next()) {
                if c.is_whitespace() || is_fullwidth_alnum(c) || is_dropped(c) {
                    return true;
                }
                i += c.len_utf8();
                continue;
            }
        }
        i += 1;
    }
    false
}

/// Characters [`normalize`] drops: invisible format characters (General Category Cf: zero-width
/// space and joiners, soft hyphen, word joiner, bidi controls, BOM, tags) and pictographs
/// (emoji, misc symbols and dingbats, their variation selectors). Copied from a chat app or
/// typed for emphasis, they sit inside a trigger word (`着\u{200B}火`, `着🔥火`) and hid it from
/// the rules (until 2026-12-07). None is a rule word or a clause break (`boundary_at`), so
/// dropping them anywhere only joins what a person sees as one word. The dingbat numbers
/// (❶–➓), which number a list, are kept.
fn is_dropped(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}' | '\u{E0001}' | '\u{E0020}'..='\u{E007F}'
        | '\u{FE0E}' | '\u{FE0F}' | '\u{2600}'..='\u{2775}' | '\u{2794}'..='\u{27BF}'
        | '\u{1F000}'..='\u{1FAFF}')
}

fn is_fullwidth_alnum(c: char) -> bool {
    matches!(c, '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}')
}

/// Normalises for matching: full-width digits and letters to half-width, ASCII lower case,
/// whitespace dropped except line breaks (kept as sentence ends). Punctuation is left alone:
/// both widths count as clause and sentence ends.
///
/// Rules are normalised the same way, so a rule file may use either width for letters and
/// digits. Borrows when nothing changes, which is the common case for Chinese text and keeps
/// `check` within its time budget.
pub fn normalize(text: &str) -> Cow<'_, str> {
    if !needs_normalizing(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_normalized(&mut out, c);
    }
    Cow::Owned(out)
}

/// [`normalize`] for the text being judged, which keeps one more thing: a run of spaces between
/// two runs of CJK text, each at least three characters long, becomes a clause break (`,`).
///
/// People on phones and WeChat separate clauses with spaces (`上个月着火了 现在想问赔偿`), and
/// gluing them together let a word of one clause (现在) lift the suppression of another.
/// Spaces around shorter words are still dropped: single characters (`着 火 了`) and two-character
/// words (`没有 着火`, `救命 救命`) are one phrase spelt out, not two clauses. So are spaces next
/// to ASCII (`人民路 28号`, `着火了 119`). Rule phrases and the other rule families (category,
/// guidance) keep plain [`normalize`]: their keywords are matched across spaces.
fn normalize_text(text: &str) -> Cow<'_, str> {
    if !needs_normalizing(text) {
        return Cow::Borrowed(text);
    }
    // One pass. `run`: word characters (letters, digits, CJK) just written; `last_cjk`: whether
    // the last of them is non-ASCII. At a run of spaces after a CJK word of 3+ characters, the
    // place in `out` is remembered; the break goes in once the word after the spaces reaches
    // three characters (it started with a CJK character), and is forgotten otherwise.
    let mut out = String::with_capacity(text.len() + 8);
    let mut run = 0usize;
    let mut last_cjk = false;
    let mut in_space = false;
    let mut candidate: Option<usize> = None;
    let mut pending: Option<(usize, usize)> = None;
    for c in text.chars() {
        // Dropped before anything else: an emoji between two words is neither a word
        // character nor a break for the space handling below.
        if is_dropped(c) {
            continue;
        }
        if is_inline_space(c) {
            if !in_space {
                pending = None;
                candidate = (run >= 3 && last_cjk).then_some(out.len());
                in_space = true;
            }
            continue;
        }
        let word = is_word_char(c);
        if in_space {
            in_space = false;
            run = 0;
            pending = candidate
                .take()
                .filter(|_| word && !c.is_ascii())
                .map(|at| (at, 0));
        }
        if word {
            run += 1;
            last_cjk = !c.is_ascii();
        } else {
            run = 0;
            last_cjk = false;
            pending = None;
        }
        push_normalized(&mut out, c);
        if let Some((at, n)) = pending {
            if n + 1 >= 3 {
                out.insert(at, ',');
                pending = None;
            } else {
                pending = Some((at, n + 1));
            }
        }
    }
    Cow::Owned(out)
}

/// `char::is_alphanumeric` with the common cases first (ASCII, CJK Unified Ideographs): the
/// general table lookup made `normalize_text` three times slower than `normalize`.
fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else {
        matches!(c, '\u{4E00}'..='\u{9FFF}') || c.is_alphanumeric()
    }
}

/// Whitespace that is not a line break (line breaks are sentence ends).
fn is_inline_space(c: char) -> bool {
    c.is_whitespace() && c != '\n' && c != '\r'
}

/// One character of [`normalize`]'s output (whitespace other than line breaks is dropped).
fn push_normalized(out: &mut String, c: char) {
    match c {
        '\n' | '\r' => out.push('\n'),
        '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
            // The full-width block mirrors ASCII at a fixed offset.
            let ascii = char::from_u32(c as u32 - 0xFEE0).unwrap_or(c);
            out.push(ascii.to_ascii_lowercase());
        }
        c if c.is_whitespace() || is_dropped(c) => {}
        c => out.push(c.to_ascii_lowercase()),
    }
}

impl EmergencyRules {
    /// The rules shipped in `config/rules/emergency.toml`, compiled into the binary.
    ///
    /// # Panics
    /// Only if the compiled-in file is invalid, which the `builtin_loads` test rules out before
    /// any release; the text is part of the program, not input.
    #[allow(clippy::expect_used)]
    pub fn builtin() -> EmergencyRules {
        Self::from_toml_named("emergency.toml (builtin)", BUILTIN_TOML)
            .expect("config/rules/emergency.toml compiled into the binary must be valid")
    }

    /// Parses and validates a rules file; `file` labels the errors as `emergency.toml`.
    pub fn from_toml(text: &str) -> Result<EmergencyRules, RulesError> {
        Self::from_toml_named("emergency.toml", text)
    }

    /// Parses and validates a rules file, labelling errors with `file` (the path the gateway
    /// read it from).
    pub fn from_toml_named(file: &str, text: &str) -> Result<EmergencyRules, RulesError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| RulesError::single(file, "", e.to_string()))?;
        compile(raw).map_err(|problems| RulesError {
            file: file.to_string(),
            problems,
        })
    }

    /// Number of rules (for logs after a reload).
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Decides whether `text` describes an emergency and, if so, where to send the citizen.
    pub fn check(&self, text: &str) -> Option<Redirect> {
        let best = self.fired(text, false, None).into_iter().next()?;
        let rule = self.rules.get(best.rule)?;
        Some(Redirect {
            number: rule.number.clone(),
            reason: rule.reason.clone(),
            rule: rule.name.clone(),
        })
    }

    /// Every rule that fires on `text`, best first and one entry per rule: for redirect
    /// records, tuning and supervisors' mail ("also matched: 120").
    pub fn check_all(&self, text: &str) -> Vec<Redirect> {
        self.fired(text, true, None)
            .into_iter()
            .filter_map(|f| self.rules.get(f.rule))
            .map(|r| Redirect {
                number: r.number.clone(),
                reason: r.reason.clone(),
                rule: r.name.clone(),
            })
            .collect()
    }

    /// Why `text` is or is not redirected, for whoever tunes the rules: one line per trigger
    /// found, best first, saying whether its rule fired, lacked a required cue, or which
    /// context suppressed it and with what cue (`emergency_eval` prints it with `EXPLAIN=1`).
    pub fn explain(&self, text: &str) -> Vec<String> {
        let mut trace = Vec::new();
        self.fired(text, true, Some(&mut trace));
        trace
    }

    /// Maps digits pressed in an IVR menu (or typed alone) to a service, e.g. `"119"`.
    ///
    /// Full-width digits, spaces and a trailing `#` are tolerated; anything else must match a
    /// configured `digits` entry exactly.
    pub fn check_digits(&self, digits: &str) -> Option<Redirect> {
        let d = normalize(digits);
        let d = d.trim_end_matches(['#', '＃']);
        if d.is_empty() {
            return None;
        }
        self.services
            .iter()
            .find(|s| s.digits.iter().any(|x| x == d))
            .map(|s| Redirect {
                number: s.number.clone(),
                reason: s.reason.clone(),
                rule: format!("digits:{d}"),
            })
    }

    /// The firing rules, best first (priority, then position). With `all == false` it stops
    /// at the first (best) one, which is all `check` needs.
    ///
    /// `trace`, when given, gets one line per trigger considered (see [`Self::explain`]).
    fn fired(&self, text: &str, all: bool, mut trace: Option<&mut Vec<String>>) -> Vec<Fired> {
        let norm = normalize_text(text);
        let norm: &str = &norm;
        // Fast path: most submissions are routine and contain no trigger at all; a single
        // is_match over trigger phrases only is much cheaper than the full overlapping scan.
        if !self.trigger_matcher.is_match(norm) {
            return Vec::new();
        }
        let units = Units::of(norm);

        let mut masks: Vec<Span> = Vec::new();
        let mut excepts: Vec<(usize, Span)> = Vec::new();
        // Cues are only recorded here; masks, excepts and clause positions are checked when a
        // trigger actually consults the context, since most cues (人, 车, 我) never are.
        let mut cues: Vec<Vec<Span>> = vec![Vec::new(); self.contexts.len()];
        let mut triggers: Vec<(usize, Span)> = Vec::new();
        for m in self.matcher.find_overlapping_iter(norm) {
            let span = Span {
                start: m.start(),
                end: m.end(),
            };
            let Some(roles) = self.roles.get(m.pattern().as_usize()) else {
                continue;
            };
            for role in roles {
                match *role {
                    Role::Mask => masks.push(span),
                    Role::Trigger(r) => triggers.push((r, span)),
                    Role::Cue(c) => {
                        if let Some(list) = cues.get_mut(c) {
                            list.push(span);
                        }
                    }
                    Role::Except(c) => excepts.push((c, span)),
                }
            }
        }
        triggers.retain(|&(_, s)| !masked(&masks, s));
        let found = Found {
            units: &units,
            norm,
            masks: &masks,
            excepts: &excepts,
            cues: &cues,
        };

        // Best candidates first, so `check` can stop at the first trigger that survives.
        let priority = |r: usize| self.rules.get(r).map_or(i32::MIN, |x| x.priority);
        triggers.sort_by(|a, b| {
            priority(b.0)
                .cmp(&priority(a.0))
                .then(a.1.start.cmp(&b.1.start))
        });

        let mut fired: Vec<Fired> = Vec::new();
        for &(r, t) in &triggers {
            if fired.iter().any(|f| f.rule == r) {
                continue;
            }
            let Some(rule) = self.rules.get(r) else {
                continue;
            };
            let at = units.locate(t.start);
            let reach = units.run_on(norm, at).then_some(RUN_ON_REACH);
            let cue = |ctx: usize| self.context_cue(ctx, t, at, reach, &found);
            let present = |ctx: usize| cue(ctx).is_some();
            // Only `explain` passes a trace; the verdict's text is built in a cold function so
            // that `check` pays nothing for it.
            let mut note = |verdict: Verdict<'_>| {
                if let Some(trace) = trace.as_deref_mut() {
                    trace_verdict(trace, rule, norm.get(t.start..t.end).unwrap_or(""), verdict);
                }
            };
            if !rule.require.is_empty() && !rule.require.iter().any(|&c| present(c)) {
                note(Verdict::Lacks("require"));
                continue;
            }
            if !rule.require_also.is_empty() && !rule.require_also.iter().any(|&c| present(c)) {
                note(Verdict::Lacks("require_also"));
                continue;
            }
            let suppressor = rule.suppress.iter().find_map(|&c| {
                let s = cue(c)?;
                let ctx = self.contexts.get(c)?;
                (!ctx.unless.iter().any(|&u| present(u))).then_some((ctx, s))
            });
            if let Some((ctx, s)) = suppressor {
                note(Verdict::Suppressed(
                    &ctx.name,
                    norm.get(s.start..s.end).unwrap_or(""),
                ));
            } else {
                note(Verdict::Fires);
                fired.push(Fired { rule: r });
                if !all {
                    break;
                }
            }
        }
        fired
    }

    /// A cue of context `ctx` placed as it demands relative to trigger `t`, if any. `reach`:
    /// the trigger is in a run-on clause, where a clause or sentence cue in that clause counts
    /// only within this many characters of it.
    fn context_cue(
        &self,
        ctx: usize,
        t: Span,
        at: At,
        reach: Option<usize>,
        found: &Found<'_>,
    ) -> Option<Span> {
        let (Some(c), Some(list)) = (self.contexts.get(ctx), found.cues.get(ctx)) else {
            return None;
        };
        // Characters between a cue and the trigger (they do not overlap: checked first).
        let gap = |s: Span| {
            let (a, b) = if s.end <= t.start {
                (s.end, t.start)
            } else {
                (t.end, s.start)
            };
            found
                .norm
                .get(a..b)
                .map_or(usize::MAX, |s| s.chars().count())
        };
        list.iter().copied().find(|&s| {
            // A cue is context *around* the trigger: 被困 is both a trigger and an urgency cue,
            // and must not lift the past/habitual suppression of itself (去年被困在电梯里).
            if s.overlaps(t) {
                return false;
            }
            let placed = match c.position {
                Position::Any => true,
                Position::Before => s.end <= t.start && (c.window == 0 || gap(s) <= c.window),
                Position::After => s.start >= t.end && (c.window == 0 || gap(s) <= c.window),
            };
            if !placed {
                return false;
            }
            let cue_at = found.units.locate(s.start);
            let near = match reach {
                Some(r) if c.scope != Scope::Text && cue_at.clause == at.clause => gap(s) <= r,
                _ => true,
            };
            near && cue_at.same(at, c.scope)
                && !masked(found.masks, s)
                && !found
                    .excepts
                    .iter()
                    .any(|&(ec, e)| ec == ctx && e.overlaps(s))
        })
    }
}

/// What became of one trigger (for [`EmergencyRules::explain`]).
enum Verdict<'a> {
    Fires,
    /// No cue of the named list (`require`, `require_also`).
    Lacks(&'static str),
    /// The context's name and the cue that suppressed.
    Suppressed(&'a str, &'a str),
}

#[cold]
#[inline(never)]
fn trace_verdict(trace: &mut Vec<String>, rule: &Rule, trigger: &str, v: Verdict<'_>) {
    let verdict = match v {
        Verdict::Fires => "fires".to_string(),
        Verdict::Lacks(list) => format!("no cue of its `{list}`"),
        Verdict::Suppressed(ctx, cue) => format!("suppressed by `{ctx}` ({cue:?})"),
    };
    trace.push(format!(
        "{} {} at {trigger:?}: {verdict}",
        rule.number, rule.name
    ));
}

/// A hit inside a mask means something else (火锅 is not 火); a hit that swallows the whole
/// mask is a longer, more specific phrase and stays.
fn masked(masks: &[Span], s: Span) -> bool {
    masks.iter().any(|&m| s.overlaps(m) && !s.contains(m))
}

/// Everything one scan found, for the context checks of each trigger.
struct Found<'a> {
    units: &'a Units,
    norm: &'a str,
    masks: &'a [Span],
    excepts: &'a [(usize, Span)],
    cues: &'a [Vec<Span>],
}

/// Clause and sentence index of an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At {
    clause: usize,
    sentence: usize,
}

impl At {
    fn same(self, other: At, scope: Scope) -> bool {
        match scope {
            Scope::Text => true,
            Scope::Clause => self.clause == other.clause,
            Scope::Sentence => self.sentence == other.sentence,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Fired {
    rule: usize,
}

/// Validates a parsed file and builds the matcher, collecting every problem.
fn compile(raw: RawFile) -> Result<EmergencyRules, Vec<RuleProblem>> {
    let mut p = Problems::default();
    if raw.version != 1 {
        p.push(
            "",
            format!("unsupported version {} (expected 1)", raw.version),
        );
    }

    // Phrases: normalised text -> roles. One automaton for everything keeps check() to a
    // single pass over the text.
    let mut phrase_ids: HashMap<String, usize> = HashMap::new();
    let mut phrases: Vec<String> = Vec::new();
    let mut roles: Vec<Vec<Role>> = Vec::new();
    let mut add = |what: &str, phrase: &str, role: Role, p: &mut Problems| {
        let n = normalize(phrase).into_owned();
        if n.is_empty() {
            p.push(what, "empty phrase");
            return;
        }
        let id = *phrase_ids.entry(n.clone()).or_insert_with(|| {
            phrases.push(n);
            roles.push(Vec::new());
            roles.len() - 1
        });
        if let Some(r) = roles.get_mut(id) {
            r.push(role);
        }
    };

    // Services.
    let mut services = Vec::new();
    let mut numbers = HashSet::new();
    let mut all_digits = HashSet::new();
    for s in &raw.service {
        let label = format!("service \"{}\"", s.number);
        if s.number.is_empty() || !s.number.chars().all(|c| c.is_ascii_digit()) {
            p.push(&label, "number must be non-empty ASCII digits");
        }
        if !numbers.insert(s.number.clone()) {
            p.push(&label, "declared twice");
        }
        if s.reason.trim().is_empty() {
            p.push(&label, "reason is empty");
        }
        let _ = &s.name; // documentation only
        let mut digits = Vec::new();
        for d in &s.digits {
            let n = normalize(d).into_owned();
            if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit() || c == '*') {
                p.push(&label, format!("digits {d:?} must be digits or *"));
            } else if !all_digits.insert(n.clone()) {
                p.push(
                    &label,
                    format!("digits {d:?} already map to another service"),
                );
            } else {
                digits.push(n);
            }
        }
        services.push(Service {
            number: s.number.clone(),
            reason: s.reason.clone(),
            digits,
        });
    }
    if services.is_empty() {
        p.push("", "no [[service]] declared");
    }

    for m in &raw.masks.phrases {
        add("masks", m, Role::Mask, &mut p);
    }

    // Contexts: names first so `unless` may refer forward.
    let mut ctx_index: HashMap<&str, usize> = HashMap::new();
    for (i, c) in raw.context.iter().enumerate() {
        if c.name.trim().is_empty() {
            p.push(format!("context #{}", i + 1), "name is empty");
        }
        if ctx_index.insert(c.name.as_str(), i).is_some() {
            p.push(format!("context \"{}\"", c.name), "declared twice");
        }
    }
    let mut contexts = Vec::new();
    for (i, c) in raw.context.iter().enumerate() {
        let label = format!("context \"{}\"", c.name);
        // `like` copies another context's words so one list can serve two scopes.
        let base = match &c.like {
            Some(other) => match ctx_index
                .get(other.as_str())
                .and_then(|&j| raw.context.get(j))
            {
                Some(o) if o.like.is_none() => Some(o),
                Some(_) => {
                    p.push(
                        &label,
                        format!("like {other:?} must name a context without like"),
                    );
                    None
                }
                None => {
                    p.push(&label, format!("like refers to unknown context {other:?}"));
                    None
                }
            },
            None => None,
        };
        let cue_list = c.cues.iter().chain(base.iter().flat_map(|b| b.cues.iter()));
        let except_list = c
            .except
            .iter()
            .chain(base.iter().flat_map(|b| b.except.iter()));
        if c.cues.is_empty() && c.like.is_none() {
            p.push(&label, "cues is empty");
        }
        if c.window > 0 && c.position == Position::Any {
            p.push(&label, "window needs position = \"before\" or \"after\"");
        }
        if !c.unless.is_empty() && c.effect != Effect::Suppress {
            p.push(&label, "unless only makes sense with effect = \"suppress\"");
        }
        for cue in cue_list {
            add(&label, cue, Role::Cue(i), &mut p);
        }
        for e in except_list {
            add(&label, e, Role::Except(i), &mut p);
        }
        let mut unless = Vec::new();
        for u in &c.unless {
            match ctx_index.get(u.as_str()) {
                Some(&j) if raw.context.get(j).is_some_and(|x| x.effect == Effect::Cue) => {
                    unless.push(j)
                }
                Some(_) => p.push(
                    &label,
                    format!("unless {u:?} must be an effect = \"cue\" context"),
                ),
                None => p.push(&label, format!("unless refers to unknown context {u:?}")),
            }
        }
        contexts.push(Context {
            name: c.name.clone(),
            scope: c.scope,
            position: c.position,
            window: c.window,
            unless,
        });
    }

    let resolve = |label: &str, list: &[String], want: Option<Effect>, p: &mut Problems| {
        let mut out = Vec::new();
        for name in list {
            match ctx_index.get(name.as_str()) {
                Some(&j) => {
                    let effect = raw.context.get(j).map(|c| c.effect);
                    match want {
                        Some(w) if effect != Some(w) => p.push(
                            label,
                            format!("context {name:?} has the wrong effect for this list"),
                        ),
                        _ => out.push(j),
                    }
                }
                None => p.push(label, format!("unknown context {name:?}")),
            }
        }
        out
    };
    let default_suppress = resolve(
        "[defaults]",
        &raw.defaults.suppress,
        Some(Effect::Suppress),
        &mut p,
    );

    let mut rules = Vec::new();
    let mut rule_names = HashSet::new();
    for (i, r) in raw.rule.iter().enumerate() {
        let label = if r.name.trim().is_empty() {
            format!("rule #{}", i + 1)
        } else {
            format!("rule \"{}\"", r.name)
        };
        if r.name.trim().is_empty() {
            p.push(&label, "name is empty");
        } else if !rule_names.insert(r.name.clone()) {
            p.push(&label, "name used twice");
        }
        let service = services.iter().find(|s| s.number == r.number);
        if service.is_none() {
            p.push(
                &label,
                format!("number {:?} is not a declared [[service]]", r.number),
            );
        }
        if r.triggers.is_empty() {
            p.push(&label, "triggers is empty");
        }
        for t in &r.triggers {
            add(&label, t, Role::Trigger(i), &mut p);
        }
        let reason = match &r.reason {
            Some(x) if x.trim().is_empty() => {
                p.push(
                    &label,
                    "reason is empty (omit it to use the service's reason)",
                );
                String::new()
            }
            Some(x) => x.clone(),
            None => service.map(|s| s.reason.clone()).unwrap_or_default(),
        };
        let require = resolve(&label, &r.require, None, &mut p);
        let require_also = resolve(&label, &r.require_also, None, &mut p);
        let suppress = match &r.suppress {
            Some(list) => resolve(&label, list, Some(Effect::Suppress), &mut p),
            None => default_suppress.clone(),
        };
        rules.push(Rule {
            name: r.name.clone(),
            number: r.number.clone(),
            reason,
            priority: r.priority,
            require,
            require_also,
            suppress,
        });
    }
    if rules.is_empty() {
        // An empty set would silently stop every redirect; refuse it so reload keeps the old.
        p.push("", "no [[rule]] declared");
    }

    if !p.0.is_empty() {
        return Err(p.0);
    }
    let trigger_phrases: Vec<&String> = phrases
        .iter()
        .zip(&roles)
        .filter(|(_, r)| r.iter().any(|x| matches!(x, Role::Trigger(_))))
        .map(|(p, _)| p)
        .collect();
    let matcher = build_matcher(&phrases)?;
    let trigger_matcher = build_matcher(&trigger_phrases)?;
    Ok(EmergencyRules {
        trigger_matcher,
        matcher,
        roles,
        services,
        contexts,
        rules,
    })
}

/// Builds an overlapping matcher (every phrase at every position), DFA when it fits.
fn build_matcher<P: AsRef<[u8]>>(phrases: &[P]) -> Result<AhoCorasick, Vec<RuleProblem>> {
    AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::DFA))
        .build(phrases)
        .or_else(|_| {
            // A DFA can exceed its size limit with a huge file; the NFA is slower but fine.
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(phrases)
        })
        .map_err(|e| {
            vec![RuleProblem {
                rule: String::new(),
                message: format!("cannot build the matcher: {e}"),
            }]
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> EmergencyRules {
        match EmergencyRules::from_toml(BUILTIN_TOML) {
            Ok(r) => r,
            Err(e) => panic!("builtin rules must load: {e}"),
        }
    }

    /// Data-driven helper: each case is (text, expected number or "" for no redirect).
    fn check(cases: &[(&str, &str)]) {
        let r = rules();
        let mut failures = Vec::new();
        for &(text, want) in cases {
            let got = r.check(text);
            let got_num = got.as_ref().map(|g| g.number.clone()).unwrap_or_default();
            if got_num != want {
                failures.push(format!(
                    "{text}\n    want {want:?} got {got_num:?} via {:?}",
                    got.as_ref().map(|g| &g.rule)
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn builtin_loads() {
        let r = EmergencyRules::builtin();
        assert!(r.rule_count() >= 10);
    }

    #[test]
    fn fire_and_rescue() {
        check(&[
            ("我家着火了", "119"),
            ("厨 房 着 火 了", "119"),
            ("楼道里的电线烧着了，噼里啪啦响", "119"),
            ("小区垃圾桶起火，火苗窜得老高", "119"),
            ("邻居家窗户一直往外冒浓烟", "119"),
            ("屋里全是烟，看不清东西", "119"),
            ("天然气泄露了，味道很大", "119"),
            ("家里有股很重的煤气味，我把阀门关了还是有", "119"),
            ("电梯停在两层中间，我们三个人被困", "119"),
            ("有个小孩手卡在旋转门里拔不出来", "119"),
            ("仓库起火，有人被困在里面", "119"),
            ("快派消防车来，车库冒火了", "119"),
            ("隔壁房子塌了，下面压着人", "119"),
            ("以前这里着过火，现在又烧起来了", "119"),
            ("是不是着火了？楼道里一股烧焦味", "119"),
            ("火锅店着火了", "119"),
        ]);
    }

    #[test]
    fn medical() {
        check(&[
            ("我奶奶突然晕倒了", "120"),
            ("孩子从床上掉下来了，一直哭，头上起了个包，现在抽搐", "120"),
            ("有人在地铁站倒地不起，口吐白沫", "120"),
            ("我老婆要生了，羊水破了", "120"),
            ("爸爸喝了半瓶农药", "120"),
            ("我刚被开水烫伤了，皮都掉了，疼得受不了", "120"),
            ("外卖员在路边晕倒了，叫不醒", "120"),
            ("老人摔倒了起不来，快来人", "120"),
            ("我同事突然说胸痛，满头大汗", "120"),
        ]);
    }

    #[test]
    fn police() {
        check(&[
            ("有人拿刀在小区门口砍人", "110"),
            ("两个人正在打架，已经见血了", "110"),
            ("有陌生人一直在撬我家的门", "110"),
            ("我被人打了，他还在外面堵着我", "110"),
            ("有个人站在天台上说要跳楼", "110"),
            ("我儿子在公园走丢了", "110"),
            ("我妈有精神病，今天早上出门到现在还没回家", "110"),
            ("有人打电话说是公安局的，让我把钱转到安全账户", "110"),
            ("我刚被骗了五千块钱，骗子还在跟我聊天", "110"),
            ("救命，有人闯进我家了，拿着棍子", "110"),
        ]);
    }

    #[test]
    fn traffic() {
        check(&[
            ("中山路上出车祸了，两辆车撞在一起", "122"),
            ("一辆大货车侧翻在路中间", "122"),
            ("我被一辆电动车撞倒了，对方跑了", "122"),
            ("前面车追尾了，司机受伤了在流血", "122"),
            ("一辆出租车把骑车的人撞了，人躺在地上", "122"),
            ("高速上汽车着火了", "119"),
        ]);
    }

    #[test]
    fn routine_traps() {
        check(&[
            ("我家没有着火，只是邻居烧纸烟有点大", ""),
            ("上个月我家厨房着火了，保险公司不赔", ""),
            ("以前这栋楼失过火，想问问有没有整改", ""),
            ("请问119火警电话打不通怎么办理投诉", ""),
            ("120救护车出车费用怎么收", ""),
            ("楼道里堆放杂物，存在火灾隐患", ""),
            ("小区消防车通道长期被占用", ""),
            ("饭店油烟太大，每天都冒黑烟", ""),
            ("楼下烧烤店天天晚上冒烟，熏得睡不着", ""),
            ("火车站的出租车拒载", ""),
            ("商场门口喇叭一直喊跳楼价", ""),
            ("我被这个问题困扰很久了", ""),
            ("孩子发烧了去哪个医院", ""),
            ("希望有关部门跟踪处理此事", ""),
            ("地下车库出口道闸坏了，车出不去", ""),
            ("我家的猫走丢了，能帮忙找吗", ""),
            ("去年我被骗了一万块钱，立案了没进展", ""),
            ("我想举报一个诈骗电话号码", ""),
            ("建议在路口加装护栏，这里容易发生车祸", ""),
            ("交通事故责任认定书什么时候能出", ""),
            ("车停在小区里被刮了，想调监控", ""),
            ("我去年中风了，现在申请残疾补贴", ""),
            ("社区组织消防演练，讲解火灾逃生知识", ""),
            ("燃气公司入户安检时说我家有漏气隐患，要收费整改", ""),
            ("孩子睡着了以后楼上还在蹦", ""),
            ("快递车总是停在消防通道", ""),
            ("物业电话打不通，联系不上管家", ""),
            ("表扬消防员及时扑灭大火", ""),
            ("请尽快维修小区路灯", ""),
            // Past events whose trigger is itself an urgency cue must stay suppressed.
            ("去年我被困在电梯里两个小时，想投诉物业", ""),
            ("我爸前年昏迷住院过，现在想办理慢病医保", ""),
            ("小区的电动自行车乱停乱放，堵住了出口", ""),
        ]);
    }

    /// A second batch written after the first rules passed: phrasings the rules were not
    /// written against (kept separate from the held-out file, which is never tuned on).
    #[test]
    fn more_phrasings() {
        check(&[
            ("家里插座冒火花了，还有烧焦的味道", "119"),
            ("邻居家门缝往外冒烟，屋里好像有人", "119"),
            ("我在地下室闻到一股很冲的煤气味", "119"),
            ("锅里的油着火了怎么办，火越来越大", "119"),
            ("老人一个人在家，喊不应，门也打不开，里面有煤气味", "119"),
            ("有人晕倒在电梯里", "120"),
            ("我爸在浴室摔倒了，头磕破了，血一直流", "120"),
            ("我喘不上气，胸口闷得厉害", "120"),
            ("宝宝吃东西噎着了，脸都憋紫了", "120"),
            ("有个大爷在公园突然倒下了", "120"),
            ("我老婆吃了一整板安眠药", "120"),
            ("路上有人被车撞飞了", "122"),
            ("前面有辆车逆行撞了好几辆车", "122"),
            ("有个醉汉在拿酒瓶子打人", "110"),
            ("外面有人在喊救命", "110"),
            ("我前男友拿刀威胁我", "110"),
            ("我女儿被人骗到外地，现在联系不上", "110"),
            ("刚刚有人冒充我儿子让我打钱", "110"),
            ("在银行，有人电话里让我转钱到一个账户", "110"),
            ("我想问一下煤气泄漏报警器哪里可以买", ""),
            ("建议小区安装燃气泄漏报警装置", ""),
            ("楼下饭店的炉子冒烟，呛得我们开不了窗", ""),
            ("去年冬天有人在小区门口打架，到现在也没处理结果", ""),
            ("我们村里的老人走失了好几个月，派出所一直没有消息", ""),
            ("小孩子在小区里玩火，家长不管", ""),
            ("厂房着火以后的赔偿问题怎么解决", ""),
            ("电梯困人后物业多久到场有规定吗", ""),
            ("每次下雨地下通道都会被淹，车被困在里面", ""),
            ("我想投诉救护车收费太贵", ""),
            ("有人在小区里烧纸钱，烟很大", ""),
            ("楼下的饭店冒黑烟好几年了", ""),
            ("昨晚隔壁吵架砸东西，吵得睡不着", ""),
            ("我的手机被偷了，不知道去哪报案", ""),
            ("反映有人冒充公安发诈骗短信，请相关部门处理", ""),
        ]);
    }

    /// Invisible characters a chat app's copy carries, and an emoji typed inside a word, no
    /// longer hide a trigger (until 2026-12-07 `我家着\u{200C}火了` was no emergency, and the
    /// other forms were only suspected by the second opinion).
    #[test]
    fn invisible_characters_and_emoji_inside_a_word_do_not_hide_it() {
        let rules = EmergencyRules::builtin();
        for (text, number) in [
            ("我家着\u{200C}火了", "119"),
            ("我家着\u{200B}火了，快来人", "119"),
            ("我家着🔥火了，快来人", "119"),
            ("我家着\u{2764}\u{FE0F}火了，快来人", "119"),
            ("厨房着\u{00AD}火了", "119"),
            ("我爸昏\u{2060}迷了", "120"),
            ("\u{FEFF}有人\u{202E}持刀\u{200D}砍人", "110"),
        ] {
            assert_eq!(
                rules.check(text).map(|r| r.number).as_deref(),
                Some(number),
                "{text:?}"
            );
        }
        assert_eq!(normalize("着\u{200B}火🔥了"), "着火了");
        assert_eq!(normalize_text("着火了 🔥🔥 快来人"), "着火了,快来人");
        // A numbered list keeps its numbers; plain text is still borrowed.
        assert_eq!(normalize("❶路灯坏了❷井盖丢了"), "❶路灯坏了❷井盖丢了");
        assert!(matches!(normalize("路灯坏了"), Cow::Borrowed(_)));
        // Routine words stay routine with an emoji in them.
        assert_eq!(rules.check("小区路灯🔦坏了一个月"), None);
    }

    /// Spaces as clause separators (phones, WeChat): the words of one clause no longer reach
    /// into the next, while spaced-out single characters still read as one word.
    #[test]
    fn spaces_between_clauses() {
        assert_eq!(
            normalize_text("着火了 烟好大  快来人"),
            "着火了,烟好大,快来人"
        );
        assert_eq!(normalize_text("厨 房 着 火 了"), "厨房着火了");
        assert_eq!(normalize_text("我 家 着火了 快来"), "我家着火了快来");
        assert_eq!(normalize_text("没有 着火 邻居在烧纸"), "没有着火邻居在烧纸");
        assert_eq!(
            normalize_text("人民路 28号 着火了 119"),
            "人民路28号,着火了119"
        );
        assert_eq!(normalize_text("着火了\u{3000}快来人吧"), "着火了,快来人吧");
        assert_eq!(normalize_text("着火了！ 快来"), "着火了！快来");
        assert_eq!(normalize_text("着火了\n 快来"), "着火了\n快来");
        assert_eq!(normalize_text("着火了 快来 人员被困"), "着火了快来人员被困");
        assert_eq!(normalize_text("着火了 快来"), "着火了快来");
        assert_eq!(normalize_text("ＡＢ着火了 烟好大"), "ab着火了,烟好大");
        check(&[
            ("着火了 烟好大 快来人", "119"),
            ("以前这里着过火 现在又烧起来了", "119"),
            ("我在人民路 28号 着火了", "119"),
            ("孩子 喝了 农药", "120"),
            ("没有 着火 就是楼下烧纸的烟飘进来了", ""),
            ("上个月我家着火了 现在想问一下保险赔偿找哪个部门", ""),
            ("前年仓库起过火 现在要重建 审批找谁", ""),
            ("去年我被车撞了 现在腿还疼 想问残疾鉴定", ""),
        ]);
    }

    /// The one-pass `normalize_text` against a plain statement of the rule (a space run is a
    /// break when the characters next to it are CJK and the words on both sides have 3+
    /// characters), on many small texts built from a tricky alphabet.
    #[test]
    fn space_breaks_match_the_rule() {
        fn reference(text: &str) -> String {
            let chars: Vec<char> = text.chars().collect();
            let mut out = String::new();
            let mut i = 0;
            while let Some(&c) = chars.get(i) {
                if !is_inline_space(c) {
                    push_normalized(&mut out, c);
                    i += 1;
                    continue;
                }
                let start = i;
                while chars.get(i).is_some_and(|&x| is_inline_space(x)) {
                    i += 1;
                }
                let word = |c: &char| c.is_alphanumeric();
                let cjk = |c: Option<&char>| c.is_some_and(|c| word(c) && !c.is_ascii());
                let before = start.checked_sub(1).and_then(|j| chars.get(j));
                let left = chars[..start].iter().rev().take_while(|c| word(c)).count();
                let right = chars[i..].iter().take_while(|c| word(c)).count();
                if cjk(before) && cjk(chars.get(i)) && left >= 3 && right >= 3 {
                    out.push(',');
                }
            }
            out
        }
        let alphabet = [
            '着', '火', '了', ' ', ' ', '\u{3000}', 'a', 'Ｂ', '1', '，', '\n',
        ];
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            let mut t = String::new();
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            for _ in 0..(seed >> 60) + 4 {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                t.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            assert_eq!(normalize_text(&t), reference(&t), "{t:?}");
        }
    }

    /// Pattern 1 of the dev2 review: duration words are not urgency, 现在想问 is the caller's
    /// question, an event named as a topic (车祸的事) is not a report, bare 救命 is a cry.
    #[test]
    fn duration_topic_and_help_cries() {
        check(&[
            ("救命", "110"),
            ("救命啊 快来", "110"),
            ("快来人 救命", "110"),
            ("救命 有人掉水里了", "110"),
            ("着火了 现在火还很大", "119"),
            ("火扑灭了 又烧起来了", "119"),
            ("孩子发高烧三个小时了 现在抽搐", "120"),
            ("被困两个小时了 电梯还是不动", "119"),
            ("我妈出门到现在还没回家 她有老年痴呆", "110"),
            ("这可是老人的救命钱 被骗走了", ""),
            ("这个政策是我们小店的救命稻草", ""),
            ("医院买不到救命药", ""),
            ("他是我的救命恩人 想给他送锦旗", ""),
            ("去年电梯困人 到现在物业也没修", ""),
            ("那个交通事故的事 想问一下进展", ""),
            ("煤气泄漏的事情燃气公司一直不处理", ""),
            ("上礼拜家里着火了 保险还没赔", ""),
            ("上回楼里着火 消防通道还是堵着", ""),
            ("我现在想问一下昨天邻居打架的事", ""),
            ("就是想说那个着火的事情早就过去了现在就是想问赔偿", ""),
        ]);
    }

    /// Pattern 2 of the dev2 review: a suppressing word found inside an innocent word
    /// (动不动 in 一动不动, 杆 in 栏杆, 过去 in 晕过去) or a mask eating the fire word next to it
    /// (引发火灾, 起火爆炸, 楼上火很大).
    #[test]
    fn words_inside_words() {
        check(&[
            ("路边有个人躺着一动不动 叫他没反应", "120"),
            ("有个小孩头卡在栏杆里拔不出来", "119"),
            ("老人脚卡在护栏缝里拔不出来", "119"),
            ("楼上火很大 快来", "119"),
            ("车着火爆炸了", "119"),
            ("电动车充电引发火灾", "119"),
            ("我好害怕有人在撬我家门", "110"),
            ("废弃多年的厂房起火了", "119"),
            ("我一到家就闻到很大的煤气味", "119"),
            ("小区里有人被车撞倒了", "122"),
            ("医院住院部起火了", "119"),
            ("火扑灭不了 越烧越大", "119"),
            ("没扑灭火还在烧", "119"),
            ("救护车还没来人快不行了", "120"),
            ("孩子不见了 不知道在哪里", "110"),
            ("工地保温材料着火了", "119"),
            ("家里没人着火了", "119"),
            ("别打了 别打我 救命", "110"),
            ("浓烟熏得睁不开眼 楼道里全是烟", "119"),
            ("货车停在路中间 被后面的车追尾了 司机流血了", "122"),
            ("孩子动不动就和同学吵架 老师也不管", ""),
            ("燃气灶打不着火", ""),
            ("车打不着火了 怎么办", ""),
            ("打火机点不着火 是不是质量问题", ""),
            ("小区道闸不抬杆 车出不去", ""),
            ("车停在小区里被刮了，想调监控", ""),
            ("楼下饭店冒黑烟好几年了", ""),
            ("这事已经过去了三个月 煤气泄漏的赔偿还没到", ""),
        ]);
    }

    /// Pattern 3 of the dev2 review: violence in any word order — a weapon in a hand, a passive
    /// 被砍 after a person, 捅了一刀, threats to kill — and the weapon words that are tools.
    #[test]
    fn violence_in_any_word_order() {
        check(&[
            ("他拿刀捅了我邻居", "110"),
            ("有个男的举着斧头在楼道里", "110"),
            ("楼下两个人抄起钢管要打起来", "110"),
            ("前夫带着一把水果刀来我家门口", "110"),
            ("醉汉掏出匕首", "110"),
            ("有个男的拎着一桶汽油在小区门口转", "110"),
            ("有人被砍了", "110"),
            ("我同事被刺了一刀", "110"),
            ("有人被扎了 流了好多血", "110"),
            ("他喝多了说要弄死你们全家", "110"),
            ("他掐我脖子", "110"),
            ("小区的树被砍了 谁批准的", ""),
            ("公司预算被砍了一半", ""),
            ("我在网上被砍价了", ""),
            ("刀削面太咸了", ""),
            ("家里菜刀坏了 要换一把", ""),
            ("我想买一把菜刀", ""),
            ("我拿刀切菜切到手了 血止不住", "120"),
            ("邻居装修拿锤子砸墙 太吵了", ""),
            ("有人拿斧头砍树", ""),
            ("拿着铁锹在挖沟", ""),
            ("小孩拿着水枪到处喷", ""),
            ("这个理发师拿剪刀把我头发剪坏了", ""),
            ("拿着刀叉吃西餐", ""),
            ("家里有老鼠 怎么弄死", ""),
            ("下水道堵了 要捅一下", ""),
            ("打死我也不会再去那家店了", ""),
        ]);
    }

    /// Pattern 4 of the dev2 review: colloquial abduction and groping.
    #[test]
    fn abduction_and_groping() {
        check(&[
            ("我孩子在商场被人抱走了", "110"),
            ("有个男的把小孩拖上车开走了", "110"),
            ("有人把一个姑娘强行拉上车", "110"),
            ("有人在地铁上摸我", "110"),
            ("公交车上有个咸猪手 还在车上", "110"),
            ("我的快递被人抱走了", ""),
            ("我家的猫被人抱走了", ""),
            ("我要投诉按摩店技师乱摸我", ""),
            ("上个月在地铁上有人摸我 想问能不能查监控", ""),
        ]);
    }

    /// Pattern 5 of the dev2 review: falls, stroke signs, unconsciousness, bites, self-harm
    /// done; vehicles into water, 出事故, crashes with people trapped; and what falls when
    /// nobody does.
    #[test]
    fn medical_and_traffic_gaps() {
        check(&[
            ("老人从楼梯上摔下去了 头在流血", "120"),
            ("工人从脚手架上跌下来了", "120"),
            ("广告牌掉下来砸到人了", "120"),
            ("我妈突然嘴歪了 说话不清楚", "120"),
            ("我爸刚才还好好的 现在说不出话了", "120"),
            ("老人神志不清 一直说胡话", "120"),
            ("我家孩子吃了毒蘑菇", "120"),
            ("爬山的时候同伴被毒蛇咬了", "120"),
            ("有个人倒在路边一动不动", "120"),
            ("我朋友说他割腕了", "120"),
            ("他说他想割腕", "110"),
            ("一辆面包车冲下桥了", "122"),
            ("我骑电动车被小轿车刮倒了", "122"),
            ("前面出事故了 两辆车都翻了 司机卡在里面", "122"),
            ("出车祸了 车着火了 人困在里面", "119"),
            ("工地出事故了 有人被压住了", "119"),
            ("暴雨 车被困在水里 人在车里出不来", "119"),
            ("外墙瓷砖掉下来了", ""),
            ("天花板掉下来一块", ""),
            ("手机从阳台掉下去了", ""),
            ("小区外墙的瓷砖掉下来了 差点砸到人", ""),
            ("大风把树刮倒了 横在马路上", ""),
            ("领导开会净说胡话", ""),
            ("同事对我翻白眼", ""),
            ("肩周炎手抬不起来 哪个医院好", ""),
            ("孩子两岁了还不会说话 去哪看", ""),
            ("家里的猫一动不动了", ""),
            ("小区里发现一条毒蛇", ""),
        ]);
    }

    /// Pattern 6 of the dev2 review: figures of speech (气得我要爆炸了, 简直是抢劫, 让人窒息,
    /// 快被气出心脏病) and bare 快, which is urgency only before a call for help or a failing body.
    #[test]
    fn figures_of_speech() {
        check(&[
            ("物业费涨得我快气死了", ""),
            ("加班忙得快不行了", ""),
            ("这房租简直是抢劫", ""),
            ("收费跟抢劫一样", ""),
            ("这个消息让人窒息", ""),
            ("他的操作令人窒息", ""),
            ("气得我头晕", ""),
            ("笑得我肚子疼", ""),
            ("我快饿死了", ""),
            ("股市一开盘就炸了 气得我心脏病都要犯了", ""),
            ("他气得拿刀砍人", "110"),
            ("他跟我打起来了", "110"),
            ("好像有人在撬门", "110"),
            ("我快喘不上气了", "120"),
            ("快来 我奶奶晕倒了", "120"),
            ("头晕得快站不住了", "120"),
            ("老人摔倒了 快点来人", "120"),
            ("孩子窒息了 脸都紫了", "120"),
            ("老人被气得心脏病犯了 现在胸口疼得厉害", "120"),
            ("楼下饭店爆炸了 玻璃都碎了", "119"),
        ]);
    }

    /// Pattern 7 of the dev2 review: a declined service (不用叫救护车), an emergency over
    /// (已经没事了), dialect past (上礼拜), a tree blown down (刮倒 without a vehicle).
    #[test]
    fn negation_and_resolved() {
        check(&[
            ("不用叫救护车 老人自己能走", ""),
            ("不需要消防车 火已经灭了", ""),
            ("用不着叫120 孩子已经退烧了", ""),
            ("我不需要报警 就是想问户籍", ""),
            ("老人刚才晕倒了 现在已经没事了 想问社区医院几点开门", ""),
            ("两辆车追尾了 人都没事", ""),
            ("上个礼拜小区门口有人打架 到现在也没人管", ""),
            ("树被大风刮倒了 压在路边", ""),
            ("不用管我 快救我孩子 他没有呼吸了", "120"),
            ("不用问了快叫救护车", "120"),
            ("刚才以为没事了 现在又抽搐了", "120"),
            ("上个礼拜被打了一次 今天他又拿刀来了", "110"),
            ("大风刮倒了广告牌 砸到一个路人", "120"),
            ("一辆货车把骑车的老人刮倒了", "122"),
        ]);
    }

    /// Two dev2 misses outside the review's patterns: dialect 着了 next to a cylinder or a stove
    /// with 火窜, and damaged gas piping; and the gas complaints that must stay routine.
    #[test]
    fn fire_and_gas_gaps() {
        check(&[
            ("灶台着了 火窜到油烟机上了", "119"),
            ("炉子着了", "119"),
            ("煤气罐漏了", "119"),
            ("天然气管子破了 味道很大", "119"),
            ("施工队把燃气管挖断了", "119"),
            ("燃气停了 什么时候恢复", ""),
            ("燃气断了两天了", ""),
            ("燃气管道施工把小区路面挖破了 一直没修", ""),
            ("燃气表坏了 不走字", ""),
            ("我家的燃气热水器漏了 漏水", ""),
            ("燃气灶的玻璃面板裂了", ""),
        ]);
    }

    /// Phrasings written after the dev2 fixes to see whether they generalise (not from any
    /// corpus); the misses they showed are fixed as rules, and the routine lines around them
    /// keep the fixes honest.
    #[test]
    fn phrasings_after_dev2() {
        check(&[
            ("我儿子在学校门口被人捅了", "110"),
            ("那人手里有把刀", "110"),
            ("一个女的被几个人拖进了车里", "110"),
            ("我女儿被陌生人带走了", "110"),
            ("地铁上有个男的一直在蹭我", "110"),
            ("孩子喝了洗衣液", "120"),
            ("我妈吃了一整瓶降压药", "120"),
            ("孩子被开水烫了 皮都掉了", "120"),
            ("有个孩子掉进冰窟窿里了", "110"),
            ("孩子高烧不退 抽搐了", "120"),
            ("我妈出门两天了还没回来 她有老年痴呆 电话打不通", "110"),
            ("我妈昨天出门到现在还没回来 她有老年痴呆", "110"),
            ("有人在我家门口放火", "119"),
            ("去年我爸走失过一次 后来找到了", ""),
            ("小区绿化带的树被人砍了", ""),
            ("楼下商户拿着锤子敲了一下午", ""),
            ("小区门口的菜市场有人卖管制刀具 希望管一管", ""),
            ("有人在小区门口摆摊卖菜刀", ""),
            ("物业拿着钥匙随便进我家 要投诉", ""),
            ("快递员把我的快递扔在门口被人拿走了", ""),
            ("公园的健身器材坏了 小孩容易摔下来", ""),
            ("小区健身器材的螺丝掉下来了", ""),
            ("我家孩子一到晚上就哭", ""),
            ("我妈每天吃降压药 血压还是高", ""),
            ("网店卖家不退款", ""),
        ]);
    }

    #[test]
    fn hearsay_fiction_and_exasperation() {
        check(&[
            // Hearsay, news and fiction in the sentence: not reported by a witness.
            ("听别人说菜市场那边昨晚失火了 损失大不大", ""),
            ("网上说高架桥上发生了连环撞 是不是真的", ""),
            ("群里有人说学校门口有人持刀 想核实一下", ""),
            ("我们在排练一个剧本 有一段是邻居家着火了 想请消防员指导", ""),
            ("孩子写作文写到有人溺水 问我怎么救", ""),
            // ...unless it is going on now.
            ("听说隔壁着火了 现在还在烧 快来人", "119"),
            ("我听到楼下有人喊救命", "110"),
            // ...or the caller is in it: trapped where they are.
            (
                "朋友圈说的是真的 我们这栋楼真的着火了 我在12楼下不去",
                "119",
            ),
            // Exasperation: a crime word followed by 吧 / 算了.
            ("这物业费涨成这样 是抢劫吧", ""),
            ("打死我算了 这个系统怎么都登录不上", ""),
            ("有人抢劫 快来", "110"),
        ]);
    }

    #[test]
    fn resolved_and_paperwork() {
        check(&[
            ("锅里着火了 我用湿毛巾盖灭了 墙熏黑了想问谁来修", ""),
            (
                "楼道里闻到煤气味 燃气师傅上门查了没有泄漏 就是想问问原因",
                "",
            ),
            ("昨天那个火警是误报 烟感太灵敏", ""),
            ("奶奶刚才晕倒了一下 已经醒了 想问挂哪个科", ""),
            ("仓库上周失火 现在要开火灾证明 去哪里开", ""),
            ("前天晚上车库着火 烧了我的车 谁来赔", ""),
            // Still burning or flared up again stays an emergency.
            ("火灭了又烧起来了 快来", "119"),
            ("停电了 灯全灭了 楼道里着火了", "119"),
            ("厨房着火了 灭不了", "119"),
            ("闻到很重的煤气味 现在头很晕", "119"),
            // "Resolved" by someone else, contradicted in the next clause: still going on (the
            // leak word itself is negated, so the dizziness answers: 120 is right too).
            ("燃气公司说没漏 可是现在味道越来越大 我头很晕", "120"),
        ]);
    }

    #[test]
    fn round2_fire_chemical_and_trapped() {
        check(&[
            ("厂里盐酸罐泄漏了 有股刺鼻的味道 工人都跑出来了", "119"),
            ("同学做实验把烧碱洒了 溅到眼睛里", "119"),
            ("化工厂排放的气味很刺鼻 我们要投诉", ""),
            ("请问硫酸在哪里可以买到 做实验用", ""),
            ("老人被锁在家里 屋里有烟冒出来", "119"),
            ("钥匙忘带了 被锁在门外 能不能找个开锁的", ""),
            ("狗被锁在阳台上一直叫 扰民", ""),
            ("家里天然气漏了 一股臭鸡蛋味", "119"),
            ("煤气味很重 家里老人头晕", "119"),
        ]);
    }

    #[test]
    fn round2_medical() {
        check(&[
            ("我爸说胸口像压了块石头 喘不动", "120"),
            ("老公胸口疼 满头大汗 坐都坐不住", "120"),
            ("胸口疼了好几年了 想挂个专家号", ""),
            ("我们吃了山上摘的蘑菇 现在手麻 还一直吐", "120"),
            ("超市卖的蘑菇不新鲜 吃了拉肚子 要投诉商家", ""),
            ("我吃了蘑菇 有点不舒服 想问问是不是过敏", ""),
            ("孩子在公园被黄蜂蜇了 脸肿了 嘴唇发麻 呼吸有点急", "120"),
            ("院子里有个马蜂窝 怕被马蜂蛰 找谁来摘", ""),
            ("楼下有个大妈倒地上了 不知道还有没有气", "120"),
            ("同事肚子痛得打滚", "120"),
            ("小孩从三楼阳台上掉下去了", "120"),
            ("楼上窗户掉下来一块玻璃 没砸到人 找谁修", ""),
            ("外婆舌头发硬 说话突然不利索", "120"),
        ]);
    }

    #[test]
    fn round2_police() {
        check(&[
            ("一个女孩掉进了公园的湖里 没浮上来", "110"),
            ("钥匙掉到水坑里了 捞不上来", ""),
            ("刚刚有人骑电动车把我手机抢走了", "110"),
            ("他们把我的金项链一把拽走 往巷子里跑了", "110"),
            ("弟弟抢走了姐姐的手机在玩游戏 两个人吵架", ""),
            ("群里抢了个红包", ""),
            ("两个男的把一个女人塞进车里 她一直在喊", "110"),
            ("我把孩子抱上车 送他去学校", ""),
            ("妈妈把宝宝抱上车 宝宝一直在哭", ""),
            ("从地铁站出来就有个男的一路跟着我 我现在不敢回家", "110"),
            ("推销员一直跟着我 甩都甩不掉 太烦了", ""),
            ("离婚后孩子现在跟着我住 抚养费怎么要", ""),
            ("我现在在摸索新的社保系统 好难用", ""),
            ("有个陌生男的跟了我好几条街", "110"),
            ("地铁上有个人一直在摸我前面姑娘的腿", "110"),
            ("我儿子放学被五六个人围殴", "110"),
            ("门被人砸了 他们现在还在门口 说要进来", "110"),
            ("网约车司机往山里开 我叫他停他不停", "110"),
            ("我听见客厅有声音 家里进了贼", "110"),
            ("佢揸住把刀话要斩人", "110"),
            ("有人现在在偷自行车 我正看着", "110"),
            ("我的自行车上周被偷了 去哪里报案", ""),
        ]);
    }

    #[test]
    fn round2_traffic() {
        check(&[
            ("快速路上有辆车逆行 好吓人", "122"),
            ("前面一辆面包车一直画龙 司机喝醉了开车", "122"),
            ("外卖电动车经常逆行 希望有关部门管管", ""),
            ("前面那段s形弯道现在没有路灯", ""),
            ("这个路口为什么不让左转 只能逆行掉头", ""),
            ("电动车倒在马路中间了 骑车的人没动", "122"),
        ]);
    }

    #[test]
    fn round2_rumours_and_more_gaps() {
        check(&[
            // Rumours being checked, cartoons and dreams.
            ("网上有人说火车站那边有人砍人 是谣言吗", ""),
            ("微博上说地铁站着火了 真的假的", ""),
            ("孩子做梦梦到家里着火了 一直哭", ""),
            ("网上说的那个地方现在还在烧 火好大", "119"),
            // Jumping into water, drugging, dragging away, impalement.
            ("有个女的刚从桥上跳进河里了", "110"),
            ("夏天孩子们喜欢跳进河里游泳 有没有人管管", ""),
            ("我朋友在酒吧被人下药了 现在站都站不稳", "110"),
            ("有个男的把一个学生拽进小树林了", "110"),
            ("他手被铁丝扎穿了 一直在流血", "120"),
            // Dangerous driving and lanes.
            ("有人在环线上飙车 好几辆 开得飞快", "122"),
            ("一辆小车在高速上倒车 后面车都在躲", "122"),
            ("大客车抛锚了 停在快车道上 车上都是人", "122"),
            ("小区里有人半夜飙车 声音很吵 每天都这样", ""),
            ("路边的指示牌被撞歪了 好久了没人修", ""),
        ]);
    }

    /// Found as six false redirects on a plain-traffic set of 300 routine lines
    /// (`emergency-routine.jsonl`), one class each. Building work named with a verb of violence:
    /// 还在打桩 is a pile driver at night, not 还在打. Fights, beatings and smashing stay 110.
    #[test]
    fn construction_words_are_not_violence() {
        check(&[
            ("小区旁边的工地晚上十一点还在打桩 噪音太大了", ""),
            ("工地半夜还在打地基 吵得没法睡", ""),
            ("隔壁店铺晚上十点还在打磨地板", ""),
            ("工地凌晨还在打混凝土 灯光照进屋里", ""),
            ("马路上还在打夯 噪音扰民", ""),
            ("楼上邻居晚上十点还在砸墙", ""),
            ("工人拿着钉枪在干活", ""),
            ("工地上两伙人还在打 已经见血了", "110"),
            ("工地上有人在打架", "110"),
            ("工地的人打起来了 拿钢管打人", "110"),
            ("楼下有人打孩子 还在打", "110"),
            ("他喝醉了在家砸东西 还在砸", "110"),
            ("他们在砸墙 说要砍死我", "110"),
            ("有人在砸我家门", "110"),
            ("打桩的时候把燃气管打破了 一股煤气味", "119"),
            ("打孔打到电线了 冒火花了", "119"),
            ("打桩机倒了 有人被压住了", "119"),
            ("工人打桩的时候被砸伤了", "120"),
        ]);
    }

    /// Alarm and emergency equipment named as a thing: a broken smoke alarm, a call button that
    /// does not respond, a buried hydrant are repairs. An alarm that sounds is still 119 unless
    /// the sentence says it is faulty, and smoke or fire seen is 119 whatever the alarm does;
    /// a person who does not respond is 120 even next to a button, and so is CPR.
    #[test]
    fn alarm_and_emergency_equipment() {
        check(&[
            (
                "我家楼道里的烟雾报警器最近半夜老是自己响，也没有烟，应该是坏了，请问该找谁更换？",
                "",
            ),
            ("烟感一直滴滴响 是不是没电了", ""),
            ("烟感老是半夜响 吵得睡不着", ""),
            ("火灾报警器坏了 一直误报", ""),
            ("燃气泄漏报警器坏了 老是响", ""),
            ("建议每家都装烟雾报警器", ""),
            ("小区的消防栓被埋在土里了，万一着火都找不到", ""),
            (
                "今天试了一下电梯里的紧急呼叫按钮，按了没反应（电梯本身运行正常），请督促物业检修。",
                "",
            ),
            ("电梯里的报警按钮按了没反应", ""),
            ("电梯呼救按钮坏了 没人修", ""),
            ("老人家里的一键呼救器按了没有反应 麻烦社区看看", ""),
            ("门禁刷卡没反应", ""),
            ("充电桩扫码没反应", ""),
            // Sounding, or smoke and fire seen.
            ("烟雾报警器响了 屋里全是烟", "119"),
            ("报警器响了 屋里全是烟", "119"),
            ("屋里全是烟雾报警器一直响", "119"),
            ("烟雾报警器响了", "119"),
            ("邻居家烟雾报警器一直在响 敲门没人应", "119"),
            ("烟感报警了 屋里有股焦味", "119"),
            ("烟感一直响 家里老人腿坏了走不了", "119"),
            ("烟雾报警器突然响了 没看到烟 但是门把手很烫", "119"),
            ("烟感坏了 一直乱响 可是厨房冒烟了", "119"),
            ("家里燃气报警器响了", "119"),
            ("燃气报警器响了 没有烟 但是味道很大", "119"),
            ("煤气泄漏报警器一直在叫", "119"),
            ("塌方了 两个工人被埋在下面", "119"),
            ("房子塌了 消防栓旁边有人被压住了", "119"),
            ("我被困在电梯里了 按了紧急呼叫按钮没反应", "119"),
            // A person who does not respond.
            ("我爸倒在电梯里 按了紧急按钮没反应 他叫不醒", "120"),
            ("老人按了呼叫器 我们赶过去 叫他没反应", "120"),
            ("我在给他做心肺复苏 按了没反应", "120"),
            ("给老人掐了人中没反应", "120"),
            ("按了半天人中 还是没反应", "120"),
            ("电梯里有个人晕倒了 按了紧急按钮 人没反应", "120"),
            ("紧急呼叫 老人摔倒了起不来", "120"),
        ]);
    }

    /// 救命 as exasperation about a form or a website, or as an adjective in a product name,
    /// is not a cry for help; a cry that gives an office as its address, or says help is needed
    /// now, still is.
    #[test]
    fn help_cry_hyperbole_and_product_names() {
        check(&[
            ("救命啊 这个网站注册了八遍都不成功 社保卡到底在哪申领啊", ""),
            ("救命 这个app怎么都登录不上", ""),
            ("救命 社保卡怎么补办啊", ""),
            ("救命 公积金提取的材料准备了三次都不对", ""),
            (
                "有个直播间在卖所谓的“救命神药”，其实就是普通保健品，请市场监管部门查一下。",
                "",
            ),
            ("网上有人卖救命神器 其实是骗人的", ""),
            ("小区药店卖救命丸 吃了没用", ""),
            ("救命", "110"),
            ("救命啊 救救我", "110"),
            ("救命 快来人 人民路社保中心二楼", "110"),
            ("救命 我在政务中心三楼 快来", "110"),
            ("救命 我现在在社保局门口 有人追我", "110"),
            ("我在社保局 外面有人喊救命", "110"),
            ("救命啊 办事大厅有人拿刀", "110"),
        ]);
    }

    /// Traffic that cannot get out (左转出不去, 车出不去) is a junction to fix, not a person
    /// trapped; people in a car, a lift or a burning garage are.
    #[test]
    fn traffic_that_cannot_get_out() {
        check(&[
            (
                "能不能在我们小区门口按装一个红绿灯 早上出门车太多了 左转出不去",
                "",
            ),
            ("小区门口车太多 车出不去", ""),
            ("早上堵车出不去 建议加个红绿灯", ""),
            ("路口掉头出不去 能不能改一下", ""),
            ("每天早上路口车多出不去 能不能调一下红绿灯时间", ""),
            ("水越来越深 车出不去了 我们在车上", "119"),
            ("人在车里出不去 车门打不开", "119"),
            ("我们在车上出不来了 车门锁死了", "119"),
            ("孩子在车后座出不来 车门坏了", "119"),
            ("暴雨 车被困在水里 人在车里出不来", "119"),
            ("电动车卡住孩子的脚了 拔不出来", "119"),
            ("车库着火了 我们出不去", "119"),
            ("电梯停了 我们三个出不去", "119"),
            ("我被困在车库里出不来", "119"),
        ]);
    }

    /// A fixture knocked crooked is a repair (公交站牌被撞歪了 was sent to 122); a fixture hit
    /// with anyone hurt, caught or in danger, or a person crossing one, is still a crash
    /// (`struck-fixture`).
    #[test]
    fn struck_fixtures_are_repairs_unless_someone_is_hurt() {
        check(&[
            ("公交站牌被撞歪了", ""),
            ("路口的红绿灯杆被撞弯了，影响通行", ""),
            ("路灯杆被撞倒了好几天了，也没人管", ""),
            ("小区门口的护栏被车撞坏了，一直没人修", ""),
            ("我们村口的路牌被撞歪了好久了", ""),
            ("小区道闸被撞坏了，物业说要业主赔", ""),
            ("路口红绿灯杆被撞倒了，砸到了路人", "122"),
            ("公交站台被撞了，有人受伤", "122"),
            ("刚刚护栏被撞断了，一辆车翻在路边", "122"),
            // Smoke outranks the crash (119 before this context too).
            ("护栏被撞了，车还在冒烟，司机没出来", "119"),
            ("高速上护栏被撞飞了，后面好几辆车追尾", "122"),
            ("一辆货车刚刚撞上了公交站牌，司机受伤了", "122"),
            ("刚才有车撞了路灯杆，车里有人出不来", "122"),
            ("我的车门被撞坏了，对方想跑", "122"),
            ("有个老人翻过护栏被车撞了", "122"),
            ("一个小孩跨栏杆被车撞了", "122"),
            ("一个老人翻过护栏被撞倒了，车开走了", "122"),
        ]);
    }

    /// A worry about what a loose fixture or a leaning tree may do is a matter for repair
    /// (`worry`); a fear that it has happened, or one said with a call for help, is not.
    #[test]
    fn a_worry_about_what_may_fall_is_not_an_emergency() {
        check(&[
            (
                "小区门口的广告牌松了，风一吹晃得厉害，怕掉下来砸到人，麻烦派人看看。",
                "",
            ),
            (
                "我家楼上阳台的花盆放在外面，怕掉下来砸到人，能不能管一管。",
                "",
            ),
            ("路边那棵大树歪得厉害，我怕倒下来压到车，希望尽快处理。", ""),
            ("小区里的枯树随时会倒，怕倒下来砸到小孩", ""),
            ("我怕他已经掉下去了，井边只剩他的鞋", "120"),
            ("我怕孩子已经掉下去了，快来人啊，井盖没了孩子不见了", "120"),
            ("有人从楼上掉下来了，砸到了下面的人，快叫救护车", "120"),
            ("我好害怕有人在撬门", "110"),
        ]);
    }

    /// Guard for pattern 2: no word of a suppressing context may be found (outside its own
    /// excepts and the masks) inside these common pieces of emergency reports. Add the phrase
    /// of any new miss caused by a suppressing word here, then fix the word list.
    #[test]
    fn suppress_words_stay_out_of_emergency_phrases() {
        const PHRASES: &[&str] = &[
            "一动不动",
            "躺着不动",
            "栏杆",
            "护栏",
            "电线杆",
            "晕过去了",
            "昏过去了",
            "冲过去砍人",
            "几个月大的宝宝",
            "一到家就闻到",
            "小区里有人",
            "保温材料",
            "保险丝",
            "保险杠",
            "家里没人",
            "屋里没人",
            "别打了",
            "别打我",
            "住院部",
            "扑灭不了",
            "没扑灭",
            "不知道在哪里",
            "废弃多年的厂房",
            "十几年的老楼",
            "停在路中间",
            "停在马路上",
            "好害怕有人",
            "浓烟熏得睁不开眼",
            "被熏晕了",
            "人事不知",
            "说不出话",
            "事故现场",
            "手抬不起来",
            "嘴歪了",
            "掉下去了",
            "一直在流血",
            "浑身是血",
            "翻白眼",
            "脸色发白",
            "叫不醒",
            "喘不上气",
            "有人在喊",
            "快来人",
            "在里面出不来",
            "往外冒烟",
            "火很大",
            "拿着刀",
            "被人捅了",
            "往车里拽",
            "被人抱走了",
            "一直在跟着我",
            "救护车还没来",
            "消防车还没到",
            "火没灭",
            "爬上电线杆",
            "一直跟着我",
            "被锁在家里",
            "还有没有气",
            "掉进河里",
            "摔在路中间",
            "被人围着打",
            "人在车里出不去",
            "车上的人出不来",
            "腿坏了走不了",
        ];
        let raw: RawFile = match toml::from_str(BUILTIN_TOML) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let find = |hay: &str, needle: &str| -> Vec<Span> {
            let n = normalize(needle).into_owned();
            hay.match_indices(n.as_str())
                .map(|(i, m)| Span {
                    start: i,
                    end: i + m.len(),
                })
                .collect()
        };
        let mut failures = Vec::new();
        for ctx in raw.context.iter().filter(|c| c.effect == Effect::Suppress) {
            let base = ctx
                .like
                .as_ref()
                .and_then(|l| raw.context.iter().find(|c| &c.name == l));
            let cues: Vec<&String> = ctx
                .cues
                .iter()
                .chain(base.iter().flat_map(|b| b.cues.iter()))
                .collect();
            let excepts: Vec<&String> = ctx
                .except
                .iter()
                .chain(base.iter().flat_map(|b| b.except.iter()))
                .collect();
            for phrase in PHRASES {
                let text = normalize_text(phrase);
                let masks: Vec<Span> = raw
                    .masks
                    .phrases
                    .iter()
                    .flat_map(|m| find(&text, m))
                    .collect();
                let excepted: Vec<Span> = excepts.iter().flat_map(|e| find(&text, e)).collect();
                for cue in &cues {
                    for s in find(&text, cue) {
                        // A cue that counts only right before (after) a trigger, at the very end
                        // (start) of a phrase, cannot act on the phrase's own words.
                        let outside = ctx.window > 0
                            && match ctx.position {
                                Position::Before => s.end == text.len(),
                                Position::After => s.start == 0,
                                Position::Any => false,
                            };
                        if !outside && !masked(&masks, s) && !excepted.iter().any(|e| e.overlaps(s))
                        {
                            failures.push(format!("{phrase}: {cue:?} of context {:?}", ctx.name));
                        }
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Not a test: prints what the rules make of the lines of $EMG_PROBE (tuning aid).
    #[test]
    #[ignore]
    fn probe() {
        let r = rules();
        let path = std::env::var("EMG_PROBE").unwrap_or_default();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            let all: Vec<String> = r
                .check_all(l)
                .iter()
                .map(|x| format!("{}:{}", x.number, x.rule))
                .collect();
            println!("PROBE\t{l}\t{}", all.join(" "));
        }
    }

    #[test]
    fn digits() {
        let r = rules();
        let got = r.check_digits("119").map(|x| x.number);
        assert_eq!(got.as_deref(), Some("119"));
        assert_eq!(
            r.check_digits("１２０#").map(|x| x.number).as_deref(),
            Some("120")
        );
        assert_eq!(
            r.check_digits(" 110 ").map(|x| x.number).as_deref(),
            Some("110")
        );
        assert_eq!(
            r.check_digits("122").map(|x| x.rule).as_deref(),
            Some("digits:122")
        );
        assert!(r.check_digits("12345").is_none());
        assert!(r.check_digits("").is_none());
        assert!(r.check_digits("#").is_none());
    }

    #[test]
    fn check_all_lists_every_service() {
        let all = rules().check_all("十字路口两辆车撞了，有人昏迷不醒");
        let numbers: Vec<_> = all.iter().map(|r| r.number.as_str()).collect();
        assert_eq!(numbers.first(), Some(&"122"), "{all:?}");
        assert!(numbers.contains(&"120"), "{all:?}");
    }

    #[test]
    fn never_panics_on_odd_input() {
        let r = rules();
        for t in [
            "",
            " ",
            "\u{0}",
            "着",
            "火",
            "！！！",
            "着火",
            "\u{FEFF}着火了",
            "ｚｈａｏｈｕｏ",
        ] {
            let _ = r.check(t);
        }
        let long = "着火了".repeat(5000);
        assert!(r.check(&long).is_some());
    }

    #[test]
    fn invalid_files_report_every_problem() {
        let bad = r#"
            version = 2
            [[service]]
            number = "11x"
            reason = ""
            [[context]]
            name = "neg"
            effect = "suppress"
            scope = "clause"
            window = 3
            cues = []
            unless = ["nope"]
            [[rule]]
            name = "fire"
            number = "999"
            triggers = []
            suppress = ["missing"]
            [[rule]]
            name = "fire"
            number = "11x"
            triggers = ["着火", ""]
            require = ["ghost"]
        "#;
        let err = match EmergencyRules::from_toml_named("rules/emergency.toml", bad) {
            Err(e) => e,
            Ok(_) => panic!("must fail"),
        };
        let text = err.to_string();
        assert!(text.starts_with("rules/emergency.toml:"), "{text}");
        for needle in [
            "unsupported version 2",
            "service \"11x\": number must be",
            "reason is empty",
            "context \"neg\": cues is empty",
            "window needs position",
            "unknown context \"nope\"",
            "rule \"fire\": number \"999\"",
            "triggers is empty",
            "unknown context \"missing\"",
            "name used twice",
            "empty phrase",
            "unknown context \"ghost\"",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn syntax_and_unknown_keys_are_errors() {
        let e = EmergencyRules::from_toml("version = ").err();
        assert!(e.is_some());
        let e = EmergencyRules::from_toml(
            "version = 1\n[[service]]\nnumber=\"119\"\nreason=\"x\"\n[[rule]]\nname=\"a\"\nnumber=\"119\"\ntriggers=[\"火\"]\ntrigers=[\"x\"]\n",
        );
        let text = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("trigers"), "{text}");
        // An empty rule set is refused: loading it would silently stop all redirects.
        let e =
            EmergencyRules::from_toml("version = 1\n[[service]]\nnumber=\"119\"\nreason=\"x\"\n");
        let text = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("no [[rule]]"), "{text}");
    }

    #[test]
    fn minimal_file_and_reason_fallback() {
        let r = EmergencyRules::from_toml(
            "version = 1\n[[service]]\nnumber=\"119\"\nreason=\"打119\"\ndigits=[\"9\"]\n[[rule]]\nname=\"f\"\nnumber=\"119\"\ntriggers=[\"着火\"]\n",
        );
        let r = match r {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let got = r.check("着火啦");
        assert_eq!(got.as_ref().map(|g| g.reason.as_str()), Some("打119"));
        assert_eq!(
            r.check_digits("9").map(|g| g.number).as_deref(),
            Some("119")
        );
    }

    // ---- corpus measurement -----------------------------------------------------------------

    /// One corpus line. Two formats: `expect` (dev, held-out: the acceptable numbers, empty for a
    /// routine text) and the evaluator's `expected` ("119" .. or "none") with `alt` (other
    /// numbers that are also acceptable; on a routine line, a redirect there is tolerated, not
    /// counted as false) and `kind` (fire, medical, past, figurative ..) for the breakdown.
    #[derive(serde::Deserialize)]
    struct Line {
        text: String,
        #[serde(default)]
        expect: Vec<String>,
        #[serde(default)]
        expected: Option<String>,
        #[serde(default)]
        alt: Vec<String>,
        #[serde(default)]
        kind: Option<String>,
    }

    impl Line {
        /// (acceptable numbers, whether the line is an emergency).
        fn judged(&self) -> (Vec<String>, bool) {
            match self.expected.as_deref() {
                Some("none") => (self.alt.clone(), false),
                Some(n) => {
                    let mut ok = vec![n.to_string()];
                    ok.extend(self.alt.iter().cloned());
                    (ok, true)
                }
                None => (self.expect.clone(), !self.expect.is_empty()),
            }
        }
    }

    struct Figures {
        emergencies: usize,
        detected: usize,
        right_number: usize,
        routine: usize,
        false_redirects: usize,
        /// Routine lines redirected to a number their `alt` accepts (not false redirects).
        tolerated: usize,
        failures: Vec<String>,
    }

    fn measure(name: &str, jsonl: &str) -> Figures {
        let r = rules();
        let mut f = Figures {
            emergencies: 0,
            detected: 0,
            right_number: 0,
            routine: 0,
            false_redirects: 0,
            tolerated: 0,
            failures: Vec::new(),
        };
        // kind -> (lines, emergencies detected or routine lines not falsely redirected)
        let mut kinds: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
        for (i, line) in jsonl
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let l: Line = match serde_json::from_str(line) {
                Ok(l) => l,
                Err(e) => panic!("{name}:{}: {e}", i + 1),
            };
            let (ok, emergency) = l.judged();
            let got = r.check(&l.text);
            let good = if !emergency {
                f.routine += 1;
                match got {
                    Some(g) if ok.contains(&g.number) => {
                        f.tolerated += 1;
                        true
                    }
                    Some(g) => {
                        f.false_redirects += 1;
                        f.failures.push(format!(
                            "{name}:{} FALSE {} ({}) {}",
                            i + 1,
                            g.number,
                            g.rule,
                            l.text
                        ));
                        false
                    }
                    None => true,
                }
            } else {
                f.emergencies += 1;
                match got {
                    Some(g) => {
                        f.detected += 1;
                        if ok.contains(&g.number) {
                            f.right_number += 1;
                        } else {
                            f.failures.push(format!(
                                "{name}:{} NUMBER want {ok:?} got {} ({}) {}",
                                i + 1,
                                g.number,
                                g.rule,
                                l.text
                            ));
                        }
                        true
                    }
                    None => {
                        f.failures
                            .push(format!("{name}:{} MISSED {ok:?} {}", i + 1, l.text));
                        false
                    }
                }
            };
            if let Some(k) = &l.kind {
                let e = kinds.entry(k.clone()).or_default();
                e.0 += 1;
                e.1 += usize::from(good);
            }
        }
        let recall = f.detected as f64 / f.emergencies.max(1) as f64;
        let fr = f.false_redirects as f64 / f.routine.max(1) as f64;
        println!(
            "{name}: emergencies {} detected {} (recall {:.3}), right number {}/{}; routine {} false redirects {} ({:.1}%), tolerated {}",
            f.emergencies,
            f.detected,
            recall,
            f.right_number,
            f.emergencies,
            f.routine,
            f.false_redirects,
            fr * 100.0,
            f.tolerated
        );
        if !kinds.is_empty() {
            let parts: Vec<String> = kinds
                .iter()
                .map(|(k, (n, good))| format!("{k} {good}/{n}"))
                .collect();
            println!(
                "  by kind (caught / not falsely redirected): {}",
                parts.join(", ")
            );
        }
        for x in &f.failures {
            println!("  {x}");
        }
        f
    }

    /// Recall 1.0 and false redirects under 5 % are hard requirements; `known_wrong_numbers`
    /// records measured mismatches (a redirect to another emergency number) that are reported
    /// rather than tuned away, so the file stays held out.
    fn assert_quality(f: &Figures, known_wrong_numbers: usize) {
        assert!(f.emergencies > 0 && f.routine > 0);
        assert_eq!(
            f.detected, f.emergencies,
            "recall must be 1.0: {:?}",
            f.failures
        );
        assert!(
            f.emergencies - f.right_number <= known_wrong_numbers,
            "wrong numbers: {:?}",
            f.failures
        );
        assert!(
            (f.false_redirects as f64) < 0.05 * f.routine as f64,
            "false redirects {}/{}: {:?}",
            f.false_redirects,
            f.routine,
            f.failures
        );
    }

    /// For a corpus whose lines were not written against the rules: counted ceilings instead of
    /// recall 1.0, so a change that loses ground fails and one that gains must lower them.
    fn assert_figures(f: &Figures, max_missed: usize, max_wrong: usize, max_false: usize) {
        assert!(f.emergencies > 0 && f.routine > 0);
        let missed = f.emergencies - f.detected;
        let wrong = f.detected - f.right_number;
        assert!(
            missed <= max_missed && wrong <= max_wrong && f.false_redirects <= max_false,
            "missed {missed} (max {max_missed}), wrong number {wrong} (max {max_wrong}), false redirects {} (max {max_false}): {:#?}",
            f.false_redirects,
            f.failures
        );
    }

    #[test]
    fn corpus_dev() {
        let f = measure(
            "emergency-dev",
            include_str!("../../tests/data/emergency-dev.jsonl"),
        );
        assert_quality(&f, 0);
    }

    #[test]
    fn corpus_heldout() {
        let f = measure(
            "emergency-heldout",
            include_str!("../../tests/data/emergency-heldout.jsonl"),
        );
        // Never tuned on. First measurement: recall 64/64, right number 63/64 (小孩吞了一枚硬币，
        // 卡在喉咙里 goes to 119 via `stuck` instead of 120), false redirects 2/85.
        // After the dev2 fixes: false redirects 1/85 (路边的树被大风刮倒了 no longer 122: 刮倒
        // needs a vehicle now, a general change, not tuned on this file). After the routine-set
        // classes (emergency equipment named as a thing, among others): 0/85 (小区的消防栓被埋在
        // 土里了 no longer 119). The brief for that work named 消防栓 among its examples, so this
        // line is not a clean held-out measurement any more.
        assert_quality(&f, 1);
    }

    #[test]
    fn corpus_dev2() {
        let f = measure(
            "emergency-dev2",
            include_str!("../../tests/data/emergency-dev2.jsonl"),
        );
        // Written by an evaluator, not by the rules' author (`alt` lists the other acceptable
        // numbers). First measurement, before any tuning: recall 84/103, right number 81/103,
        // false redirects 13/77. The patterns their review found were then fixed as general
        // rules (see the tests named after them): 103/103, 103/103, 0/77. It is a development
        // set now, so these ceilings guard against regressions, not predict unseen text.
        assert_figures(&f, 0, 0, 0);
    }

    #[test]
    fn corpus_blind2() {
        let f = measure(
            "emergency-blind2",
            include_str!("../../tests/data/emergency-blind2.jsonl"),
        );
        // Written blind by someone who never saw the rules (`alt` lists other acceptable
        // numbers). First measurement: recall 76/100, 0 wrong numbers, false redirects 12/100.
        // The patterns behind its failures were then fixed as general word classes and context
        // rules (hearsay/fiction, resolved, exasperation, chemical spills, drowning, robbery,
        // dangerous driving, ...; see the round-2 unit tests): 100/100, 0 wrong, 0/100.
        // This file has now been tuned on, so it is a regression floor only: a fresh blind set
        // is needed to measure how well the rules generalise.
        assert_figures(&f, 0, 0, 0);
    }

    #[test]
    fn corpus_blind3() {
        let f = measure(
            "emergency-blind3",
            include_str!("../../tests/data/emergency-blind3.jsonl"),
        );
        // Written blind (by someone who saw neither the rules nor the other corpora), after the
        // second round of fixes, in phrasings a keyword list would not anticipate. NEVER tuned
        // on: it is the one measure here of how the rules do on text nobody wrote them for.
        // Measured: rules at the start of 2026-12-02's third session 38/80 caught, 2 wrong
        // numbers, 19/80 false redirects; after round 1 (dev2) 43/80, 13/80; after round 2
        // (blind2) 56/80, 2 wrong, 10/80. The floor below only guards against getting worse;
        // do not change the rules to pass its lines (write a new blind set to measure again).
        assert_figures(&f, 24, 2, 10);
    }

    #[test]
    fn long_texts_what_ifs_drills_and_run_ons() {
        check(&[
            // A what-if is not lifted by a symptom it imagines (万一…晕倒 made 被噎着 real),
            // and 哪天 / 不然 / 真等到 are what-ifs too.
            ("万一哪天身边有人晕倒或者被噎着了能帮上忙", ""),
            ("但是哪天火星子飞到草里面烧起来就不得了", ""),
            ("不然哪天烧起来整栋楼都跑不了", ""),
            ("真等到撞了人翻了车再来修就晚了", ""),
            ("早晚高峰这个路口总是堵", ""),
            // ... but time or a call for help lifts it.
            ("如果你们现在不来火就烧到楼上了", "119"),
            ("要是再不来人他就不行了", "120"),
            ("万一他醒不过来怎么办 他现在昏迷了", "120"),
            // A drill anywhere in the text stages what it mentions; a real fire during one is
            // told with urgency.
            (
                "昨天上午旁边小学搞消防演习，拉警报，放烟雾，老人们以为着火了，\
                 有个老爷子还打电话说学校着火了",
                "",
            ),
            ("演练的时候真着火了快来人", "119"),
            // Things, not events: open flame for cooking, worn-out waterproofing, a dead cat,
            // what an AED can do (not a cry for help).
            ("用的是木炭明火", ""),
            ("刚才有人用明火烤东西把窗帘点着了 火越来越大", "119"),
            ("楼顶的防水早就不行了", ""),
            ("我爸早上还好好的现在不行了", "120"),
            ("我们小区门口的马路上有一只被车撞死的猫", ""),
            ("有个人被车撞了躺在地上不动", "122"),
            // A fraud seen through before any money went; one still going on.
            (
                "我昨天接到一个电话说我的身份证涉嫌洗钱要我把钱转到安全账户，\
                 后来我女儿说是诈骗，我就没转，钱一分都没损失",
                "",
            ),
            ("他让我把钱转到安全账户 我还没转 他还在电话里催我", "110"),
            // A run-on clause: a cue more than 15 characters from the trigger is about
            // something else. 现在 at the start no longer lifts the worry at the end ...
            (
                "现在小区里好多人把电动车推进楼道里充电物业也不管我们楼里老人孩子多大家都很担心楼道起火",
                "",
            ),
            (
                "现在我们这个路口的红绿灯坏了好几天了车都抢着走老人过马路特别危险我担心迟早会有人被车撞",
                "",
            ),
            // ... and 以前 at the start no longer hides what is happening at the end.
            (
                "我以前在这个小区住了十几年物业一直都很负责的今天回来看我妈发现她倒在厨房地上叫不醒",
                "120",
            ),
            (
                "隔壁那家平时总是吵架我们都习惯了都没当回事刚才听见他家男的拿刀追着女的砍",
                "110",
            ),
        ]);
    }

    #[test]
    fn long_texts_beliefs_near_misses_and_hearsay() {
        check(&[
            // Believed, not seen (以为 right before the event), and not lifted by 正在 about
            // something else; a belief about something else does not hide what follows.
            (
                "我家孩子正在上网课根本听不清老人还以为真着火了吓得心慌半天",
                "",
            ),
            ("我以为他睡着了结果叫不醒", "120"),
            (
                "晚上放那种枪战片，砰砰砰的，还有爆炸声，声音大得我家窗户都在震，\
                 我还以为外面打起来了",
                "",
            ),
            ("楼下传来爆炸声 窗户都碎了 好多人在跑", "119"),
            ("家里都是煤气味 我还以为是下水道的味 现在头很晕", "119"),
            // A near miss is a what-if: not made real by 突然 or by the fall it names.
            (
                "前两天一个小孩在上面荡的时候链子突然滑了一下差点摔下来还好他爸在旁边一把接住了",
                "",
            ),
            ("我差点被车撞了，现在腿流了好多血", "120"),
            // Nothing yet is not urgency.
            (
                "就怕哪天打雷下雨树枝把电线压断了或者起火了现在是还没出事",
                "",
            ),
            // Treated and at home; a road that has had its accident.
            (
                "我妈上个月踩空摔了一跤把手腕摔骨折了现在已经打了石膏在家养着",
                "",
            ),
            ("去年我中风住了三个月院后来一直在家康复手续就耽误了", ""),
            ("我爸摔了一跤起不来 腿好像骨折了", "120"),
            ("去年那段路上出过一次大车祸后来就改道了现在绕了好大一圈", ""),
            (
                "这个路口出过好几次车祸 刚才又撞了一个人 躺在地上不动",
                "122",
            ),
            // Hearsay from people around; lifted when it is going on now.
            ("我听邻居说有个人在小区里拿刀砍人", ""),
            ("我刚听邻居说楼下有人拿刀砍人 现在还在砍", "110"),
            (
                "我在业主群里看到有人说我们这片的自来水厂被人投毒了说喝了会中毒",
                "",
            ),
            // Degrees and what fire does in general.
            ("而且他那个罐子看着都锈得不行了", ""),
            ("他疼得不行了满头大汗", "120"),
            ("我看着就怕这种彩钢板房一着火就是一片", ""),
            ("我听说电动汽车电池着起火来很难灭", ""),
            ("有一条被车撞死的大黄狗躺在路边已经两天了", ""),
        ]);
    }

    #[test]
    fn long_texts_lessons_videos_and_aftermath() {
        check(&[
            // Over, and told with its aftermath; still going on.
            (
                "你好，我想说一下上次我们楼下着火那个事儿，火早就灭了，但是当时消防车进不来小区",
                "",
            ),
            ("现场交警和救护车都已经到了，人也都拉走了", ""),
            ("我爸去年住了两个月院 今天又突然晕倒了 叫不醒", "120"),
            ("灯一下就灭了然后屋里就着火了", "119"),
            ("我没伤着 我老公昏迷了", "120"),
            ("水都已经到了腰了 老人还在屋里出不来", "119"),
            // A lesson or a simulation teaches; a collapse in a class is real.
            (
                "喂，我们社区今天来了个消防员讲课，讲了好多家里着火了怎么逃生，要弯着腰捂着嘴",
                "",
            ),
            (
                "我们公司要做一个反恐防暴的演练就是模拟有人拿刀冲进来那种",
                "",
            ),
            ("老师讲课时突然倒地抽搐", "120"),
            // Staged videos and anger; an explosion heard now.
            ("那个博主拍的车祸视频都是演的", ""),
            ("我现在气得都快爆炸了电梯坏了一个礼拜", ""),
            ("刚才楼下有东西爆炸了 玻璃全碎了", "119"),
            // 现在心里 is a feeling, not the event's present; 真要 (not 真要是) is no what-if.
            ("我现在心里好慌 他拿着刀在门口", "110"),
            ("他真要跳下去了", "110"),
        ]);
    }

    #[test]
    fn long_texts_pets_aftermath_and_gaps() {
        check(&[
            // An animal hurt or ill; a person hurt next to an animal.
            ("我养的狗刚刚在楼下被电动车撞了 腿瘸了", ""),
            ("我家猫咪今天早上一直抽搐 哪里有宠物医院", ""),
            ("狗突然冲出来孩子被车撞了", "122"),
            ("我遛狗的时候被车撞了 腿动不了 在路口", "122"),
            ("邻居家的狗把我儿子咬了 血一直流", "120"),
            // The aftermath: who pays, repaired, apologised, filed, taken away, got up.
            ("前天下班路上我的车被追尾了 对方全责 就是保险一直不给赔", ""),
            ("他喝多了说要砍人 后来他老婆把他拉回去了 今天也道了歉", ""),
            ("楼下那个老大爷中风了 救护车刚把他拉走了 他家的狗没人喂", ""),
            ("路边一个人倒在地上 过去一看他自己爬起来走了", ""),
            ("电热毯冒烟了 幸亏发现得早 拔了插头", ""),
            ("车撞了人 对方全责 人还躺在地上不动 快来", "122"),
            // Documentaries, games, first-aid lessons, campaigns.
            ("昨晚看了个讲森林火灾的纪录片 想问问山上能不能装监控", ""),
            ("孩子天天玩游戏 游戏里动不动就抢劫绑架 这种游戏谁管", ""),
            ("想给小区老人办个讲座 请人讲讲急救 比如有人晕倒了怎么办", ""),
            ("我们打算搞个反诈宣传活动 讲讲冒充公检法的骗局", ""),
            // The complaint set aside for an emergency.
            ("我本来是想投诉停车的事 但是现在楼下有两个人在撬车门", "110"),
            // Gaps: buried, cut off by water, a car on the tracks, a valve blowing gas,
            // extortion, a beating named by who took it, kicking at the door, a child picked up.
            ("沟塌了 一个工人被土埋到腰了 喘不上来", "119"),
            ("河水涨上来了 水把他们围住了 三个人站在石头上", "119"),
            ("下雨 车开进桥洞熄火了 水已经淹到车窗了", "119"),
            ("一辆面包车停在铁轨中间打不着火 火车快来了", "122"),
            ("煤气罐阀门坏了 一直往外喷气 快来人", "119"),
            ("他们把我弟堵在厕所 说不给钱就打 现在还在里面", "110"),
            ("一群人冲进店里打砸 还打了我老公 现在还没走", "110"),
            ("有人在门外踹门 说要杀了我 现在还在踹", "110"),
            ("一个男的抱起孩子就跑 往菜市场那边去了 快来", "110"),
            // Choking is 120's, not a rescue from a gap.
            ("孩子吃果冻卡住了 脸都紫了", "120"),
        ]);
    }

    #[test]
    fn explain_says_what_each_trigger_met() {
        let r = rules();
        let why = r.explain("上周我家楼下着火了 现在墙还是黑的 谁来刷");
        assert!(
            why.iter()
                .any(|l| l.contains("fire") && l.contains("suppressed by `past`")),
            "{why:?}"
        );
        let why = r.explain("楼下着火了 火很大");
        assert!(why.first().is_some_and(|l| l.ends_with("fires")), "{why:?}");
        assert!(r.explain("小区路灯坏了").is_empty());
    }

    #[test]
    fn corpus_blind4() {
        let f = measure(
            "emergency-blind4",
            include_str!("../../tests/data/emergency-blind4.jsonl"),
        );
        // Written blind on 2026-12-02 (fourth session) by someone who saw neither the rules nor
        // the other corpora, and measured once before anything else was done with it: 67/100
        // caught, 0 wrong numbers, 7/100 false redirects. NEVER tuned on, like blind3. The
        // second opinion's figures on it are in `second_opinion.rs`.
        // After the four classes found on the routine set (see `corpus_routine`): 67/100, 0,
        // 5/100 (救命啊 社保网站又崩了 and 救命 社保又断缴了, the `paperwork` class, no longer
        // 110). Not a clean blind figure: those two lines were in the output of the measurement
        // taken before the change, and the `paperwork` words were chosen after seeing it.
        assert_figures(&f, 33, 0, 5);
    }

    #[test]
    fn corpus_long() {
        let f = measure(
            "emergency-long",
            include_str!("../../tests/data/emergency-long.jsonl"),
        );
        // 120 long texts (150-300 characters, half the emergencies run on without a break)
        // written blind (2026-12-06, sixth session), measured once before any change: 48/60
        // caught, 3 wrong numbers, 12/60 false redirects (each a matter that got no order).
        // Tuned on since: the run-on reach and the what-if, drill, mask and fraud classes
        // (`long_texts_what_ifs_drills_and_run_ons`) were found on it: 47/60, 1, 5/60.
        assert_figures(&f, 13, 1, 5);
    }

    #[test]
    fn corpus_long2() {
        let f = measure(
            "emergency-long2",
            include_str!("../../tests/data/emergency-long2.jsonl"),
        );
        // 160 long texts (120-183 characters; half of each class without any punctuation),
        // written blind (sixth session) and held out while the run-on reach and the classes of
        // `corpus_long` were chosen. Before them: 56/80 caught, 5 wrong numbers, 18/80 false
        // redirects; after: 54/80, 3, 17/80. The classes found on the long set barely carry
        // over, and the reach cost two emergencies whose 快来 / 赶紧派车 came more than 15
        // characters after what happened (both still marked by the second opinion).
        // Then tuned on (its false redirects' classes, `long_texts_beliefs_near_misses_and_
        // hearsay`): 54/80, 3, 6/80; long3 was written as the next held-out set.
        assert_figures(&f, 26, 3, 6);
    }

    #[test]
    fn corpus_long3() {
        let f = measure(
            "emergency-long3",
            include_str!("../../tests/data/emergency-long3.jsonl"),
        );
        // 200 caller transcripts (100-179 characters, half of each class without any
        // punctuation), written blind after every change of the sixth session and measured
        // once: 74/100 caught, 8 wrong numbers, 20/100 false redirects (d31f2ed, before the
        // session: 73/100, 7, 26/100). Then tuned on (its classes: aftermath, lessons and
        // simulations, staged videos, anger, `long_texts_lessons_videos_and_aftermath`):
        // 74/100, 8, 12/100; long4 was written as the next held-out set.
        assert_figures(&f, 26, 8, 12);
    }

    #[test]
    fn corpus_long4() {
        let f = measure(
            "emergency-long4",
            include_str!("../../tests/data/emergency-long4.jsonl"),
        );
        // 200 messages of 80-136 characters (web form, WeChat with spaces, speech transcript
        // without punctuation; a third each), written blind after every change of the sixth
        // session and measured once: 87/100 caught, 7 wrong numbers, 19/100 false redirects
        // (d31f2ed: 86/100, 6, 23/100). Never tuned on; after long5's classes (seventh
        // session): 87/100, 6, 18/100.
        assert_figures(&f, 13, 6, 18);
    }

    #[test]
    fn corpus_long5() {
        let f = measure(
            "emergency-long5",
            include_str!("../../tests/data/emergency-long5.jsonl"),
        );
        // 200 long texts (84 characters on average, a third without punctuation), written
        // blind at the start of the seventh session and measured once: 87/100 caught, 6 wrong
        // numbers, 20/100 false redirects. Then tuned on (`long_texts_pets_aftermath_and_gaps`):
        // 100/100, 4, 8/100. long6 was written as the next held-out set.
        assert_figures(&f, 0, 4, 8);
    }

    #[test]
    fn corpus_long6() {
        let f = measure(
            "emergency-long6",
            include_str!("../../tests/data/emergency-long6.jsonl"),
        );
        // 200 long texts (75 characters on average, a third without punctuation, some in
        // dialect), written blind after long5's classes and measured once: 78/100 caught, 5
        // wrong numbers, 15/100 false redirects, the same as before them (4f00717). Never
        // tuned on.
        assert_figures(&f, 22, 5, 15);
    }

    #[test]
    fn corpus_long7() {
        let f = measure(
            "emergency-long7",
            include_str!("../../tests/data/emergency-long7.jsonl"),
        );
        // 200 long texts (114 characters on average, half without punctuation), written blind
        // in the eighth session and measured once: 77/100 caught, 4 wrong numbers, 18/100 false
        // redirects. Never tuned on.
        assert_figures(&f, 23, 4, 18);
    }

    #[test]
    fn corpus_long8() {
        let f = measure(
            "emergency-long8",
            include_str!("../../tests/data/emergency-long8.jsonl"),
        );
        // 200 long texts (75 characters on average, half without punctuation), written blind
        // after long7 and measured once: 83/100 caught, 4 wrong numbers, 19/100 false
        // redirects. Never tuned on.
        assert_figures(&f, 17, 4, 19);
    }

    #[test]
    fn corpus_runon() {
        let f = measure(
            "emergency-runon",
            include_str!("../../tests/data/emergency-runon.jsonl"),
        );
        // blind5's emergencies run into plain routine lines without any punctuation
        // (`scripts/make-runon-set.py`). Before the run-on reach: 46/100 caught, 6 wrong
        // numbers, 4/100 false redirects; with it 58/100, 3, 0/100 (the reach was chosen on
        // this set and on the long one).
        assert_figures(&f, 42, 3, 0);
    }

    #[test]
    fn corpus_routine() {
        let f = measure(
            "emergency-routine",
            include_str!("../../tests/data/emergency-routine.jsonl"),
        );
        // 300 ordinary routine lines (no emergencies). First measurement: 6/300 false
        // redirects, one per class: construction words with 打 (还在打桩), a broken smoke alarm,
        // a call button that does not respond, 救命 about a website, a turn that cannot get out
        // (左转出不去), 救命 in a product name. Fixed as classes (see the unit tests named after
        // them): 0/300. Tuned on since, so a regression floor only.
        assert_no_false_redirect(&f);
    }

    /// A set of routine lines only: none redirected.
    fn assert_no_false_redirect(f: &Figures) {
        assert_eq!(f.emergencies, 0);
        assert!(f.routine > 0);
        assert!(
            f.false_redirects == 0,
            "false redirects {}/{}: {:#?}",
            f.false_redirects,
            f.routine,
            f.failures
        );
    }

    #[test]
    fn corpus_routine2() {
        let f = measure(
            "emergency-routine2",
            include_str!("../../tests/data/emergency-routine2.jsonl"),
        );
        // 300 more ordinary lines, written blind (2026-12-06, fifth session) and first measured
        // after the routine set's four classes were fixed: 0/300. Never tuned on.
        assert_no_false_redirect(&f);
    }

    #[test]
    fn corpus_blind5() {
        let f = measure(
            "emergency-blind5",
            include_str!("../../tests/data/emergency-blind5.jsonl"),
        );
        // Written blind (2026-12-06, fifth session; 100 emergencies, 25 per service, 100
        // routine lines, half of them with emergency words used harmlessly) and measured once,
        // after every change of that session: 63/100 caught, 2 wrong numbers, 3/100 false
        // redirects. Never tuned on. The second opinion's figures are in `second_opinion.rs`.
        assert_figures(&f, 37, 2, 3);
    }

    /// Timing, not a test: `cargo test --release -- --ignored timing --nocapture`.
    #[test]
    #[ignore]
    fn timing() {
        use crate::pipeline::test_support::{cycled, micros_per_call, EVERYDAY};
        let r = rules();
        let text = cycled(EVERYDAY, 500);
        let (us, hits) = micros_per_call(20_000, || r.check(std::hint::black_box(&text)).is_some());
        println!("check() on 500 chars: {us:.2} µs/check ({hits} hits)");
    }
}
