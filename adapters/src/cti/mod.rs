//! Telephony (CTI) callbacks: a channel-neutral call model and three wire formats.
//!
//! A telephony platform tells the gateway what happens on a call (it rings, the caller pressed
//! keys, an agent registered a matter, it ended) and, for the synchronous formats, waits for an
//! instruction (continue, reject, transfer, say something and hang up). Each format module parses
//! its request into a [`CallEvent`] and renders a [`CallDecision`] into its own answer:
//!
//! | format | module | auth | answer |
//! |---|---|---|---|
//! | `generic` | [`generic`] | bearer token or token in the URL path | JSON |
//! | `zammad` | [`zammad`] | token in the URL path | JSON (`{}` / reject) |
//! | `twilio` | [`twilio`] | `X-Twilio-Signature` (HMAC-SHA1) | TwiML |
//!
//! The HTTP handler normally only needs [`CtiProfile::parse`] and [`CtiProfile::render`]; the
//! per-format functions are public for tests and interop checks.
//!
//! Nothing here reads a clock: an event without its own time takes [`Inbound::now`].

pub mod generic;
pub mod twilio;
pub mod zammad;

use crate::text::normalize_phone;
use crate::{
    AdapterError, Attachment, AttachmentKind, Category, Channel, Contact, Identity, IdentityKind,
    Inbound, Item, Location, Submission,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Longest call id accepted; real ones are 20 to 64 characters (Twilio `CallSid` is 34).
pub const MAX_CALL_ID: usize = 128;
/// Longest `from`/`to` accepted (SIP URIs can be long, phone numbers are short).
pub const MAX_NUMBER: usize = 256;
/// Longest matter text, as for every channel (contract: 1..4000 characters).
pub const MAX_CONTENT: usize = 4000;

/// The wire format a CTI profile speaks (`channels.cti.PROFILE.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CtiFormat {
    /// The gateway's own JSON contract.
    #[default]
    Generic,
    /// Zammad's generic CTI API (`newCall` / `answer` / `hangup`).
    Zammad,
    /// Twilio Programmable Voice webhooks answered with TwiML.
    Twilio,
}

impl CtiFormat {
    /// Parses the config value (`generic`, `zammad`, `twilio`).
    pub fn parse(s: &str) -> Option<CtiFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "generic" => Some(CtiFormat::Generic),
            "zammad" => Some(CtiFormat::Zammad),
            "twilio" => Some(CtiFormat::Twilio),
            _ => None,
        }
    }

    /// The config name of the format.
    pub fn as_str(self) -> &'static str {
        match self {
            CtiFormat::Generic => "generic",
            CtiFormat::Zammad => "zammad",
            CtiFormat::Twilio => "twilio",
        }
    }

    /// The `Content-Type` of this format's answers.
    pub fn content_type(self) -> &'static str {
        match self {
            CtiFormat::Generic | CtiFormat::Zammad => "application/json",
            CtiFormat::Twilio => "text/xml; charset=utf-8",
        }
    }
}

/// Which way a call goes, seen from the hotline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CallDirection {
    /// A citizen calls the hotline (the normal case; the only one the nuisance rules apply to).
    #[default]
    Inbound,
    /// The hotline calls a citizen back (an agent's callback, an outbound survey).
    Outbound,
}

/// What an agent registered for a caller (generic `call.registered`), or a voicemail recording
/// (Twilio `<Record>` callback).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegisteredOrder {
    /// The matter as text, cleaned (NFC, trimmed). When the agent gave only items, their
    /// contents joined by newlines.
    pub content: String,
    /// The category the agent chose.
    pub category: Option<Category>,
    /// Several matters in one call (art. 13); empty means `content` is the one matter.
    pub items: Vec<Item>,
    /// The caller asked for confidentiality (art. 29).
    pub confidential: bool,
    /// The caller's name as the agent typed it, or empty.
    pub name: String,
    /// Where the matter is, or empty.
    pub address: String,
    /// URL of the call recording, if the platform keeps one.
    pub recording_url: Option<String>,
    /// `content` is a transcription of the recording that came on its own (Twilio's
    /// `transcribeCallback`), usually after the recording's own request made the order: the
    /// gateway then sends the words to that order as a supplement.
    pub transcription: bool,
}

/// What happened on a call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallKind {
    /// The call reached the hotline (ringing / new call). The nuisance check happens here.
    Started,
    /// The call was answered (by an agent, or it entered the IVR).
    Answered,
    /// The caller pressed keys or said something in the IVR (emergency check happens here).
    Input {
        /// DTMF keys (`0-9`, `*`, `#`), if any.
        digits: Option<String>,
        /// Recognised speech, cleaned, if any.
        speech: Option<String>,
    },
    /// An agent (or a voicemail box) registered a matter: becomes a work order.
    Registered {
        /// What was registered.
        order: RegisteredOrder,
    },
    /// The call ended.
    Ended {
        /// Talk time in seconds (0 when unknown or unanswered).
        duration_s: u64,
        /// Whether anyone answered.
        answered: bool,
        /// The platform's reason (`normalClearing`, `busy`, `no-answer`, ...), if it gave one.
        cause: Option<String>,
    },
    /// An agent flagged the caller as abusive (art. 32 para. 2).
    Flagged {
        /// The agent's id.
        agent: String,
        /// Why.
        reason: String,
    },
    /// A step the gateway has no rule for (e.g. Twilio `<Dial>` action callbacks); answer
    /// `Continue`. The string names it for logs and metrics.
    Other(String),
}

