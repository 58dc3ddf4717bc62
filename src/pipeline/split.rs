//! Several matters in one free text (Tianjin 12345 measures, article 13).
//!
//! Structured `items` (web, CTI) are split by the caller. This module handles free text, and is
//! deliberately conservative: a wrong split creates two half-orders that lose context, which is
//! worse than one order with two requests an agent can split. So [`split_matters`] splits only
//! on a clear enumeration and returns the whole text as one element whenever unsure.
//!
//! Recognised (each marker at the start of the text or after punctuation, whitespace or a line
//! break; numbers must run 1, 2, 3… in order with no gaps or restarts; every item must keep at
//! least [`MIN_ITEM_CHARS`] characters of content):
//! - `一是…二是…三是…`, `一、…二、…`, `第一…第二…` (`第一，` `第一是` `第一个问题` `第一点` …);
//! - `1. 2.`, `1、2、`, `1) 2)`, `(1)(2)`, `（1）（2）`, `①②`;
//! - connectors that announce another matter: `还有一件事`, `另外一件事`, `另一件事`,
//!   `还有一个问题`, `另外一个问题`, `另外再反映`, and `另外还有` when it begins a sentence and is
//!   followed by `一件事`/`个问题`/… or a pause (，：). A bare `另外` never splits.
//!
//! Text before the first marker (`我反映两个问题：`, often the address) is put in front of every
//! item so each order keeps its context; text after the last marker stays with the last item.

/// Minimum characters of content (punctuation and whitespace not counted) an item must keep.
pub const MIN_ITEM_CHARS: usize = 4;

/// Most matters taken from one free text, as many as a page may send as items: a longer
/// enumeration is kept whole for an agent. Uncapped, one submission (counted once) could make
/// 99 orders, each with a copy of the text before the first marker.
pub const MAX_MATTERS: usize = hotline_adapters::web::MAX_ITEMS;

/// Finds the markers of one enumeration style in the text (chars with their byte offsets).
type MarkerFinder = fn(&[(usize, char)], &str) -> Vec<Marker>;

/// Splits free text into matters, or returns `vec![text]` when the enumeration is not clear.
pub fn split_matters(text: &str) -> Vec<String> {
    match enumerated(text) {
        Some(items) if items.len() <= MAX_MATTERS => items,
        _ => vec![text.to_string()],
    }
}

/// The items of the first clear enumeration in the text, if there is one.
fn enumerated(text: &str) -> Option<Vec<String>> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let families: [MarkerFinder; 6] = [
        paren_markers,
        circled_markers,
        arabic_markers,
        chinese_shi_markers,
        chinese_dun_markers,
        di_markers,
    ];
    for family in families {
        let markers = family(&chars, text);
        if let Some(items) = items_from_sequence(text, &markers) {
            return Some(items);
        }
    }
    connector_split(&chars, text)
}

/// One enumeration marker: its byte range and its number.
#[derive(Debug, Clone, Copy)]
struct Marker {
    start: usize,
    end: usize,
    n: u32,
}

fn is_punct(c: char) -> bool {
    matches!(
        c,
        '，' | ','
            | '。'
            | '；'
            | ';'
            | '：'
            | ':'
            | '、'
            | '！'
            | '!'
            | '？'
            | '?'
            | '.'
            | '．'
            | '…'
            | '（'
            | '）'
            | '('
            | ')'
            | '“'
            | '”'
            | '"'
            | '\''
            | '‘'
            | '’'
            | '《'
            | '》'
            | '-'
            | '—'
    )
}

/// Whether a marker may start at char index `i`: start of text, or after punctuation or space.
fn at_boundary(chars: &[(usize, char)], i: usize) -> bool {
    match i.checked_sub(1).and_then(|p| chars.get(p)) {
        None => true,
        Some(&(_, c)) => c.is_whitespace() || (is_punct(c) && c != '.' && c != '．'),
    }
}

fn byte_at(chars: &[(usize, char)], i: usize, text: &str) -> usize {
    chars.get(i).map_or(text.len(), |&(b, _)| b)
}

fn ascii_digit(c: char) -> Option<u32> {
    match c {
        '0'..='9' => c.to_digit(10),
        '０'..='９' => Some(c as u32 - '０' as u32),
        _ => None,
    }
}

fn chinese_numeral(c: char) -> Option<u32> {
    // A match, not a search of "一二…十": this runs for every character of every text, twice.
    Some(match c {
        '一' => 1,
        '二' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        '十' => 10,
        _ => return None,
    })
}

