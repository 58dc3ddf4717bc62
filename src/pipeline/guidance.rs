//! Guidance instead of a work order (Tianjin 12345 measures, article 17(2) and 17(6)).
//!
//! Matters that by law belong to courts, arbitration, administrative review or petitions (信访),
//! and requests outside government services, get guidance. Rules live in
//! `config/rules/guidance.toml` (compiled in as the default, reloadable from text).
//!
//! The action is data: `tag` (the default) accepts the order and tags it with the suggested
//! handling so an agent decides; `inform` answers with the guidance only. Keyword matches are
//! not proof, which is why the shipped rules only tag.

use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};

use super::emergency::{normalize, RuleProblem, RulesError};

/// The default rule file, compiled into the binary.
pub const BUILTIN_TOML: &str = include_str!("../../config/rules/guidance.toml");

/// What the gateway does with a matter that a guidance rule matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuidanceAction {
    /// Accept the order, tag it with the suggested handling; an agent decides.
    #[default]
    Tag,
    /// Answer with the guidance message only; no order is created.
    Inform,
}

/// A matched guidance rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guidance {
    /// Rule name, for the order record and tuning.
    pub rule: String,
    /// Tag or inform.
    pub action: GuidanceAction,
    /// Tag to put on the order (e.g. `guidance:court`).
    pub tag: String,
    /// Chinese guidance for the citizen.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: u32,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    article: String,
    #[serde(default)]
    action: GuidanceAction,
    tag: String,
    message: String,
    keywords: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Keyword(usize),
    Exclude(usize),
}

/// Validated guidance rules.
#[derive(Debug, Clone)]
pub struct GuidanceRules {
    matcher: AhoCorasick,
    roles: Vec<Vec<Role>>,
    rules: Vec<Guidance>,
}

impl GuidanceRules {
    /// The rules shipped in `config/rules/guidance.toml`.
    ///
    /// # Panics
    /// Only if the compiled-in file is invalid, which the `builtin_loads` test rules out.
    #[allow(clippy::expect_used)]
    pub fn builtin() -> GuidanceRules {
        Self::from_toml_named("guidance.toml (builtin)", BUILTIN_TOML)
            .expect("config/rules/guidance.toml compiled into the binary must be valid")
    }

    /// Parses and validates a rules file; errors are labelled `guidance.toml`.
    pub fn from_toml(text: &str) -> Result<GuidanceRules, RulesError> {
        Self::from_toml_named("guidance.toml", text)
    }

