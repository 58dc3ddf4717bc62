//! Channel-neutral values: what comes in ([`Inbound`]), what a channel yields ([`Submission`]) and
//! what the gateway decided ([`Outcome`]), which each channel renders in its own reply format.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One HTTP request as the adapters see it: bytes, headers, query and the time it arrived.
/// Built by the gateway's HTTP layer; adapters never see a socket.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    /// Raw query string without the leading `?` (still percent-encoded).
    pub query: String,
    /// Header names lower-cased, values as received (non-UTF-8 values are dropped by the caller).
    pub headers: Vec<(String, String)>,
    /// The request body, already bounded in size by the caller.
    pub body: Vec<u8>,
    /// Arrival time, unix seconds. Adapters never read a clock.
    pub now: i64,
}

impl Inbound {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter with this name, percent-decoded. Undecodable pairs are skipped.
    pub fn query_param(&self, name: &str) -> Option<String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&self.query)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The media type of the body (`Content-Type` without parameters), lower-cased.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }
}

/// The channels a submission can arrive by. Closed on purpose: adding one makes the compiler show
/// every place that must learn about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The hotline's web portal form.
    Web,
    /// A WeChat official account push.
    Wechat,
    /// A Weibo push.
    Weibo,
    /// A telephony platform (CTI) callback.
    Cti,
}

impl Channel {
    /// The lower-case name used in work orders, metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Wechat => "wechat",
            Channel::Weibo => "weibo",
            Channel::Cti => "cti",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of identifier names a submitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    /// A normalised phone number (no `+86`, spaces or dashes).
    Phone,
    /// A WeChat openid (per official account).
    Wechat,
    /// A Weibo uid.
    Weibo,
    /// An email address.
    Email,
    /// The client IP of a web submitter who gave no phone.
    Ip,
    /// A telephony platform's stable id for a caller whose number is withheld, written
    /// `cti:PROFILE:ID` (issue #4: withheld numbers are never throttled by number).
    Cti,
}

impl IdentityKind {
    fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Phone => "phone",
            IdentityKind::Wechat => "wechat",
            IdentityKind::Weibo => "weibo",
            IdentityKind::Email => "email",
            IdentityKind::Ip => "ip",
            IdentityKind::Cti => "cti",
        }
    }
}

/// A submitter's identity, written `KIND:VALUE` (`phone:13800000000`, `wechat:OPENID`, ...).
/// The key of the nuisance ladder and of duplicate detection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    /// What kind of identifier this is.
    pub kind: IdentityKind,
    /// The identifier, normalised (phone numbers without prefix and separators).
    pub value: String,
}

impl Identity {
    /// A phone identity; the number is normalised. `None` when it is not a plausible number.
    pub fn phone(raw: &str) -> Option<Identity> {
        crate::text::normalize_phone(raw).map(|value| Identity {
            kind: IdentityKind::Phone,
            value,
        })
    }

    /// Builds an identity of the given kind, value taken as is.
    pub fn new(kind: IdentityKind, value: impl Into<String>) -> Identity {
        Identity {
            kind,
            value: value.into(),
        }
    }

    /// Parses `KIND:VALUE`; phone values are normalised, emails lower-cased.
    pub fn parse(s: &str) -> Option<Identity> {
        let (kind, value) = s.split_once(':')?;
        let value = value.trim();
        if value.is_empty() || value.len() > 256 {
            return None;
        }
        match kind {
            "phone" => Identity::phone(value),
            "wechat" => Some(Identity::new(IdentityKind::Wechat, value)),
            "weibo" => Some(Identity::new(IdentityKind::Weibo, value)),
            // An address mail could reach: until 2026-12-07 any value with an `@` was one
            // (`email:a@example.cn@@`), and an operator's typo linked a caller to a ladder no
            // contact ever reaches (privacy review, aside).
            "email" if is_email_address(value) => Some(Identity::new(
                IdentityKind::Email,
                value.to_ascii_lowercase(),
            )),
            // The HTTP layer names a client by its canonical address (IPv4-mapped IPv6 as IPv4,
            // IPv6 compressed and lower case); an operator's `ip:2001:DB8::1` must name the same
            // client, or a suspension of it would apply to nobody.
            "ip" => value
                .parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| Identity::new(IdentityKind::Ip, ip.to_canonical().to_string())),
            "cti" if value.contains(':') => Some(Identity::new(IdentityKind::Cti, value)),
            _ => None,
        }
    }

    /// The identity with its value masked, for logs, metrics and events.
    pub fn masked(&self) -> String {
        format!(
            "{}:{}",
            self.kind.as_str(),
            crate::mask::mask_value(self.kind, &self.value)
        )
    }

    /// `text` with this identity's value masked wherever it stands, as in [`Identity::masked`]:
    /// for text that may carry it (a dedupe key, a remote API's error echoing a request).
    pub fn mask_in(&self, text: &str) -> String {
        if self.value.is_empty() {
            return text.to_string();
        }
        text.replace(
            &self.value,
            &crate::mask::mask_value(self.kind, &self.value),
        )
    }
}

