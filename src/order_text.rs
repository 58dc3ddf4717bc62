//! An order's personal data masked in text someone else wrote about the order: dispatch's
//! status (shown to anyone with the order's number, `GET /v1/orders/{n}` and `查询`) and
//! dispatch's refusal (a dead letter's error: the WARN log, the admin API's `last_error`, the
//! `orders/dead` event and the supervisors' mail). Both paths mask with [`mask_order_text`];
//! until 2026-12-07 the dead letter masked only the order's values where they stood whole
//! (`mask_order_data`), and a part of the address or a neighbour's name quoted from the matter
//! (`建国路88号华贸中心门口…3号楼1502室的欧阳…`) passed into all four (the privacy review's F3).
//! Pure functions of the text and the order as posted (`sent`, the JSON the relay posts).

/// [`mask_order_data`], then [`mask_shared_runs`] (any run the order also holds, every house
/// number): what both dispatch's status and a dead letter's error go through before
/// [`hotline_adapters::mask::scrub_text_and_ids`] (numbers, e-mail addresses, opaque ids).
pub fn mask_order_text(text: &str, sent: &str) -> String {
    mask_shared_runs(&mask_order_data(text, sent), sent)
}

/// Shortest identity value masked where dispatch echoes it: a shorter one would mask common
/// words and numbers in the text around it.
const ECHOED_IDENTITY_MIN_CHARS: usize = 6;

/// `text` (something dispatch wrote about the order `sent`, the JSON the relay posted) with the
/// personal data the order carried masked wherever it appears, whatever its shape: the
/// submitter's identity (such as a WeChat openid), name, phone, e-mail address, and the
/// location's address. Dead letters' errors and the status dispatch tells a submitter both go
/// through it ([`mask_order_text`]), then through [`mask_shared_runs`] and
/// [`hotline_adapters::mask::scrub_text_and_ids`].
pub fn mask_order_data(text: &str, sent: &str) -> String {
    use hotline_adapters::{mask, Identity};
    let order = serde_json::from_str::<serde_json::Value>(sent).unwrap_or_default();
    let submitter = &order["submitter"];
    let value = |v: &serde_json::Value| v.as_str().map(str::trim).unwrap_or_default().to_string();
    let mut text = text.to_string();
    if let Some(i) = submitter["identity"]
        .as_str()
        .and_then(Identity::parse)
        .filter(|i| i.value.chars().count() >= ECHOED_IDENTITY_MIN_CHARS)
    {
        text = i.mask_in(&text);
    }
    // The longest first, so a name inside the address does not break the address's match.
    let mut echoed: Vec<(String, String)> = [
        (
            value(&order["location"]["address"]),
            mask::mask_address as fn(&str) -> String,
        ),
        (value(&submitter["email"]), mask::mask_email),
        (value(&submitter["phone"]), mask::mask_phone),
        (value(&submitter["name"]), mask::mask_name),
    ]
    .into_iter()
    // A one-character value would mask that character everywhere in the text.
    .filter(|(value, _)| value.chars().count() >= 2)
    .map(|(value, how)| {
        let masked = how(&value);
        (value, masked)
    })
    .collect();
    echoed.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
    for (value, masked) in echoed {
        text = text.replace(&value, &masked);
    }
    text
}

/// Shortest run of letters and digits in dispatch's text that is masked when the order's own
/// text holds it too ([`mask_shared_runs`]): three characters are a road's name (`解放路`) or
/// a whole Chinese name; two would mask common words (`路灯`, `已经`) everywhere.
const SHARED_RUN_MIN: usize = 3;

/// Characters that end an administrative division at the start of an address (`浙江省`,
/// `杭州市`, `上城区`, `余杭县`, `旗`, `盟`): such a prefix names a district of hundreds of
/// thousands of people, and a handling unit named after it (`上城区城管局`) stays readable.
const DIVISION_ENDS: [char; 6] = ['省', '市', '区', '县', '旗', '盟'];

/// Longest division prefix of an address left readable, in characters (`新疆维吾尔自治区`
/// `乌鲁木齐市` `天山区` together).
const DIVISION_PREFIX_MAX: usize = 16;

/// Characters that follow a house, building, unit or room number (`77号`, `3栋`, `2单元`,
/// `501室`): the digits before them are masked wherever they stand, whoever's they are.
const HOUSE_NUMBER_ENDS: [char; 10] = ['号', '栋', '幢', '单', '室', '楼', '层', '弄', '巷', '户'];

