//! Text similarity for repeat requests (Tianjin 12345 measures, article 17(5)).
//!
//! The same identity sending the same matter again while its order is open is merged into that
//! order. "Same matter" is decided by [`similarity`] over normalised text against a configured
//! threshold (the caller owns the threshold, the time window and the identity check).
//!
//! Measure: Dice coefficient over character bigrams (as multisets), `2·|A∩B| / (|A|+|B|)`, on
//! text normalised by [`normalize`]: NFC, full-width ASCII to half-width, ASCII lower case, and
//! every character that is not a letter or digit dropped (punctuation, whitespace, emoji), so a
//! re-sent complaint with other punctuation or spacing scores 1.0. Chinese has no spaces, which
//! is why bigrams of characters (not words) are used.
//!
//! Cost: O(n log n) in the text length (sort and merge of packed bigrams, no hashing); two
//! 4000-character texts compare in well under a millisecond. When one new text is compared with
//! many open orders, build a [`Shingles`] once per text.

use unicode_normalization::UnicodeNormalization;

/// Normalises for comparison: NFC, full-width ASCII to half-width, ASCII lower case, and only
/// letters and digits kept (CJK ideographs count as letters).
pub fn normalize(text: &str) -> String {
    // Most hotline text is ASCII, CJK ideographs and CJK/full-width punctuation, which NFC leaves
    // unchanged; skipping the normaliser (and its per-char table lookups) for such text is the
    // difference between ~100 µs and ~300 µs on a 4000-character text.
    let trivially_nfc = text.chars().all(|c| {
        matches!(c, '\0'..='\u{7F}' | '\u{3000}'..='\u{3029}' | '\u{4E00}'..='\u{9FFF}' | '\u{FF00}'..='\u{FFEF}')
    });
    let mut out = String::with_capacity(text.len());
    let mut push = |c: char| {
        // The full-width block mirrors ASCII 0x21..=0x7E at a fixed offset.
        let c = match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        };
        // Fast paths before the general (table-driven) Unicode test.
        let keep = match c {
            '\u{4E00}'..='\u{9FFF}' => true,
            '\0'..='\u{7F}' => c.is_ascii_alphanumeric(),
            '\u{3000}'..='\u{303F}' | '\u{FF00}'..='\u{FF0F}' => false,
            c => c.is_alphanumeric(),
        };
        if keep {
            out.push(c.to_ascii_lowercase());
        }
    };
    if trivially_nfc {
        text.chars().for_each(&mut push);
    } else {
        text.nfc().for_each(&mut push);
    }
    out
}

/// The sorted bigrams of one normalised text, reusable across many comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shingles {
    /// Each bigram packed as `(first << 32) | second`, sorted.
    grams: Vec<u64>,
    /// The normalised text when it is shorter than two characters (no bigram to compare).
    short: Option<String>,
}

impl Shingles {
    /// Normalises `text` and collects its bigrams.
    pub fn new(text: &str) -> Shingles {
        let norm: Vec<char> = normalize(text).chars().collect();
        if norm.len() < 2 {
            return Shingles {
                grams: Vec::new(),
                short: Some(norm.into_iter().collect()),
            };
        }
        let mut grams: Vec<u64> = norm
            .windows(2)
            .map(|w| match w {
                [a, b] => (u64::from(*a as u32) << 32) | u64::from(*b as u32),
                _ => 0,
            })
            .collect();
        grams.sort_unstable();
        Shingles { grams, short: None }
    }

    /// Dice similarity in [0, 1] with another text's shingles.
    ///
    /// Texts with fewer than two letters or digits compare equal (1.0) only when identical and
    /// non-empty; an empty text is similar to nothing (0.0), so blank submissions never merge.
    pub fn similarity(&self, other: &Shingles) -> f64 {
        match (&self.short, &other.short) {
            (Some(a), Some(b)) => return if !a.is_empty() && a == b { 1.0 } else { 0.0 },
            (Some(_), None) | (None, Some(_)) => return 0.0,
            (None, None) => {}
        }
        let (a, b) = (&self.grams, &other.grams);
        let common = shared(a, b);
        let total = a.len() + b.len();
        if total == 0 {
            return 0.0;
        }
        (2 * common) as f64 / total as f64
    }

    /// The share of this text's bigrams that `other` holds, in [0, 1]: near 1 when this text
    /// is a part of the other (one matter of a list the other sent whole). An empty or
    /// one-letter text is contained in nothing.
    pub fn contained_in(&self, other: &Shingles) -> f64 {
        if self.short.is_some() || self.grams.is_empty() {
            return 0.0;
        }
        shared(&self.grams, &other.grams) as f64 / self.grams.len() as f64
    }
}

