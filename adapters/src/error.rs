//! The one error enum of the adapters: every way an inbound request can be refused.

use thiserror::Error;

use crate::Submission;

/// Why an adapter refused a request. Each variant has a stable machine [`code`](Self::code);
/// the gateway maps variants to HTTP statuses in one table (`src/http/error.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdapterError {
    /// The body is not well-formed JSON.
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The body is not well-formed (or not acceptable) XML: DOCTYPE, too deep, malformed.
    #[error("body is not acceptable XML: {0}")]
    InvalidXml(String),
    /// The body is not a valid form encoding.
    #[error("body is not a valid form: {0}")]
    InvalidForm(String),
    /// The body is not valid UTF-8 where text is required.
    #[error("body is not valid UTF-8")]
    InvalidUtf8,
    /// A required field is missing or empty.
    #[error("field `{0}` is required")]
    MissingField(&'static str),
    /// A field is present but has the wrong type, length or value.
    #[error("field `{field}` is invalid: {reason}")]
    InvalidField {
        /// The field's name in the channel's format.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The body is larger than the channel allows.
    #[error("body exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The content type is not one the channel speaks.
    #[error("unsupported media type `{0}`")]
    UnsupportedMediaType(String),
    /// A signature is missing or does not verify.
    #[error("signature missing or invalid")]
    BadSignature,
    /// A bearer or path token is missing or wrong.
    #[error("token missing or invalid")]
    BadToken,
    /// The push's timestamp is outside the accepted window (replay protection).
    #[error("timestamp outside the accepted window")]
    StaleTimestamp,
    /// The encrypted envelope could not be decrypted (bad base64, length, padding).
    #[error("decryption failed: {0}")]
    Decrypt(String),
    /// The decrypted message names another app id than the account's.
    #[error("app id of the message does not match the account")]
    AppIdMismatch,
    /// The channel requires encryption and the push was plaintext.
    #[error("this account requires encrypted (safe mode) pushes")]
    EncryptionRequired,
    /// An event or message kind the channel does not know and cannot ignore.
    #[error("unknown event `{0}`")]
    UnknownEvent(String),
}

/// A push refused for a field sent more than once, with what of it could be read: the push as
/// far as it parses (each field's first value, as WeChat's XML reader takes it), to address a
/// reply, and its submission with every value of each repeated text field as an item, for the
/// emergency rules. Both are for the refusal's answer only, never for an order: which of two
/// `Content` values is the citizen's? Until 2026-12-07 Weibo took the last of a repeated key
/// and WeChat the first, and an emergency in the other one was never checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PushRefusal<P> {
    /// The refusal.
    pub error: AdapterError,
    /// The push read with the first value of each field; `None` when even that is refused.
    pub push: Option<Box<P>>,
    /// For the emergency rules only: the push's submission (its `account` left empty), every
    /// value of the repeated text fields (`Content`, `text`…) among its items; `None` without
    /// a readable push or without any text.
    pub readable: Option<Box<Submission>>,
}

impl<P> From<AdapterError> for PushRefusal<P> {
    fn from(error: AdapterError) -> Self {
        PushRefusal {
            error,
            push: None,
            readable: None,
        }
    }
}

/// What a refused push says for the emergency rules: `sub` (the first-valued push's
/// submission, or a bare one of its sender) with every `heard` value as an item; `None`
/// without any text.
fn readable(mut sub: Submission, heard: Vec<String>) -> Option<Box<Submission>> {
    sub.items.extend(
        heard
            .iter()
            .map(|h| crate::text::clean_text(h))
            .filter(|h| !h.is_empty())
            .map(|content| crate::Item {
                content,
                category: None,
            }),
    );
    (!sub.content.is_empty() || !sub.items.is_empty()).then(|| Box::new(sub))
}

impl<P> PushRefusal<P> {
    /// A push refused for `field` sent more than once: `push` read with each field's first
    /// value (if it could be), and for the emergency rules its submission with every `heard`
    /// value; `submission` makes a readable push's submission (a bare one of its sender when
    /// its first text is empty: the other value may still be a fire).
    pub(crate) fn repeated(
        field: &'static str,
        push: Option<P>,
        heard: Vec<String>,
        submission: impl FnOnce(&P) -> Submission,
    ) -> Self {
        let readable = push.as_ref().and_then(|p| readable(submission(p), heard));
        PushRefusal {
            error: AdapterError::repeated(field),
            push: push.map(Box::new),
            readable,
        }
    }
}

impl AdapterError {
    /// A field of the channel's format sent more than once (422 `invalid_field` naming it).
    pub fn repeated(field: &'static str) -> Self {
        AdapterError::InvalidField {
            field,
            reason: "sent more than once".into(),
        }
    }

    /// `InvalidJson` from a JSON parser's error, with the submitted value taken out of the
    /// message ([`redact_parser_message`](crate::mask::redact_parser_message)): the message is
    /// logged, and the value may be personal data.
    pub(crate) fn json(e: impl std::fmt::Display) -> Self {
        AdapterError::InvalidJson(crate::mask::redact_parser_message(&e.to_string()))
    }

    /// `InvalidXml` from an XML parser's error, the value taken out as for [`Self::json`].
    pub(crate) fn xml(e: impl std::fmt::Display) -> Self {
        AdapterError::InvalidXml(crate::mask::redact_parser_message(&e.to_string()))
    }

    /// `InvalidForm` from a form decoder's error, the value taken out as for [`Self::json`].
    pub(crate) fn form(e: impl std::fmt::Display) -> Self {
        AdapterError::InvalidForm(crate::mask::redact_parser_message(&e.to_string()))
    }

    /// Stable machine-readable code, part of the external contract: never rename one.
    pub fn code(&self) -> &'static str {
        match self {
            AdapterError::InvalidJson(_) => "invalid_json",
            AdapterError::InvalidXml(_) => "invalid_xml",
            AdapterError::InvalidForm(_) => "invalid_form",
            AdapterError::InvalidUtf8 => "invalid_utf8",
            AdapterError::MissingField(_) => "missing_field",
            AdapterError::InvalidField { .. } => "invalid_field",
            AdapterError::TooLarge { .. } => "body_too_large",
            AdapterError::UnsupportedMediaType(_) => "unsupported_media_type",
            AdapterError::BadSignature => "bad_signature",
            AdapterError::BadToken => "bad_token",
            AdapterError::StaleTimestamp => "stale_timestamp",
            AdapterError::Decrypt(_) => "decrypt_failed",
            AdapterError::AppIdMismatch => "app_id_mismatch",
            AdapterError::EncryptionRequired => "encryption_required",
            AdapterError::UnknownEvent(_) => "unknown_event",
        }
    }
}