/// Whether `value` has the shape of one e-mail address: one `@`, a local part, and a domain
/// of at least two non-empty dot-separated labels, with no space, control character or the
/// characters that delimit addresses in a header (`<>,;"()[]\`).
fn is_email_address(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    let clean = |s: &str| {
        !s.is_empty()
            && !s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "@<>,;\"()[]\\".contains(c))
    };
    clean(local)
        && clean(domain)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|l| !l.is_empty())
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.value)
    }
}

/// The kinds of matter of article 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// 咨询
    Consultation,
    /// 求助
    Help,
    /// 投诉
    Complaint,
    /// 举报
    Report,
    /// 建议
    Suggestion,
    /// 表扬
    Praise,
}

impl Category {
    /// Every category, in contract order.
    pub const ALL: [Category; 6] = [
        Category::Consultation,
        Category::Help,
        Category::Complaint,
        Category::Report,
        Category::Suggestion,
        Category::Praise,
    ];

    /// The contract name (`consultation`, `help`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Consultation => "consultation",
            Category::Help => "help",
            Category::Complaint => "complaint",
            Category::Report => "report",
            Category::Suggestion => "suggestion",
            Category::Praise => "praise",
        }
    }

    /// Parses a contract name; also accepts the Chinese names (咨询, 求助, ...).
    pub fn parse(s: &str) -> Option<Category> {
        let s = s.trim();
        Category::ALL.into_iter().find(|c| {
            c.as_str().eq_ignore_ascii_case(s)
                || match c {
                    Category::Consultation => s == "咨询",
                    Category::Help => s == "求助",
                    Category::Complaint => s == "投诉",
                    Category::Report => s == "举报",
                    Category::Suggestion => s == "建议",
                    Category::Praise => s == "表扬",
                }
        })
    }
}

/// Contact details the submitter gave (all optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// Name as given.
    pub name: String,
    /// Normalised phone number, or empty.
    pub phone: String,
    /// Email address, or empty.
    pub email: String,
}

/// Where the matter is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Free-text address.
    pub address: String,
    /// Latitude (WGS-84 or GCJ-02 as the channel sends it).
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
}

/// What kind of thing an attachment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentKind {
    /// A photo.
    Image,
    /// A voice message.
    Voice,
    /// A video or short video.
    Video,
    /// Any other file.
    File,
    /// A call recording.
    Recording,
    /// A link the submitter shared.
    Link,
}

/// Media that belongs to a matter; the gateway stores references, never the media itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// What it is.
    pub kind: AttachmentKind,
    /// Where to fetch it, if the channel gives a URL.
    pub url: String,
    /// The platform's media id (WeChat `MediaId`, Weibo `vfid`), if any.
    pub media_id: String,
}

/// One structured matter inside a submission (art. 13: several matters, several orders).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The matter's text.
    pub content: String,
    /// Its category, if the channel gave one.
    pub category: Option<Category>,
}

/// A channel-neutral submission: what one citizen asked, by one channel, at one time.
/// The pipeline turns it into zero (redirect, refusal), one or several work orders.
// Serialisable: a push answered past its reply budget is kept on disk until it is stored
// (the gateway's `journal`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// The channel it came by.
    pub channel: Channel,
    /// The account or profile name from the URL (`""` for the web form).
    pub account: String,
    /// The platform's message or call id.
    pub channel_ref: String,
    /// Key under which a platform retry of this same push is recognised (`None`: no retries).
    pub dedupe_key: Option<String>,
    /// Who sent it.
    pub identity: Identity,
    /// When it arrived (or the platform's create time), unix seconds.
    pub received_at: i64,
    /// The matter as text, trimmed and NFC-normalised.
    pub content: String,
    /// The category the channel gave explicitly.
    pub category: Option<Category>,
    /// Structured matters; empty means `content` is the one matter.
    pub items: Vec<Item>,
    /// Contact details.
    pub contact: Contact,
    /// Location of the matter.
    pub location: Location,
    /// Media references.
    pub attachments: Vec<Attachment>,
    /// The submitter asked for confidentiality (art. 29).
    pub confidential: bool,
    /// An idempotency key chosen by the client (web form `client_ref`).
    pub client_ref: Option<String>,
}

impl Submission {
    /// A submission with only the required parts set; the rest empty.
    pub fn new(
        channel: Channel,
        identity: Identity,
        received_at: i64,
        content: impl Into<String>,
    ) -> Submission {
        Submission {
            channel,
            account: String::new(),
            channel_ref: String::new(),
            dedupe_key: None,
            identity,
            received_at,
            content: content.into(),
            category: None,
            items: Vec::new(),
            contact: Contact::default(),
            location: Location::default(),
            attachments: Vec::new(),
            confidential: false,
            client_ref: None,
        }
    }
}

