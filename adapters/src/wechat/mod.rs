//! WeChat official account (公众号) message push: the server-URL handshake, pushes in plaintext,
//! compatible and safe (encrypted) mode, and passive replies.
//!
//! How a handler uses it (`{account}` is the config table name):
//! - `GET /v1/wechat/{account}`: [`verify_url`] → `200 text/plain` with the returned string.
//! - `POST /v1/wechat/{account}`: [`parse_push`] → persist and dedupe on
//!   ([`Channel::Wechat`], account, [`Push::dedupe_key`]) → [`Push::to_submission`] (`None` for
//!   events and unknown types) → pipeline → [`render_reply`] with the citizen-facing text (or
//!   `None` for `success`) → `200 text/xml; charset=utf-8`.
//!
//! Errors map to HTTP through the gateway's one table; a bad or stale signature is 401.
//! The protocol brief is `shared/protocols/wechat-weibo.md`, section 1.

pub mod crypto;
pub mod xml;

pub use crypto::{
    decode_aes_key, decrypt, decrypt_raw, encrypt, sign, signature_matches, AesKey, Decrypted,
};

use std::fmt;

use sha2::{Digest, Sha256};

use crate::text::clean_text;
use crate::{
    AdapterError, Attachment, AttachmentKind, Channel, Identity, IdentityKind, Inbound, Location,
    PushRefusal, Submission,
};
use xml::Fields;

/// Default accepted clock skew between a push's `timestamp` and `Inbound::now`, in seconds.
pub const DEFAULT_WINDOW_S: i64 = 300;

/// Largest push body parsed or decrypted. Real pushes are a few KiB (compatible mode about 3×
/// a plaintext one); the HTTP layer should refuse larger bodies before reading them.
pub const MAX_BODY: usize = 64 * 1024;

/// The body that tells WeChat "received, no reply" (an empty body works too; an empty
/// `<Content>` does not).
pub const NO_REPLY: &str = "success";

/// One official account as configured (`[channels.wechat.ACCOUNT]`).
#[derive(Clone, PartialEq, Eq)]
pub struct WechatAccount {
    /// The Token set on the platform (3–32 alphanumerics); key of every signature.
    pub token: String,
    /// The account's AppID (`wx…`), which every encrypted message must name as its receiver.
    pub app_id: String,
    /// The 43-character EncodingAESKey; `None` or empty means plaintext mode only.
    pub encoding_aes_key: Option<String>,
    /// Refuse plaintext pushes (safe mode only), as EasyWeChat's `require_encryption`.
    pub require_encryption: bool,
    /// Accepted skew of push timestamps against `Inbound::now`, seconds (default 300).
    pub window_s: i64,
}

impl WechatAccount {
    /// A plaintext-mode account with the default window.
    pub fn new(token: impl Into<String>, app_id: impl Into<String>) -> WechatAccount {
        WechatAccount {
            token: token.into(),
            app_id: app_id.into(),
            encoding_aes_key: None,
            require_encryption: false,
            window_s: DEFAULT_WINDOW_S,
        }
    }

    /// The same account with an EncodingAESKey (compatible and safe mode become possible).
    pub fn with_aes_key(mut self, encoding_aes_key: impl Into<String>) -> WechatAccount {
        self.encoding_aes_key = Some(encoding_aes_key.into());
        self
    }

    /// The decoded AES key; `Ok(None)` when none is configured, an error when it is malformed.
    /// `check-config` can call this to validate a key before serving.
    pub fn aes_key(&self) -> Result<Option<AesKey>, AdapterError> {
        match self.encoding_aes_key.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(k) => decode_aes_key(k).map(Some),
        }
    }
}

/// Secrets stay out of logs: Debug shows only whether they are set.
impl fmt::Debug for WechatAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WechatAccount")
            .field("token", &"<redacted>")
            .field("app_id", &self.app_id)
            .field(
                "encoding_aes_key",
                &self.encoding_aes_key.as_ref().map(|_| "<redacted>"),
            )
            .field("require_encryption", &self.require_encryption)
            .field("window_s", &self.window_s)
            .finish()
    }
}

