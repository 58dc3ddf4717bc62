//! The work order JSON of the contract (CONTRACT.md, "Work order JSON"), as dispatch receives it.
//!
//! Serialised straight from the submission it borrows from. Building it as a
//! `serde_json::Value` first cost a map node and a copied string per field, all dropped once
//! the text was written: writing it typed took 4–7 % off the gateway's CPU per web order
//! (BENCHMARKS.md, tenth session).
//!
//! Every object's fields are in alphabetical order: that is how the `Value` maps wrote them, so
//! dispatch systems keep receiving the same bytes. A test compares both ways of writing a body.
//! `number` is not here: both stores put it first once the transaction has assigned it
//! (`NewOrder::body_with`; the PostgreSQL store used to sort it in among the others).

use crate::pipeline::guidance::Guidance;
use crate::store::OrderReview;
use hotline_adapters::{Attachment, AttachmentKind, Submission};
use serde::{Serialize, Serializer};

/// One matter of a submission as a work order, without its number.
#[derive(Serialize)]
pub(crate) struct WorkOrderBody<'a> {
    /// The channel's account (WeChat official account, Weibo account, ...).
    pub account: &'a str,
    /// References to media; the gateway never stores the media itself.
    #[serde(serialize_with = "attachments")]
    pub attachments: &'a [Attachment],
    /// The category name.
    pub category: &'a str,
    /// The channel's name.
    pub channel: &'a str,
    /// The message or call id on the channel.
    pub channel_ref: &'a str,
    /// Whether the submitter asked for confidentiality.
    pub confidential: bool,
    /// The matter's text.
    pub content: &'a str,
    /// A possible emergency a person must look at at once.
    pub emergency_review: Option<&'a OrderReview>,
    /// A guidance rule's tag and message, when one matched.
    #[serde(serialize_with = "hint")]
    pub handling_hint: Option<&'a Guidance>,
    /// Which of the submission's matters this is (art. 13).
    pub item: Item,
    /// Where the matter is.
    pub location: Location<'a>,
    /// When the submission arrived, RFC 3339 in the hotline's time zone.
    pub received_at: &'a str,
    /// The submission's own text when its matters came as structured items and it said more
    /// than the items do (a heading, a second matter, the address): kept with each order so
    /// nothing the citizen wrote is lost (art. 10). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submission_content: Option<&'a str>,
    /// The submission's id, shared by all its orders.
    pub submission_id: &'a str,
    /// Who submitted it.
    pub submitter: Submitter<'a>,
}

/// `item`: this matter's place among the submission's.
#[derive(Serialize)]
pub(crate) struct Item {
    /// How many matters the submission held.
    pub count: usize,
    /// This one's place, from 1.
    pub index: usize,
}

/// `location`.
#[derive(Serialize)]
pub(crate) struct Location<'a> {
    /// Free-text address.
    pub address: &'a str,
    /// Latitude, if the channel gave one.
    pub lat: Option<f64>,
    /// Longitude, if the channel gave one.
    pub lon: Option<f64>,
}

/// `submitter`.
#[derive(Serialize)]
pub(crate) struct Submitter<'a> {
    /// E-mail address, `""` for none.
    pub email: &'a str,
    /// The identity (`phone:...`, `wechat:...`), unmasked: dispatch needs to reach the person.
    pub identity: &'a str,
    /// Name, `""` for none.
    pub name: &'a str,
    /// Phone number, `""` for none.
    pub phone: &'a str,
}

impl<'a> WorkOrderBody<'a> {
    /// The fields that come from the submission as a whole; the caller sets the matter's own.
    pub(crate) fn common(sub: &'a Submission, identity: &'a str, received_at: &'a str) -> Self {
        WorkOrderBody {
            account: &sub.account,
            attachments: &sub.attachments,
            category: "",
            channel: sub.channel.as_str(),
            channel_ref: &sub.channel_ref,
            confidential: sub.confidential,
            content: "",
            emergency_review: None,
            handling_hint: None,
            item: Item { count: 1, index: 1 },
            location: Location {
                address: &sub.location.address,
                lat: sub.location.lat,
                lon: sub.location.lon,
            },
            received_at,
            submission_content: submission_context(sub),
            submission_id: "",
            submitter: Submitter {
                email: &sub.contact.email,
                identity,
                name: &sub.contact.name,
                phone: &sub.contact.phone,
            },
        }
    }
}

/// The submission's text, when its matters are items and it is more than the items joined
/// (which is what a page that sends only items gets as its content).
fn submission_context(sub: &Submission) -> Option<&str> {
    if sub.items.is_empty() || sub.content.trim().is_empty() {
        return None;
    }
    let joined: Vec<&str> = sub.items.iter().map(|i| i.content.as_str()).collect();
    (sub.content != joined.join("\n")).then_some(sub.content.as_str())
}

/// Each attachment as `{"kind", "media_id", "url"}`.
fn attachments<S: Serializer>(list: &&[Attachment], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Ref<'a> {
        kind: AttachmentKind,
        media_id: &'a str,
        url: &'a str,
    }
    s.collect_seq(list.iter().map(|a| Ref {
        kind: a.kind,
        media_id: &a.media_id,
        url: &a.url,
    }))
}

