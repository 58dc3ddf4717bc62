//! Sina Weibo fan-service (粉丝服务平台) message push: the URL handshake, JSON pushes and the
//! passive JSON reply.
//!
//! How a handler uses it:
//! - `GET /v1/weibo/{account}`: [`verify_url`] → `200 text/plain` with the returned string.
//! - `POST /v1/weibo/{account}`: [`parse_push`] → persist and dedupe on
//!   ([`Channel::Weibo`], account, [`WeiboPush::dedupe_key`]) → [`WeiboPush::to_submission`]
//!   (`None` for events and unknown types) → pipeline → [`render_reply`] (an empty body means
//!   "no reply"; Weibo then neither retries nor shows anything).
//!
//! The signature is WeChat's (sorted SHA-1) with the App Secret as token; timestamps are in
//! milliseconds; there is no encryption and no message id. Brief: `shared/protocols/
//! wechat-weibo.md`, section 2. Weibo's optional WeChat-style XML push format is not handled.

use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::text::clean_text;
use crate::wechat::{check_query_signature, check_window, param, parse_timestamp};
use crate::{
    AdapterError, Attachment, AttachmentKind, Channel, Identity, IdentityKind, Inbound, Location,
    PushRefusal, Submission,
};

/// Default accepted clock skew between a push's `timestamp` and `Inbound::now`, in seconds.
pub const DEFAULT_WINDOW_S: i64 = 300;

/// Largest push body parsed. Pushes are small JSON objects.
pub const MAX_BODY: usize = 64 * 1024;

/// Longest passive reply text, in characters: Weibo documents "fewer than 300 Chinese
/// characters" (brief §2.3).
pub const MAX_REPLY_CHARS: usize = 299;

/// Timestamps at or above this are milliseconds (10^11 s is the year 5138; 10^11 ms is 1973).
const MS_THRESHOLD: i64 = 100_000_000_000;

/// RFC 3986 unreserved characters stay, everything else is `%XX` (upper-case hex, `%20` for a
/// space, never `+`), as the documented example requires.
const DATA_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One Weibo account as configured (`[channels.weibo.ACCOUNT]`).
#[derive(Clone, PartialEq, Eq)]
pub struct WeiboAccount {
    /// The App Secret of the AppKey configured for the push URL: the signature key.
    pub app_secret: String,
    /// Accepted skew of push timestamps against `Inbound::now`, seconds (default 300).
    pub window_s: i64,
}

impl WeiboAccount {
    /// An account with the default window.
    pub fn new(app_secret: impl Into<String>) -> WeiboAccount {
        WeiboAccount {
            app_secret: app_secret.into(),
            window_s: DEFAULT_WINDOW_S,
        }
    }
}

/// The secret stays out of logs.
impl fmt::Debug for WeiboAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeiboAccount")
            .field("app_secret", &"<redacted>")
            .field("window_s", &self.window_s)
            .finish()
    }
}

/// A verified, parsed push.
#[derive(Debug, Clone, PartialEq)]
pub struct WeiboPush {
    /// `receiver_id`: our account's uid (64-bit, exact).
    pub receiver_id: u64,
    /// `sender_id`: the fan's uid (64-bit, exact).
    pub sender_id: u64,
    /// `created_at` as sent (`Mon Jul 16 18:09:20 +0800 2012`), `""` when absent.
    pub created_at: String,
    /// `created_at` as unix seconds, or the push's query timestamp when it cannot be read.
    pub received_at: i64,
    /// `type` as sent.
    pub msg_type: String,
    /// `text` as sent (for media and events it is a platform label such as `发了一张图片`).
    pub text: String,
    /// What was sent.
    pub message: WeiboMessage,
    /// SHA-256 (hex, 16 chars) of `text` and the canonical `data`: Weibo has no message id, and
    /// `created_at` has one-second resolution.
    pub digest: String,
}

/// The message of a push, by `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum WeiboMessage {
    /// `text`: the message is [`WeiboPush::text`].
    Text,
    /// `position`: a location the fan sent.
    Position {
        /// `data.latitude` (sent as a string).
        lat: Option<f64>,
        /// `data.longitude` (sent as a string).
        lon: Option<f64>,
    },
    /// `voice`.
    Voice {
        /// `data.vfid`: the sender's file id.
        vfid: String,
        /// `data.tovfid`: the receiver's file id (what we download with our token).
        tovfid: String,
    },
    /// `image`.
    Image {
        /// `data.vfid`.
        vfid: String,
        /// `data.tovfid`.
        tovfid: String,
    },
    /// `event`.
    Event(WeiboEvent),
    /// `mention` (被@): the text is [`WeiboPush::text`].
    Mention,
    /// Any other type: ignored politely, as the docs ask; see [`WeiboPush::msg_type`].
    Unknown,
}

/// An `event` push.
#[derive(Debug, Clone, PartialEq)]
pub struct WeiboEvent {
    /// `data.subtype` as sent.
    pub subtype: String,
    /// `data.key` (menu key, URL, or `action_name_scene_id`), if any.
    pub key: Option<String>,
    /// `data.ticket` of a QR code, if any.
    pub ticket: Option<String>,
    /// What the subtype means.
    pub kind: WeiboEventKind,
}

/// Event subtypes (case-insensitive); unknown ones are [`WeiboEventKind::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeiboEventKind {
    /// `follow`.
    Follow,
    /// `unfollow`: no replies are possible afterwards.
    Unfollow,
    /// `subscribe`.
    Subscribe,
    /// `unsubscribe`.
    Unsubscribe,
    /// `scan`: a QR code scanned by a follower.
    Scan,
    /// `scan_follow`: followed by scanning a QR code.
    ScanFollow,
    /// `click`: menu click.
    Click,
    /// `view`: menu link.
    View,
    /// Anything else.
    Other,
}