/// How a push arrived; decides whether the reply must be encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// 明文: plain XML, plain reply.
    Plaintext,
    /// 兼容: plain fields and `<Encrypt>` in one body; only the decrypted copy is trusted and the
    /// reply is encrypted.
    Compatible,
    /// 安全: only `<ToUserName>` and `<Encrypt>`; the reply must be encrypted.
    Safe,
}

impl Mode {
    /// Whether replies in this mode are sent in the encrypted envelope. Compatible mode accepts
    /// both; encrypting there keeps one code path and matches the request the platform sent.
    pub fn is_encrypted(self) -> bool {
        !matches!(self, Mode::Plaintext)
    }
}

/// A verified, decrypted and parsed push.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// How it arrived.
    pub mode: Mode,
    /// `ToUserName`: the account's original id (`gh_…`), never the AppID.
    pub to_user: String,
    /// `FromUserName`: the sender's openid (stable per user per account).
    pub from_user: String,
    /// `CreateTime`, unix seconds.
    pub create_time: i64,
    /// `MsgId` (64-bit) of normal messages; events usually have none.
    pub msg_id: Option<u64>,
    /// What was sent.
    pub message: Message,
    /// SHA-256 (hex, 16 chars) over the message's fields, sorted; keys retries of messages that
    /// carry no `MsgId`.
    pub digest: String,
}

/// The message of a push, by `MsgType` (compared case-insensitively).
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `text`.
    Text {
        /// `Content`, as sent (not trimmed).
        content: String,
    },
    /// `image`.
    Image {
        /// `PicUrl`.
        pic_url: String,
        /// `MediaId`.
        media_id: String,
    },
    /// `voice`.
    Voice {
        /// `MediaId`.
        media_id: String,
        /// `Format` (amr, speex…).
        format: String,
        /// `Recognition`, when speech recognition is on and produced text.
        recognition: Option<String>,
    },
    /// `video`.
    Video {
        /// `MediaId`.
        media_id: String,
        /// `ThumbMediaId`.
        thumb_media_id: String,
    },
    /// `shortvideo`.
    ShortVideo {
        /// `MediaId`.
        media_id: String,
        /// `ThumbMediaId`.
        thumb_media_id: String,
    },
    /// `location` (a location the user sent in the chat).
    Location {
        /// `Location_X`, which is the **latitude**.
        lat: f64,
        /// `Location_Y`, the longitude.
        lon: f64,
        /// `Scale` (map zoom), when it is a number.
        scale: Option<u32>,
        /// `Label`: the address text.
        label: String,
    },
    /// `link`.
    Link {
        /// `Title`.
        title: String,
        /// `Description`.
        description: String,
        /// `Url`.
        url: String,
    },
    /// `event`.
    Event(Event),
    /// Any other `MsgType` (miniprogrampage, future types): accepted and ignored, not an error.
    Unknown {
        /// The `MsgType` as sent.
        msg_type: String,
    },
}

impl Message {
    /// The lower-case `MsgType` (as sent for unknown types).
    pub fn msg_type(&self) -> &str {
        match self {
            Message::Text { .. } => "text",
            Message::Image { .. } => "image",
            Message::Voice { .. } => "voice",
            Message::Video { .. } => "video",
            Message::ShortVideo { .. } => "shortvideo",
            Message::Location { .. } => "location",
            Message::Link { .. } => "link",
            Message::Event(_) => "event",
            Message::Unknown { msg_type } => msg_type,
        }
    }
}

/// An `event` push: the raw name and key, plus their interpretation.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `Event` as sent (WeChat mixes cases: `subscribe`, `SCAN`).
    pub name: String,
    /// `EventKey` as sent, if present and not blank.
    pub key: Option<String>,
    /// What the event means.
    pub kind: EventKind,
}