impl CallKind {
    /// A short stable name for logs, metrics and dedupe keys.
    pub fn tag(&self) -> &'static str {
        match self {
            CallKind::Started => "started",
            CallKind::Answered => "answered",
            CallKind::Input { .. } => "input",
            CallKind::Registered { .. } => "registered",
            CallKind::Ended { .. } => "ended",
            CallKind::Flagged { .. } => "flagged",
            CallKind::Other(_) => "other",
        }
    }
}

/// One telephony callback, channel-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    /// The platform's call id (Zammad `callId`, Twilio `CallSid`, generic `call_id`).
    pub call_id: String,
    /// What happened.
    pub kind: CallKind,
    /// Which way the call goes.
    pub direction: CallDirection,
    /// The calling number as received (may be `anonymous`, a SIP URI, ...). Never log it unmasked.
    pub from: String,
    /// The called number as received.
    pub to: String,
    /// The citizen's phone identity: the calling party of an inbound call, the called party of
    /// an outbound one. `None` when the number is withheld or not a phone number.
    pub caller: Option<Identity>,
    /// A platform's stable id for a caller whose number is withheld or not a phone number
    /// (generic `caller_ref`, Twilio `client:`/`sip:` addresses), for nuisance keys.
    pub caller_ref: Option<String>,
    /// When it happened, unix seconds (the platform's time if it sent one, else arrival time).
    pub at: i64,
    /// Key under which a platform retry of this same event is recognised: call id, kind and a
    /// step discriminator (`CA123:input:9f86d081884c7d65`). Unique within one profile, so the
    /// gateway must scope it by channel and profile when it stores it.
    pub dedupe_key: String,
}

/// Shown as the content of a voicemail recording that came without any text, so the order is
/// never empty; the recording itself is the attachment.
pub const RECORDING_ONLY_CONTENT: &str = "电话留言（仅录音，请听取录音附件）";

impl CallEvent {
    /// The dedupe key of this call's `Started` step (unscoped, like [`CallEvent::dedupe_key`]):
    /// where the answer to its ringing is remembered.
    pub fn started_key(&self) -> String {
        dedupe_key(&self.call_id, &CallKind::Started, None)
    }

    /// The work order submission of a `Registered` event; `None` for every other kind.
    ///
    /// The identity is the caller's phone; a caller whose number is withheld gets
    /// `phone:anonymous-<caller_ref or call id>`, so one anonymous call never throttles
    /// another (there is no identity kind for platform ids yet).
    pub fn to_submission(&self, profile: &str) -> Option<Submission> {
        let CallKind::Registered { order } = &self.kind else {
            return None;
        };
        let phone = self
            .caller
            .as_ref()
            .filter(|i| i.kind == IdentityKind::Phone)
            .map(|i| i.value.clone())
            .unwrap_or_default();
        let identity = self.caller.clone().unwrap_or_else(|| {
            let anon = self.caller_ref.as_deref().unwrap_or(&self.call_id);
            Identity::new(IdentityKind::Phone, format!("anonymous-{anon}"))
        });
        let attachments = order
            .recording_url
            .iter()
            .map(|url| Attachment {
                kind: AttachmentKind::Recording,
                url: url.clone(),
                media_id: String::new(),
            })
            .collect();
        Some(Submission {
            channel: Channel::Cti,
            account: profile.to_string(),
            channel_ref: self.call_id.clone(),
            dedupe_key: Some(self.dedupe_key.clone()),
            identity,
            received_at: self.at,
            content: order.content.clone(),
            category: order.category,
            items: order.items.clone(),
            contact: Contact {
                name: order.name.clone(),
                phone,
                email: String::new(),
            },
            location: Location {
                address: order.address.clone(),
                lat: None,
                lon: None,
            },
            attachments,
            confidential: order.confidential,
            client_ref: None,
        })
    }
}

/// What the gateway tells the platform to do with the call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallDecision {
    /// Go on with the normal flow.
    Continue {
        /// Order numbers to report (after `call.registered`).
        orders: Vec<String>,
        /// A message for the caller (spoken where the format can), e.g. an over-quota reminder.
        text: Option<String>,
        /// A flag for the agent desk, e.g. `over_quota`.
        flag: Option<String>,
    },
    /// Refuse the call (a suspended caller, art. 32).
    Reject {
        /// Why, for formats that can carry it (generic) and for the gateway's log.
        text: String,
    },
    /// Put the call through to an emergency number (110/119/120/122).
    Transfer {
        /// The number to dial.
        number: String,
        /// A short notice for the caller.
        text: String,
    },
    /// Tell the caller something, then hang up (emergency notice when transfer is off).
    Say {
        /// The number the caller is told to dial (110/119/120/122).
        number: String,
        /// What to say.
        text: String,
    },
}

impl CallDecision {
    /// `Continue` with nothing to report.
    pub fn proceed() -> CallDecision {
        CallDecision::Continue {
            orders: Vec::new(),
            text: None,
            flag: None,
        }
    }
}

/// An answer body ready to send with HTTP 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtiReply {
    /// The `Content-Type` header value.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// One `channels.cti.PROFILE` table, as the adapters need it. Built once from the config.
