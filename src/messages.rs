//! Citizen-facing sentences (Chinese), one place for every channel.
//!
//! Kept short: WeChat shows them in a chat bubble and the phone reads them out.

use chrono::DateTime;
use hotline_adapters::Outcome;

/// Unix seconds as RFC 3339 in the hotline's time zone (`server.timezone`): every time an
/// answer shows a person or an operator is in this form, so one suspension reads the same in
/// the 403, the admin view and the suspend call's answer.
pub fn rfc3339(t: i64, tz: chrono_tz::Tz) -> String {
    DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .with_timezone(&tz)
        .to_rfc3339()
}

/// Formats an RFC 3339 time in the hotline's local time, to the minute (`2026年12月07日 19:24`),
/// as people read it; text that is not a time is returned as it is.
pub fn local(rfc3339: &str, tz: chrono_tz::Tz) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&tz)
                .format("%Y年%m月%d日 %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// Where to call in an emergency, as every acknowledgement ends.
pub const EMERGENCY_NUMBERS: &str = "如遇紧急情况，请直接拨打110、119、120、122。";

/// The sentence that puts the number to dial first when an emergency is suspected (by the second
/// opinion, or by the rules when the model doubts them) but not sure: the person reads the one
/// number that fits before anything else, in case the danger is now (art. 17(1)).
pub fn emergency_first(number: &str) -> String {
    format!("您反映的情况可能是紧急情况：如果危险正在发生，请立即拨打{number}。")
}

/// The web form's refusal when its client address is over `web.address_quota`: the wait, and
/// that nothing was held against the person (no reminder: many people may share an address,
/// and the typed phone's owner may not be the sender), so no "再重复提交N次将被暂停受理".
pub fn address_throttled(retry_after: u64) -> String {
    format!(
        "您所在网络地址的提交过于频繁，请{}分钟后再试。本次不计入提醒，也不会暂停受理。{EMERGENCY_NUMBERS}",
        retry_after.div_ceil(60).max(1)
    )
}

/// The refusal of an anonymous web submitter (`ip:`, no phone given) over its quota: the wait,
/// and no suspension to come, since an address is never suspended by the rule (everyone
/// behind it shares it); the emergency numbers as in every refusal.
pub fn anonymous_throttled(retry_after: u64) -> String {
    format!(
        "您所在网络地址的匿名提交过于频繁，请{}分钟后再试。{EMERGENCY_NUMBERS}",
        retry_after.div_ceil(60).max(1)
    )
}

/// The refusal of a status look-up over `web.lookup_quota`: the wait, and the emergency
/// numbers as every refusal names them (art. 17(1)).
pub fn lookups_throttled(retry_after: u64) -> String {
    format!(
        "您所在网络地址的工单查询过于频繁，请{}分钟后再查询。{EMERGENCY_NUMBERS}",
        retry_after.div_ceil(60).max(1)
    )
}

/// The answer to a status query by number on WeChat, Weibo or the phone when its sender is
/// over `web.lookup_quota`: the wait, instead of the status. Said in the reply (the platforms
/// have no status code to carry it); the emergency numbers as in every refusal (art. 17(1)).
pub fn queries_throttled(retry_after: u64) -> String {
    format!(
        "您的工单查询过于频繁，请{}分钟后再查询。{EMERGENCY_NUMBERS}",
        retry_after.div_ceil(60).max(1)
    )
}

/// The answer to a possible emergency on a written channel whose order could not be stored
/// (a damaged store, a full disk): the number to dial, then that the matter was not kept. A
/// bare 503 named no number (until 2026-12-07), and a WeChat follower saw only "该公众号暂时
/// 无法提供服务".
pub fn unsaved_emergency(number: &str) -> String {
    format!(
        "{}系统繁忙，您的诉求暂未能保存，如不紧急，请稍后重新提交。",
        emergency_first(number)
    )
}

/// The reply to a possible emergency whose intake is still running when the platform's reply
/// budget runs out (a slow or locked store): the number to dial now; the order is being made
/// in the background. WeChat does not resend after a reply, so this is all the person sees.
pub fn pending_emergency(number: &str) -> String {
    format!("{}您的诉求正在受理中。", emergency_first(number))
}

/// The answer to a push refused as sent (a field in it twice) whose text is a possible
/// emergency: the number to dial, then that the message was not taken. The platform shows a
/// 200's reply, not a refusal's body, so this is how the person learns the number.
pub fn unread_emergency(number: &str) -> String {
    format!(
        "{}您的消息格式有误，未能受理，如不紧急，请重新发送。",
        emergency_first(number)
    )
}

/// The answer to a message of a kind the gateway does not take (a file, a mini-program card):
/// it is not an order, and the person learns how to send the matter instead of hearing nothing.
/// WeChat's push of a file carries no media id the account could fetch it with.
pub const UNSUPPORTED: &str =
    "暂不支持接收此类消息（如文件、卡片）。请用文字描述您的诉求，可附图片、语音或位置；也可拨打12345热线。";

/// The sentence that goes with an outcome.
pub fn for_outcome(o: &Outcome, tz: chrono_tz::Tz) -> String {
    render(o, tz, false)
}

/// The sentence for `o` in at most `max_chars` characters where it can be: a channel with a
/// short limit (Weibo: fewer than 300) gets many order numbers as a range (`A至B，共20件`)
/// instead of each of them. Other sentences are as [`for_outcome`] writes them.
pub fn for_outcome_within(o: &Outcome, tz: chrono_tz::Tz, max_chars: usize) -> String {
    let full = render(o, tz, false);
    if full.chars().count() <= max_chars {
        return full;
    }
    render(o, tz, true)
}

/// The order numbers of an answer: each of them, or (`compact`) for three or more the first
/// and the last (`A至B，共N件` when they run on, as one intake's numbers do; else `A、B等N件`).
fn numbers_of(orders: &[hotline_adapters::OrderRef], compact: bool) -> String {
    let numbers: Vec<&str> = orders.iter().map(|o| o.number.as_str()).collect();
    match numbers.as_slice() {
        [first, second, .., last] if compact => {
            let n = numbers.len();
            let run = match (first.parse::<u128>(), last.parse::<u128>()) {
                (Ok(a), Ok(b)) => b.checked_sub(a) == Some(n as u128 - 1),
                _ => false,
            };
            if run {
                format!("{first}至{last}，共{n}件")
            } else {
                format!("{first}、{second}等{n}件")
            }
        }
        _ => numbers.join("、"),
    }
}

fn render(o: &Outcome, tz: chrono_tz::Tz, compact: bool) -> String {
    match o {
        // The emergency numbers close every acknowledgement: the rules catch most emergencies
        // but not all (BENCHMARKS.md measures them on text written without seeing them), and
        // a person whose emergency was taken as an ordinary matter should still read where to
        // call.
        Outcome::Accepted { orders } => {
            // The second opinion suspects an emergency the rules did not find: the order stands,
            // and the person reads the one number that fits first, in case the danger is now.
            let first = orders
                .iter()
                .find_map(|o| o.suspected_emergency.as_deref())
                .map(emergency_first)
                .unwrap_or_default();
            format!(
                "{first}您的诉求已受理，工单号：{}。可凭工单号查询办理进度。{EMERGENCY_NUMBERS}",
                numbers_of(orders, compact)
            )
        }
        // A repeat, a supplement and guidance end with the numbers too, for the same reason:
        // a person who sends a matter again because nobody came may be in danger now, and an
        // emergency both the rules and the model missed was told "请耐心等待" and no number
        // (until 2026-12-07).
        // A possible emergency sent again (the same words: see the pipeline's repeats) is told
        // its number first, as its order was.
        Outcome::Duplicate { orders } => format!(
            "{}您反映的事项已在办理中，工单号：{}。我们已将您的再次反映告知承办单位，请耐心等待。{EMERGENCY_NUMBERS}",
            orders
                .iter()
                .find_map(|o| o.suspected_emergency.as_deref())
                .map(emergency_first)
                .unwrap_or_default(),
            numbers_of(orders, compact)
        ),
        // The rules' reasons are whole sentences that already name the number; a bare reason
        // gets the number added.
        Outcome::Redirected { number, reason } if reason.contains(number.as_str()) => {
            format!("{reason}12345热线不受理紧急警情，请勿耽误。")
        }
        Outcome::Redirected { number, reason } => {
            format!("您反映的情况属于紧急情况（{reason}），请立即拨打{number}求助。")
        }
        Outcome::Advised { number } => format!(
            "如果危险正在发生，请立即挂机拨打{number}；其他事项请不要挂机，正在为您转接人工服务。"
        ),
        // An offence (an agent's abuse flag, a long call with no matter) has nothing to wait
        // for, and the person submitted nothing too often: the ladder gives it `retry_after`
        // 0, a refusal over quota at least 1.
        Outcome::Throttled {
            retry_after: 0,
            warnings_left,
        } => format!(
            "您的行为已被记录，请遵守热线使用规定（《管理办法》第三十二条）。再有{}次将被暂停受理。如遇紧急情况请拨打110、119、120、122。",
            warnings_left + 1
        ),
        Outcome::Throttled {
            retry_after,
            warnings_left,
        } => format!(
            "您提交过于频繁，请{}分钟后再试。再重复提交{}次将被暂停受理。如遇紧急情况请拨打110、119、120、122。",
            retry_after.div_ceil(60).max(1),
            warnings_left + 1
        ),
        Outcome::Suspended { until, reason } => format!(
            "因{reason}，您的诉求受理已暂停至{}。如遇紧急情况请拨打110、119、120、122。",
            local(until, tz)
        ),
        Outcome::Attached { orders } => format!(
            "已将您发送的图片/位置补充到工单{}。{EMERGENCY_NUMBERS}",
            numbers_of(orders, compact)
        ),
        Outcome::Informed { guidance } if !guidance.is_empty() => {
            format!("{guidance}{EMERGENCY_NUMBERS}")
        }
        // A record stored before the guidance was kept with it.
        Outcome::Informed { .. } => {
            format!("您反映的事项不属于热线受理范围，请按提示途径办理。{EMERGENCY_NUMBERS}")
        }
        Outcome::Nothing => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_adapters::OrderRef;

    #[test]
    fn an_acknowledgement_gives_the_order_and_the_emergency_numbers() {
        let o = Outcome::Accepted {
            orders: vec![OrderRef {
                number: "2026120201000001".into(),
                category: "complaint".into(),
                suspected_emergency: None,
            }],
        };
        let m = for_outcome(&o, chrono_tz::Asia::Shanghai);
        assert!(
            m.contains("2026120201000001") && m.ends_with(EMERGENCY_NUMBERS),
            "{m}"
        );
        assert!(!m.contains("可能是紧急情况"), "{m}");
    }

    /// An offence's reminder names no wait and no repeated submission: the caller did not
    /// submit too often (an agent flagged abuse, or a call held the line with no matter).
    #[test]
    fn an_offence_reminder_is_not_worded_for_the_quota() {
        let tz = chrono_tz::Asia::Shanghai;
        let offence = for_outcome(
            &Outcome::Throttled {
                retry_after: 0,
                warnings_left: 0,
            },
            tz,
        );
        assert!(
            offence.contains("您的行为已被记录")
                && offence.contains("再有1次将被暂停受理")
                && !offence.contains("频繁")
                && !offence.contains("分钟后再试"),
            "{offence}"
        );
        let quota = for_outcome(
            &Outcome::Throttled {
                retry_after: 60,
                warnings_left: 1,
            },
            tz,
        );
        assert!(
            quota.contains("请1分钟后再试") && quota.contains("再重复提交2次"),
            "{quota}"
        );
    }

    #[test]
    fn many_numbers_fit_a_short_limit_as_a_range() {
        let order = |n: u64| OrderRef {
            number: format!("20261207076{n:05}"),
            category: "complaint".into(),
            suspected_emergency: None,
        };
        let tz = chrono_tz::Asia::Shanghai;
        let twenty = Outcome::Accepted {
            orders: (99381..99401).map(order).collect(),
        };
        let full = for_outcome(&twenty, tz);
        assert!(full.chars().count() > 299, "{full}");
        let short = for_outcome_within(&twenty, tz, 299);
        assert!(short.chars().count() <= 299, "{short}");
        assert!(
            short.contains("工单号：2026120707699381至2026120707699400，共20件。")
                && short.ends_with(EMERGENCY_NUMBERS),
            "{short}"
        );
        // Numbers that do not run on: the first two and the count.
        let scattered = Outcome::Duplicate {
            orders: (0..20).map(|i| order(10_000 + i * 7)).collect(),
        };
        let short = for_outcome_within(&scattered, tz, 299);
        assert!(
            short.contains("工单号：2026120707610000、2026120707610007等20件。"),
            "{short}"
        );
        // Within the limit, every number is shown.
        let two = Outcome::Accepted {
            orders: vec![order(1), order(2)],
        };
        assert_eq!(for_outcome_within(&two, tz, 299), for_outcome(&two, tz));
    }

    #[test]
    fn guidance_is_answered_from_the_outcome() {
        let tz = chrono_tz::Asia::Shanghai;
        let guidance = "您反映的事项依法应当通过诉讼途径解决，可拨打12348咨询法律援助。";
        let o = Outcome::Informed {
            guidance: guidance.into(),
        };
        assert_eq!(
            for_outcome(&o, tz),
            format!("{guidance}{EMERGENCY_NUMBERS}")
        );
        let old = Outcome::Informed {
            guidance: String::new(),
        };
        assert!(for_outcome(&old, tz).contains("不属于热线受理范围"));
    }

    /// Every answer that takes or keeps a matter names the emergency numbers: a repeat sent
    /// because nobody came, a photo added to an order, guidance (until 2026-12-07 these three
    /// named none, and an emergency the rules and the model missed, sent again, was told
    /// "请耐心等待").
    #[test]
    fn repeats_supplements_and_guidance_name_the_emergency_numbers() {
        let tz = chrono_tz::Asia::Shanghai;
        let orders = vec![OrderRef {
            number: "2026120701000001".into(),
            category: "help".into(),
            suspected_emergency: None,
        }];
        for o in [
            Outcome::Duplicate {
                orders: orders.clone(),
            },
            Outcome::Attached { orders },
            Outcome::Informed {
                guidance: "兑奖请联系彩票中心。".into(),
            },
            Outcome::Informed {
                guidance: String::new(),
            },
        ] {
            let m = for_outcome(&o, tz);
            assert!(m.ends_with(EMERGENCY_NUMBERS), "{o:?}: {m}");
        }
    }

    #[test]
    fn a_suspected_emergency_is_told_its_number_first() {
        let order = |n: &str, s: Option<&str>| OrderRef {
            number: n.into(),
            category: "help".into(),
            suspected_emergency: s.map(str::to_string),
        };
        let o = Outcome::Accepted {
            orders: vec![order("1", None), order("2", Some("120"))],
        };
        let m = for_outcome(&o, chrono_tz::Asia::Shanghai);
        assert!(
            m.starts_with("您反映的情况可能是紧急情况：如果危险正在发生，请立即拨打120。")
                && m.contains("工单号：1、2")
                && m.ends_with(EMERGENCY_NUMBERS),
            "{m}"
        );
    }
}