/// The events the gateway understands; the rest are [`EventKind::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// Followed the account; via a parametric QR code when `scene` is set.
    Subscribe {
        /// The scene of `EventKey = qrscene_<scene>`, without the prefix.
        scene: Option<String>,
        /// `Ticket` of the QR code.
        ticket: Option<String>,
    },
    /// Unfollowed. The platform rules ask for the user's data to be deleted; the gateway deletes
    /// nothing on it: what it holds under an openid are the hotline's records of requests
    /// (art. 10, 13), which the hotline keeps to handle and answer them, and the art. 32
    /// ladder, which an unfollow and a follow again (the same openid) must not reset.
    Unsubscribe,
    /// Scanned a parametric QR code while already following.
    Scan {
        /// `EventKey`: the scene id or string.
        scene: String,
        /// `Ticket`.
        ticket: Option<String>,
    },
    /// Periodic location report (`LOCATION`).
    Location {
        /// `Latitude`.
        lat: f64,
        /// `Longitude`.
        lon: f64,
        /// `Precision`, when a number.
        precision: Option<f64>,
    },
    /// Menu click (`CLICK`).
    Click {
        /// `EventKey`: the menu key.
        key: String,
    },
    /// Menu link opened (`VIEW`).
    View {
        /// `EventKey`: the target URL.
        url: String,
        /// `MenuId`, if sent.
        menu_id: Option<String>,
    },
    /// Any other event (scancode_*, pic_*, MASSSENDJOBFINISH…): see [`Event::name`].
    Other,
}

impl Push {
    /// The key under which a platform retry of this same push is recognised (WeChat retries up
    /// to 3 times). Messages: `MsgId` + sender + `CreateTime` (a `MsgId` alone can collide across
    /// users, WxJava #333). Events: sender + `CreateTime` + event + `EventKey`. Messages without
    /// a `MsgId`: sender + `CreateTime` + type + [`Push::digest`].
    pub fn dedupe_key(&self) -> String {
        match (&self.message, self.msg_id) {
            (Message::Event(e), _) => format!(
                "event:{}:{}:{}:{}",
                self.from_user,
                self.create_time,
                e.name.to_ascii_lowercase(),
                e.key.as_deref().unwrap_or_default()
            ),
            (_, Some(id)) => format!("msg:{id}:{}:{}", self.from_user, self.create_time),
            (m, None) => format!(
                "nomsgid:{}:{}:{}:{}",
                self.from_user,
                self.create_time,
                m.msg_type(),
                self.digest
            ),
        }
    }

    /// The channel-neutral submission of a citizen message; `None` for events, unknown types and
    /// messages with nothing in them. Media become attachments (references only), a sent
    /// location becomes the matter's location, text is trimmed and NFC-normalised.
    pub fn to_submission(&self, account_name: &str) -> Option<Submission> {
        let mut content = String::new();
        let mut attachments = Vec::new();
        let mut location = Location::default();
        let media = |kind, url: &str, media_id: &str| Attachment {
            kind,
            url: url.trim().to_string(),
            media_id: media_id.trim().to_string(),
        };
        match &self.message {
            Message::Text { content: c } => content = clean_text(c),
            Message::Image { pic_url, media_id } => {
                attachments.push(media(AttachmentKind::Image, pic_url, media_id));
            }
            Message::Voice {
                media_id,
                recognition,
                ..
            } => {
                content = recognition.as_deref().map(clean_text).unwrap_or_default();
                attachments.push(media(AttachmentKind::Voice, "", media_id));
            }
            Message::Video { media_id, .. } | Message::ShortVideo { media_id, .. } => {
                attachments.push(media(AttachmentKind::Video, "", media_id));
            }
            Message::Location {
                lat, lon, label, ..
            } => {
                content = clean_text(label);
                location = Location {
                    address: content.clone(),
                    lat: Some(*lat),
                    lon: Some(*lon),
                };
            }
            Message::Link {
                title,
                description,
                url,
            } => {
                content = [title, description, url]
                    .iter()
                    .map(|s| clean_text(s))
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n");
                attachments.push(media(AttachmentKind::Link, url, ""));
            }
            Message::Event(_) | Message::Unknown { .. } => return None,
        }
        if content.is_empty() && attachments.is_empty() && location.lat.is_none() {
            return None;
        }
        let dedupe_key = self.dedupe_key();
        let mut s = Submission::new(
            Channel::Wechat,
            Identity::new(IdentityKind::Wechat, self.from_user.clone()),
            self.create_time,
            content,
        );
        s.account = account_name.to_string();
        s.channel_ref = self
            .msg_id
            .map(|id| id.to_string())
            .unwrap_or_else(|| dedupe_key.clone());
        s.dedupe_key = Some(dedupe_key);
        s.location = location;
        s.attachments = attachments;
        Some(s)
    }