/// A guidance rule's hint as `{"message", "rule", "tag"}`.
fn hint<S: Serializer>(g: &Option<&Guidance>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Hint<'a> {
        message: &'a str,
        rule: &'a str,
        tag: &'a str,
    }
    g.map(|g| Hint {
        message: &g.message,
        rule: &g.rule,
        tag: &g.tag,
    })
    .serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::guidance::GuidanceAction;
    use hotline_adapters::{Channel, Identity};
    use serde_json::json;

    /// The body as the pipeline built it before this module: a `serde_json::Value`, whose maps
    /// write their keys sorted. Kept as the reference the typed body must match byte for byte.
    fn as_value(
        b: &WorkOrderBody<'_>,
        attachments: &[Attachment],
        guidance: Option<&Guidance>,
    ) -> String {
        json!({
            "submission_id": b.submission_id,
            "channel": b.channel,
            "account": b.account,
            "channel_ref": b.channel_ref,
            "received_at": b.received_at,
            "category": b.category,
            "content": b.content,
            "confidential": b.confidential,
            "submitter": {
                "identity": b.submitter.identity,
                "name": b.submitter.name,
                "phone": b.submitter.phone,
                "email": b.submitter.email,
            },
            "location": {
                "address": b.location.address,
                "lat": b.location.lat,
                "lon": b.location.lon,
            },
            "attachments": attachments,
            "item": {"index": b.item.index, "count": b.item.count},
            "handling_hint": guidance.map(|g| json!({"rule": g.rule, "tag": g.tag, "message": g.message})),
            "emergency_review": b.emergency_review.map(|r| {
                let mut v = json!({"number": r.number, "score": r.score, "by": r.by});
                if let Some(rule) = &r.rule {
                    v["rule"] = json!(rule);
                }
                v
            }),
        })
        .to_string()
    }

    /// A submission's own text goes with its item orders only when it says more than the
    /// items: the content a page sending only items gets (the items joined) is not repeated.
    #[test]
    fn the_submission_text_is_kept_beside_items_only_when_it_says_more() {
        use hotline_adapters::{Channel, Item};
        let id = Identity::phone("13800000000").unwrap();
        let item = |c: &str| Item {
            content: c.into(),
            category: None,
        };
        let mut sub = Submission::new(Channel::Web, id, 0, "小区垃圾三天没人清运，地址和平路1号");
        assert_eq!(
            submission_context(&sub),
            None,
            "no items: the content is the order's"
        );
        sub.items = vec![item("楼道灯不亮"), item("电梯经常停运")];
        assert_eq!(
            submission_context(&sub),
            Some("小区垃圾三天没人清运，地址和平路1号")
        );
        sub.content = "楼道灯不亮\n电梯经常停运".into();
        assert_eq!(submission_context(&sub), None);
    }

    #[test]
    fn a_typed_body_is_the_same_bytes_as_the_value_it_replaces() {
        let identity = Identity::phone("13800000000").map(|i| i.to_string());
        let identity = identity.as_deref().unwrap_or_default();
        let mut sub = Submission::new(
            Channel::Wechat,
            Identity::phone("13800000000").unwrap(),
            1_764_400_000,
            "ignored: the matter's own text is set below",
        );
        sub.account = "gh_0123456789ab".into();
        sub.channel_ref = "msg-1".into();
        sub.confidential = true;
        sub.contact.name = "张三".into();
        sub.contact.phone = "13800000000".into();
        sub.contact.email = "a\"b@example.com".into();
        sub.location.address = "人民路 1 号\n(北门)".into();
        sub.location.lat = Some(31.2304);
        sub.location.lon = Some(121.4737);
        sub.attachments = vec![
            Attachment {
                kind: AttachmentKind::Image,
                url: "https://example.com/a.jpg?x=1&y=2".into(),
                media_id: "m-1".into(),
            },
            Attachment {
                kind: AttachmentKind::Link,
                url: String::new(),
                media_id: String::new(),
            },
        ];
        let guidance = Guidance {
            rule: "court".into(),
            action: GuidanceAction::Tag,
            tag: "guidance:court".into(),
            message: "请向法院咨询。".into(),
        };
        let reviews = [
            None,
            Some(OrderReview {
                by: "second_opinion",
                number: "120".into(),
                rule: None,
                score: 2.35,
                sure: false,
            }),
            Some(OrderReview {
                by: "rules",
                number: "119".into(),
                rule: Some("fire-now".into()),
                score: -0.5,
                sure: false,
            }),
        ];
        for review in &reviews {
            for hint in [None, Some(&guidance)] {
                for attachments in [&sub.attachments[..], &[]] {
                    let mut b = WorkOrderBody::common(&sub, identity, "2026-11-29T15:06:40+08:00");
                    b.attachments = attachments;
                    b.category = "complaint";
                    b.content = "路灯坏了，\t晚上很黑 \\ \u{1}";
                    b.emergency_review = review.as_ref();
                    b.handling_hint = hint;
                    b.item = Item { count: 3, index: 2 };
                    b.submission_id = "0123456789abcdef0123456789abcdef";
                    let typed = serde_json::to_string(&b).unwrap();
                    assert_eq!(typed, as_value(&b, attachments, hint));
                }
            }
        }
        // Empty and missing values too.
        let bare = Submission::new(Channel::Web, Identity::phone("13800000000").unwrap(), 0, "");
        let b = WorkOrderBody::common(&bare, "", "");
        assert_eq!(serde_json::to_string(&b).unwrap(), as_value(&b, &[], None));
    }
}