/// How many bigram occurrences two sorted multisets share: a merge, each shared occurrence
/// counted once.
fn shared(a: &[u64], b: &[u64]) -> usize {
    let (mut i, mut j, mut common) = (0usize, 0usize, 0usize);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match x.cmp(y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common
}

/// The share of `part`'s bigrams found in `whole` (see [`Shingles::contained_in`]).
pub fn containment(part: &str, whole: &str) -> f64 {
    Shingles::new(part).contained_in(&Shingles::new(whole))
}

/// Dice similarity of character bigrams of the normalised texts, in [0, 1].
pub fn similarity(a: &str, b: &str) -> f64 {
    Shingles::new(a).similarity(&Shingles::new(b))
}

/// Whether a character ends an introduction that announces the matter after it ("我反映一个
/// 问题：", "投诉如下："): a colon. A shared opening that ends with a comma or a full stop is
/// set aside only when it is made of greetings and self-introductions ([`introduction`]): that
/// is also how a person sends the same complaint again with another last clause ("…非常危险，
/// 请尽快修复" and "…非常危险，已经三天了"), the matter in the shared part.
fn ends_introduction(c: char) -> bool {
    matches!(c, '：' | ':')
}

/// Whether a character ends a clause of an opening (a greeting, a self-introduction): a comma,
/// full stop, exclamation mark, semicolon or colon, full-width or not, or a line break.
fn ends_clause(c: char) -> bool {
    matches!(
        c,
        '，' | '。' | '！' | '；' | '：' | ',' | '.' | '!' | ';' | ':' | '\n'
    )
}

/// Whether a character ends a sentence, after which a shared closing may begin (a sign-off:
/// "。我是某某小区的居民，请尽快处理，谢谢！").
fn ends_sentence(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '!' | '?' | '\n')
}

/// How many letters and digits a shared opening or closing must hold to be set aside: an
/// introduction or a sign-off (an address, a name, a phone number), not a shared "请尽快修复".
const SHARED_CLAUSES_MIN: usize = 8;

/// Letters and digits in a text, as [`normalize`] keeps them.
fn letters(text: &str) -> usize {
    text.chars().filter(|c| c.is_alphanumeric()).count()
}

/// Whom a greeting addresses before its "好" ("工作人员您好", "尊敬的领导", "12345热线你好"),
/// as [`normalize`] leaves them; they may follow one another.
const ADDRESSEES: &[&str] = &[
    "尊敬的",
    "亲爱的",
    "各位",
    "12345",
    "热线",
    "市长",
    "书记",
    "领导",
    "政府",
    "工作人员",
    "接线员",
    "客服",
    "同志",
    "师傅",
    "老师",
    "你们",
    "您们",
];

/// Greetings proper, after any addressee ("你们" + "好" is "你们好").
const GREETINGS: &[&str] = &[
    "您好",
    "你好",
    "大家好",
    "早上好",
    "上午好",
    "中午好",
    "下午好",
    "晚上好",
    "好",
    "喂",
    "在吗",
    "hello",
    "hi",
];

/// The bytes a greeting takes at the start of a normalised clause: "您好", "工作人员您好",
/// "尊敬的领导" (an addressee alone is a greeting when nothing follows it in the clause), with a
/// particle after it ("您好呀"). 0 when the clause does not open with one.
fn greeting_len(clause: &str) -> usize {
    let mut rest = clause;
    while let Some(a) = ADDRESSEES.iter().find(|a| rest.starts_with(**a)) {
        rest = &rest[a.len()..];
    }
    let addressed = rest.len() < clause.len();
    let greeting = GREETINGS
        .iter()
        .filter(|g| rest.starts_with(**g))
        .max_by_key(|g| g.len());
    match greeting {
        Some(g) => {
            rest = rest[g.len()..].trim_start_matches(['呀', '啊', '哈']);
            clause.len() - rest.len()
        }
        None if addressed && rest.is_empty() => clause.len(),
        None => 0,
    }
}

/// How a self-introduction opens, and what must follow for it to be one.
#[derive(Clone, Copy)]
enum Opens {
    /// "我家住…", "我住在…": a place must follow ([`is_place`]).
    Residence,
    /// "我是…", "本人是…": who the person is, ending in a word such as 居民 or 业主, with or
    /// without a name after it ([`is_identity`]).
    Identity,
    /// "我叫…", "我姓…": a name ([`is_name`]).
    Name,
}

/// The openings of a self-introduction (normalised: no punctuation or spaces). Several may open
/// one clause ("我是住在…" is also "我是…"): the clause is one when any of them fits.
const INTRODUCTIONS: &[(&str, Opens)] = &[
    ("我是住在", Opens::Residence),
    ("我家住在", Opens::Residence),
    ("我家住", Opens::Residence),
    ("我住在", Opens::Residence),
    ("我住", Opens::Residence),
    ("本人住在", Opens::Residence),
    ("本人住", Opens::Residence),
    ("本人家住", Opens::Residence),
    ("我们住在", Opens::Residence),
    ("我们家住在", Opens::Residence),
    ("我们家住", Opens::Residence),
    ("我们住", Opens::Residence),
    ("家住", Opens::Residence),
    ("我是", Opens::Identity),
    ("我们是", Opens::Identity),
    ("我们都是", Opens::Identity),
    ("本人是", Opens::Identity),
    ("本人系", Opens::Identity),
    ("本人为", Opens::Identity),
    ("本人", Opens::Identity),
    ("我叫", Opens::Name),
    ("我名叫", Opens::Name),
    ("我姓", Opens::Name),
    ("本人姓", Opens::Name),
    ("本人叫", Opens::Name),
    ("本人名叫", Opens::Name),
    ("我的名字是", Opens::Name),
    ("我的名字叫", Opens::Name),
];