/// Reads one or two digits at `i`; None for longer runs (years, amounts are not markers).
fn read_number(chars: &[(usize, char)], i: usize) -> Option<(u32, usize)> {
    let d1 = ascii_digit(chars.get(i)?.1)?;
    match chars.get(i + 1).and_then(|&(_, c)| ascii_digit(c)) {
        None => Some((d1, i + 1)),
        Some(d2) => {
            if chars
                .get(i + 2)
                .and_then(|&(_, c)| ascii_digit(c))
                .is_some()
            {
                None
            } else {
                Some((d1 * 10 + d2, i + 2))
            }
        }
    }
}

/// `1.` `1、` `1)` `1）` — not `2.5米`, not `1号楼`, not `2024.`.
fn arabic_markers(chars: &[(usize, char)], text: &str) -> Vec<Marker> {
    let mut out = Vec::new();
    for i in 0..chars.len() {
        // After an opening parenthesis it is a `(1)` marker, handled by its own family.
        let after_paren = i
            .checked_sub(1)
            .and_then(|p| chars.get(p))
            .is_some_and(|&(_, c)| matches!(c, '(' | '（'));
        if after_paren || !at_boundary(chars, i) {
            continue;
        }
        let Some((n, j)) = read_number(chars, i) else {
            continue;
        };
        let Some(&(_, sep)) = chars.get(j) else {
            continue;
        };
        if !matches!(sep, '.' | '．' | '、' | ')' | '）') {
            continue;
        }
        // A digit right after the separator is a decimal or a date (2.5米, 3.15).
        if chars
            .get(j + 1)
            .and_then(|&(_, c)| ascii_digit(c))
            .is_some()
        {
            continue;
        }
        out.push(Marker {
            start: byte_at(chars, i, text),
            end: byte_at(chars, j + 1, text),
            n,
        });
    }
    out
}

/// `(1)` `（1）`.
fn paren_markers(chars: &[(usize, char)], text: &str) -> Vec<Marker> {
    let mut out = Vec::new();
    for i in 0..chars.len() {
        let Some(&(_, open)) = chars.get(i) else {
            continue;
        };
        // The parenthesis delimits the marker itself, so no boundary is needed before it.
        if !matches!(open, '(' | '（') {
            continue;
        }
        let Some((n, j)) = read_number(chars, i + 1) else {
            continue;
        };
        if !matches!(chars.get(j), Some(&(_, ')' | '）'))) {
            continue;
        }
        out.push(Marker {
            start: byte_at(chars, i, text),
            end: byte_at(chars, j + 1, text),
            n,
        });
    }
    out
}

/// `①②③`…`⑩`.
fn circled_markers(chars: &[(usize, char)], text: &str) -> Vec<Marker> {
    chars
        .iter()
        .enumerate()
        .filter_map(|(i, &(b, c))| {
            let n = (c as u32)
                .checked_sub(0x245F)
                .filter(|n| (1..=10).contains(n))?;
            Some(Marker {
                start: b,
                end: byte_at(chars, i + 1, text),
                n,
            })
        })
        .collect()
}

/// `一是` `二是`….
fn chinese_shi_markers(chars: &[(usize, char)], text: &str) -> Vec<Marker> {
    chinese_with(chars, text, |c| c == '是')
}

/// `一、` `二、`….
fn chinese_dun_markers(chars: &[(usize, char)], text: &str) -> Vec<Marker> {
    chinese_with(chars, text, |c| matches!(c, '、' | '.' | '．'))
}

fn chinese_with(chars: &[(usize, char)], text: &str, sep: impl Fn(char) -> bool) -> Vec<Marker> {
    let mut out = Vec::new();
    for i in 0..chars.len() {
        let Some(n) = chars.get(i).and_then(|&(_, c)| chinese_numeral(c)) else {
            continue;
        };
        if !at_boundary(chars, i) || !chars.get(i + 1).is_some_and(|&(_, c)| sep(c)) {
            continue;
        }
        out.push(Marker {
            start: byte_at(chars, i, text),
            end: byte_at(chars, i + 2, text),
            n,
        });
    }
    out
}