    /// Builds a push from the (decrypted) message fields.
    fn from_fields(mode: Mode, f: &Fields) -> Result<Push, AdapterError> {
        let to_user = required(f, "ToUserName")?;
        let from_user = required(f, "FromUserName")?;
        let create_time = required(f, "CreateTime")?
            .parse::<i64>()
            .map_err(|e| invalid("CreateTime", e))?;
        // MASSSENDJOBFINISH spells it `MsgID`; Weibo's XML mode sends it empty.
        let msg_id = match f.non_empty("MsgId").or_else(|| f.non_empty("MsgID")) {
            Some(v) => Some(v.trim().parse::<u64>().map_err(|e| invalid("MsgId", e))?),
            None => None,
        };
        let msg_type = required(f, "MsgType")?;
        let text = |name: &str| f.text(name).to_string();
        let message = match msg_type.to_ascii_lowercase().as_str() {
            "text" => Message::Text {
                content: text("Content"),
            },
            "image" => Message::Image {
                pic_url: text("PicUrl"),
                media_id: text("MediaId"),
            },
            "voice" => Message::Voice {
                media_id: text("MediaId"),
                format: text("Format"),
                recognition: f.non_empty("Recognition").map(str::to_string),
            },
            "video" => Message::Video {
                media_id: text("MediaId"),
                thumb_media_id: text("ThumbMediaId"),
            },
            "shortvideo" => Message::ShortVideo {
                media_id: text("MediaId"),
                thumb_media_id: text("ThumbMediaId"),
            },
            "location" => Message::Location {
                lat: coordinate(f, "Location_X", 90.0)?,
                lon: coordinate(f, "Location_Y", 180.0)?,
                scale: f.get("Scale").and_then(|v| v.trim().parse().ok()),
                label: text("Label"),
            },
            "link" => Message::Link {
                title: text("Title"),
                description: text("Description"),
                url: text("Url"),
            },
            "event" => Message::Event(parse_event(f)?),
            _ => Message::Unknown { msg_type },
        };
        Ok(Push {
            mode,
            to_user,
            from_user,
            create_time,
            msg_id,
            message,
            digest: digest(f),
        })
    }
}

fn parse_event(f: &Fields) -> Result<Event, AdapterError> {
    let name = required(f, "Event")?;
    let key = f.non_empty("EventKey").map(|k| k.trim().to_string());
    let ticket = f.non_empty("Ticket").map(|t| t.trim().to_string());
    let kind = match name.to_ascii_lowercase().as_str() {
        "subscribe" => EventKind::Subscribe {
            scene: key
                .as_deref()
                .and_then(|k| k.strip_prefix("qrscene_"))
                .map(str::to_string),
            ticket,
        },
        "unsubscribe" => EventKind::Unsubscribe,
        "scan" => EventKind::Scan {
            scene: key.clone().unwrap_or_default(),
            ticket,
        },
        "location" => EventKind::Location {
            lat: coordinate(f, "Latitude", 90.0)?,
            lon: coordinate(f, "Longitude", 180.0)?,
            precision: f
                .get("Precision")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|p| p.is_finite()),
        },
        "click" => EventKind::Click {
            key: key.clone().unwrap_or_default(),
        },
        "view" => EventKind::View {
            url: key.clone().unwrap_or_default(),
            menu_id: f.non_empty("MenuId").map(|m| m.trim().to_string()),
        },
        _ => EventKind::Other,
    };
    Ok(Event { name, key, kind })
}

/// A required, non-blank field, trimmed.
fn required(f: &Fields, name: &'static str) -> Result<String, AdapterError> {
    f.non_empty(name)
        .map(|v| v.trim().to_string())
        .ok_or(AdapterError::MissingField(name))
}

fn invalid(field: &'static str, reason: impl fmt::Display) -> AdapterError {
    AdapterError::InvalidField {
        field,
        reason: reason.to_string(),
    }
}

/// A required coordinate within ±`bound` degrees.
fn coordinate(f: &Fields, name: &'static str, bound: f64) -> Result<f64, AdapterError> {
    let v = required(f, name)?
        .parse::<f64>()
        .map_err(|e| invalid(name, e))?;
    if !v.is_finite() || v.abs() > bound {
        return Err(invalid(name, format!("{v} is not within ±{bound}")));
    }
    Ok(v)
}

