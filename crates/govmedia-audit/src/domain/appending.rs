//! Who may append what to the audit log. The log is evidence only if its events come
//! from the services that did what they record: a service principal writes only its own
//! producer's events (the built-in `govmedia-<producer>`, or a binding the operator
//! configured), each event names the client that appended it (hashed with it, see
//! [`super::chain`]), and an event must have happened recently, so nobody back-dates an
//! approval into last month's trail.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

/// Prefix of the installation's own services' client ids: `govmedia-content` writes the
/// producer `content`.
pub const BUILT_IN_PREFIX: &str = "govmedia-";

/// The rules for one `AppendEvents` caller's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendPolicy {
    /// Producers each client id may write besides its built-in one.
    bindings: BTreeMap<String, BTreeSet<String>>,
    /// How old an event may be when it arrives: long enough to cover an audit outage
    /// the outboxes wait out.
    max_age: Duration,
    /// How far ahead of the audit service's clock an event may be.
    max_ahead: Duration,
}

impl Default for AppendPolicy {
    fn default() -> Self {
        Self::new(&[], Duration::days(7), Duration::minutes(5))
    }
}

impl AppendPolicy {
    /// The built-in bindings plus `extra` (client id, producer) pairs.
    pub fn new(extra: &[(String, String)], max_age: Duration, max_ahead: Duration) -> Self {
        let mut bindings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (client, producer) in extra {
            bindings.entry(client.clone()).or_default().insert(producer.clone());
        }
        Self { bindings, max_age, max_ahead }
    }

    /// Whether `client_id` may append events of `producer`.
    pub fn may_write(&self, client_id: &str, producer: &str) -> bool {
        client_id.strip_prefix(BUILT_IN_PREFIX) == Some(producer)
            || self.bindings.get(client_id).is_some_and(|p| p.contains(producer))
    }

    /// The producers `client_id` may write, for the refusal's message.
    pub fn producers_of(&self, client_id: &str) -> Vec<String> {
        let mut out: Vec<String> = client_id.strip_prefix(BUILT_IN_PREFIX).map(str::to_owned).into_iter().collect();
        out.extend(self.bindings.get(client_id).into_iter().flatten().cloned());
        out
    }

    /// `None` when an event that occurred at `occur_time` may arrive at `now`; else why
    /// not.
    pub fn check_time(&self, occur_time: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
        if occur_time > now + self.max_ahead {
            return Some(format!(
                "is more than {} minutes ahead of the audit log's clock",
                self.max_ahead.num_minutes()
            ));
        }
        if occur_time < now - self.max_age {
            return Some(format!(
                "is more than {} hours old: events are appended as they happen, not back-dated",
                self.max_age.num_hours()
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_writes_only_its_own_producer() {
        let policy = AppendPolicy::new(
            &[("weibo-bridge".into(), "interaction".into())],
            Duration::days(7),
            Duration::minutes(5),
        );
        assert!(policy.may_write("govmedia-content", "content"));
        assert!(!policy.may_write("govmedia-content", "identity"));
        assert!(!policy.may_write("govmedia-contentx", "content"));
        assert!(policy.may_write("weibo-bridge", "interaction"));
        assert!(!policy.may_write("weibo-bridge", "content"));
        assert!(!policy.may_write("someone", "someone"));
        assert_eq!(policy.producers_of("govmedia-content"), ["content"]);
    }

    #[test]
    fn events_are_neither_back_dated_nor_from_the_future() {
        let policy = AppendPolicy::default();
        let now = Utc::now();
        assert_eq!(policy.check_time(now - Duration::hours(30), now), None, "a day-long outage waited out");
        assert!(policy.check_time(now - Duration::days(30), now).is_some());
        assert!(policy.check_time(now + Duration::hours(1), now).is_some());
        assert_eq!(policy.check_time(now + Duration::minutes(1), now), None, "clock skew");
    }
}