impl WeiboPush {
    /// The key under which a platform retry of this same push is recognised:
    /// `receiver:sender:created_at:type:digest` (brief §2.4; the digest keeps two messages of
    /// one fan in the same second apart).
    pub fn dedupe_key(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            self.receiver_id, self.sender_id, self.created_at, self.msg_type, self.digest
        )
    }

    /// The channel-neutral submission; `None` for events, unknown types and empty messages.
    /// Media become attachments with `media_id = tovfid` and a position the location; the
    /// platform's label text of both is dropped.
    pub fn to_submission(&self, account_name: &str) -> Option<Submission> {
        let mut content = String::new();
        let mut attachments = Vec::new();
        let mut location = Location::default();
        let media = |kind, vfid: &str, tovfid: &str| Attachment {
            kind,
            url: String::new(),
            media_id: if tovfid.is_empty() { vfid } else { tovfid }.to_string(),
        };
        match &self.message {
            WeiboMessage::Text | WeiboMessage::Mention => content = clean_text(&self.text),
            // The text of a position is the platform's label (`发送了一个位置`, `我在这里:
            // http://t.cn/…`), not the fan's words nor an address: like the label of a photo,
            // it is dropped, and the place is its coordinates (plus a place name, should a
            // label carry one). A shared place is then no text of its own: it joins the fan's
            // recent order, or is an order of its own that no later place "repeats".
            WeiboMessage::Position { lat, lon } => {
                location.address = place_named(&self.text);
                location.lat = *lat;
                location.lon = *lon;
            }
            WeiboMessage::Voice { vfid, tovfid } => {
                attachments.push(media(AttachmentKind::Voice, vfid, tovfid));
            }
            WeiboMessage::Image { vfid, tovfid } => {
                attachments.push(media(AttachmentKind::Image, vfid, tovfid));
            }
            WeiboMessage::Event(_) | WeiboMessage::Unknown => return None,
        }
        if content.is_empty() && attachments.is_empty() && location.lat.is_none() {
            return None;
        }
        let key = self.dedupe_key();
        let mut s = Submission::new(
            Channel::Weibo,
            Identity::new(IdentityKind::Weibo, self.sender_id.to_string()),
            self.received_at,
            content,
        );
        s.account = account_name.to_string();
        s.channel_ref = key.clone();
        s.dedupe_key = Some(key);
        s.location = location;
        s.attachments = attachments;
        Some(s)
    }
}