/// SHA-256 over the fields sorted by name (so element order cannot matter), 16 hex chars.
fn digest(f: &Fields) -> String {
    let mut pairs: Vec<&(String, String)> = f.pairs().iter().collect();
    pairs.sort();
    let mut h = Sha256::new();
    for (k, v) in pairs {
        h.update(k.as_bytes());
        h.update([0u8]);
        h.update(v.as_bytes());
        h.update([0u8]);
    }
    let mut hex = hex::encode(h.finalize());
    hex.truncate(16);
    hex
}

/// A query parameter, percent-decoded, when present and not blank.
pub(crate) fn param(inbound: &Inbound, name: &str) -> Option<String> {
    inbound.query_param(name).filter(|v| !v.trim().is_empty())
}

/// Checks `signature = sign(secret, timestamp, nonce)` from the query (WeChat and Weibo alike)
/// and returns the timestamp and nonce as sent. A missing signature is `BadSignature`.
pub(crate) fn check_query_signature(
    secret: &str,
    inbound: &Inbound,
) -> Result<(String, String), AdapterError> {
    let given = param(inbound, "signature").ok_or(AdapterError::BadSignature)?;
    let (timestamp, nonce) = timestamp_nonce(inbound)?;
    if !signature_matches(&sign(&[secret, &timestamp, &nonce]), &given) {
        return Err(AdapterError::BadSignature);
    }
    Ok((timestamp, nonce))
}

fn timestamp_nonce(inbound: &Inbound) -> Result<(String, String), AdapterError> {
    let timestamp = param(inbound, "timestamp").ok_or(AdapterError::MissingField("timestamp"))?;
    let nonce = param(inbound, "nonce").ok_or(AdapterError::MissingField("nonce"))?;
    Ok((timestamp, nonce))
}

/// Parses a query timestamp as an integer.
pub(crate) fn parse_timestamp(timestamp: &str) -> Result<i64, AdapterError> {
    timestamp
        .trim()
        .parse::<i64>()
        .map_err(|e| invalid("timestamp", e))
}

/// Refuses a timestamp more than `window_s` seconds before or after `now`: without it a captured
/// push replays forever (chanxuehong/wechat PR #79).
pub(crate) fn check_window(ts: i64, now: i64, window_s: i64) -> Result<(), AdapterError> {
    let window = window_s.max(0).unsigned_abs();
    match now.checked_sub(ts) {
        Some(skew) if skew.unsigned_abs() <= window => Ok(()),
        _ => Err(AdapterError::StaleTimestamp),
    }
}

/// The GET handshake. With `signature` (official accounts, all three modes): checks
/// `sign(token, timestamp, nonce)` and returns `echostr` exactly, to be sent as the body.
///
/// Without `signature` but with `msg_signature` (the WeCom-style variant, where `echostr` is
/// encrypted): checks `sign(token, timestamp, nonce, echostr)`, decrypts `echostr` with the
/// account's key, requires it to be addressed to `app_id`, and returns the plaintext.
///
/// No timestamp window here, on purpose: a replayed handshake only echoes the replayer's own
/// `echostr` back and creates nothing, and the platform's console (and the official vectors)
/// must keep working whatever the clock says.
pub fn verify_url(acc: &WechatAccount, inbound: &Inbound) -> Result<String, AdapterError> {
    if param(inbound, "signature").is_some() {
        check_query_signature(&acc.token, inbound)?;
        return param(inbound, "echostr").ok_or(AdapterError::MissingField("echostr"));
    }
    let given = param(inbound, "msg_signature").ok_or(AdapterError::BadSignature)?;
    let (timestamp, nonce) = timestamp_nonce(inbound)?;
    // A raw `+` in the query decodes to a space; base64 has no spaces, so restore it before
    // signing (the platform signed the base64 text).
    let echostr = param(inbound, "echostr")
        .ok_or(AdapterError::MissingField("echostr"))?
        .replace(' ', "+");
    if !signature_matches(&sign(&[&acc.token, &timestamp, &nonce, &echostr]), &given) {
        return Err(AdapterError::BadSignature);
    }
    let key = acc.aes_key()?.ok_or_else(no_key)?;
    decrypt(&key, &acc.app_id, &echostr)
}

fn no_key() -> AdapterError {
    AdapterError::Decrypt("the account has no EncodingAESKey".into())
}