/// `第一，` `第一是` `第一点` `第一个问题` `第一件事`… (also `第1`).
fn di_markers(chars: &[(usize, char)], text: &str) -> Vec<Marker> {
    // Longest first: 第一个问题是 must consume the 是 too.
    const TAILS: [&str; 11] = [
        "个问题是",
        "件事是",
        "点是",
        "个问题",
        "件事",
        "个事",
        "点",
        "是",
        "，",
        "、",
        "：",
    ];
    let mut out = Vec::new();
    for i in 0..chars.len() {
        if chars.get(i).map(|&(_, c)| c) != Some('第') || !at_boundary(chars, i) {
            continue;
        }
        let Some(n) = chars
            .get(i + 1)
            .and_then(|&(_, c)| chinese_numeral(c).or_else(|| ascii_digit(c)))
        else {
            continue;
        };
        let after = byte_at(chars, i + 2, text);
        let rest = text.get(after..).unwrap_or("");
        let Some(tail) = TAILS.iter().find(|t| rest.starts_with(**t)) else {
            continue;
        };
        out.push(Marker {
            start: byte_at(chars, i, text),
            end: after + tail.len(),
            n,
        });
    }
    out
}

/// Counts content characters (punctuation and whitespace excluded).
fn content_chars(s: &str) -> usize {
    s.chars()
        .filter(|&c| !c.is_whitespace() && !is_punct(c))
        .count()
}

fn trim_item(s: &str) -> &str {
    s.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '，' | ',' | '；' | ';' | '、' | '：' | ':')
    })
}

/// Accepts markers numbered 1, 2, … in text order (no gaps, no restarts, nothing numbered
/// before the 1) and cuts the text at them; None when that is not a clean enumeration.
fn items_from_sequence(text: &str, markers: &[Marker]) -> Option<Vec<String>> {
    let mut seq: Vec<Marker> = Vec::new();
    for m in markers {
        let expected = u32::try_from(seq.len() + 1).ok()?;
        if m.n != expected {
            // Any other number among the markers (a 3 after a 1, a second 1) means we do not
            // understand the structure: stay whole.
            return None;
        }
        seq.push(*m);
    }
    if seq.len() < 2 {
        return None;
    }
    let first = seq.first()?;
    let preamble = text.get(..first.start)?.trim();
    // Keep the preamble's own colon; add one when it has none so the item still reads well.
    let joiner = match preamble.chars().last() {
        Some(c) if is_punct(c) => "",
        Some(_) => "：",
        None => "",
    };
    let mut items = Vec::with_capacity(seq.len());
    for (k, m) in seq.iter().enumerate() {
        let end = seq.get(k + 1).map_or(text.len(), |next| next.start);
        let body = trim_item(text.get(m.end..end)?);
        if content_chars(body) < MIN_ITEM_CHARS {
            return None;
        }
        items.push(if preamble.is_empty() {
            body.to_string()
        } else {
            format!("{preamble}{joiner}{body}")
        });
    }
    Some(items)
}

/// Phrases that announce a further matter anywhere after punctuation.
const CONNECTORS: [&str; 8] = [
    "还有一件事",
    "另外一件事",
    "另一件事",
    "还有一个问题",
    "另外一个问题",
    "另外再反映",
    "另外反映一下",
    "再反映一个问题",
];

/// What must follow `另外还有` for it to announce a new matter rather than more of the same
/// (另外还有两盏灯也不亮 is the same matter).
const AFTER_LINWAI_HAIYOU: [&str; 9] = [
    "一件事",
    "件事",
    "一个问题",
    "个问题",
    "一个情况",
    "个情况",
    "一事",
    "，",
    "：",
];