/// The place name in a position's label, or `""`: the default labels and the `我在这里:` prefix
/// are the platform's words, and the `t.cn` link only points at the coordinates.
fn place_named(label: &str) -> String {
    let t = clean_text(label);
    if matches!(
        t.as_str(),
        "发送了一个位置" | "发了一个位置" | "分享了一个位置" | "分享位置" | "位置"
    ) {
        return String::new();
    }
    let rest = t.strip_prefix("我在这里").unwrap_or(&t);
    rest.trim_start_matches([':', '：', ' ', '\u{3000}'])
        .split_whitespace()
        .filter(|w| !w.starts_with("http://") && !w.starts_with("https://"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The GET handshake: checks `sign(app_secret, timestamp, nonce)` and returns `echostr` exactly.
/// No timestamp window, on purpose: a replayed handshake only echoes the replayer's own string,
/// and the official vector (2014) must keep working.
pub fn verify_url(acc: &WeiboAccount, inbound: &Inbound) -> Result<String, AdapterError> {
    check_query_signature(&acc.app_secret, inbound)?;
    param(inbound, "echostr").ok_or(AdapterError::MissingField("echostr"))
}

/// Verifies and parses a POST push: body size, signature on every push, timestamp window
/// (milliseconds or seconds), then the JSON. Ids are read as exact 64-bit integers from JSON
/// numbers or strings, never through `f64`.
pub fn parse_push(acc: &WeiboAccount, inbound: &Inbound) -> Result<WeiboPush, AdapterError> {
    parse_push_readable(acc, inbound).map_err(|r| r.error)
}

/// The push's own keys ([`parse_push`] reads them), each of which a push may carry once.
const READ_ONCE: [&str; 6] = [
    "type",
    "receiver_id",
    "sender_id",
    "created_at",
    "text",
    "data",
];

/// [`parse_push`], with what a push refused for a repeated key says ([`PushRefusal`]): a
/// (signed) push with two `text` keys, or any other key of [`READ_ONCE`] twice, at the top or
/// inside `data`, is refused, 422 `invalid_field` naming it, as the web form refuses a
/// repeated field; its push read with each key's first value addresses the answer, and every
/// `text` goes to the emergency rules. Until 2026-12-07 the last `text` was taken (what
/// `serde_json::Value` keeps) and the first never read, `楼下着火了` in it unheard.
pub fn parse_push_readable(
    acc: &WeiboAccount,
    inbound: &Inbound,
) -> Result<WeiboPush, PushRefusal<WeiboPush>> {
    if inbound.body.len() > MAX_BODY {
        return Err(AdapterError::TooLarge { limit: MAX_BODY }.into());
    }
    let (timestamp, _) = check_query_signature(&acc.app_secret, inbound)?;
    let ts = to_seconds(parse_timestamp(&timestamp)?);
    check_window(ts, inbound.now, acc.window_s)?;

    let Top(pairs) = serde_json::from_slice(&inbound.body).map_err(AdapterError::json)?;
    let pairs =
        pairs.ok_or_else(|| AdapterError::InvalidJson("the body is not a JSON object".into()))?;
    let mut obj = Map::new();
    let mut repeated = None;
    for (k, v) in &pairs {
        let ours = READ_ONCE.into_iter().find(|n| n == k);
        if obj.contains_key(k) {
            repeated = repeated.or(ours);
        } else {
            if v.repeated && k == "data" {
                repeated = repeated.or(Some("data"));
            }
            obj.insert(k.clone(), v.value.clone());
        }
    }
    let push = from_object(&obj, ts);
    let Some(field) = repeated else {
        return push.map_err(PushRefusal::from);
    };
    // Only a `text` sent twice has a value unread; a single one is the push's own.
    let heard: Vec<String> = if pairs.iter().filter(|(k, _)| k == "text").nth(1).is_some() {
        pairs
            .into_iter()
            .filter(|(k, _)| k == "text")
            .filter_map(|(_, v)| match v.value {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect()
    } else {
        Vec::new()
    };
    Err(PushRefusal::repeated(field, push.ok(), heard, |p| {
        p.to_submission("").unwrap_or_else(|| {
            let mut s = Submission::new(
                Channel::Weibo,
                Identity::new(IdentityKind::Weibo, p.sender_id.to_string()),
                p.received_at,
                "",
            );
            s.dedupe_key = Some(p.dedupe_key());
            s
        })
    }))
}

/// A push's top-level object, key by key (`None` for JSON that is no object).
fn from_object(obj: &Map<String, Value>, ts: i64) -> Result<WeiboPush, AdapterError> {
    let msg_type = match obj.get("type") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(AdapterError::MissingField("type"))
        }
        Some(_) => return Err(invalid("type", "not a string")),
    };
    let receiver_id = id(obj, "receiver_id")?;
    let sender_id = id(obj, "sender_id")?;
    let created_at = scalar(obj, "created_at", "created_at")?;
    let text = match obj.get("text") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(invalid("text", "not a string")),
    };
    let empty = Map::new();
    let data = match obj.get("data") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        // The platform sends an object; `""` or `[]` are tolerated as "no data".
        Some(Value::String(s)) if s.is_empty() => &empty,
        Some(Value::Array(a)) if a.is_empty() => &empty,
        Some(_) => return Err(invalid("data", "not an object")),
    };
    let message = match msg_type.to_ascii_lowercase().as_str() {
        "text" => WeiboMessage::Text,
        "mention" => WeiboMessage::Mention,
        "position" => WeiboMessage::Position {
            lat: coordinate(data, "latitude", "data.latitude", 90.0)?,
            lon: coordinate(data, "longitude", "data.longitude", 180.0)?,
        },
        "voice" => WeiboMessage::Voice {
            vfid: scalar(data, "vfid", "data.vfid")?,
            tovfid: scalar(data, "tovfid", "data.tovfid")?,
        },
        "image" => WeiboMessage::Image {
            vfid: scalar(data, "vfid", "data.vfid")?,
            tovfid: scalar(data, "tovfid", "data.tovfid")?,
        },
        "event" => WeiboMessage::Event(event(data)?),
        _ => WeiboMessage::Unknown,
    };
    let received_at = parse_created_at(&created_at).unwrap_or(ts);
    let mut canonical = String::new();
    write_canonical(&Value::Object(data.clone()), &mut canonical);
    let mut h = Sha256::new();
    h.update(text.as_bytes());
    h.update([0u8]);
    h.update(canonical.as_bytes());
    let mut digest = hex::encode(h.finalize());
    digest.truncate(16);
    Ok(WeiboPush {
        receiver_id,
        sender_id,
        created_at,
        received_at,
        msg_type,
        text,
        message,
        digest,
    })
}

/// A push body's top level: every member in order, a repeated key too (`serde_json::Value`
/// keeps only the last); `None` for JSON that is no object.
struct Top(Option<Vec<(String, Checked)>>);

/// A JSON value, and whether an object in it has a key twice (its first value is kept).
struct Checked {
    value: Value,
    repeated: bool,
}

impl Checked {
    fn plain(value: Value) -> Checked {
        Checked {
            value,
            repeated: false,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Top {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match <Node as serde::Deserialize>::deserialize(d)? {
            Node::Object(pairs) => Ok(Top(Some(pairs))),
            Node::Other(_) => Ok(Top(None)),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match <Node as serde::Deserialize>::deserialize(d)? {
            Node::Object(pairs) => {
                let mut map = Map::new();
                let mut repeated = false;
                for (k, v) in pairs {
                    repeated |= v.repeated || map.contains_key(&k);
                    map.entry(k).or_insert(v.value);
                }
                Checked {
                    value: Value::Object(map),
                    repeated,
                }
            }
            Node::Other(c) => c,
        })
    }
}

/// One JSON value as read: an object's members in order, or any other value.
enum Node {
    Object(Vec<(String, Checked)>),
    Other(Checked),
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
                let mut pairs = Vec::new();
                while let Some(kv) = m.next_entry::<String, Checked>()? {
                    pairs.push(kv);
                }
                Ok(Node::Object(pairs))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Node, A::Error> {
                let (mut list, mut repeated) = (Vec::new(), false);
                while let Some(c) = s.next_element::<Checked>()? {
                    repeated |= c.repeated;
                    list.push(c.value);
                }
                Ok(Node::Other(Checked {
                    value: Value::Array(list),
                    repeated,
                }))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Other(Checked::plain(Value::Bool(v))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Other(Checked::plain(Value::from(v))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Other(Checked::plain(Value::from(v))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Other(Checked::plain(Value::from(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Other(Checked::plain(Value::from(v))))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Other(Checked::plain(Value::String(v))))
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Other(Checked::plain(Value::Null)))
            }
        }
        d.deserialize_any(V)
    }
}

/// The passive reply: `""` (no reply) when `text` is `None` or blank; else
/// `{"result":true,"sender_id":<our uid>,"receiver_id":<fan uid>,"type":"text","data":"<URL-encoded {"text":…}>"}`
/// with the ids swapped from the push and written as exact JSON integers. Weibo takes text of
/// fewer than 300 Chinese characters ([`MAX_REPLY_CHARS`]): a longer text is cut there, ending
/// in `…`, rather than refused or cut by the platform where nobody chose. Callers shorten
/// their sentences first (the gateway lists many order numbers as a range); this is the net.
pub fn render_reply(push: &WeiboPush, text: Option<&str>) -> String {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return String::new();
    };
    let text = match text.char_indices().nth(MAX_REPLY_CHARS) {
        Some(_) => {
            let mut cut: String = text.chars().take(MAX_REPLY_CHARS - 1).collect();
            cut.push('…');
            cut
        }
        None => text.to_string(),
    };
    let mut data = Map::new();
    data.insert("text".into(), Value::String(text));
    let data = encode_data(&Value::Object(data).to_string());
    // `data` is percent-encoded, so it contains only [A-Za-z0-9%._~-]: no JSON escaping needed.
    format!(
        "{{\"result\":true,\"sender_id\":{},\"receiver_id\":{},\"type\":\"text\",\"data\":\"{data}\"}}",
        push.receiver_id, push.sender_id
    )
}

/// URL-encodes the JSON text of a reply's `data` (UTF-8, RFC 3986, upper-case hex).
pub fn encode_data(json: &str) -> String {
    utf8_percent_encode(json, DATA_ENCODE).to_string()
}

/// Decodes a `data` value in either documented form: RFC 3986 (`%20`) or form-style (`+` for a
/// space, lower-case hex). Fails with `InvalidUtf8` when the bytes are not UTF-8.
pub fn decode_data(encoded: &str) -> Result<String, AdapterError> {
    percent_decode_str(&encoded.replace('+', "%20"))
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| AdapterError::InvalidUtf8)
}

/// Reads `created_at` (`Mon Jul 16 18:09:20 +0800 2012`, or plain unix seconds) as unix
/// seconds; `None` when it is neither.
pub fn parse_created_at(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(to_seconds(n));
    }
    let mut parts = s.split_whitespace();
    let _weekday = parts.next()?;
    let month = match parts.next()?.to_ascii_lowercase().as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    let day: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let hour: i64 = hms.next()?.parse().ok()?;
    let minute: i64 = hms.next()?.parse().ok()?;
    let second: i64 = hms.next()?.parse().ok()?;
    let zone = parts.next()?;
    let year: i64 = parts.next()?.parse().ok()?;
    if hms.next().is_some() || parts.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..=60).contains(&second)
        || !(1970..=9999).contains(&year)
    {
        return None;
    }
    let (sign, digits) = match zone.split_at_checked(1)? {
        ("+", d) => (1, d),
        ("-", d) => (-1, d),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let zh: i64 = digits.get(..2)?.parse().ok()?;
    let zm: i64 = digits.get(2..)?.parse().ok()?;
    let offset = sign * (zh * 3600 + zm * 60);
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm); the crate
/// has no date library on purpose.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds (13 digits, the documented form) become seconds; seconds stay.
fn to_seconds(ts: i64) -> i64 {
    if ts.unsigned_abs() >= MS_THRESHOLD.unsigned_abs() {
        ts / 1000
    } else {
        ts
    }
}

fn invalid(field: &'static str, reason: impl fmt::Display) -> AdapterError {
    AdapterError::InvalidField {
        field,
        reason: reason.to_string(),
    }
}

/// A required uid: a JSON integer or a string of digits, exact in 64 bits.
fn id(obj: &Map<String, Value>, name: &'static str) -> Result<u64, AdapterError> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(AdapterError::MissingField(name)),
        // serde_json keeps integers as integers; `as_u64` is `None` for floats and negatives.
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| invalid(name, format!("{n} is not a non-negative 64-bit integer"))),
        Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|e| invalid(name, e)),
        Some(_) => Err(invalid(name, "not an integer")),
    }
}

