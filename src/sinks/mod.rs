//! Where state changes go besides the dispatch API: MQTT events and mail. Each sink drains an outbox that
//! the store fills in the same transaction as the change itself, so the request path never waits
//! for a broker and a broker outage loses nothing (up to a bound).

pub mod mail;
pub mod mqtt;

use crate::store::{ClockWatch, Store, CLOCK_SLACK_MS};
use std::time::Duration;

/// Makes due now a sink's events put off or claimed further ahead than the sink ever puts one
/// off (`furthest`) or holds one (`hold`), when `watch` says it is time to look: such times
/// were written by a clock that was ahead of this one (see
/// [`Store::reschedule_future_events`]). Says so in a WARN: a clock step is worth an
/// operator's look. A store that cannot be reached is looked at again at the next check;
/// nothing is lost meanwhile.
pub(crate) async fn reschedule_future(
    store: &dyn Store,
    watch: &mut ClockWatch,
    sink: &'static str,
    furthest: Duration,
    hold: Duration,
) {
    let now = chrono::Utc::now().timestamp_millis();
    if !watch.due(now) {
        return;
    }
    let horizon = now
        .saturating_add(i64::try_from(furthest.as_millis()).unwrap_or(i64::MAX))
        .saturating_add(CLOCK_SLACK_MS);
    match store
        .reschedule_future_events(sink, now, horizon, hold)
        .await
    {
        Ok(0) => {}
        Ok(count) => tracing::warn!(
            sink,
            count,
            "Events were scheduled or claimed further ahead than any retry, deferral or \
             claim, by a clock that was ahead of this one (a clock step back); they are due now."
        ),
        Err(e) => {
            tracing::warn!(sink, error = %e, "Event outbox not checked for a clock step back.")
        }
    }
}
