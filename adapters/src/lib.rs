//! # hotline-adapters
//!
//! Pure protocol code for every channel that reaches the 12345 hotline gateway: web forms,
//! WeChat official-account pushes, Weibo pushes and telephony (CTI) callbacks.
//!
//! ## The invariant
//! This crate depends on no async runtime, no network, no clock and no randomness. Everything
//! that varies per request comes in as an argument: the bytes, the headers, the query string,
//! `now` (unix seconds) and, where a protocol needs it, the random bytes to use. That keeps every
//! parser deterministic and testable against official vectors byte for byte (the model is
//! quinn-proto's I/O-free core). `cargo tree -p hotline-adapters` must never show tokio, actix,
//! reqwest, rand or chrono.
//!
//! ## Shape of an adapter
//! Each channel module exposes
//! - a `parse`-style function: `Inbound` (+ channel config, + `now`) → channel value or
//!   [`AdapterError`], which verifies signatures, decrypts and normalises into [`Submission`]s;
//! - a `render`-style function: the gateway's channel-neutral [`Outcome`] (+ the citizen-facing
//!   message text) → the bytes of the passive reply.
//!
//! ## Adding a channel
//! 1. Add `adapters/src/<channel>.rs` with its parse and render functions and unit tests.
//! 2. Add a variant to [`Channel`]; the compiler then shows every match that needs it.
//! 3. Add its config table to `src/config.rs` and `config/gateway.example.toml`.
//! 4. Add one route in `src/http/mod.rs` and an end-to-end test under `tests/`.

pub mod cti;
pub mod error;
pub mod mask;
pub mod model;
pub mod query;
pub mod text;
pub mod web;
pub mod wechat;
pub mod weibo;

pub use error::{AdapterError, PushRefusal};
pub use model::{
    Attachment, AttachmentKind, Category, Channel, Contact, Identity, IdentityKind, Inbound, Item,
    Location, OrderRef, Outcome, Submission,
};