/// An optional string-or-number field as text (numbers written exactly); `""` when absent.
fn scalar(
    obj: &Map<String, Value>,
    name: &str,
    field: &'static str,
) -> Result<String, AdapterError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        // These values end up in the dedupe key (`created_at`) and in stored attachments (file
        // ids); a NUL there makes PostgreSQL refuse the whole write, a 500 for the platform to
        // retry forever. Weibo never sends control characters in them: refuse the push.
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            Err(invalid(field, "contains control characters"))
        }
        Some(Value::String(s)) => Ok(s.trim().to_string()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(invalid(field, "not a string or number")),
    }
}

/// An optional coordinate (string or number) within ±`bound`.
fn coordinate(
    obj: &Map<String, Value>,
    name: &str,
    field: &'static str,
    bound: f64,
) -> Result<Option<f64>, AdapterError> {
    let raw = scalar(obj, name, field)?;
    if raw.is_empty() {
        return Ok(None);
    }
    let v = raw.parse::<f64>().map_err(|e| invalid(field, e))?;
    if !v.is_finite() || v.abs() > bound {
        return Err(invalid(field, format!("{v} is not within ±{bound}")));
    }
    Ok(Some(v))
}

fn event(data: &Map<String, Value>) -> Result<WeiboEvent, AdapterError> {
    let subtype = scalar(data, "subtype", "data.subtype")?;
    let key = Some(scalar(data, "key", "data.key")?).filter(|k| !k.is_empty());
    let ticket = Some(scalar(data, "ticket", "data.ticket")?).filter(|t| !t.is_empty());
    let kind = match subtype.to_ascii_lowercase().as_str() {
        "follow" => WeiboEventKind::Follow,
        "unfollow" => WeiboEventKind::Unfollow,
        "subscribe" => WeiboEventKind::Subscribe,
        "unsubscribe" => WeiboEventKind::Unsubscribe,
        "scan" => WeiboEventKind::Scan,
        "scan_follow" => WeiboEventKind::ScanFollow,
        "click" => WeiboEventKind::Click,
        "view" => WeiboEventKind::View,
        _ => WeiboEventKind::Other,
    };
    Ok(WeiboEvent {
        subtype,
        key,
        ticket,
        kind,
    })
}