fn connector_split(chars: &[(usize, char)], text: &str) -> Option<Vec<String>> {
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for i in 0..chars.len() {
        let b = byte_at(chars, i, text);
        let rest = text.get(b..).unwrap_or("");
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).map(|&(_, c)| c);
        if let Some(c) = CONNECTORS.iter().find(|c| rest.starts_with(**c)) {
            if prev.is_some_and(|p| p.is_whitespace() || is_punct(p)) {
                cuts.push((b, b + c.len()));
            }
            continue;
        }
        if rest.starts_with("另外还有") {
            let sentence_start = prev
                .is_some_and(|p| matches!(p, '。' | '！' | '!' | '？' | '?' | '；' | ';' | '\n'));
            let after = rest.get("另外还有".len()..).unwrap_or("");
            if let (true, Some(tail)) = (
                sentence_start,
                AFTER_LINWAI_HAIYOU.iter().find(|t| after.starts_with(**t)),
            ) {
                // The announcement (个问题, 件事) belongs to neither item.
                cuts.push((b, b + "另外还有".len() + tail.len()));
            }
        }
    }
    if cuts.is_empty() {
        return None;
    }
    let mut items = Vec::new();
    let mut from = 0;
    for &(start, end) in &cuts {
        items.push(text.get(from..start)?);
        from = end;
    }
    items.push(text.get(from..)?);
    let items: Vec<String> = items
        .into_iter()
        .map(|s| {
            // Drop the rest of the announcement (…件事，/…个问题是) so the item starts with it.
            let s = trim_item(s);
            let s = s.strip_prefix("就是").unwrap_or(s);
            trim_item(s.trim_start_matches(['是', '，', ',', '：', ':'])).to_string()
        })
        .collect();
    if items.iter().any(|s| content_chars(s) < MIN_ITEM_CHARS) {
        return None;
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, want: &[&str]) {
        let got = split_matters(text);
        assert_eq!(got, want, "text: {text}");
    }

    fn whole(text: &str) {
        check(text, &[text]);
    }

    /// An enumeration of more matters than a page may send as items is kept whole: one
    /// submission used to make up to 99 orders, each with a copy of the text before the list.
    #[test]
    fn a_longer_list_than_a_page_may_send_stays_one_matter() {
        let list = |n: usize| -> String {
            (1..=n).map(|i| format!("{i}.第{i}处路灯坏了 ")).collect()
        };
        assert_eq!(split_matters(&list(MAX_MATTERS)).len(), MAX_MATTERS);
        whole(&list(MAX_MATTERS + 1));
        whole(&list(99));
    }

    #[test]
    fn chinese_ordinals() {
        check(
            "我反映两个问题：一是小区门口路灯坏了，二是三号楼前井盖丢了。",
            &[
                "我反映两个问题：小区门口路灯坏了",
                "我反映两个问题：三号楼前井盖丢了。",
            ],
        );
        check(
            "一是暖气不热，二是物业不接电话，三是垃圾没人清运",
            &["暖气不热", "物业不接电话", "垃圾没人清运"],
        );
        check("一、路灯不亮；二、井盖缺失；", &["路灯不亮", "井盖缺失"]);
        check(
            "第一，小区停车难；第二，快递柜太少。",
            &["小区停车难", "快递柜太少。"],
        );
        check(
            "第一个问题是公交站台没有遮雨棚，第二个问题是站牌信息过时",
            &["公交站台没有遮雨棚", "站牌信息过时"],
        );
    }

    #[test]
    fn arabic_numbering() {
        check(
            "河西区某某里小区：1.路灯坏了一个月 2.垃圾桶满了没人清",
            &[
                "河西区某某里小区：路灯坏了一个月",
                "河西区某某里小区：垃圾桶满了没人清",
            ],
        );
        check(
            "1、社保卡怎么补办\n2、医保怎么转移\n3、公积金怎么提取",
            &["社保卡怎么补办", "医保怎么转移", "公积金怎么提取"],
        );
        check(
            "（1）道路积水严重（2）排水口堵塞",
            &["道路积水严重", "排水口堵塞"],
        );
        check("(1)楼道灯不亮;(2)电梯异响", &["楼道灯不亮", "电梯异响"]);
        check("①噪音扰民②油烟直排", &["噪音扰民", "油烟直排"]);
        check(
            "１．小区门禁坏了 ２．监控不好用",
            &["小区门禁坏了", "监控不好用"],
        );
    }

    #[test]
    fn connectors() {
        check(
            "小区门口的路灯坏了一周了。还有一件事，楼下的井盖也丢了",
            &["小区门口的路灯坏了一周了。", "楼下的井盖也丢了"],
        );
        check(
            "暖气不热请尽快处理。另外还有个问题，物业费收得太高",
            &["暖气不热请尽快处理。", "物业费收得太高"],
        );
    }

    #[test]
    fn near_misses_stay_whole() {
        whole("1号楼的电梯坏了，2号楼的也坏了");
        whole("楼道里有根2.5米长的管子挡路");
        whole("另外一边的路灯也坏了，请一起修");
        whole("路灯坏了，另外还有两盏也不亮");
        whole("路灯坏了。另外还有两盏也不亮");
        whole("小区1、2、3号楼都停水了");
        whole("一是一，二是二，你们不能这样");
        whole("2024.5.1以后一直停水");
        whole("第一次反映是上个月，到现在还没解决");
        whole("1.路灯坏了 3.井盖丢了");
        whole("2.路灯坏了 3.井盖丢了");
        whole("1.路灯坏了 2.井盖");
        whole("我是一名老师，一是觉得累");
        whole("");
        whole("暖气不热");
        whole("今年3、4月份一直停水");
    }

    #[test]
    fn odd_input_does_not_panic() {
        for t in [
            "1.",
            "（",
            "(1",
            "第",
            "第一",
            "①",
            "一是",
            "另外还有",
            "1.\u{0}2.",
            "ｘ１．",
        ] {
            let _ = split_matters(t);
        }
    }
}