/// The last characters of a place one lives at: 小区, 社区, 村, 路, 巷, 号, 栋, 幢, 楼, 单元,
/// 室, 家园, 公寓, 大厦, 附近, 对面, 城东…
const PLACE_ENDS: &str =
    "区村庄屯镇乡县市省街路道巷弄同里苑园府城湾居邸院号栋幢座楼元室户层门口近边面带寓厦舍场心侧期屋东西南北头旁外内";

/// Words that say who a person is, ending the self-introduction (a name may follow).
const IDENTITIES: &[&str] = &[
    "居民",
    "业主",
    "住户",
    "租户",
    "村民",
    "市民",
    "户主",
    "房主",
    "房东",
    "租客",
    "房客",
    "商户",
    "店主",
    "职工",
    "员工",
    "工人",
    "人员",
    "家长",
    "学生",
    "老人",
    "患者",
    "病人",
    "消费者",
    "车主",
    "司机",
    "骑手",
    "农民",
    "农户",
    "教师",
    "老师",
    "志愿者",
    "群众",
    "党员",
    "公民",
    "乘客",
    "用户",
    "一员",
    "代表",
];

/// What never opens who a person is after 我是 or 本人是, but opens a matter ("我是来反映…",
/// "我是想问…", "我是在…被…").
const IDENTITY_NEVER_OPENS: &str = "来想要去在给替帮为被打问说对向跟和把让不没已也还就才都很";

/// Common surnames: an untitled name ("张三", "王建国") is taken as one only after them, so a
/// verb after 我叫 or after 业主 ("我叫了…") is not a name.
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵钱严覃武戴莫孔汤";

/// Compound surnames (an untitled name of up to four characters then).
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "诸葛", "上官", "东方", "慕容", "令狐", "皇甫", "公孙", "司徒", "夏侯", "端木",
    "尉迟", "长孙", "宇文",
];

/// What follows a surname to name a person politely ("张先生", "李女士", "王阿姨").
const TITLES: &[&str] = &[
    "先生", "女士", "小姐", "阿姨", "大爷", "大妈", "大姐", "大哥", "师傅", "老师", "同学", "奶奶",
    "爷爷",
];

/// Whether a normalised text is a person's name: a surname with a title ("张先生", "欧阳女士"),
/// 老 or 小 with a surname ("老王"), or a common surname with one or two given characters
/// ("张三", "王建国"; three after a compound surname).
fn is_name(text: &str) -> bool {
    let han = |s: &str| !s.is_empty() && s.chars().all(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c));
    let count = text.chars().count();
    if let Some(surname) = TITLES.iter().find_map(|t| text.strip_suffix(*t)) {
        return han(surname) && surname.chars().count() <= 2;
    }
    if let Some(surname) = text.strip_prefix('老').or_else(|| text.strip_prefix('小')) {
        return surname.chars().count() == 1 && SURNAMES.contains(surname);
    }
    if COMPOUND_SURNAMES.iter().any(|s| text.starts_with(*s)) {
        return han(text) && (3..=4).contains(&count);
    }
    han(text)
        && (2..=3).contains(&count)
        && text.chars().next().is_some_and(|c| SURNAMES.contains(c))
}

/// Whether a normalised text is a surname alone, as after 我姓 ("我姓张").
fn is_surname(text: &str) -> bool {
    (text.chars().count() == 1 && SURNAMES.contains(text)) || COMPOUND_SURNAMES.contains(&text)
}

/// Whether a normalised text is a place one lives at: it ends as one ([`PLACE_ENDS`]) or in a
/// number (a flat, "2单元302"), and it does not open with 的 ("我家住的楼…" tells a matter).
fn is_place(text: &str) -> bool {
    !text.starts_with('的')
        && text
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_digit() || PLACE_ENDS.contains(c))
}

/// Whether a normalised text says who a person is, after 我是 or 本人是: it ends in an
/// identity ([`IDENTITIES`], "…3栋的居民", "…的业主们"), with or without a name after it
/// ("…的业主李先生"), or is a place and 的 ("3栋302的"), or a polite name ("张先生").
fn is_identity(text: &str) -> bool {
    // "我是来反映…的", "我是想问…": a verb after 我是 tells the matter, whatever it ends in.
    if text.starts_with(|c| IDENTITY_NEVER_OPENS.contains(c)) {
        return false;
    }
    let text = text.strip_suffix('们').unwrap_or(text);
    let ends_as_one = |t: &str| IDENTITIES.iter().any(|i| t.ends_with(*i));
    if ends_as_one(text) {
        return true;
    }
    // An identity, then a name of up to four characters.
    let named = text.char_indices().rev().take(4).any(|(i, _)| {
        let (head, tail) = text.split_at(i);
        ends_as_one(head) && is_name(tail)
    });
    named
        || text.strip_suffix('的').is_some_and(is_place)
        || (is_name(text)
            && (TITLES.iter().any(|t| text.ends_with(*t)) || text.starts_with(['老', '小'])))
}