#[derive(Debug, Clone, Default)]
pub struct CtiProfile {
    /// The wire format.
    pub format: CtiFormat,
    /// generic: the bearer/path token; zammad: the path token. Empty refuses every request.
    pub token: String,
    /// twilio: the account auth token (HMAC key of `X-Twilio-Signature`). Empty refuses all.
    pub auth_token: String,
    /// twilio: the SharedKey secret of a Webhooks Rule (the HMAC key of requests that carry
    /// `X-Twilio-Webhooks-Signature-Settings`). Empty refuses those requests.
    pub shared_key_secret: String,
    /// twilio: the public URL Twilio calls, without query (the request's query is appended).
    pub public_url: String,
    /// twilio: the TwiML fragment that continues the normal flow (inserted verbatim inside
    /// `<Response>`), e.g. `<Redirect>https://ivr.example/main</Redirect>`; empty = none.
    /// Check it once at config load with [`twilio::check_fragment`].
    pub continue_twiml: String,
    /// twilio: the `<Say>` voice (Mandarin-capable, e.g. `Polly.Zhiyu`); empty = the default.
    pub say_voice: String,
    /// The SIP hosts whose callers' user part is their phone number (the hotline's own trunk
    /// or PBX, `sip_number_hosts`); a SIP caller id from any other host is no phone identity.
    /// Empty (the default) reads no SIP URI as a number.
    pub sip_number_hosts: SipNumberHosts,
}

impl CtiProfile {
    /// Authenticates and parses one callback. `path_token` is the `{token}` segment of
    /// `/v1/cti/{profile}/{token}`, if the route had one.
    pub fn parse(
        &self,
        inbound: &Inbound,
        path_token: Option<&str>,
    ) -> Result<CallEvent, AdapterError> {
        match self.format {
            CtiFormat::Generic => {
                generic::parse(inbound, &self.token, path_token, &self.sip_number_hosts)
            }
            CtiFormat::Zammad => {
                zammad::parse(inbound, &self.token, path_token, &self.sip_number_hosts)
            }
            CtiFormat::Twilio => twilio::parse(
                inbound,
                &self.auth_token,
                &self.shared_key_secret,
                &self.public_url,
                &self.sip_number_hosts,
            ),
        }
    }

    /// Renders the gateway's decision in this profile's format.
    pub fn render(&self, decision: &CallDecision) -> CtiReply {
        let body = match self.format {
            CtiFormat::Generic => generic::render(decision),
            CtiFormat::Zammad => zammad::render(decision),
            CtiFormat::Twilio => twilio::render(decision, &self.continue_twiml, &self.say_voice),
        };
        CtiReply {
            content_type: self.format.content_type(),
            body,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the formats.

/// Compares a presented token with the configured one in constant time. Both are hashed first
/// so neither the content nor the length of the secret leaks through timing. An empty configured
/// token never matches: a profile left without a token must not be open.
pub(crate) fn token_matches(expected: &str, presented: &str) -> bool {
    if expected.is_empty() {
        return false;
    }
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a.ct_eq(&b).into()
}

/// Caller-id strings that mean "number withheld". The `+` numbers are Twilio's keypad spellings
/// of ANONYMOUS, RESTRICTED, BLOCKED, UNKNOWN and UNAVAILABLE; the last one starts with `+86`
/// and would otherwise pass as a Chinese number.
const WITHHELD: [&str; 13] = [
    "anonymous",
    "unknown",
    "restricted",
    "private",
    "blocked",
    "unavailable",
    "withheld",
    "null",
    "+266696687",
    "+7378742833",
    "+2562533",
    "+8656696",
    "+86282452253",
];

/// The SIP hosts of one profile whose callers' user part is their phone number
/// (`channels.cti.PROFILE.sip_number_hosts`): the hotline's own trunk or PBX, which puts the
/// phone network's caller id there. A platform that takes SIP calls from the internet (an open
/// SIP domain, guest access) passes on whatever user part the caller chose, and
/// `sip:13600003333@attacker.example` must not be the citizen whose line that is: that number's
/// quota, reminders and suspensions hold on every channel. Hosts compare case-insensitively,
/// without the URI's port and parameters; IP addresses by their value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SipNumberHosts {
    /// Each host in the form [`host_key`] gives.
    hosts: Vec<String>,
}

/// A `sip_number_hosts` entry that is no host name or IP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a host name or IP address (write the host alone: no scheme, user, port or parameters)")]
pub struct BadSipHost(pub String);

impl SipNumberHosts {
    /// No host: no SIP URI is read as a phone number.
    pub const NONE: SipNumberHosts = SipNumberHosts { hosts: Vec::new() };

    /// The list from the config's entries (`10.0.0.5`, `trunk.example.gov.cn`, `[2001:db8::5]`
    /// or `2001:db8::5`); the first entry that is not a host alone is the error.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<SipNumberHosts, BadSipHost> {
        let mut hosts = Vec::with_capacity(entries.len());
        for e in entries {
            let e = e.as_ref();
            // A bare IPv6 address is the one host that has colons outside brackets.
            let key = match e.trim().parse::<std::net::Ipv6Addr>() {
                Ok(a) => Some(format!("[{a}]")),
                Err(_) => host_key(e),
            };
            hosts.push(key.ok_or_else(|| BadSipHost(e.to_string()))?);
        }
        Ok(SipNumberHosts { hosts })
    }

    /// Whether no host is listed.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Whether the host of a SIP URI's part after `@` (`host`, `host:port`, `[v6]:port`, then
    /// `;parameters` and `?headers`) is listed. Anything malformed there is not: a host with
    /// odd characters, or a port that is not a number (`trunk:5060@elsewhere`), could be
    /// read differently by the platform.
    fn trusts(&self, hostport: &str) -> bool {
        !self.hosts.is_empty() && sip_host(hostport).is_some_and(|h| self.hosts.contains(&h))
    }
}

/// The host of a SIP URI's part after `@`, as [`host_key`] gives it; `None` when malformed.
fn sip_host(hostport: &str) -> Option<String> {
    let hp = hostport.split([';', '?']).next().unwrap_or_default().trim();
    let (host, port) = match hp.strip_prefix('[') {
        Some(rest) => {
            let (inner, after) = rest.split_once(']')?;
            (format!("[{inner}]"), after)
        }
        None => match hp.split_once(':') {
            // The port with its colon, as the bracketed form leaves it.
            Some((h, _)) => (h.to_string(), hp.get(h.len()..).unwrap_or_default()),
            None => (hp.to_string(), ""),
        },
    };
    match port.strip_prefix(':') {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {}
        None if port.is_empty() => {}
        _ => return None,
    }
    host_key(&host)
}

/// A host name or IP address as hosts are compared: lower case, without a final dot, an IPv4
/// address in its usual form, an IPv6 one in brackets in its shortest form. `None` for
/// anything else (a port, a user, parameters, other characters).
fn host_key(host: &str) -> Option<String> {
    let h = host.trim();
    let h = h.strip_suffix('.').unwrap_or(h);
    if let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|a| format!("[{a}]"));
    }
    if let Ok(a) = h.parse::<std::net::Ipv4Addr>() {
        return Some(a.to_string());
    }
    let name = !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    name.then(|| h.to_ascii_lowercase())
}

