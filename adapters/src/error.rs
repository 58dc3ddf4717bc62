//! The one error enum of the adapters: every way an inbound request can be refused.

use thiserror::Error;

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

impl AdapterError {
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