/// Verifies, decrypts and parses a POST push.
///
/// Order: body size; `signature` (always, in every mode: some SDKs skip it, fastwego #26);
/// timestamp window against `inbound.now`; XML (DOCTYPE refused, depth bounded, illegal
/// controls stripped). The encrypted path is taken when the body has `<Encrypt>` or the query
/// says `encrypt_type=aes`: `msg_signature` over the `Encrypt` text is checked **before**
/// decrypting (so decryption is never an oracle), the receiver must be the account's AppID, and
/// only the decrypted copy is used (compatible mode also carries unsigned plain fields).
pub fn parse_push(acc: &WechatAccount, inbound: &Inbound) -> Result<Push, AdapterError> {
    parse_push_readable(acc, inbound).map_err(|r| r.error)
}

/// [`parse_push`], with what a push refused for a repeated field says
/// ([`PushRefusal`]): a (signed, decrypted) message with two `<Content>` (or any other field
/// the gateway reads, [`READ_ONCE`]) is refused, 422 `invalid_field` naming it, as the web
/// form refuses a repeated field; its first-valued push addresses the answer and every value
/// of its text fields goes to the emergency rules. Until 2026-12-07 the first `<Content>` was
/// taken and the second never read, `楼下着火了` in it unheard.
pub fn parse_push_readable(
    acc: &WechatAccount,
    inbound: &Inbound,
) -> Result<Push, PushRefusal<Push>> {
    if inbound.body.len() > MAX_BODY {
        return Err(AdapterError::TooLarge { limit: MAX_BODY }.into());
    }
    let (timestamp, nonce) = check_query_signature(&acc.token, inbound)?;
    check_window(parse_timestamp(&timestamp)?, inbound.now, acc.window_s)?;
    let body = std::str::from_utf8(&inbound.body).map_err(|_| AdapterError::InvalidUtf8)?;
    let outer = xml::parse(&xml::strip_illegal(body))?;
    let aes_query = param(inbound, "encrypt_type").is_some_and(|t| t.eq_ignore_ascii_case("aes"));
    if outer.all("Encrypt").nth(1).is_some() {
        return Err(AdapterError::repeated("Encrypt").into());
    }
    match outer.get("Encrypt").map(str::trim) {
        Some(encrypted) => {
            let mode = if outer.get("MsgType").is_some() {
                Mode::Compatible
            } else {
                Mode::Safe
            };
            let given = param(inbound, "msg_signature").ok_or(AdapterError::BadSignature)?;
            if !signature_matches(&sign(&[&acc.token, &timestamp, &nonce, encrypted]), &given) {
                return Err(AdapterError::BadSignature.into());
            }
            let key = acc.aes_key()?.ok_or_else(no_key)?;
            let inner = decrypt(&key, &acc.app_id, encrypted)?;
            Push::read_once(mode, &xml::parse(&xml::strip_illegal(&inner))?)
        }
        None if aes_query => Err(AdapterError::MissingField("Encrypt").into()),
        None if acc.require_encryption => Err(AdapterError::EncryptionRequired.into()),
        None => Push::read_once(Mode::Plaintext, &outer),
    }
}

/// The message fields the gateway reads, each of which a push may carry once. Others (a new
/// platform field, the children of a nested element) are not read, and may repeat.
pub const READ_ONCE: [&str; 26] = [
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgId",
    "MsgID",
    "MsgType",
    "Content",
    "PicUrl",
    "MediaId",
    "Format",
    "Recognition",
    "ThumbMediaId",
    "Location_X",
    "Location_Y",
    "Scale",
    "Label",
    "Title",
    "Description",
    "Url",
    "Event",
    "EventKey",
    "Ticket",
    "Latitude",
    "Longitude",
    "Precision",
    "MenuId",
];

/// The fields whose text becomes a submission's content (see [`Push::to_submission`]): every
/// value of one of them sent twice is heard by the emergency rules.
const TEXT_FIELDS: [&str; 6] = [
    "Content",
    "Recognition",
    "Label",
    "Title",
    "Description",
    "Url",
];

