//! Where state changes go besides the dispatch API: MQTT events and mail. Each sink drains an outbox that
//! the store fills in the same transaction as the change itself, so the request path never waits
//! for a broker and a broker outage loses nothing (up to a bound).

pub mod mail;
pub mod mqtt;