/// `text` with every run that the order `sent` also holds (its address, the submitter's name,
/// the matter as the citizen wrote it, which may name a neighbour) of at least
/// [`SHARED_RUN_MIN`] letters or digits masked, except the address's leading divisions, and
/// every house, building or room number masked. [`mask_order_data`] masks only
/// the order's values as they were written: the review of 2026-12-07 read `南京路77号` in
/// the clear from the address `和平区南京路77号`, in the status and in the unit, for any order
/// number (they are sequential).
pub(crate) fn mask_shared_runs(text: &str, sent: &str) -> String {
    let order = serde_json::from_str::<serde_json::Value>(sent).unwrap_or_default();
    let value = |v: &serde_json::Value| -> Vec<char> {
        v.as_str()
            .map(str::trim)
            .unwrap_or_default()
            .chars()
            .collect()
    };
    let address = value(&order["location"]["address"]);
    let sources = [
        address.clone(),
        value(&order["submitter"]["name"]),
        value(&order["content"]),
    ];
    let divisions = division_prefix(&address);
    let text: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() * 3);
    let mut i = 0;
    while i < text.len() {
        // A run is only looked for from a letter or digit: a run that begins with punctuation
        // or spaces is found again from its first letter, and masked from there. Looked for
        // from every character, a text and an order of little but punctuation (a matter of
        // 4,000 `，`, quoted back by dispatch) cost the length of both for each character of
        // the text: seconds of CPU for one answer.
        if !text[i].is_alphanumeric() {
            out.push(text[i]);
            i += 1;
            continue;
        }
        let len = sources
            .iter()
            .map(|s| longest_common_at(&text[i..], s))
            .max()
            .unwrap_or(0);
        let run = &text[i..i + len];
        let letters = run.iter().filter(|c| c.is_alphanumeric()).count();
        let readable = divisions.iter().any(|d| d.as_slice() == run);
        if letters >= SHARED_RUN_MIN && !readable {
            out.push_str("***");
            i += len;
        } else if readable {
            out.extend(run);
            i += len;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    mask_house_numbers(&out)
}

/// The length of the longest start of `text` that `source` holds somewhere.
fn longest_common_at(text: &[char], source: &[char]) -> usize {
    let Some(first) = text.first() else {
        return 0;
    };
    // The places in `source` where the run matched so far could continue: a few, not all.
    let mut at: Vec<usize> = (0..source.len()).filter(|&p| source[p] == *first).collect();
    let mut len = 0;
    while !at.is_empty() {
        len += 1;
        let Some(next) = text.get(len) else {
            break;
        };
        at.retain(|&p| source.get(p + len) == Some(next));
    }
    len
}

/// The address's leading divisions (`上城区`, `杭州市`, `杭州市上城区`, …) that may stay
/// readable, each as a run from the start of the address.
pub(crate) fn division_prefix(address: &[char]) -> Vec<Vec<char>> {
    let mut prefixes = Vec::new();
    let mut starts = vec![0];
    for (i, c) in address.iter().enumerate().take(DIVISION_PREFIX_MAX) {
        let start = starts.last().copied().unwrap_or(0);
        if DIVISION_ENDS.contains(c) && i > start {
            // `小区` is a housing estate, not a division.
            if address[i - 1] == '小' {
                break;
            }
            for &from in &starts {
                prefixes.push(address[from..=i].to_vec());
            }
            starts.push(i + 1);
        }
    }
    prefixes
}

/// What a house number in Chinese numerals follows: a road, lane or village (`南京路七十七号`,
/// `幸福里三号`), or a road already masked (`***`).
const ROAD_ENDS: [char; 9] = ['路', '街', '道', '巷', '弄', '里', '村', '胡', '*'];

/// Chinese numerals a house, building or room number may be written in (`七十七号`,
/// `五〇二室`, `二十三号楼`), the financial forms and the spoken `幺` with them. `两` and `万`
/// are not: a house number never uses them, and they count things (`两户`, `万一`).
const CHINESE_DIGITS: &str = "〇零一二三四五六七八九十百千幺壹贰叁肆伍陆柒捌玖拾佰仟";

/// Whether `c` is a digit of a house number: ASCII, full-width, or a Chinese numeral.
fn house_digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c) || CHINESE_DIGITS.contains(c)
}

/// `text` with the digits of every house, building, unit and room number masked (see
/// [`HOUSE_NUMBER_ENDS`]), in ASCII, full-width digits or Chinese numerals. Until 2026-12-07
/// only ASCII and full-width digits were: `南京路七十七号`, `三单元五〇二室`, `十二栋` were
/// shown. A day (`12月8号`, `十二月八号`: a number after a month) stays, like any date.
///
/// A Chinese numeral before `单` is a unit only as `单元` (`一单` is "one order"); other
/// words that end in a numeral before such a character (`统一号召`) are masked too: a
/// character too many is masked rather than a house number shown.
pub(crate) fn mask_house_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let end = (i..chars.len())
            .find(|&j| !house_digit(chars[j]))
            .unwrap_or(chars.len());
        if end > i {
            let run = &chars[i..end];
            let chinese = run.iter().any(|c| CHINESE_DIGITS.contains(*c));
            let numbered = match chars.get(end) {
                Some('单') if chinese => chars.get(end + 1) == Some(&'元'),
                // `N号` in numerals is a house only after a road (`南京路七十七号`, or the road
                // masked before: `***`) or as a building (`二十三号楼`, `五号院`): otherwise it
                // is a day, a window, a line or an exit (`八号上门`, `三号窗口`, `地铁三号线`),
                // which the first cut (the same day) masked and the review found.
                Some('号') if chinese => {
                    i.checked_sub(1)
                        .and_then(|p| chars.get(p))
                        .is_some_and(|c| ROAD_ENDS.contains(c))
                        || matches!(chars.get(end + 1), Some('楼' | '院'))
                }
                Some(c) => HOUSE_NUMBER_ENDS.contains(c),
                None => false,
            };
            let day = matches!(chars.get(end), Some('号' | '日'))
                && i >= 2
                && chars[i - 1] == '月'
                && house_digit(chars[i - 2]);
            if numbered && !day {
                // Right after a masked road (`***` `***号`), one mask says it.
                if !out.ends_with("***") {
                    out.push_str("***");
                }
            } else {
                out.extend(run);
            }
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}
