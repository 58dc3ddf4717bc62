//! Status queries in the words citizens use on the chat channels (WeChat text and voice
//! recognition, Weibo): `查询 2026112901000123`, and also `查询工单号：…`, `工单查询 …`, the number
//! in full-width digits (`２０２６…`, as Chinese input methods type it), read out in groups
//! (`2026 1207 0769 8881`, `2026-1207-…`) or in Chinese numerals (`二零二六…`, as speech
//! recognition may write it).
//!
//! Each acknowledgement tells the citizen "可凭工单号查询办理进度": a query that is not recognised
//! becomes a made-up order and counts against the art. 32 quota, so the forms are many. The
//! verb must come first (after a greeting or "请"), so a complaint that merely names an order
//! (`2026… 这个工单一直没人处理`) is still a matter.

use std::ops::RangeInclusive;

use crate::text::fold_full_width;

/// How many digits an order number has: 16 today (`YYYYMMDD` + node + a 6-digit sequence), up to
/// 24 once a node's sequence outgrows six digits; at least 12 so a phone number is never one.
/// The IVR's status keys and `GET /v1/orders/{number}` use the same range.
pub const ORDER_NUMBER_DIGITS: RangeInclusive<usize> = 12..=24;

/// A message that asks for an order's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusQuery {
    /// The order number asked about, ASCII digits only.
    pub number: String,
    /// Nothing but the number was asked: after it come only punctuation and courtesy (`谢谢`,
    /// `麻烦了`, `的进度`). When `false` the message says more (another matter), which must
    /// reach intake as well (art. 13: no matter is lost).
    pub only: bool,
    /// The other matter, when not `only`, as sent (not folded). When what follows the number
    /// opens a new matter (`，另外反映一下：路灯坏了`, see [`NEW_MATTER`]) it is that, without the
    /// punctuation that joined it (`另外反映一下：路灯坏了`); otherwise it may speak of the asked
    /// order (`为什么还没人处理`, `都半个月了`), and the number stays in front of it
    /// (`2026120707698881 为什么还没人处理`), so the order it makes says which order it is about.
    pub rest: String,
}

/// Greetings and requests that may come before the verb, longest first.
const LEAD: [&str; 16] = [
    "麻烦帮我",
    "麻烦您",
    "麻烦你",
    "请帮我",
    "请帮忙",
    "请问",
    "你好",
    "您好",
    "麻烦",
    "帮我",
    "帮忙",
    "我要",
    "我想",
    "想要",
    "想",
    "请",
];

/// The verb (or the noun + verb) that makes a message a query, longest first.
const HEADS: [&str; 9] = [
    "工单编号查询",
    "工单进度查询",
    "工单号查询",
    "工单查询",
    "进度查询",
    "查询",
    "查看",
    "查找",
    "查",
];

/// Words between the verb and the number, longest first.
const FILLERS: [&str; 16] = [
    "办理进度",
    "工单号码",
    "工单编号",
    "处理进度",
    "工单号",
    "一下",
    "我的",
    "工单",
    "单号",
    "编号",
    "号码",
    "进度",
    "状态",
    "下",
    "的",
    "号",
];

/// Words that open a new matter after the number (`查询 2026…，另外反映一下：…`): the rest is
/// that matter alone. Anything else after the number keeps the number with it, as it may be a
/// complaint about the asked order (`为什么还没人处理`), which would be an order about nothing
/// without it. `还有` alone is no opening (`还有多久`), only with a pause or a count after it;
/// compared after folding, so `还有，` is `还有,`.
const NEW_MATTER: [&str; 13] = [
    "另",
    "此外",
    "顺便",
    "还有,",
    "还有、",
    "还有一件",
    "还有一个",
    "还有件",
    "还有个",
    "我还要反映",
    "还要反映",
    "再反映",
    "同时反映",
];