/// JSON with object keys sorted at every level, so the digest does not depend on the order in
/// which the platform (or a retry) wrote the keys.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::sign;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const SECRET: &str = "xyz123xyz";
    /// 2023-11-14T22:13:20Z, in seconds.
    const NOW: i64 = 1_700_000_000;

    fn acc() -> WeiboAccount {
        WeiboAccount::new(SECRET)
    }

    fn inbound(query: &str, body: &str, now: i64) -> Inbound {
        Inbound {
            query: query.to_string(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            now,
        }
    }

    /// The query Weibo sends, with a millisecond timestamp.
    fn signed(ts: &str) -> String {
        format!(
            "signature={}&timestamp={ts}&nonce=57155157",
            sign(&[SECRET, ts, "57155157"])
        )
    }

    fn push(body: &str) -> Result<WeiboPush, AdapterError> {
        parse_push(&acc(), &inbound(&signed("1700000000123"), body, NOW))
    }

    fn body(kind: &str, text: &str, data: &str) -> String {
        format!(
            r#"{{"type":"{kind}","receiver_id":1902538057,"sender_id":2489518277,"created_at":"Mon Jul 16 18:09:20 +0800 2012","text":"{text}","data":{data}}}"#
        )
    }

    /// The texts the emergency rules hear of a push refused for a repeated key.
    fn heard(r: &PushRefusal<WeiboPush>) -> Vec<String> {
        r.readable
            .as_ref()
            .map(|s| {
                std::iter::once(s.content.clone())
                    .chain(s.items.iter().map(|i| i.content.clone()))
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A key of the push sent twice is refused (422 `invalid_field` naming it), the push read
    /// with the first value of each key for the answer, and every `text` heard (until
    /// 2026-12-07 the last `text` was taken and the first never read).
    #[test]
    fn a_repeated_key_is_refused_and_every_text_heard() {
        let read =
            |body: &str| parse_push_readable(&acc(), &inbound(&signed("1700000000123"), body, NOW));
        let two = body("text", "楼下着火了", "{}").replace(
            r#""text":"楼下着火了""#,
            r#""text":"楼下着火了","text":"路灯坏了""#,
        );
        let r = read(&two).expect_err("refused");
        assert_eq!(r.error, AdapterError::repeated("text"));
        assert_eq!(r.error.code(), "invalid_field");
        assert_eq!(heard(&r), ["楼下着火了", "楼下着火了", "路灯坏了"]);
        let p = r.push.as_deref().expect("the first-valued push");
        assert_eq!((p.text.as_str(), p.sender_id), ("楼下着火了", 2489518277));
        // An empty first `text` still has the second heard.
        let empty_first = two.replace(r#""text":"楼下着火了""#, r#""text":"""#);
        assert_eq!(
            heard(&read(&empty_first).expect_err("refused")),
            ["路灯坏了"]
        );
        // Another key twice: refused, the one text heard; a key twice inside `data` too.
        let ids = body("text", "路灯坏了", "{}").replace(
            r#""sender_id":2489518277"#,
            r#""sender_id":2489518277,"sender_id":1"#,
        );
        let r = read(&ids).expect_err("refused");
        assert_eq!(r.error, AdapterError::repeated("sender_id"));
        assert_eq!(heard(&r), ["路灯坏了"]);
        let data = body(
            "image",
            "发了一张图片",
            r#"{"vfid":"1","tovfid":"2","tovfid":"3"}"#,
        );
        assert_eq!(
            read(&data).map_err(|r| r.error),
            Err(AdapterError::repeated("data"))
        );
        let deep = body("event", "", r#"{"subtype":"click","key":{"a":1,"a":2}}"#);
        assert_eq!(
            read(&deep).map_err(|r| r.error),
            Err(AdapterError::repeated("data"))
        );
        // Keys the gateway does not read may repeat; `parse_push` gives the bare error.
        let extra =
            body("text", "路灯坏了", "{}").replace("{\"type\"", "{\"x\":1,\"x\":2,\"type\"");
        assert!(push(&extra).is_ok(), "{extra}");
        assert_eq!(push(&two).err(), Some(AdapterError::repeated("text")));
        // Exact ids and numbers still read as before.
        assert!(push(&body("text", "路灯坏了", "{}")).is_ok());
    }

    #[test]
    fn official_handshake_vector() -> TestResult {
        let q = "nonce=57155157&timestamp=1397022061823&echostr=dnPdpTZz85&signature=90e4c22c90a58f26526c2dd5b6c56c8822edeaa1";
        assert_eq!(verify_url(&acc(), &inbound(q, "", NOW))?, "dnPdpTZz85");
        let cases: &[(&str, &str, AdapterError)] = &[
            ("other secret", "xyz123xyZ", AdapterError::BadSignature),
            ("right secret", SECRET, AdapterError::BadSignature),
        ];
        for (label, secret, want) in cases {
            let bad = q.replace("57155157", "57155158");
            assert_eq!(
                verify_url(&WeiboAccount::new(*secret), &inbound(&bad, "", NOW)),
                Err(want.clone()),
                "{label}"
            );
        }
        let no_sig = "nonce=57155157&timestamp=1397022061823&echostr=dnPdpTZz85";
        assert_eq!(
            verify_url(&acc(), &inbound(no_sig, "", NOW)),
            Err(AdapterError::BadSignature)
        );
        Ok(())
    }

    #[test]
    fn official_reply_data_vectors() -> TestResult {
        let cases = [
            (
                r#"{"text":"中文消息"}"#,
                "%7B%22text%22%3A%22%E4%B8%AD%E6%96%87%E6%B6%88%E6%81%AF%22%7D",
            ),
            (
                r#"{"text": "纯文本响应"} "#,
                "%7B%22text%22%3A%20%22%E7%BA%AF%E6%96%87%E6%9C%AC%E5%93%8D%E5%BA%94%22%7D%20",
            ),
        ];
        for (json, encoded) in cases {
            assert_eq!(encode_data(json), encoded);
            assert_eq!(decode_data(encoded)?, json);
        }
        // The form-style variant of the `messages/ask` page decodes too.
        assert_eq!(
            decode_data("%7b%22text%22%3a+%22a%0ab%22%7d")?,
            "{\"text\": \"a\nb\"}"
        );
        assert_eq!(decode_data("%ff"), Err(AdapterError::InvalidUtf8));
        Ok(())
    }

    #[test]
    fn every_push_type_is_parsed() -> TestResult {
        let ev = |subtype: &str, key: Option<&str>, ticket: Option<&str>, kind| {
            WeiboMessage::Event(WeiboEvent {
                subtype: subtype.into(),
                key: key.map(str::to_string),
                ticket: ticket.map(str::to_string),
                kind,
            })
        };
        let cases: Vec<(&str, String, WeiboMessage)> = vec![
            (
                "text",
                body("text", "小区停水三天了", "{}"),
                WeiboMessage::Text,
            ),
            (
                "position (coordinates as strings)",
                body(
                    "position",
                    "我在这里: http://t.cn/zQgLLYO",
                    r#"{"longitude":"116.308586","latitude":"39.982525"}"#,
                ),
                WeiboMessage::Position {
                    lat: Some(39.982525),
                    lon: Some(116.308586),
                },
            ),
            (
                "position (coordinates as numbers)",
                body(
                    "position",
                    "发送了一个位置",
                    r#"{"longitude":116.3,"latitude":39.9}"#,
                ),
                WeiboMessage::Position {
                    lat: Some(39.9),
                    lon: Some(116.3),
                },
            ),
            (
                "voice",
                body(
                    "voice",
                    "发了一个语音消息",
                    r#"{"vfid":821804459,"tovfid":821804469}"#,
                ),
                WeiboMessage::Voice {
                    vfid: "821804459".into(),
                    tovfid: "821804469".into(),
                },
            ),
            (
                "image",
                body(
                    "image",
                    "发了一张图片",
                    r#"{"vfid":"821804459","tovfid":"821804469"}"#,
                ),
                WeiboMessage::Image {
                    vfid: "821804459".into(),
                    tovfid: "821804469".into(),
                },
            ),
            (
                "follow",
                body("event", "关注事件消息", r#"{"subtype":"follow"}"#),
                ev("follow", None, None, WeiboEventKind::Follow),
            ),
            (
                "unfollow",
                body("event", "", r#"{"subtype":"unfollow"}"#),
                ev("unfollow", None, None, WeiboEventKind::Unfollow),
            ),
            (
                "subscribe",
                body("event", "订阅", r#"{"subtype":"subscribe"}"#),
                ev("subscribe", None, None, WeiboEventKind::Subscribe),
            ),
            (
                "unsubscribe",
                body("event", "", r#"{"subtype":"unsubscribe"}"#),
                ev("unsubscribe", None, None, WeiboEventKind::Unsubscribe),
            ),
            (
                "scan",
                body(
                    "event",
                    "",
                    r#"{"subtype":"scan","key":"qrscene_12","ticket":"T"}"#,
                ),
                ev("scan", Some("qrscene_12"), Some("T"), WeiboEventKind::Scan),
            ),
            (
                "scan_follow",
                body(
                    "event",
                    "",
                    r#"{"subtype":"scan_follow","key":"follow_12","ticket":"T"}"#,
                ),
                ev(
                    "scan_follow",
                    Some("follow_12"),
                    Some("T"),
                    WeiboEventKind::ScanFollow,
                ),
            ),
            (
                "click",
                body("event", "", r#"{"subtype":"click","key":"MENU_1"}"#),
                ev("click", Some("MENU_1"), None, WeiboEventKind::Click),
            ),
            (
                "view",
                body(
                    "event",
                    "",
                    r#"{"subtype":"VIEW","key":"http://12345.gov.cn"}"#,
                ),
                ev(
                    "VIEW",
                    Some("http://12345.gov.cn"),
                    None,
                    WeiboEventKind::View,
                ),
            ),
            (
                "unknown subtype",
                body("event", "", r#"{"subtype":"new_thing"}"#),
                ev("new_thing", None, None, WeiboEventKind::Other),
            ),
            (
                "mention",
                body("mention", "@市长热线 路面塌陷", "{}"),
                WeiboMessage::Mention,
            ),
            (
                "unknown type",
                body("articles", "", r#"{"x":[1,2]}"#),
                WeiboMessage::Unknown,
            ),
            (
                "no data at all",
                r#"{"type":"text","receiver_id":1,"sender_id":2,"text":"hi"}"#.to_string(),
                WeiboMessage::Text,
            ),
        ];
        for (label, b, want) in cases {
            let p = push(&b).map_err(|e| format!("{label}: {e}"))?;
            assert_eq!(p.message, want, "{label}");
        }
        let p = push(&body("text", "小区停水三天了", "{}"))?;
        assert_eq!(p.receiver_id, 1_902_538_057);
        assert_eq!(p.sender_id, 2_489_518_277);
        assert_eq!(p.text, "小区停水三天了");
        assert_eq!(p.msg_type, "text");
        assert_eq!(p.created_at, "Mon Jul 16 18:09:20 +0800 2012");
        assert_eq!(p.received_at, 1_342_433_360);
        Ok(())
    }

    #[test]
    fn control_characters_in_keyed_or_stored_fields_are_refused() {
        let created = |c: &str| {
            format!(
                r#"{{"type":"text","receiver_id":1,"sender_id":2,"created_at":"Mon Jul 16 18:09:20 +0800 2012{c}","text":"x"}}"#
            )
        };
        let image = |c: &str| body("image", "", &format!(r#"{{"vfid":"1{c}","tovfid":"2"}}"#));
        for (label, b, field) in [
            ("NUL in created_at", created("\\u0000"), "created_at"),
            ("BEL in created_at", created("\\u0007"), "created_at"),
            ("newline in created_at", created("\\n"), "created_at"),
            ("NUL in a file id", image("\\u0000"), "data.vfid"),
        ] {
            match push(&b) {
                Err(AdapterError::InvalidField { field: f, .. }) => assert_eq!(f, field, "{label}"),
                other => panic!("{label}: {other:?}"),
            }
        }
        // Surrounding spaces are still trimmed, not refused.
        assert!(push(&created("  ")).is_ok());
    }

    #[test]
    fn ids_keep_all_64_bits() -> TestResult {
        // 2^53 + 1 is the first integer an f64 (or a JS peer) cannot hold.
        let b = r#"{"type":"text","receiver_id":9007199254740993,"sender_id":"18446744073709551615","text":"x"}"#;
        let p = push(b)?;
        assert_eq!(p.receiver_id, 9_007_199_254_740_993);
        assert_eq!(p.sender_id, u64::MAX);
        let reply = render_reply(&p, Some("ok"));
        assert!(reply.contains("\"sender_id\":9007199254740993"), "{reply}");
        assert!(
            reply.contains("\"receiver_id\":18446744073709551615"),
            "{reply}"
        );
        Ok(())
    }

    #[test]
    fn timestamps_in_ms_and_seconds_and_the_window() {
        let b = body("text", "x", "{}");
        let ok: &[(&str, i64)] = &[
            ("1700000000123", NOW),
            ("1700000000", NOW),
            ("1699999700000", NOW), // 300 s old, in ms
            ("1700000300999", NOW), // 300.999 s ahead, truncated to 300
            ("1397022061823", 1_397_022_061),
        ];
        for (ts, now) in ok {
            assert!(
                parse_push(&acc(), &inbound(&signed(ts), &b, *now)).is_ok(),
                "{ts}"
            );
        }
        let stale: &[&str] = &[
            "1699999699000",
            "1700000301000",
            "1699999699",
            "1700000301",
            "0",
            "-1700000000000",
        ];
        for ts in stale {
            assert_eq!(
                parse_push(&acc(), &inbound(&signed(ts), &b, NOW)),
                Err(AdapterError::StaleTimestamp),
                "{ts}"
            );
        }
    }

    fn check(label: &str, req: &Inbound, code: &str) {
        match parse_push(&acc(), req) {
            Err(e) => assert_eq!(e.code(), code, "{label}: {e}"),
            Ok(p) => panic!("{label}: expected {code}, got {p:?}"),
        }
    }

    #[test]
    fn bad_pushes_are_typed_errors() {
        let q = signed("1700000000123");
        let good = body("text", "x", "{}");
        let req = |b: &str| inbound(&q, b, NOW);
        let cases: Vec<(&str, Inbound, &str)> = vec![
            (
                "bad signature",
                inbound(&q.replace("signature=", "signature=0"), &good, NOW),
                "bad_signature",
            ),
            (
                "no signature",
                inbound("timestamp=1700000000123&nonce=1", &good, NOW),
                "bad_signature",
            ),
            (
                "timestamp not a number",
                inbound(
                    &format!(
                        "signature={}&timestamp=x&nonce=1",
                        sign(&[SECRET, "x", "1"])
                    ),
                    &good,
                    NOW,
                ),
                "invalid_field",
            ),
            ("not JSON", req("<xml/>"), "invalid_json"),
            ("empty body", req(""), "invalid_json"),
            (
                "JSON with comments",
                req("{\"type\":\"text\", // c\n}"),
                "invalid_json",
            ),
            ("not an object", req("[1,2]"), "invalid_json"),
            (
                "too large",
                req(&" ".repeat(MAX_BODY + 1)),
                "body_too_large",
            ),
            (
                "no type",
                req(r#"{"receiver_id":1,"sender_id":2}"#),
                "missing_field",
            ),
            (
                "type not a string",
                req(r#"{"type":1,"receiver_id":1,"sender_id":2}"#),
                "invalid_field",
            ),
            (
                "no receiver",
                req(r#"{"type":"text","sender_id":2}"#),
                "missing_field",
            ),
            (
                "no sender",
                req(r#"{"type":"text","receiver_id":1}"#),
                "missing_field",
            ),
            (
                "float id",
                req(r#"{"type":"text","receiver_id":1.5,"sender_id":2}"#),
                "invalid_field",
            ),
            (
                "exponent id",
                req(r#"{"type":"text","receiver_id":1e3,"sender_id":2}"#),
                "invalid_field",
            ),
            (
                "negative id",
                req(r#"{"type":"text","receiver_id":-1,"sender_id":2}"#),
                "invalid_field",
            ),
            (
                "id beyond 64 bits",
                req(r#"{"type":"text","receiver_id":18446744073709551616,"sender_id":2}"#),
                "invalid_field",
            ),
            (
                "id string not digits",
                req(r#"{"type":"text","receiver_id":"12a","sender_id":2}"#),
                "invalid_field",
            ),
            (
                "text not a string",
                req(r#"{"type":"text","receiver_id":1,"sender_id":2,"text":[]}"#),
                "invalid_field",
            ),
            (
                "data not an object",
                req(r#"{"type":"text","receiver_id":1,"sender_id":2,"data":"%7B%7D"}"#),
                "invalid_field",
            ),
            (
                "latitude garbage",
                req(&body(
                    "position",
                    "",
                    r#"{"latitude":"north","longitude":"1"}"#,
                )),
                "invalid_field",
            ),
            (
                "latitude out of range",
                req(&body(
                    "position",
                    "",
                    r#"{"latitude":"95","longitude":"1"}"#,
                )),
                "invalid_field",
            ),
        ];
        for (label, r, code) in &cases {
            check(label, r, code);
        }
    }

    #[test]
    fn dedupe_keys_use_content_not_just_the_second() -> TestResult {
        let a = push(&body("text", "第一条", "{}"))?;
        let a_retry = parse_push(
            &acc(),
            &inbound(&signed("1700000004000"), &body("text", "第一条", "{}"), NOW),
        )?;
        let b = push(&body("text", "第二条", "{}"))?;
        assert_eq!(a.dedupe_key(), a_retry.dedupe_key());
        assert_ne!(a.dedupe_key(), b.dedupe_key());
        assert!(a
            .dedupe_key()
            .starts_with("1902538057:2489518277:Mon Jul 16 18:09:20 +0800 2012:text:"));
        // Key order inside data does not matter; values do.
        let p1 = push(&body("position", "", r#"{"longitude":"1","latitude":"2"}"#))?;
        let p2 = push(&body("position", "", r#"{"latitude":"2","longitude":"1"}"#))?;
        let p3 = push(&body("position", "", r#"{"latitude":"3","longitude":"1"}"#))?;
        assert_eq!(p1.dedupe_key(), p2.dedupe_key());
        assert_ne!(p1.dedupe_key(), p3.dedupe_key());
        Ok(())
    }

    #[test]
    fn submissions_per_type() -> TestResult {
        let key_of = |b: &str| push(b).map(|p| p.dedupe_key());
        let base = |content: &str, b: &str| -> Result<Submission, AdapterError> {
            let key = key_of(b)?;
            let mut s = Submission::new(
                Channel::Weibo,
                Identity::new(IdentityKind::Weibo, "2489518277"),
                1_342_433_360,
                content,
            );
            s.account = "city".into();
            s.channel_ref = key.clone();
            s.dedupe_key = Some(key);
            Ok(s)
        };
        let text = body("text", "  小区停水 ", "{}");
        let mention = body("mention", "@12345 路灯", "{}");
        let pos = body(
            "position",
            "我在这里",
            r#"{"longitude":"116.3","latitude":"39.9"}"#,
        );
        let voice = body("voice", "发了一个语音消息", r#"{"vfid":1,"tovfid":2}"#);
        let image = body("image", "发了一张图片", r#"{"vfid":3}"#);
        let cases: Vec<(&str, &String, Option<Submission>)> = vec![
            ("text", &text, Some(base("小区停水", &text)?)),
            ("mention", &mention, Some(base("@12345 路灯", &mention)?)),
            (
                "position",
                &pos,
                Some(Submission {
                    location: Location {
                        address: String::new(),
                        lat: Some(39.9),
                        lon: Some(116.3),
                    },
                    ..base("", &pos)?
                }),
            ),
            (
                "voice uses tovfid",
                &voice,
                Some(Submission {
                    attachments: vec![Attachment {
                        kind: AttachmentKind::Voice,
                        url: String::new(),
                        media_id: "2".into(),
                    }],
                    ..base("", &voice)?
                }),
            ),
            (
                "image falls back to vfid",
                &image,
                Some(Submission {
                    attachments: vec![Attachment {
                        kind: AttachmentKind::Image,
                        url: String::new(),
                        media_id: "3".into(),
                    }],
                    ..base("", &image)?
                }),
            ),
        ];
        for (label, b, want) in cases {
            assert_eq!(push(b)?.to_submission("city"), want, "{label}");
        }
        for b in [
            body("event", "关注", r#"{"subtype":"follow"}"#),
            body("whatever", "x", "{}"),
            body("text", " ", "{}"),
        ] {
            assert_eq!(push(&b)?.to_submission("city"), None, "{b}");
        }
        Ok(())
    }

    #[test]
    fn replies_swap_ids_and_url_encode_data() -> TestResult {
        let p = push(&body("text", "x", "{}"))?;
        assert_eq!(render_reply(&p, None), "");
        assert_eq!(render_reply(&p, Some("  ")), "");
        let reply = render_reply(&p, Some("中文消息"));
        assert_eq!(
            reply,
            r#"{"result":true,"sender_id":1902538057,"receiver_id":2489518277,"type":"text","data":"%7B%22text%22%3A%22%E4%B8%AD%E6%96%87%E6%B6%88%E6%81%AF%22%7D"}"#
        );
        // Quotes, newlines and a `+` survive the JSON-in-URL-in-JSON round trip.
        let tricky = "a \"b\"\n+c & 100%";
        let v: Value = serde_json::from_str(&render_reply(&p, Some(tricky)))?;
        let data = v.get("data").and_then(Value::as_str).ok_or("no data")?;
        assert!(!data.contains('+') && !data.contains(' '), "{data}");
        let inner: Value = serde_json::from_str(&percent_decode_str(data).decode_utf8()?)?;
        assert_eq!(inner.get("text").and_then(Value::as_str), Some(tricky));
        Ok(())
    }

    #[test]
    fn a_reply_stays_under_the_documented_limit() -> TestResult {
        let p = push(&body("text", "x", "{}"))?;
        let text_of = |reply: &str| -> Result<String, Box<dyn std::error::Error>> {
            let v: Value = serde_json::from_str(reply)?;
            let data = v.get("data").and_then(Value::as_str).ok_or("no data")?;
            let inner: Value = serde_json::from_str(&decode_data(data)?)?;
            Ok(inner
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string())
        };
        let fits = "受".repeat(MAX_REPLY_CHARS);
        assert_eq!(text_of(&render_reply(&p, Some(&fits)))?, fits);
        let long = "受".repeat(392);
        let cut = text_of(&render_reply(&p, Some(&long)))?;
        assert_eq!(cut.chars().count(), MAX_REPLY_CHARS, "{cut}");
        assert!(cut.ends_with('…'), "{cut}");
        Ok(())
    }

    #[test]
    fn a_positions_label_is_neither_content_nor_address() -> TestResult {
        for (label, place) in [
            ("发送了一个位置", ""),
            ("我在这里: http://t.cn/zQgLLYO", ""),
            ("我在这里：http://t.cn/zQgLLYO", ""),
            ("我在这里", ""),
            ("", ""),
            (
                "我在这里: 北京市海淀区中关村大街1号 http://t.cn/zQgLLYO",
                "北京市海淀区中关村大街1号",
            ),
        ] {
            let p = push(&body(
                "position",
                label,
                r#"{"longitude":"116.3","latitude":"39.9"}"#,
            ))?;
            let s = p.to_submission("city").ok_or("a submission")?;
            assert_eq!(s.content, "", "{label}");
            assert_eq!(s.location.address, place, "{label}");
            assert_eq!((s.location.lat, s.location.lon), (Some(39.9), Some(116.3)));
        }
        Ok(())
    }

    #[test]
    fn created_at_is_read_without_a_date_library() {
        let cases: &[(&str, Option<i64>)] = &[
            ("Mon Jul 16 18:09:20 +0800 2012", Some(1_342_433_360)),
            ("Thu Jan 01 00:00:00 +0000 1970", Some(0)),
            ("Tue Feb 29 12:00:00 -0130 2000", Some(951_831_000)),
            ("Sun Dec 31 23:59:59 +0000 2023", Some(1_704_067_199)),
            ("1342433360", Some(1_342_433_360)),
            ("1342433360000", Some(1_342_433_360)),
            ("", None),
            ("Mon Foo 16 18:09:20 +0800 2012", None),
            ("Mon Jul 16 25:09:20 +0800 2012", None),
            ("Mon Jul 16 18:09:20 0800 2012", None),
            ("Mon Jul 16 18:09:20 +08 2012", None),
            ("Mon Jul 16 18:09:20 +0800 2012 extra", None),
            ("Mon Jul 16 18:09 +0800 2012", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_created_at(s), *want, "{s}");
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        assert!(!format!("{:?}", acc()).contains(SECRET));
    }
}