impl Push {
    /// [`Push::from_fields`], refusing a field of [`READ_ONCE`] sent more than once.
    fn read_once(mode: Mode, f: &Fields) -> Result<Push, PushRefusal<Push>> {
        let push = Push::from_fields(mode, f);
        let Some(field) = READ_ONCE.into_iter().find(|n| f.all(n).nth(1).is_some()) else {
            return push.map_err(PushRefusal::from);
        };
        let heard = f
            .pairs()
            .iter()
            .filter(|(k, _)| TEXT_FIELDS.contains(&k.as_str()) && f.all(k).nth(1).is_some())
            .map(|(_, v)| v.clone())
            .collect();
        Err(PushRefusal::repeated(field, push.ok(), heard, |p| {
            p.to_submission("").unwrap_or_else(|| {
                let mut s = Submission::new(
                    Channel::Wechat,
                    Identity::new(IdentityKind::Wechat, p.from_user.clone()),
                    p.create_time,
                    "",
                );
                s.dedupe_key = Some(p.dedupe_key());
                s
            })
        }))
    }
}

/// The plain text-reply XML (`To`/`From` as given: pass the push's `from_user` as `to`).
/// Illegal XML characters are dropped and `]]>` is split across CDATA sections.
pub fn render_text_xml(to: &str, from: &str, create_time: i64, content: &str) -> String {
    let mut out = String::with_capacity(content.len() + 256);
    out.push_str("<xml><ToUserName>");
    xml::push_cdata(&mut out, &xml::strip_illegal(to));
    out.push_str("</ToUserName><FromUserName>");
    xml::push_cdata(&mut out, &xml::strip_illegal(from));
    out.push_str("</FromUserName><CreateTime>");
    out.push_str(&create_time.to_string());
    out.push_str("</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>");
    xml::push_cdata(&mut out, &xml::strip_illegal(content));
    out.push_str("</Content></xml>");
    out
}

/// Wraps a reply XML in the encrypted envelope: `Encrypt` = [`encrypt`] with `random16`,
/// `MsgSignature` = `sign(token, now, nonce, Encrypt)`. `nonce` must be 1–64 ASCII
/// alphanumerics (the gateway draws it; it is echoed inside the XML and the signature).
pub fn seal_reply(
    acc: &WechatAccount,
    reply_xml: &str,
    now: i64,
    nonce: &str,
    random16: [u8; 16],
) -> Result<String, AdapterError> {
    if nonce.is_empty() || nonce.len() > 64 || !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid("nonce", "must be 1-64 ASCII letters or digits"));
    }
    let key = acc.aes_key()?.ok_or_else(|| AdapterError::InvalidField {
        field: "encoding_aes_key",
        reason: "an encrypted reply needs an EncodingAESKey".into(),
    })?;
    let encrypted = encrypt(&key, &acc.app_id, random16, reply_xml.as_bytes())?;
    let timestamp = now.to_string();
    let signature = sign(&[&acc.token, &timestamp, nonce, &encrypted]);
    let mut out = String::with_capacity(encrypted.len() + 200);
    out.push_str("<xml><Encrypt>");
    xml::push_cdata(&mut out, &encrypted);
    out.push_str("</Encrypt><MsgSignature>");
    xml::push_cdata(&mut out, &signature);
    out.push_str("</MsgSignature><TimeStamp>");
    out.push_str(&timestamp);
    out.push_str("</TimeStamp><Nonce>");
    xml::push_cdata(&mut out, nonce);
    out.push_str("</Nonce></xml>");
    Ok(out)
}

/// The passive reply to `push`: [`NO_REPLY`] (`success`) when `text` is `None` or blank (an empty
/// `<Content>` would show the user an error), else a text reply with the users swapped and
/// `CreateTime = now`; in compatible and safe mode it is sealed with [`seal_reply`] using
/// `nonce` and `random16`. Send it as `text/xml; charset=utf-8`.
pub fn render_reply(
    acc: &WechatAccount,
    push: &Push,
    text: Option<&str>,
    now: i64,
    nonce: &str,
    random16: [u8; 16],
) -> Result<String, AdapterError> {
    let Some(text) = text.filter(|t| !xml::strip_illegal(t).trim().is_empty()) else {
        return Ok(NO_REPLY.to_string());
    };
    let reply = render_text_xml(&push.from_user, &push.to_user, now, text);
    if push.mode.is_encrypted() {
        seal_reply(acc, &reply, now, nonce, random16)
    } else {
        Ok(reply)
    }
}

#[cfg(test)]
mod tests;