/// Courtesy and words that only restate the question, after the number; longest first.
const TAIL: [&str; 42] = [
    "现在怎么样了",
    "办理进度",
    "处理进度",
    "处理情况",
    "办理情况",
    "怎么样了",
    "到哪里了",
    "麻烦您了",
    "麻烦你了",
    "谢谢您",
    "谢谢你",
    "麻烦了",
    "辛苦了",
    "怎么样",
    "到哪了",
    "可以吗",
    "谢谢",
    "多谢",
    "感谢",
    "麻烦",
    "辛苦",
    "进度",
    "状态",
    "情况",
    "结果",
    "一下",
    "好吗",
    "行吗",
    "您好",
    "你好",
    "查询",
    "的",
    "吗",
    "呢",
    "了",
    "请",
    "哦",
    "噢",
    "啊",
    "呀",
    "吧",
    "哈",
];

/// The status query in `text`, if it is one (see the module's doc for the forms). Pure; a text
/// without `查` is answered after one scan, without a copy.
pub fn status_query(text: &str) -> Option<StatusQuery> {
    // Every form has 查 in it: the texts that are matters (nearly all) cost one scan, no copy.
    if !text.contains('查') {
        return None;
    }
    let chars: Vec<char> = text
        .chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            c => fold_full_width(c),
        })
        .collect();
    let s = skip(&chars, &LEAD);
    let s = HEADS.iter().find_map(|h| strip_word(s, h))?;
    let s = skip(s, &FILLERS);
    let (number, after) = number(s)?;
    let only = skip(after, &TAIL).is_empty();
    // Folding maps one character to one, so the rest starts as many characters into the text
    // as are left after the number.
    let joined = after.iter().take_while(|c| !c.is_alphanumeric()).count();
    let next = &after[joined..];
    let new_matter = NEW_MATTER.iter().any(|w| {
        let w: Vec<char> = w.chars().map(fold_full_width).collect();
        next.starts_with(&w)
    });
    let from = if new_matter || only {
        chars.len() - after.len() + joined
    } else {
        // The number as typed, where it began.
        chars.len() - s.len()
    };
    let rest = text
        .char_indices()
        .nth(from)
        .map_or("", |(at, _)| &text[at..])
        .trim_end()
        .to_string();
    Some(StatusQuery { number, only, rest })
}

/// `s` without a leading `word`, if it starts with it.
fn strip_word<'a>(s: &'a [char], word: &str) -> Option<&'a [char]> {
    let mut rest = s;
    for w in word.chars() {
        match rest.split_first() {
            Some((c, tail)) if *c == w => rest = tail,
            _ => return None,
        }
    }
    Some(rest)
}

/// `s` without any leading run of `words` and of characters that are neither letters nor
/// digits (spaces, punctuation, `#`, emoji).
fn skip<'a>(mut s: &'a [char], words: &[&str]) -> &'a [char] {
    loop {
        match s.split_first() {
            Some((c, tail)) if !c.is_alphanumeric() => s = tail,
            Some(_) => match words.iter().find_map(|w| strip_word(s, w)) {
                Some(tail) => s = tail,
                None => return s,
            },
            None => return s,
        }
    }
}

/// A digit as typed (ASCII, after folding) or as speech recognition writes it (二零二六, 幺).
pub(crate) fn digit(c: char) -> Option<char> {
    Some(match c {
        '0'..='9' => c,
        '零' | '〇' => '0',
        '一' | '幺' => '1',
        '二' | '两' => '2',
        '三' => '3',
        '四' => '4',
        '五' => '5',
        '六' => '6',
        '七' => '7',
        '八' => '8',
        '九' => '9',
        _ => return None,
    })
}