/// A work order as the submitter sees it in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRef {
    /// The order number (digits, starts with the local date).
    pub number: String,
    /// The order's category.
    pub category: String,
    /// The emergency number the second opinion suspects this matter needs (the rules found
    /// none, so the order was made and marked for urgent review). Absent when not suspected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspected_emergency: Option<String>,
}

/// What the gateway decided about a submission; each channel renders it in its own format,
/// with the citizen-facing message the gateway wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Stored durably as these orders.
    Accepted {
        /// The new orders.
        orders: Vec<OrderRef>,
    },
    /// The same matter is already open as these orders (art. 17(5)).
    Duplicate {
        /// The earlier open orders.
        orders: Vec<OrderRef>,
    },
    /// An emergency: the person must call this number (art. 17(1)).
    Redirected {
        /// 110, 119, 120 or 122.
        number: String,
        /// Short reason in Chinese.
        reason: String,
    },
    /// A caller's words the emergency rules took for an emergency and the second opinion
    /// strongly doubts: the person is told the number to dial in case the danger is now, and
    /// the call goes on to an agent (art. 17 allows either: transfer, or tell them to dial).
    Advised {
        /// 110, 119, 120 or 122.
        number: String,
    },
    /// Over quota: reminded, not stored (art. 32).
    Throttled {
        /// Seconds until a submission will be taken again.
        retry_after: u64,
        /// Reminders left before a suspension.
        warnings_left: u32,
    },
    /// Suspended (art. 32).
    Suspended {
        /// End of the suspension, RFC 3339.
        until: String,
        /// Why.
        reason: String,
    },
    /// Answered with guidance only; no order (art. 17(2), 17(6)).
    Informed {
        /// The guidance the rule gave the person (where to turn instead), kept with the outcome
        /// so that a platform's retry is answered as the first push was. Empty in records
        /// written before 2026-12-07 (`{"status":"informed"}`), which still read back.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        guidance: String,
    },
    /// A photo, recording or location sent shortly after a matter: added to that order.
    Attached {
        /// The order it was added to.
        orders: Vec<OrderRef>,
    },
    /// Nothing to say (events, unknown message types).
    Nothing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_identity_is_the_address_the_http_layer_sees() {
        let value = |s: &str| Identity::parse(s).map(|i| i.to_string());
        assert_eq!(
            value("ip:2001:DB8::0001").as_deref(),
            Some("ip:2001:db8::1")
        );
        assert_eq!(
            value("ip:::ffff:203.0.113.9").as_deref(),
            Some("ip:203.0.113.9")
        );
        assert_eq!(value("ip: 203.0.113.9 ").as_deref(), Some("ip:203.0.113.9"));
        assert_eq!(value("ip:garbage"), None);
        assert_eq!(value("ip:203.0.113.256"), None);
    }

    /// An e-mail identity is one address: a value with an `@` in it is not enough.
    #[test]
    fn an_email_identity_is_one_address() {
        let value = |s: &str| Identity::parse(s).map(|i| i.to_string());
        assert_eq!(
            value("email:Zhang.San@Example.com").as_deref(),
            Some("email:zhang.san@example.com")
        );
        for bad in [
            "email:zhang.san@example.comx@@",
            "email:a@b@example.com",
            "email:@example.com",
            "email:zhang@",
            "email:zhang@localhost",
            "email:zhang@example..com",
            "email:zhang@.example.com",
            "email:zhang san@example.com",
            "email:<zhang@example.com>",
            "email:a@example.com,b@example.com",
        ] {
            assert_eq!(value(bad), None, "{bad}");
        }
    }

    #[test]
    fn guidance_is_kept_in_the_outcome_and_old_records_still_read() {
        let o = Outcome::Informed {
            guidance: "您反映的事项依法应当通过诉讼途径解决，可拨打12348咨询。".into(),
        };
        let text = serde_json::to_string(&o).unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<Outcome>(&text).ok(),
            Some(o),
            "{text}"
        );
        // A record stored before the guidance was kept.
        assert_eq!(
            serde_json::from_str::<Outcome>(r#"{"status":"informed"}"#).ok(),
            Some(Outcome::Informed {
                guidance: String::new()
            })
        );
        assert_eq!(
            serde_json::to_string(&Outcome::Informed {
                guidance: String::new()
            })
            .unwrap_or_default(),
            r#"{"status":"informed"}"#
        );
    }

    /// A node still running the release before (where `Informed` had no fields) reads what a
    /// new node stored: a rolling upgrade shares one PostgreSQL database.
    #[test]
    fn a_node_of_the_release_before_reads_the_new_record() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(tag = "status", rename_all = "lowercase")]
        enum Before {
            Informed,
        }
        let text = r#"{"status":"informed","guidance":"请拨打12348。"}"#;
        assert_eq!(
            serde_json::from_str::<Before>(text).ok(),
            Some(Before::Informed)
        );
    }
}