/// Whether a normalised clause gives a phone number: "电话13812345678", "我的手机号是…",
/// "联系方式…": the words then 7 to 15 digits and nothing else (a clause about a phone that
/// does not answer is a matter).
fn is_phone(clause: &str) -> bool {
    let rest = clause
        .strip_prefix("我的")
        .or_else(|| clause.strip_prefix("本人"))
        .unwrap_or(clause);
    let rest = rest.strip_prefix("联系").unwrap_or(rest);
    let Some(rest) = ["电话", "手机", "方式"]
        .iter()
        .find_map(|w| rest.strip_prefix(*w))
    else {
        return false;
    };
    let digits = rest.trim_start_matches(['号', '码', '是', '为']);
    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// What a clause of an opening is, for [`shared_introduction`]: its self-introduction as
/// normalised words ("我是阳光小区3栋的居民"), empty for a greeting alone ("您好", "工作人员您
/// 好"), `None` for anything else (the matter, a request, an announcement). A greeting that
/// opens a self-introduction in one clause ("您好我是…") is left out of its words.
fn introduction(clause: &str) -> Option<String> {
    let norm = normalize(clause);
    let words = &norm[greeting_len(&norm)..];
    let introduces = words.is_empty()
        || is_phone(words)
        || INTRODUCTIONS.iter().any(|(opening, opens)| {
            words
                .strip_prefix(*opening)
                .is_some_and(|rest| match opens {
                    Opens::Residence => is_place(rest),
                    Opens::Identity => is_identity(rest),
                    Opens::Name => is_name(rest) || is_surname(rest),
                })
        });
    introduces.then(|| words.to_string())
}

/// The greeting and self-introduction clauses a text opens with, each as (the byte after its
/// clause end, its self-introduction's words or "" for a greeting): up to the first clause
/// that is neither, or the end of the text (a last clause without its end is the matter).
fn opening_clauses(text: &str) -> Vec<(usize, String)> {
    let mut clauses = Vec::new();
    let mut from = 0;
    for (i, c) in text.char_indices() {
        if !ends_clause(c) {
            continue;
        }
        match introduction(&text[from..i]) {
            Some(words) => clauses.push((i + c.len_utf8(), words)),
            None => break,
        }
        from = i + c.len_utf8();
    }
    clauses
}

/// Where the self-introduction two texts open with ends in each, and how many letters and
/// digits it holds: the leading self-introduction clauses both tell in the same words and
/// order ("我是阳光小区3栋的居民，", "电话13812345678，"), with any greetings among them
/// whatever they are ("您好，" in one, "你好！" in the other). (0, 0, 0) when they share none.
fn shared_introduction(a: &str, b: &str) -> (usize, usize, usize) {
    let told = |text: &str| {
        opening_clauses(text)
            .into_iter()
            .filter(|(_, words)| !words.is_empty())
    };
    let mut cut = (0, 0, 0);
    for ((end_a, words_a), (end_b, words_b)) in told(a).zip(told(b)) {
        if words_a != words_b {
            break;
        }
        cut = (end_a, end_b, cut.2 + letters(&words_a));
    }
    cut
}

/// The longest common prefix of two texts up to its last colon ([`ends_introduction`]), in
/// bytes (the same in both).
fn shared_announcement(a: &str, b: &str) -> usize {
    // Equal characters so far are equal bytes: the offset is the same in both texts.
    let mut start = 0;
    for ((i, ca), cb) in a.char_indices().zip(b.chars()) {
        if ca != cb {
            break;
        }
        if ends_introduction(ca) {
            start = i + ca.len_utf8();
        }
    }
    start
}

/// Where the opening two texts share ends in each, when it is one to set aside: their shared
/// self-introduction ([`shared_introduction`]) and then their shared prefix up to its last
/// colon ([`shared_announcement`]), together at least [`SHARED_CLAUSES_MIN`] letters or digits
/// (a greeting's not counted: it says nothing of who writes, and a bare "您好，" shared is set
/// aside or kept to the same effect, one bigram). Otherwise the shared prefix up to its last
/// colon alone, of that length (greeting included, as before 2026-12-07's comma rule); else
/// nothing, (0, 0).
fn shared_opening(a: &str, b: &str) -> (usize, usize) {
    let (intro_a, intro_b, intro_letters) = shared_introduction(a, b);
    if intro_letters > 0 {
        let colon = shared_announcement(&a[intro_a..], &b[intro_b..]);
        if intro_letters + letters(&a[intro_a..intro_a + colon]) >= SHARED_CLAUSES_MIN {
            return (intro_a + colon, intro_b + colon);
        }
    }
    let colon = shared_announcement(a, b);
    if letters(&a[..colon]) >= SHARED_CLAUSES_MIN {
        (colon, colon)
    } else {
        (0, 0)
    }
}

/// The two texts without the introduction and the sign-off they share: the opening of
/// [`shared_opening`] (greetings and self-introductions, and an introduction up to a colon),
/// and the longest common suffix from its first sentence end ([`ends_sentence`]) when it holds
/// at least [`SHARED_CLAUSES_MIN`] letters or digits.
fn without_shared_clauses<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    let (start_a, start_b) = shared_opening(a, b);
    let (a, b) = (&a[start_a..], &b[start_b..]);
    let (mut end_a, mut end_b) = (a.len(), b.len());
    for ((ia, ca), (ib, cb)) in a.char_indices().rev().zip(b.char_indices().rev()) {
        if ca != cb {
            break;
        }
        if ends_sentence(ca) {
            (end_a, end_b) = (ia, ib);
        }
    }
    if letters(&a[end_a..]) < SHARED_CLAUSES_MIN {
        (end_a, end_b) = (a.len(), b.len());
    }
    (&a[..end_a], &b[..end_b])
}

