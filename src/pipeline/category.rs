//! Matter categories (Tianjin 12345 measures, article 10): consultation, help, complaint,
//! report, suggestion, praise.
//!
//! Pure and data-driven: keyword rules from `config/rules/categories.toml` (compiled in as the
//! default, reloadable from text). A channel's explicit category always wins; the caller only
//! asks [`CategoryRules::classify`] when the channel gave none.
//!
//! Scoring: each keyword found (leftmost-longest, so 我想投诉 and 投诉 count once) adds its rule's
//! weight to its category; the highest total wins, ties follow the file's `tie_break` order, and
//! a text with no keyword gets the file's `default` (consultation in the shipped file: a text with
//! no marker of grievance, violation, proposal or thanks is most often a question, and it is the
//! category that commits the handling unit to least).

use aho_corasick::{AhoCorasick, MatchKind};
use hotline_adapters::Category;
use serde::Deserialize;

use super::emergency::{normalize, RulesError};

/// The default rule file, compiled into the binary.
pub const BUILTIN_TOML: &str = include_str!("../../config/rules/categories.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: u32,
    default: String,
    #[serde(default)]
    tie_break: Vec<String>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    category: String,
    #[serde(default = "one")]
    weight: u32,
    keywords: Vec<String>,
}

fn one() -> u32 {
    1
}

/// Validated keyword rules for the six categories.
#[derive(Debug, Clone)]
pub struct CategoryRules {
    matcher: AhoCorasick,
    /// Per pattern id: (category slot, weight). A keyword listed under two rules gets both.
    weights: Vec<Vec<(usize, u32)>>,
    default: Category,
    /// Category slots in tie-break order (index into `Category::ALL`).
    order: Vec<usize>,
}

fn slot(c: Category) -> usize {
    Category::ALL.iter().position(|&x| x == c).unwrap_or(0)
}

impl CategoryRules {
    /// The rules shipped in `config/rules/categories.toml`.
    ///
    /// # Panics
    /// Only if the compiled-in file is invalid, which the `builtin_loads` test rules out.
    #[allow(clippy::expect_used)]
    pub fn builtin() -> CategoryRules {
        Self::from_toml_named("categories.toml (builtin)", BUILTIN_TOML)
            .expect("config/rules/categories.toml compiled into the binary must be valid")
    }

    /// Parses and validates a rules file; errors are labelled `categories.toml`.
    pub fn from_toml(text: &str) -> Result<CategoryRules, RulesError> {
        Self::from_toml_named("categories.toml", text)
    }