/// The phone identity of a raw caller number, or `None` when the number is withheld, too short
/// or not a number. E.164 numbers of other countries become `00CC...` (as dialled from China),
/// because the shared normaliser only knows `+86` and must not confuse `+1 234...` with a
/// Chinese mobile `1234...`. A SIP URI's user part is a number only from one of `sip_hosts`.
pub fn caller_identity(raw: &str, sip_hosts: &SipNumberHosts) -> Option<Identity> {
    let raw = uri_number(raw, sip_hosts)?;
    let compact: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{3000}' | '\t'))
        .collect::<String>()
        .to_ascii_lowercase();
    if compact.is_empty() || WITHHELD.contains(&compact.as_str()) {
        return None;
    }
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    if !digits.is_empty() && digits.bytes().all(|b| b == b'0') {
        // 0000000000 is what several PBXs present for a private number.
        return None;
    }
    if compact.starts_with('+') && !compact.starts_with("+86") {
        return Identity::phone(&format!("00{digits}"));
    }
    normalize_phone(&compact).map(|value| Identity::new(IdentityKind::Phone, value))
}

/// The address of a caller id written as a name and an address in angle brackets (`"张三"
/// <sip:…>`, `张三 <tel:…>`); the text itself otherwise. The name must be quoted or hold no
/// `:`, `@` or `;`: then the last `<` opens the address, since a URI holds none. Text that
/// ends in `<…>` after something like a URI (`sip:1@evil;x=<sip:1@trunk>`) is no name and an
/// address, and taking the bracketed part would trust a host the caller only named.
fn address_of(raw: &str) -> &str {
    let t = raw.trim();
    if let (Some(open), true) = (t.rfind('<'), t.ends_with('>')) {
        let name = t.get(..open).unwrap_or_default().trim();
        // One quoted string: `"x" sip:1@evil;y="` is not one, though it starts and ends so.
        let quoted = name.len() >= 2
            && name.starts_with('"')
            && name.ends_with('"')
            && !name.get(1..name.len() - 1).unwrap_or("\"").contains('"');
        if quoted || !name.contains([':', '@', ';']) {
            return t.get(open + 1..t.len() - 1).unwrap_or_default().trim();
        }
    }
    t
}

/// The number in a caller id given as a URI, as PBXs and SIP trunks send it: a `tel:` URI
/// (`tel:+86-138-1234-0002`, RFC 3966), the user part of a `sip:`/`sips:` URI
/// (`sip:+8613812340001@pbx.example.cn;user=phone`, `"张三" <sip:…>`) from one of `sip_hosts`
/// when it is a number of 7 digits or more (a shorter one is an extension of that PBX, and a
/// name is no number), or a number with parameters (`13812340006;ext=12`: the line, not the
/// extension). The text as it is otherwise; `None` for a SIP URI with no number in it or from a
/// host not listed, which stays a [`non_phone_ref`]. Until 2026-12-07 every such caller was
/// taken as withheld: never throttled by number, and no call-back for a missed call; for a
/// while on that day any host's user part was a number, which let anyone on a platform open to
/// SIP calls from the internet spend a citizen's quota (see [`SipNumberHosts`]).
fn uri_number<'a>(raw: &'a str, sip_hosts: &SipNumberHosts) -> Option<&'a str> {
    let t = address_of(raw);
    let scheme = t
        .split_once(':')
        .map(|(s, rest)| (s.to_ascii_lowercase(), rest));
    match scheme {
        Some((s, rest)) if s == "tel" => Some(before_parameters(rest)),
        Some((s, rest)) if s == "sip" || s == "sips" => {
            let (user, hostport) = rest.split_once('@')?;
            if !sip_hosts.trusts(hostport) {
                return None;
            }
            // A password after the user (`user:pw@host`) is no part of the number.
            let user = before_parameters(user.split(':').next().unwrap_or_default());
            let digits = user.bytes().filter(u8::is_ascii_digit).count();
            let numeric = user
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '(' | ')'));
            (numeric && digits >= 7).then_some(user)
        }
        _ => Some(before_parameters(t)),
    }
}