/// Whether two submissions of one person tell the same matter, as a score in [0, 1] to hold
/// against the repeat threshold: [`similarity`] of what is left of each once the introduction
/// and the sign-off both share are set aside ([`without_shared_clauses`]), or of the whole
/// texts when one of them is nothing but those (a complaint sent again with a sentence added
/// is the same matter).
///
/// The first cut (the same day) set aside any shared opening up to a comma: a complaint sent
/// again with another last clause ("…非常危险，请尽快修复", then "…非常危险，已经三天了", 0.81
/// as whole texts) was judged on its last clauses alone and made a second order (the review of
/// this session's code). So an opening ending in a comma or full stop is set aside only as far
/// as it is greetings and self-introductions ([`introduction`]: "您好，", "我是阳光小区3栋的居
/// 民，", "电话138…，"), whole clauses both texts tell alike; the first clause that tells
/// anything else ("小区门口的路灯坏了，") and all after it are judged. An introduction ending in
/// a colon, and a sign-off that is a sentence of its own, both of some length, are set aside as
/// before.
///
/// A person who opens every message with the same introduction (an address, "我反映一个问题")
/// made two different matters as alike as a repeat: "…我反映一个问题：路灯坏了" and "…：井盖丢了"
/// scored above 0.75, and the second matter went into the first order as a contact, never
/// reaching a handler (until 2026-12-07; with the introduction ending in a comma, "您好，我是阳
/// 光小区3栋的居民，小区门口的路灯坏了" and "…，楼下的井盖丢了", until the twenty-second session
/// of that day). Judged on the clauses that differ, a short matter can now look new where the
/// introduction made it a repeat ("路灯坏了" against "路灯不亮"), as it does from a person who
/// never introduces themselves: a second order a handler merges costs less than a matter nobody
/// hears.
pub fn matter_similarity(a: &str, b: &str) -> f64 {
    let (ra, rb) = without_shared_clauses(a, b);
    if (ra.len(), rb.len()) == (a.len(), b.len()) {
        return similarity(a, b);
    }
    let (sa, sb) = (Shingles::new(ra), Shingles::new(rb));
    let blank = |s: &Shingles| s.short.as_ref().is_some_and(|t| t.is_empty());
    if blank(&sa) || blank(&sb) {
        return similarity(a, b);
    }
    sa.similarity(&sb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(
            normalize("Ａｂｃ１２３，路灯　坏了！ ok"),
            "abc123路灯坏了ok"
        );
        // NFC: e + combining acute equals precomposed é.
        assert_eq!(normalize("cafe\u{301}"), normalize("caf\u{e9}"));
        assert_eq!(similarity("路灯坏了！！！", "路灯 坏了。"), 1.0);
    }

    #[test]
    fn bounds_and_edges() {
        assert_eq!(similarity("", ""), 0.0);
        assert_eq!(similarity("，。！", "？"), 0.0);
        assert_eq!(similarity("火", "火"), 1.0);
        assert_eq!(similarity("火", "水"), 0.0);
        assert_eq!(similarity("火", "火灾"), 0.0);
        assert_eq!(similarity("aaaa", "aa"), 0.5);
        for (a, b) in [
            ("路灯坏了", "井盖丢了"),
            ("abc", "abd"),
            ("小区停水", "小区停水了"),
        ] {
            let s = similarity(a, b);
            assert!((0.0..=1.0).contains(&s));
            assert_eq!(s, similarity(b, a), "symmetric");
        }
    }

    /// Scores of realistic pairs; the gateway's threshold should sit between the two groups
    /// (these examples separate anywhere from 0.6 to 0.85; 0.75 is a sensible default).
    #[test]
    fn near_duplicates_versus_different_matters() {
        let base = "河西区友谊路某某里小区3号楼门口的路灯坏了一个多星期了，晚上特别黑，老人孩子出行很不安全，请尽快安排维修。";
        let near = [
            // Re-sent with other punctuation and a full-width number.
            "河西区友谊路某某里小区３号楼门口的路灯坏了一个多星期了 晚上特别黑 老人孩子出行很不安全 请尽快安排维修",
            // Re-sent with a pressing addition.
            "河西区友谊路某某里小区3号楼门口的路灯坏了一个多星期了，晚上特别黑，老人孩子出行很不安全，请尽快安排维修。上次反映了还没人来！",
            // Lightly reworded.
            "河西区友谊路某某里小区3号楼门口路灯坏了一个多星期，晚上特别黑，老人和孩子出行很不安全，请尽快维修。",
        ];
        let different = [
            // Same address, different matter.
            "河西区友谊路某某里小区3号楼门口的井盖丢了，晚上特别黑，很危险，请尽快处理。",
            "河西区友谊路某某里小区3号楼楼上装修噪音太大，每天早上七点就开始，请管一管。",
            "南开区某某路的路灯坏了",
            "咨询一下社保卡丢了怎么补办",
        ];
        let mut min_near = f64::MAX;
        for n in near {
            let s = similarity(base, n);
            println!("near {s:.3} {n}");
            min_near = min_near.min(s);
        }
        let mut max_diff = 0.0f64;
        for d in different {
            let s = similarity(base, d);
            println!("diff {s:.3} {d}");
            max_diff = max_diff.max(s);
        }
        assert!(min_near >= 0.75, "near duplicates score {min_near}");
        assert!(max_diff <= 0.6, "different matters score {max_diff}");
        assert!(min_near - max_diff >= 0.15);
    }

    /// A shared introduction or sign-off does not make two matters one; a repeat told with
    /// them is still a repeat.
    #[test]
    fn shared_opening_and_closing_clauses_are_set_aside() {
        let intro = "您好，我是河西区友谊路某某里小区3号楼2单元的居民，我叫张三，我反映一个问题：";
        let close = "。我是河西区友谊路某某里小区3号楼2单元的居民，请尽快处理，谢谢！";
        for (a, b) in [
            (format!("{intro}路灯坏了"), format!("{intro}井盖丢了")),
            (format!("路灯坏了{close}"), format!("井盖丢了{close}")),
        ] {
            let (whole, matter) = (similarity(&a, &b), matter_similarity(&a, &b));
            assert!(whole >= 0.75, "the premise: {whole}");
            assert!(matter < 0.5, "{matter}");
        }
        // A repeat with both: the differing clauses still match.
        let a = format!("{intro}门口的路灯坏了一个多星期了，晚上特别黑{close}");
        let b = format!("{intro}门口路灯坏了一个多星期，晚上特别黑{close}");
        assert!(
            matter_similarity(&a, &b) >= 0.75,
            "{}",
            matter_similarity(&a, &b)
        );
        // The same text, and the same text with a sentence added.
        assert_eq!(matter_similarity(&a, &a), 1.0);
        let more = format!("{a}上次反映了还没人来！");
        assert!(
            matter_similarity(&a, &more) >= 0.75,
            "{}",
            matter_similarity(&a, &more)
        );
        // Texts of clause ends only, empty ones, and clause ends of one and several bytes at
        // either end: a score in range, and never a cut inside a character.
        for (x, y) in [
            ("", ""),
            ("，", "，"),
            ("。", ""),
            ("a。", "b。"),
            ("。a", "。a"),
            ("，火。", "，水。"),
            ("路，灯.", "路，灯."),
            ("é，x", "é，y"),
        ] {
            let m = matter_similarity(x, y);
            assert!((0.0..=1.0).contains(&m), "{x:?} {y:?}: {m}");
            assert_eq!(m, matter_similarity(y, x), "symmetric: {x:?} {y:?}");
        }
        // The same complaint sent again with another last clause, or one added after a comma,
        // is the same matter: no introduction (no colon) and no sign-off of its own sentence,
        // so the whole texts are judged (the first cut judged the last clauses alone, and these
        // made second orders).
        for (x, y) in [
            (
                "和平路与解放路路口的红绿灯坏了，车辆乱行，非常危险，请尽快修复",
                "和平路与解放路路口的红绿灯坏了，车辆乱行，非常危险，已经三天了",
            ),
            (
                "小区门口路灯坏了一个多星期了，晚上很黑",
                "小区门口路灯坏了一个多星期了，晚上很黑，麻烦尽快处理",
            ),
            (
                "红绿灯坏了三天了。请尽快修复",
                "红绿灯坏了好几天了。请尽快修复",
            ),
        ] {
            assert_eq!(matter_similarity(x, y), similarity(x, y), "{x} / {y}");
            assert!(matter_similarity(x, y) >= 0.75, "{x} / {y}");
        }
        // A short shared opening before a colon is no introduction: "投诉：" is kept.
        assert_eq!(
            matter_similarity("投诉：路灯坏了", "投诉：路灯不亮"),
            similarity("投诉：路灯坏了", "投诉：路灯不亮")
        );
        // A clause that only begins alike is kept whole: the texts are judged as they are.
        assert_eq!(
            matter_similarity("路灯坏了很久", "路灯不亮很久"),
            similarity("路灯坏了很久", "路灯不亮很久")
        );
    }

    /// Two matters from a person who opens every message with the same greeting and
    /// self-introduction, ending in a comma, are two matters: the introduction is set aside.
    /// Before 2026-12-07's twenty-second session the shared introduction made them alike.
    #[test]
    fn a_shared_self_introduction_ending_in_a_comma_is_set_aside() {
        for (a, b) in [
            (
                "您好，我是阳光小区3栋的居民，小区门口的路灯坏了",
                "您好，我是阳光小区3栋的居民，楼下的井盖丢了",
            ),
            (
                "你好，我是幸福里小区5号楼2单元的业主李先生，电话13812345678，楼道里的灯坏了",
                "你好，我是幸福里小区5号楼2单元的业主李先生，电话13812345678，电梯停在半层不动",
            ),
            (
                "工作人员您好！本人是和平区南京路金色家园的租户，房东不退押金",
                "工作人员您好！本人是和平区南京路金色家园的租户，物业乱收停车费",
            ),
            (
                "我家住在河东区向阳路兴隆村东头，村口的垃圾没人清运",
                "我家住在河东区向阳路兴隆村东头，自来水发黄有异味",
            ),
            (
                "我是住在滨海新区海景花园12栋的住户，我叫王建国，楼上装修噪音太大",
                "我是住在滨海新区海景花园12栋的住户，我叫王建国，地下车库漏水严重",
            ),
            // A greeting in the same clause, other greetings and punctuation, full-width digits.
            (
                "您好我是红旗路幸福家园3号楼302的，我的手机号是13900001111。小区绿化带被占用种菜",
                "你好！我是红旗路幸福家园３号楼302的，我的手机号是13900001111，健身器材坏了",
            ),
            (
                "尊敬的领导：我们是南开区长江道华苑小区的全体业主；小区供暖温度不达标",
                "领导您好，我们是南开区长江道华苑小区的全体业主，电动车棚没有充电桩",
            ),
        ] {
            let (whole, matter) = (similarity(a, b), matter_similarity(a, b));
            println!("{whole:.3} {matter:.3} {a} / {b}");
            assert!(whole > matter + 0.2, "{whole} {matter}: {a} / {b}");
            assert!(matter < 0.5, "{matter}: {a} / {b}");
            assert_eq!(matter, matter_similarity(b, a), "symmetric");
        }
        // An introduction with an address to the unit and a name or phone is past the repeat
        // threshold (0.75) as whole texts, where the matter is short: the gap this closes.
        for (a, b) in [
            (
                "你好，我是幸福里小区5号楼2单元的业主李先生，电话13812345678，楼道里的灯坏了",
                "你好，我是幸福里小区5号楼2单元的业主李先生，电话13812345678，电梯停在半层不动",
            ),
            (
                "工作人员您好！本人是和平区南京路金色家园的租户，房东不退押金",
                "工作人员您好！本人是和平区南京路金色家园的租户，物业乱收停车费",
            ),
        ] {
            assert!(
                similarity(a, b) >= 0.75,
                "the premise: {}",
                similarity(a, b)
            );
            assert!(matter_similarity(a, b) < 0.75, "{a} / {b}");
        }
        // The same matter told again after the same introduction is still a repeat, with
        // another last clause too (its matter clauses are judged, not its last clause alone).
        let intro = "您好，我是阳光小区3栋2单元的业主，我姓张，电话13622220101，";
        for (x, y) in [
            (
                "和平路与解放路路口的红绿灯坏了，车辆乱行，非常危险，请尽快修复",
                "和平路与解放路路口的红绿灯坏了，车辆乱行，非常危险，已经三天了",
            ),
            (
                "小区门口的路灯坏了一个多星期了，晚上特别黑",
                "小区门口的路灯坏了一个多星期了，晚上特别黑，老人出行不安全",
            ),
            (
                "楼上装修噪音太大，每天早上七点就开始",
                "楼上装修噪音太大，每天早上七点就开始。",
            ),
        ] {
            let (a, b) = (format!("{intro}{x}"), format!("{intro}{y}"));
            assert_eq!(matter_similarity(&a, &b), similarity(x, y), "{a} / {b}");
            assert!(matter_similarity(&a, &b) >= 0.75, "{a} / {b}");
        }
    }

    /// Only whole greeting and self-introduction clauses both texts open with are set aside:
    /// a shared clause that tells the matter, or opens like an introduction and tells it, is
    /// judged, and so is a shared introduction too short to be one.
    #[test]
    fn shared_clauses_that_tell_the_matter_are_kept() {
        for (x, y) in [
            // The matter in the first shared clause.
            (
                "小区门口的路灯坏了，晚上很黑",
                "小区门口的路灯坏了，已经三天了",
            ),
            // Clauses that open like a self-introduction and tell the matter.
            (
                "我是来反映楼上噪音问题的，每天晚上都很吵",
                "我是来反映楼上噪音问题的，已经好几天了",
            ),
            (
                "我家住的这栋楼电梯坏了，老人上下楼很困难",
                "我家住的这栋楼电梯坏了，已经一个星期了",
            ),
            (
                "我住在这个小区十几年了，从来没这么脏过，垃圾堆成山",
                "我住在这个小区十几年了，从来没这么脏过，到处是垃圾",
            ),
            (
                "我是想问一下社保卡丢了怎么补办，需要带什么材料",
                "我是想问一下社保卡丢了怎么补办，去哪里办",
            ),
            ("电话一直打不通，物业不管", "电话一直打不通，没人接"),
            // A greeting and a short introduction: too little to set aside.
            ("您好，路灯坏了", "您好，井盖丢了"),
            ("您好，我是业主，路灯坏了", "您好，我是业主，井盖丢了"),
            // Introductions that differ are not shared.
            (
                "我是阳光小区3栋的居民，路灯坏了很久了",
                "我是阳光小区5栋的居民，路灯坏了很久了",
            ),
            // An introduction with nothing after it: the texts are judged whole.
            ("我是阳光小区3栋的居民，", "我是阳光小区3栋的居民，路灯坏了"),
        ] {
            assert_eq!(matter_similarity(x, y), similarity(x, y), "{x} / {y}");
        }
        for clause in [
            "我是来反映楼上噪音问题的",
            "我家住的这栋楼电梯坏了",
            "我住在这个小区十几年了",
            "我是想问一下",
            "我是来投诉隔壁小区的",
            "我叫了好几次物业",
            "电话一直打不通",
            "我的电话打不通",
            "小区门口的路灯坏了",
            "我反映一个问题",
        ] {
            assert_eq!(introduction(clause), None, "{clause}");
        }
        for (clause, words) in [
            ("您好", ""),
            ("工作人员您好", ""),
            ("12345热线你好呀", ""),
            ("尊敬的领导", ""),
            ("Hello", ""),
            ("您好我是阳光小区3栋的居民", "我是阳光小区3栋的居民"),
            ("我是阳光小区3栋的业主张三", "我是阳光小区3栋的业主张三"),
            ("我是阳光小区3栋2单元402的", "我是阳光小区3栋2单元402的"),
            ("本人住和平区南京路88号", "本人住和平区南京路88号"),
            ("我们是华苑小区的住户们", "我们是华苑小区的住户们"),
            ("我是张先生", "我是张先生"),
            ("我姓欧阳", "我姓欧阳"),
            ("联系电话 138-1234-5678", "联系电话13812345678"),
        ] {
            assert_eq!(introduction(clause).as_deref(), Some(words), "{clause}");
        }
    }

    #[test]
    fn shingles_reuse_matches_function() {
        let a = Shingles::new("暖气不热，室温十五度");
        let b = Shingles::new("暖气不热 室温只有十五度");
        assert_eq!(
            a.similarity(&b),
            similarity("暖气不热，室温十五度", "暖气不热 室温只有十五度")
        );
    }

    /// Timing, not a test: `cargo test --release -- --ignored similar_timing --nocapture`.
    #[test]
    #[ignore]
    fn similar_timing() {
        let unit = "河西区友谊路某某里小区3号楼门口的路灯坏了一个多星期了，晚上特别黑，老人孩子出行很不安全，请尽快安排维修。";
        let a: String = unit.chars().cycle().take(4000).collect();
        let b: String = unit.chars().rev().cycle().take(4000).collect();
        let n = 200;
        let t0 = std::time::Instant::now();
        let mut acc = 0.0;
        for _ in 0..n {
            acc += similarity(std::hint::black_box(&a), std::hint::black_box(&b));
        }
        println!(
            "similarity() of two 4000-char texts: {:.1} µs ({acc:.1})",
            t0.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        );
        // Openings read clause by clause: 4000 characters of self-introductions, and one
        // clause of 4000 characters that opens like one.
        let intro: String = "您好，我是阳光小区3栋的居民，"
            .chars()
            .cycle()
            .take(4000)
            .collect();
        let long: String = "我是"
            .chars()
            .chain(unit.chars().cycle().take(3998))
            .collect();
        for (what, x) in [("introductions", &intro), ("one long clause", &long)] {
            let t0 = std::time::Instant::now();
            let mut acc = 0.0;
            for _ in 0..n {
                acc += matter_similarity(std::hint::black_box(x), std::hint::black_box(&b));
            }
            println!(
                "matter_similarity() of 4000 chars of {what}: {:.1} µs ({acc:.1})",
                t0.elapsed().as_secs_f64() * 1e6 / f64::from(n)
            );
        }
    }
}