    /// Parses and validates a rules file, labelling errors with `file`.
    pub fn from_toml_named(file: &str, text: &str) -> Result<CategoryRules, RulesError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| RulesError::single(file, "", e.to_string()))?;
        let mut err = RulesError {
            file: file.to_string(),
            problems: Vec::new(),
        };
        let mut push = |rule: String, message: String| {
            err.problems
                .push(super::emergency::RuleProblem { rule, message });
        };
        if raw.version != 1 {
            push(
                String::new(),
                format!("unsupported version {} (expected 1)", raw.version),
            );
        }
        let default = Category::parse(&raw.default);
        if default.is_none() {
            push(
                "default".into(),
                format!("unknown category {:?}", raw.default),
            );
        }
        let mut order = Vec::new();
        for name in &raw.tie_break {
            match Category::parse(name) {
                Some(c) if order.contains(&slot(c)) => {
                    push("tie_break".into(), format!("{name:?} listed twice"))
                }
                Some(c) => order.push(slot(c)),
                None => push("tie_break".into(), format!("unknown category {name:?}")),
            }
        }
        // Categories missing from tie_break rank after the listed ones, in contract order.
        for (i, _) in Category::ALL.iter().enumerate() {
            if !order.contains(&i) {
                order.push(i);
            }
        }

        let mut phrases: Vec<String> = Vec::new();
        let mut weights: Vec<Vec<(usize, u32)>> = Vec::new();
        for (i, r) in raw.rule.iter().enumerate() {
            let label = format!("rule #{} ({})", i + 1, r.category);
            let Some(cat) = Category::parse(&r.category) else {
                push(label, format!("unknown category {:?}", r.category));
                continue;
            };
            if r.weight == 0 {
                push(label.clone(), "weight must be at least 1".into());
            }
            if r.keywords.is_empty() {
                push(label.clone(), "keywords is empty".into());
            }
            for k in &r.keywords {
                let n = normalize(k).into_owned();
                if n.is_empty() {
                    push(label.clone(), "empty keyword".into());
                    continue;
                }
                let id = match phrases.iter().position(|p| *p == n) {
                    Some(id) => id,
                    None => {
                        phrases.push(n);
                        weights.push(Vec::new());
                        weights.len() - 1
                    }
                };
                if let Some(w) = weights.get_mut(id) {
                    w.push((slot(cat), r.weight));
                }
            }
        }
        if raw.rule.is_empty() {
            push(String::new(), "no [[rule]] declared".into());
        }
        let (Some(default), true) = (default, err.problems.is_empty()) else {
            return Err(err);
        };
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&phrases)
            .map_err(|e| RulesError::single(file, "", format!("cannot build the matcher: {e}")))?;
        Ok(CategoryRules {
            matcher,
            weights,
            default,
            order,
        })
    }

    /// Classifies one matter's text. Never fails: no keyword means the configured default.
    pub fn classify(&self, text: &str) -> Category {
        let scores = self.scores(text);
        if scores.iter().all(|&s| s == 0) {
            return self.default;
        }
        let mut best: Option<(u32, usize)> = None;
        // Walk in tie-break order and keep the first maximum, so ties resolve by that order.
        for &i in &self.order {
            let s = scores.get(i).copied().unwrap_or(0);
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, i));
            }
        }
        best.and_then(|(_, i)| Category::ALL.get(i).copied())
            .unwrap_or(self.default)
    }

    /// Score per category, in `Category::ALL` order (for logs and tuning).
    pub fn scores(&self, text: &str) -> [u32; 6] {
        let norm = normalize(text);
        let mut scores = [0u32; 6];
        let mut seen: Vec<usize> = Vec::new();
        for m in self.matcher.find_iter(norm.as_ref()) {
            let id = m.pattern().as_usize();
            // A keyword repeated in the text counts once: repetition is not more evidence.
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            for &(cat, w) in self.weights.get(id).map(Vec::as_slice).unwrap_or(&[]) {
                if let Some(s) = scores.get_mut(cat) {
                    *s = s.saturating_add(w);
                }
            }
        }
        scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_loads() {
        let r = CategoryRules::builtin();
        assert_eq!(r.classify(""), Category::Consultation);
    }

    /// Labelled examples written for this module (not from any corpus).
    const LABELLED: &[(&str, Category)] = &[
        ("咨询一下社保卡丢了怎么补办", Category::Consultation),
        ("住房公积金提取需要准备什么材料？", Category::Consultation),
        ("请问新生儿医保在哪里办理", Category::Consultation),
        ("想了解一下居住证的办理条件", Category::Consultation),
        ("老年卡可以在网上申请吗？", Category::Consultation),
        ("今年的供暖费标准是多少", Category::Consultation),
        ("孩子上小学的划片政策是怎样的", Category::Consultation),
        (
            "小区门口路灯坏了三天了，晚上很黑，请尽快维修",
            Category::Help,
        ),
        ("我们小区暖气一直不热，室温只有十五度", Category::Help),
        ("家里停电一天了，电力公司电话打不通，求助", Category::Help),
        ("楼上漏水把我家天花板泡了，请帮忙协调", Category::Help),
        ("我是低保户，生活困难，希望能得到救助", Category::Help),
        ("路边井盖丢失了，很危险", Category::Help),
        ("下水道堵了，污水漫到院子里", Category::Help),
        ("我想投诉一下出租车司机绕路", Category::Complaint),
        (
            "隔壁工地夜间施工噪音扰民，每天干到凌晨两点",
            Category::Complaint,
        ),
        ("楼下火锅店油烟太大，熏得我们没法开窗", Category::Complaint),
        ("物业乱收费，停车费涨了一倍", Category::Complaint),
        ("公司拖欠工资三个月了，老板一直推诿", Category::Complaint),
        (
            "窗口工作人员态度恶劣，材料齐全也不给办",
            Category::Complaint,
        ),
        ("健身房倒闭了不退会员费", Category::Complaint),
        ("举报某商店销售过期食品", Category::Report),
        ("有人在河边偷排污水，味道很大", Category::Report),
        ("小区里有人私搭乱建，占了公共绿地", Category::Report),
        ("某某街有个黑作坊在生产地沟油", Category::Report),
        ("有人在路边无证经营，还占道", Category::Report),
        ("建议在学校门口增设人行横道和减速带", Category::Suggestion),
        (
            "希望地铁末班车时间能延长到十二点，建议考虑",
            Category::Suggestion,
        ),
        ("能否增加一条到开发区的公交线路", Category::Suggestion),
        ("公园里应该增加一些座椅", Category::Suggestion),
        ("感谢社区网格员帮我们解决了漏水问题", Category::Praise),
        ("表扬派出所民警热情周到，帮我找回了钱包", Category::Praise),
        ("给120的急救人员点赞，来得非常及时", Category::Praise),
        ("我想给街道办的王同志送一面锦旗", Category::Praise),
        ("你好", Category::Consultation),
    ];

    #[test]
    fn labelled_examples() {
        let r = CategoryRules::builtin();
        let mut wrong = Vec::new();
        for &(text, want) in LABELLED {
            let got = r.classify(text);
            if got != want {
                wrong.push(format!(
                    "{text}: want {} got {} {:?}",
                    want.as_str(),
                    got.as_str(),
                    r.scores(text)
                ));
            }
        }
        println!(
            "categories: {}/{} correct",
            LABELLED.len() - wrong.len(),
            LABELLED.len()
        );
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn ties_follow_tie_break_and_default_applies() {
        let r = CategoryRules::from_toml(
            "version = 1\ndefault = \"help\"\ntie_break = [\"suggestion\", \"complaint\"]\n\
             [[rule]]\ncategory = \"complaint\"\nkeywords = [\"太吵\"]\n\
             [[rule]]\ncategory = \"建议\"\nkeywords = [\"希望\"]\n",
        );
        let r = match r {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(r.classify("太吵了，希望管管"), Category::Suggestion);
        assert_eq!(r.classify("太吵了"), Category::Complaint);
        assert_eq!(r.classify("没有关键词"), Category::Help);
    }

    #[test]
    fn repeated_keyword_counts_once() {
        let r = CategoryRules::builtin();
        let s = r.scores("投诉投诉投诉");
        assert_eq!(s[slot(Category::Complaint)], 4);
    }

    #[test]
    fn invalid_files_report_every_problem() {
        let e = CategoryRules::from_toml_named(
            "x/categories.toml",
            "version = 3\ndefault = \"misc\"\ntie_break = [\"praise\", \"praise\", \"nope\"]\n\
             [[rule]]\ncategory = \"gossip\"\nkeywords = [\"a\"]\n\
             [[rule]]\ncategory = \"help\"\nweight = 0\nkeywords = [\"\"]\n",
        );
        let text = e.err().map(|e| e.to_string()).unwrap_or_default();
        for needle in [
            "x/categories.toml",
            "unsupported version 3",
            "default: unknown category \"misc\"",
            "\"praise\" listed twice",
            "unknown category \"nope\"",
            "unknown category \"gossip\"",
            "weight must be at least 1",
            "empty keyword",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(CategoryRules::from_toml("version = ").is_err());
        assert!(CategoryRules::from_toml("version = 1\ndefault = \"help\"\nbogus = 1\n").is_err());
    }
}