/// A URI part without its `;` parameters.
fn before_parameters(s: &str) -> &str {
    s.split(';').next().unwrap_or_default().trim()
}

/// A non-phone caller address worth keeping as a stable id (`client:alice`, `sip:...`; the
/// address alone when a name came with it, `"张三" <sip:…>`).
pub(crate) fn non_phone_ref(raw: &str) -> Option<String> {
    let t = address_of(raw);
    let lower = t.to_ascii_lowercase();
    (lower.starts_with("client:") || lower.starts_with("sip:") || lower.starts_with("sips:"))
        .then(|| t.to_string())
}

/// A short hex digest of the parts that tell one step of a call from another. Hashed because
/// the parts can be personal (speech, an agent's text) and dedupe keys end up in logs; 64 bits
/// are plenty within one call. Parts are separated by a byte that cannot occur in them
/// unnoticed, so `("ab","c")` and `("a","bc")` differ.
pub(crate) fn step_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    hex::encode(digest.get(..8).unwrap_or_default())
}

/// Builds a dedupe key `CALL_ID:TAG` or `CALL_ID:TAG:STEP`.
pub(crate) fn dedupe_key(call_id: &str, kind: &CallKind, step: Option<&str>) -> String {
    match step {
        Some(s) => format!("{call_id}:{}:{s}", kind.tag()),
        None => format!("{call_id}:{}", kind.tag()),
    }
}

/// Checks a call id: present, bounded, no control characters or whitespace.
pub(crate) fn check_call_id(
    field: &'static str,
    raw: Option<String>,
) -> Result<String, AdapterError> {
    let id = raw.map(|s| s.trim().to_string()).unwrap_or_default();
    if id.is_empty() {
        return Err(AdapterError::MissingField(field));
    }
    if id.chars().count() > MAX_CALL_ID {
        return Err(AdapterError::InvalidField {
            field,
            reason: format!("longer than {MAX_CALL_ID} characters"),
        });
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(AdapterError::InvalidField {
            field,
            reason: "contains whitespace or control characters".into(),
        });
    }
    Ok(id)
}

/// Checks a `from`/`to` value: bounded, trimmed; absent is empty.
pub(crate) fn check_number(
    field: &'static str,
    raw: Option<String>,
) -> Result<String, AdapterError> {
    let s = raw.map(|s| s.trim().to_string()).unwrap_or_default();
    if s.chars().count() > MAX_NUMBER || s.chars().any(char::is_control) {
        return Err(AdapterError::InvalidField {
            field,
            reason: format!("not a number or address of at most {MAX_NUMBER} characters"),
        });
    }
    Ok(s)
}

/// Checks DTMF digits: keys of a phone pad only, at most 64.
pub(crate) fn check_digits(
    field: &'static str,
    raw: Option<String>,
) -> Result<Option<String>, AdapterError> {
    let Some(d) = raw.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if d.len() > 64
        || !d
            .bytes()
            .all(|b| b.is_ascii_digit() || b"*#ABCDabcd".contains(&b))
    {
        return Err(AdapterError::InvalidField {
            field,
            reason: "only 0-9, *, #, A-D (at most 64 keys)".into(),
        });
    }
    Ok(Some(d))
}

/// Cleans recognised speech; empty becomes `None`.
pub(crate) fn check_speech(
    field: &'static str,
    raw: Option<String>,
) -> Result<Option<String>, AdapterError> {
    match raw {
        None => Ok(None),
        Some(s) => {
            let s = crate::text::bounded(field, &s, MAX_CONTENT)?;
            Ok((!s.is_empty()).then_some(s))
        }
    }
}

/// Checks a recording URL: http(s) only (it is fetched later by the dispatch side), bounded.
pub(crate) fn check_url(
    field: &'static str,
    raw: Option<String>,
) -> Result<Option<String>, AdapterError> {
    let Some(u) = raw.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let lower = u.to_ascii_lowercase();
    let ok = (lower.starts_with("https://") || lower.starts_with("http://"))
        && u.len() <= 2048
        && !u.chars().any(|c| c.is_control() || c.is_whitespace());
    if !ok {
        return Err(AdapterError::InvalidField {
            field,
            reason: "not an http(s) URL of at most 2048 characters".into(),
        });
    }
    Ok(Some(u))
}