    /// Parses and validates a rules file, labelling errors with `file`.
    pub fn from_toml_named(file: &str, text: &str) -> Result<GuidanceRules, RulesError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| RulesError::single(file, "", e.to_string()))?;
        let mut problems = Vec::new();
        let mut push = |rule: &str, message: String| {
            problems.push(RuleProblem {
                rule: rule.to_string(),
                message,
            })
        };
        if raw.version != 1 {
            push(
                "",
                format!("unsupported version {} (expected 1)", raw.version),
            );
        }
        // An empty file is valid: it means "no guidance", which loses nothing (orders are
        // still accepted), unlike an empty emergency rule set.
        let mut phrases: Vec<String> = Vec::new();
        let mut roles: Vec<Vec<Role>> = Vec::new();
        let mut rules = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, r) in raw.rule.iter().enumerate() {
            let label = if r.name.trim().is_empty() {
                format!("rule #{}", i + 1)
            } else {
                format!("rule \"{}\"", r.name)
            };
            if r.name.trim().is_empty() {
                push(&label, "name is empty".into());
            } else if !names.insert(r.name.as_str()) {
                push(&label, "name used twice".into());
            }
            if r.tag.trim().is_empty() {
                push(&label, "tag is empty".into());
            }
            if r.message.trim().is_empty() {
                push(&label, "message is empty".into());
            }
            if r.keywords.is_empty() {
                push(&label, "keywords is empty".into());
            }
            let _ = &r.article; // documentation only
            let words = r
                .keywords
                .iter()
                .map(|k| (k, Role::Keyword(i)))
                .chain(r.exclude.iter().map(|k| (k, Role::Exclude(i))));
            for (k, role) in words {
                let n = normalize(k).into_owned();
                if n.is_empty() {
                    push(&label, "empty keyword or exclude phrase".into());
                    continue;
                }
                let id = match phrases.iter().position(|p| *p == n) {
                    Some(id) => id,
                    None => {
                        phrases.push(n);
                        roles.push(Vec::new());
                        roles.len() - 1
                    }
                };
                if let Some(x) = roles.get_mut(id) {
                    x.push(role);
                }
            }
            rules.push(Guidance {
                rule: r.name.clone(),
                action: r.action,
                tag: r.tag.clone(),
                message: r.message.clone(),
            });
        }
        if !problems.is_empty() {
            return Err(RulesError {
                file: file.to_string(),
                problems,
            });
        }
        // Overlapping, so an exclude phrase (行政诉讼) is seen even where a keyword (诉讼)
        // overlaps it.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&phrases)
            .map_err(|e| RulesError::single(file, "", format!("cannot build the matcher: {e}")))?;
        Ok(GuidanceRules {
            matcher,
            roles,
            rules,
        })
    }

    /// The guidance for `text`, if a rule matches.
    pub fn check(&self, text: &str) -> Option<Guidance> {
        let norm = normalize(text);
        let n = self.rules.len();
        let mut hits: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut excluded = vec![false; n];
        for m in self.matcher.find_overlapping_iter(norm.as_ref()) {
            let id = m.pattern().as_usize();
            for role in self.roles.get(id).map(Vec::as_slice).unwrap_or(&[]) {
                match *role {
                    Role::Keyword(r) => {
                        if let Some(h) = hits.get_mut(r) {
                            if !h.contains(&id) {
                                h.push(id);
                            }
                        }
                    }
                    Role::Exclude(r) => {
                        if let Some(x) = excluded.get_mut(r) {
                            *x = true;
                        }
                    }
                }
            }
        }
        let mut best: Option<(usize, usize)> = None;
        for (r, h) in hits.iter().enumerate() {
            if h.is_empty() || excluded.get(r).copied().unwrap_or(true) {
                continue;
            }
            // Strictly more distinct keywords wins; ties keep the earlier rule (file order).
            if best.is_none_or(|(_, count)| h.len() > count) {
                best = Some((r, h.len()));
            }
        }
        best.and_then(|(r, _)| self.rules.get(r).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag_of(text: &str) -> Option<String> {
        GuidanceRules::builtin().check(text).map(|g| g.tag)
    }

    #[test]
    fn builtin_loads() {
        let r = GuidanceRules::builtin();
        assert!(r.check("路灯坏了").is_none());
    }

    #[test]
    fn each_family() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "我已经向区法院起诉了，想问问什么时候开庭",
                Some("guidance:court"),
            ),
            (
                "法院判决书下来半年了，对方一直不履行，申请强制执行也没用",
                Some("guidance:court"),
            ),
            (
                "单位拖欠工资，我想申请劳动仲裁，仲裁委在哪",
                Some("guidance:arbitration"),
            ),
            (
                "对区城管局的处罚决定不服，想申请行政复议",
                Some("guidance:administrative-review"),
            ),
            (
                "我想提起行政诉讼，告区政府",
                Some("guidance:administrative-review"),
            ),
            (
                "我的信访事项已经受理三个月了，没有答复",
                Some("guidance:petition"),
            ),
            ("帮我算命看看今年运势", Some("guidance:outside-scope")),
            ("推荐股票，最近买哪只股票好", Some("guidance:outside-scope")),
            // Near misses: ordinary matters that merely mention a court or a word nearby.
            ("法院门口每天乱停车，堵得走不了", None),
            ("交通事故认定书怎么申请复核", None),
            ("单位拖欠工资三个月了，老板不见人", None),
            ("小区路灯不亮", None),
        ];
        for &(text, want) in cases {
            assert_eq!(tag_of(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn defaults_and_inform() {
        let r = GuidanceRules::from_toml(
            "version = 1\n[[rule]]\nname = \"a\"\ntag = \"t\"\nmessage = \"m\"\nkeywords = [\"算命\"]\n\
             [[rule]]\nname = \"b\"\naction = \"inform\"\ntag = \"u\"\nmessage = \"n\"\nkeywords = [\"彩票\", \"号码\"]\n",
        );
        let r = match r {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let a = r.check("算命");
        assert_eq!(a.as_ref().map(|g| g.action), Some(GuidanceAction::Tag));
        // More distinct keywords wins over file order.
        let b = r.check("算命，还有彩票号码");
        assert_eq!(b.as_ref().map(|g| g.rule.as_str()), Some("b"));
        assert_eq!(b.as_ref().map(|g| g.action), Some(GuidanceAction::Inform));
        // An empty file is allowed: no guidance at all.
        assert!(GuidanceRules::from_toml("version = 1").is_ok());
    }

    #[test]
    fn invalid_files_report_every_problem() {
        let e = GuidanceRules::from_toml_named(
            "g.toml",
            "version = 9\n[[rule]]\nname = \"x\"\ntag = \"\"\nmessage = \" \"\nkeywords = []\n\
             [[rule]]\nname = \"x\"\ntag = \"t\"\nmessage = \"m\"\nkeywords = [\"\"]\n",
        );
        let text = e.err().map(|e| e.to_string()).unwrap_or_default();
        for needle in [
            "g.toml",
            "unsupported version 9",
            "tag is empty",
            "message is empty",
            "keywords is empty",
            "name used twice",
            "empty keyword",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        let e = GuidanceRules::from_toml(
            "version = 1\n[[rule]]\nname = \"x\"\naction = \"refuse\"\ntag = \"t\"\nmessage = \"m\"\nkeywords = [\"a\"]\n",
        );
        let text = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("refuse"), "{text}");
    }
}