/// The order number at the start of `s` and what follows it. Groups of digits separated by up
/// to three spaces or dashes are one number (`2026 1207 0769 8881`), as long as it stays within
/// [`ORDER_NUMBER_DIGITS`]: a number followed by a phone number is the order number and a rest.
fn number(s: &[char]) -> Option<(String, &[char])> {
    let max = *ORDER_NUMBER_DIGITS.end();
    let group_len = |s: &[char]| s.iter().take_while(|c| digit(**c).is_some()).count();
    let mut digits = String::with_capacity(max);
    let mut i = 0;
    loop {
        let n = group_len(&s[i..]);
        if n == 0 || digits.len() + n > max {
            break;
        }
        digits.extend(s[i..i + n].iter().filter_map(|c| digit(*c)));
        i += n;
        let gap = s[i..]
            .iter()
            .take(4)
            .take_while(|c| matches!(c, ' ' | '-' | '\t'))
            .count();
        if gap == 0 || gap > 3 || group_len(&s[i + gap..]) == 0 {
            break;
        }
        if digits.len() + group_len(&s[i + gap..]) > max {
            break;
        }
        i += gap;
    }
    (ORDER_NUMBER_DIGITS.contains(&digits.len()) && dated(&digits)).then(|| (digits, &s[i..]))
}