/// Parses an RFC 3339 date-time (`2026-11-29T08:30:00+08:00`, `...Z`, fractions allowed and
/// ignored) into unix seconds. Written by hand because this crate takes no date library; a leap
/// second `:60` counts as `:59`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = b.get(from..to)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter()
            .try_fold(0i64, |acc, d| Some(acc * 10 + i64::from(d - b'0')))
    };
    let at = |i: usize| b.get(i).copied();
    let year = num(0, 4)?;
    let month = num(5, 7)?;
    let day = num(8, 10)?;
    let hour = num(11, 13)?;
    let minute = num(14, 16)?;
    let second = num(17, 19)?;
    if at(4) != Some(b'-')
        || at(7) != Some(b'-')
        || !matches!(at(10), Some(b'T' | b't' | b' '))
        || at(13) != Some(b':')
        || at(16) != Some(b':')
    {
        return None;
    }
    let mut i = 19;
    if at(i) == Some(b'.') {
        i += 1;
        let start = i;
        while at(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match at(i) {
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            let oh = num(i + 1, i + 3)?;
            let om = num(i + 4, i + 6)?;
            if at(i + 3) != Some(b':') || oh > 23 || om > 59 {
                return None;
            }
            i += 6;
            let off = oh * 3600 + om * 60;
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    if i != b.len() {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_parses_offsets_fractions_and_refuses_garbage() {
        for (s, want) in [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2026-11-29T08:30:00+08:00", Some(1_795_912_200)),
            ("2026-11-29T00:30:00Z", Some(1_795_912_200)),
            ("2026-11-29t00:30:00.123456z", Some(1_795_912_200)),
            ("2026-11-28 19:30:00-05:00", Some(1_795_912_200)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800)),
            ("2016-12-31T23:59:60Z", Some(1_483_228_799)),
            ("1969-12-31T23:59:59Z", Some(-1)),
            ("2023-02-29T00:00:00Z", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-11-29T24:00:00Z", None),
            ("2026-11-29T08:30:00", None),
            ("2026-11-29T08:30:00+0800", None),
            ("2026-11-29T08:30:00.Z", None),
            ("2026-11-29T08:30:00Zjunk", None),
            ("2026-1-29T08:30:00Z", None),
            ("+026-11-29T08:30:00Z", None),
            ("", None),
            ("今天", None),
        ] {
            assert_eq!(parse_rfc3339(s), want, "{s}");
        }
    }

    fn hosts(entries: &[&str]) -> SipNumberHosts {
        match SipNumberHosts::new(entries) {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn caller_identities_and_withheld_numbers() {
        // The PBX and trunk hosts of the SIP URIs below are the profile's own.
        let ours = hosts(&["pbx.example.cn", "trunk.example.cn", "10.0.0.1"]);
        for (raw, want) in [
            ("13800138000", Some("13800138000")),
            ("+8613800138000", Some("13800138000")),
            ("+86 138-0013-8000", Some("13800138000")),
            ("02223456789", Some("02223456789")),
            ("+12349013030", Some("0012349013030")),
            ("12345", Some("12345")),
            ("anonymous", None),
            ("Anonymous", None),
            ("UNKNOWN", None),
            ("+266696687", None),
            ("+7378742833", None),
            ("+2562533", None),
            ("+86282452253", None),
            ("0000000000", None),
            ("", None),
            ("  ", None),
            ("12", None),
            ("client:alice", None),
            ("sip:alice@example.cn", None),
            // Caller ids as URIs, as PBXs and SIP trunks send them (the review's three were
            // taken as withheld until 2026-12-07).
            ("sip:+8613812340001@pbx.example.cn", Some("13812340001")),
            ("tel:+86-138-1234-0002", Some("13812340002")),
            ("13812340006;ext=12", Some("13812340006")),
            (
                "SIPS:13812340003@pbx.example.cn:5061;transport=tls",
                Some("13812340003"),
            ),
            (
                "sip:+86-571-8700-0001;isub=1@trunk.example.cn;user=phone",
                Some("057187000001"),
            ),
            ("\"张三\" <sip:013812340004@10.0.0.1>", Some("13812340004")),
            ("<tel:057187000002;phone-context=+86>", Some("057187000002")),
            ("tel:+12349013030", Some("0012349013030")),
            // An extension, a name, the anonymous SIP address, no user: no phone.
            ("sip:1001@pbx.example.cn", None),
            ("sip:anonymous@anonymous.invalid", None),
            ("sip:pbx.example.cn", None),
            ("tel:anonymous", None),
            ("tel:", None),
        ] {
            let got = caller_identity(raw, &ours);
            assert_eq!(got.as_ref().map(|i| i.value.as_str()), want, "{raw:?}");
            if let Some(i) = got {
                assert_eq!(i.kind, IdentityKind::Phone);
            }
        }
    }

    /// The review of 2026-12-07: `sip:13600003333@attacker.example` was the identity
    /// `phone:13600003333`, so anyone a platform takes SIP calls from could spend that line's
    /// quota and get it suspended on every channel. A SIP user part is a number only from a
    /// listed host; `tel:` URIs and bare numbers are the phone network's caller id as before.
    /// A small-scope exhaustive run over the new caller-id reading (names in quotes, `<…>`,
    /// hosts, ports, brackets): every string of up to five characters from the characters
    /// its slicing turns on, wrapped as a SIP or tel URI, is read without a panic, and a
    /// number comes only from the listed host. Cheaper than a fuzz build, and it runs with
    /// every test.
    #[test]
    fn every_short_caller_id_over_the_tricky_characters_is_read_without_a_panic() {
        let trunk = hosts(&["t.cn", "10.0.0.5", "[::5]"]);
        let alphabet = ['<', '>', '"', ':', '@', ';', '[', ']', '.', '1', '?', ' '];
        let mut word = Vec::new();
        let mut checked = 0;
        for len in 0..=5u32 {
            for mut n in 0..alphabet.len().pow(len) {
                word.clear();
                for _ in 0..len {
                    word.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                let w: String = word.iter().collect();
                for raw in [
                    w.clone(),
                    format!("sip:13600003333{w}"),
                    format!("sip:13600003333@{w}"),
                    format!("sip:{w}@t.cn"),
                    format!("\"x\"{w}<sip:13600003333@t.cn>"),
                    format!("tel:{w}"),
                ] {
                    let id = caller_identity(&raw, &trunk);
                    let _ = non_phone_ref(&raw);
                    if let Some(id) = id.filter(|i| i.value == "13600003333") {
                        // A number read from a SIP URI came from the listed host.
                        assert!(
                            !raw.contains("sip:") || raw.contains("@t.cn"),
                            "{raw:?} -> {id:?}"
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 1_000_000, "{checked}");
    }

    #[test]
    fn a_sip_user_part_is_a_number_only_from_a_listed_host() {
        let trunk = hosts(&["TRUNK.example.gov.cn", "10.0.0.5", "[2001:DB8:0::5]"]);
        let number = |raw: &str, h: &SipNumberHosts| caller_identity(raw, h).map(|i| i.value);
        let phone = Some("13600003333".to_string());
        for raw in [
            "sip:13600003333@trunk.example.gov.cn",
            "sip:+8613600003333@Trunk.Example.GOV.cn",
            "sips:13600003333@trunk.example.gov.cn.",
            "sip:13600003333@trunk.example.gov.cn:5060;transport=udp",
            "sip:13600003333;isub=2@trunk.example.gov.cn;user=phone?subject=x",
            "sip:13600003333:secret@10.0.0.5:5061",
            "sip:13600003333@[2001:db8::5]:5060",
            "\"张三\" <sip:13600003333@10.0.0.5;transport=tcp>",
            "张三 <SIP:13600003333@TRUNK.example.gov.cn>",
        ] {
            assert_eq!(number(raw, &trunk), phone, "{raw:?} is from the trunk");
            assert_eq!(
                number(raw, &SipNumberHosts::NONE),
                None,
                "{raw:?} with no host listed"
            );
        }
        for raw in [
            "sip:13600003333@attacker.example",
            "sip:13600003333@attacker.example:5060;transport=udp",
            "sip:13600003333@trunk.example.gov.cn.attacker.example",
            "sip:13600003333@example.gov.cn",
            "sip:13600003333@10.0.0.55",
            "sip:13600003333@[2001:db8::6]",
            // What a lax platform might pass on: a port that is no port, a second `@`, the
            // trunk named only in a parameter or in what looks like a name-addr after a URI.
            "sip:13600003333@trunk.example.gov.cn:5060@attacker.example",
            "sip:13600003333@trunk.example.gov.cn@attacker.example",
            "sip:13600003333@attacker.example;maddr=trunk.example.gov.cn",
            "sip:13600003333@attacker.example;x=<sip:13600003333@10.0.0.5>",
            "\"x\" sip:13600003333@attacker.example;y=\"<sip:13600003333@10.0.0.5>",
            "sip:13600003333@trunk_example.gov.cn",
            "sip:13600003333@",
        ] {
            assert_eq!(number(raw, &trunk), None, "{raw:?} is not from the trunk");
        }
        // The phone network's own caller ids do not depend on the list.
        for raw in [
            "13600003333",
            "+86 136-0000-3333",
            "tel:+8613600003333",
            "<tel:13600003333;phone-context=+86>",
            "13600003333;ext=12",
        ] {
            assert_eq!(number(raw, &SipNumberHosts::NONE), phone, "{raw:?}");
            assert_eq!(number(raw, &trunk), phone, "{raw:?}");
        }
    }

    #[test]
    fn a_sip_caller_not_read_as_a_number_keeps_its_address_as_a_stable_ref() {
        for (raw, want) in [
            (
                "sip:13600003333@attacker.example",
                Some("sip:13600003333@attacker.example"),
            ),
            (
                "\"x\" <sips:13600003333@attacker.example:5061>",
                Some("sips:13600003333@attacker.example:5061"),
            ),
            ("Client:alice", Some("Client:alice")),
            ("<tel:anonymous>", None),
            ("anonymous", None),
        ] {
            assert_eq!(non_phone_ref(raw).as_deref(), want, "{raw:?}");
        }
    }

    #[test]
    fn sip_number_hosts_take_host_names_and_addresses_alone() {
        let h = hosts(&[" trunk.example.gov.cn ", "10.0.0.5", "2001:db8::5", "[::1]"]);
        assert!(!h.is_empty() && SipNumberHosts::NONE.is_empty());
        assert!(h.trusts("[2001:db8:0:0::5]:5060"));
        assert!(h.trusts("[::1]"));
        for bad in [
            "",
            "10.0.0.5:5060",
            "sip:trunk.example.gov.cn",
            "user@trunk.example.gov.cn",
            "trunk.example.gov.cn;transport=udp",
            "*.example.gov.cn",
            "trunk..example.gov.cn",
        ] {
            assert_eq!(
                SipNumberHosts::new(&[bad]),
                Err(BadSipHost(bad.to_string())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn tokens_compare_equal_only_when_identical_and_configured() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cre"));
        assert!(!token_matches("s3cret", "S3cret"));
        assert!(!token_matches("", ""));
    }

    #[test]
    fn step_hash_separates_parts() {
        assert_ne!(step_hash(&["ab", "c"]), step_hash(&["a", "bc"]));
        assert_eq!(step_hash(&["x"]).len(), 16);
    }

    #[test]
    fn formats_round_trip_their_names() {
        for f in [CtiFormat::Generic, CtiFormat::Zammad, CtiFormat::Twilio] {
            assert_eq!(CtiFormat::parse(f.as_str()), Some(f));
        }
        assert_eq!(CtiFormat::parse(" Twilio "), Some(CtiFormat::Twilio));
        assert_eq!(CtiFormat::parse("sipgate"), None);
        assert_eq!(CtiFormat::Twilio.content_type(), "text/xml; charset=utf-8");
    }

    fn registered(caller: Option<Identity>, caller_ref: Option<&str>) -> CallEvent {
        CallEvent {
            call_id: "c-1".into(),
            kind: CallKind::Registered {
                order: RegisteredOrder {
                    content: "路灯坏了；井盖丢失".into(),
                    category: Some(Category::Report),
                    items: vec![
                        Item {
                            content: "路灯坏了".into(),
                            category: Some(Category::Report),
                        },
                        Item {
                            content: "井盖丢失".into(),
                            category: Some(Category::Help),
                        },
                    ],
                    confidential: true,
                    name: "张三".into(),
                    address: "和平路1号".into(),
                    recording_url: Some("https://rec.example.cn/c-1.wav".into()),
                    transcription: false,
                },
            },
            direction: CallDirection::Inbound,
            from: "+8613800138000".into(),
            to: "12345".into(),
            caller,
            caller_ref: caller_ref.map(str::to_string),
            at: 1_795_912_200,
            dedupe_key: "c-1:registered:0011223344556677".into(),
        }
    }

    #[test]
    fn registered_order_becomes_a_full_submission() {
        let ev = registered(
            caller_identity("+8613800138000", &SipNumberHosts::NONE),
            None,
        );
        let Some(sub) = ev.to_submission("pbx1") else {
            panic!("a registered event must give a submission");
        };
        assert_eq!(sub.channel, Channel::Cti);
        assert_eq!(sub.account, "pbx1");
        assert_eq!(sub.channel_ref, "c-1");
        assert_eq!(
            sub.dedupe_key.as_deref(),
            Some("c-1:registered:0011223344556677")
        );
        assert_eq!(sub.identity.to_string(), "phone:13800138000");
        assert_eq!(sub.received_at, 1_795_912_200);
        assert_eq!(sub.content, "路灯坏了；井盖丢失");
        assert_eq!(sub.category, Some(Category::Report));
        assert_eq!(sub.items.len(), 2);
        assert_eq!(sub.items[1].category, Some(Category::Help));
        assert!(sub.confidential);
        assert_eq!(sub.contact.name, "张三");
        assert_eq!(sub.contact.phone, "13800138000");
        assert_eq!(sub.location.address, "和平路1号");
        assert_eq!(
            sub.attachments,
            vec![Attachment {
                kind: AttachmentKind::Recording,
                url: "https://rec.example.cn/c-1.wav".into(),
                media_id: String::new(),
            }]
        );
        assert_eq!(sub.client_ref, None);
    }

    #[test]
    fn anonymous_registered_order_keeps_a_per_caller_identity() {
        let by_call = registered(None, None).to_submission("p");
        assert_eq!(
            by_call.map(|s| (s.identity.to_string(), s.contact.phone)),
            Some(("phone:anonymous-c-1".to_string(), String::new()))
        );
        let by_ref = registered(None, Some("client:alice")).to_submission("p");
        assert_eq!(
            by_ref.map(|s| s.identity.to_string()),
            Some("phone:anonymous-client:alice".to_string())
        );
    }

    #[test]
    fn only_registered_events_become_submissions() {
        let mut ev = registered(None, None);
        for kind in [
            CallKind::Started,
            CallKind::Answered,
            CallKind::Input {
                digits: Some("1".into()),
                speech: None,
            },
            CallKind::Ended {
                duration_s: 3,
                answered: true,
                cause: None,
            },
            CallKind::Flagged {
                agent: "a".into(),
                reason: "r".into(),
            },
            CallKind::Other("x".into()),
        ] {
            ev.kind = kind;
            assert_eq!(ev.to_submission("p"), None);
        }
    }

    #[test]
    fn profile_dispatches_render_by_format() {
        let p = CtiProfile {
            format: CtiFormat::Zammad,
            ..CtiProfile::default()
        };
        let r = p.render(&CallDecision::proceed());
        assert_eq!(r.content_type, "application/json");
        assert_eq!(r.body, "{}");
        let p = CtiProfile {
            format: CtiFormat::Twilio,
            ..CtiProfile::default()
        };
        let r = p.render(&CallDecision::proceed());
        assert_eq!(r.content_type, "text/xml; charset=utf-8");
        assert!(r.body.starts_with("<?xml"));
    }
}