/// Whether digits begin as an order number does, with its day (`YYYYMMDD`, this century): a
/// landline with its area code (`0571-87654321`, 12 digits), a mobile with a trunk 0 or an ID
/// number (18) asked about (`查一下3301…的社保`) is part of a matter, not an order number.
pub(crate) fn dated(digits: &str) -> bool {
    let part = |from: usize, to: usize| digits.get(from..to).and_then(|d| d.parse::<u32>().ok());
    matches!(
        (part(0, 2), part(4, 6), part(6, 8)),
        (Some(20), Some(1..=12), Some(1..=31))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "2026120707698881";

    fn q(text: &str) -> Option<(String, bool)> {
        status_query(text).map(|q| (q.number, q.only))
    }

    /// A phone or ID number after 查询 is part of a matter (the review's two cases), never an
    /// order number: only digits that begin with a day this century are.
    #[test]
    fn phone_and_id_numbers_are_no_order_numbers() {
        assert_eq!(q("查询0571-87654321是哪个单位的电话，一直打来骚扰"), None);
        assert_eq!(q("查一下330102199001011234的社保缴纳情况"), None);
        assert_eq!(q("查询 013922223333"), None);
        assert_eq!(q("查询 2026130707698881"), None, "month 13");
        assert_eq!(q(&format!("查询 {N}")), Some((N.to_string(), true)));
    }

    #[test]
    fn the_forms_citizens_use_are_queries_for_the_number_alone() {
        for text in [
            "查询2026120707698881",
            "查询 2026120707698881",
            "查询：2026120707698881",
            "查询:2026120707698881",
            "查询\u{3000}2026120707698881",
            "  查询 2026120707698881  ",
            // Full-width digits and colon, as Chinese input methods type them.
            "查询 ２０２６１２０７０７６９８８８１",
            "查询：２０２６１２０７０７６９８８８１",
            "查询\u{3000}２０２６\u{3000}１２０７\u{3000}０７６９\u{3000}８８８１",
            // Read out or copied in groups.
            "查询 2026 1207 0769 8881",
            "查询 2026-1207-0769-8881",
            "查询 2026 - 1207 - 0769 - 8881",
            "查询 20261207 07698881",
            // Other wordings.
            "查询工单号：2026120707698881",
            "查询工单号 2026120707698881",
            "查询工单2026120707698881",
            "查询工单编号：2026120707698881",
            "工单查询 2026120707698881",
            "工单查询：2026120707698881",
            "工单号查询2026120707698881",
            "进度查询 2026120707698881",
            "查询一下 2026120707698881",
            "查询一下工单2026120707698881",
            "查一下工单号2026120707698881",
            "查下2026120707698881",
            "查询进度 2026120707698881",
            "查询办理进度：2026120707698881",
            "查看工单 2026120707698881",
            "查询我的工单：2026120707698881",
            "查询#2026120707698881",
            // Greetings and requests first.
            "你好，查询 2026120707698881",
            "您好！请帮我查询一下工单2026120707698881",
            "请查询2026120707698881",
            "麻烦查一下 2026120707698881",
            "我要查询 2026120707698881",
            "我想查询工单 2026120707698881",
            // Voice recognition: a full stop, or the number in Chinese numerals.
            "查询2026120707698881。",
            "查询二零二六一二零七零七六九八八八一。",
            "查询工单二零二六一二零七零七六九八八八幺",
            // Courtesy and restating words after the number.
            "查询 2026120707698881，谢谢",
            "查询 2026120707698881 谢谢！",
            "查询 2026120707698881，麻烦了。",
            "查询 2026120707698881的进度，谢谢您",
            "查询 2026120707698881 现在怎么样了？",
            "查询 2026120707698881 办理进度",
            "查询 2026120707698881 的处理情况，辛苦了🙏",
            "查询 2026120707698881 好吗？谢谢哦",
        ] {
            assert_eq!(q(text), Some((N.to_string(), true)), "{text:?}");
        }
    }

    #[test]
    fn the_rest_is_the_other_matter_as_sent() {
        let rest = |t: &str| status_query(t).map(|q| q.rest);
        assert_eq!(
            rest("查询 ２０２６１２０７０７６９８８８１，另外反映一下：３号楼路灯坏了 ").as_deref(),
            Some("另外反映一下：３号楼路灯坏了")
        );
        assert_eq!(rest("查询 2026120707698881").as_deref(), Some(""));
        assert_eq!(
            rest("查询 2026120707698881，谢谢。").as_deref(),
            Some("谢谢。")
        );
        assert_eq!(
            rest("查询 2026120707698881 还有，楼下餐馆油烟太大").as_deref(),
            Some("还有，楼下餐馆油烟太大")
        );
    }

    #[test]
    fn a_complaint_about_the_asked_order_keeps_its_number() {
        let rest = |t: &str| status_query(t).map(|q| q.rest);
        // The order this made read `为什么还没有人处理`: about nothing dispatch could find.
        assert_eq!(
            rest("查询2026120707698881为什么还没有人处理").as_deref(),
            Some("2026120707698881为什么还没有人处理")
        );
        assert_eq!(
            rest("请问查询工单号：２０２６ １２０７ ０７６９ ８８８１ 还有多久能处理？").as_deref(),
            Some("２０２６ １２０７ ０７６９ ８８８１ 还有多久能处理？")
        );
        assert_eq!(
            rest("查询 2026120707698881 都半个月了没人管").as_deref(),
            Some("2026120707698881 都半个月了没人管")
        );
    }

    #[test]
    fn a_query_followed_by_another_matter_says_so() {
        for text in [
            "查询 2026120707698881，另外反映一下：我们小区3号楼的路灯坏了一个星期了",
            "查询 2026120707698881 楼下又在施工了，噪音很大",
            "查询2026120707698881为什么还没有人处理",
            // A phone number after the order number is more than the number.
            "查询 2026120707698881 13912345678",
            "查询工单2026120707698881和2026120707698882",
        ] {
            assert_eq!(q(text), Some((N.to_string(), false)), "{text:?}");
        }
    }

    #[test]
    fn other_messages_are_not_queries() {
        for text in [
            "",
            "查询",
            "查询 12345",
            "查询 13912345678",
            "查询一下",
            "我们小区路灯坏了",
            // A number without the verb first is a matter that names an order.
            "2026120707698881 这个工单一直没人处理",
            "工单2026120707698881一直没人处理，我要投诉",
            "我要投诉 2026120707698881 的承办单位",
            "关于查询 2026120707698881",
            "查处违建 2026120707698881",
            // Too long to be an order number.
            "查询 1234567890123456789012345",
            // Groups too far apart are not one number.
            "查询 202612    0707698881",
        ] {
            assert_eq!(q(text), None, "{text:?}");
        }
        // A number followed by more groups than fit: the groups that fit are the number.
        assert_eq!(
            q("查询 2026 1207 0769 8881 2026 1207 0769"),
            Some(("202612070769888120261207".into(), false))
        );
    }

    #[test]
    fn the_number_range_matches_the_order_numbers() {
        assert_eq!(q("查询 202612070769"), Some(("202612070769".into(), true)));
        assert_eq!(q("查询 20261207076"), None);
        let n24 = format!("20261207{}", "1".repeat(16));
        assert_eq!(q(&format!("查询 {n24}")), Some((n24.clone(), true)));
        assert_eq!(q(&format!("查询 {n24}1")), None);
    }
}
