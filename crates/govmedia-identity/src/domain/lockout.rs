//! Throttling after repeated login failures (R2.3.1), per username *and* source address:
//! after `threshold` consecutive failures from one address, sign-ins to that username
//! from that address are refused for `base`, doubling with each further lock up to
//! `max`. Another address is not affected, so an attacker cannot lock the owner out, and
//! a throttled attempt is answered exactly like a wrong password, so the lock tells an
//! outsider nothing. An administrator can unlock; a successful login from the address
//! forgets its failures.

use chrono::{DateTime, Duration, Utc};

/// The lockout policy.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the login.
    pub threshold: u32,
    /// The first lock's length.
    pub base: Duration,
    /// The longest lock.
    pub max: Duration,
}

/// The failures of one username from one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    /// The username tried (known or not: unknown ones are throttled alike).
    pub username: String,
    /// The source address.
    pub client_address: String,
    /// Consecutive failures since the last lock.
    pub failed_attempts: i64,
    /// Locks so far.
    pub lockout_count: i64,
    /// Set while attempts from the address are refused.
    pub locked_until: Option<DateTime<Utc>>,
}

impl Throttle {
    /// No failures yet.
    pub fn new(username: &str, client_address: &str) -> Self {
        Self {
            username: username.to_owned(),
            client_address: client_address.to_owned(),
            failed_attempts: 0,
            lockout_count: 0,
            locked_until: None,
        }
    }

    /// True while attempts are refused without looking at the password.
    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }

    /// Counts one more failure under `policy`; returns the end of a lock it starts.
    pub fn fail(&mut self, policy: &LockoutPolicy, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after = policy.after_failure(self.failed_attempts, self.lockout_count, now);
        self.failed_attempts = after.failed_attempts;
        self.lockout_count = after.lockout_count;
        if after.locked_until.is_some() {
            self.locked_until = after.locked_until;
        }
        after.locked_until
    }
}

/// The counters after a failed login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterFailure {
    /// Consecutive failures now (0 once a lock starts).
    pub failed_attempts: i64,
    /// Locks so far.
    pub lockout_count: i64,
    /// Set when this failure starts a lock.
    pub locked_until: Option<DateTime<Utc>>,
}

impl LockoutPolicy {
    /// What one more failure does.
    pub fn after_failure(&self, failed_attempts: i64, lockout_count: i64, now: DateTime<Utc>) -> AfterFailure {
        let failed = failed_attempts + 1;
        if failed < i64::from(self.threshold) {
            return AfterFailure { failed_attempts: failed, lockout_count, locked_until: None };
        }
        let doublings = u32::try_from(lockout_count.clamp(0, 20)).unwrap_or(20);
        let length = self.base.checked_mul(1 << doublings).unwrap_or(self.max).min(self.max);
        AfterFailure { failed_attempts: 0, lockout_count: lockout_count + 1, locked_until: Some(now + length) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_failure_locks_and_locks_grow_r2_3_1() {
        let policy = LockoutPolicy { threshold: 5, base: Duration::minutes(15), max: Duration::hours(24) };
        let now = Utc::now();
        let mut state = AfterFailure { failed_attempts: 0, lockout_count: 0, locked_until: None };
        for _ in 0..4 {
            state = policy.after_failure(state.failed_attempts, state.lockout_count, now);
            assert_eq!(state.locked_until, None);
        }
        state = policy.after_failure(state.failed_attempts, state.lockout_count, now);
        assert_eq!(state.locked_until, Some(now + Duration::minutes(15)));
        for _ in 0..5 {
            state = policy.after_failure(state.failed_attempts, state.lockout_count, now);
        }
        assert_eq!(state.locked_until, Some(now + Duration::minutes(30)));
        let capped = policy.after_failure(4, 30, now);
        assert_eq!(capped.locked_until, Some(now + Duration::hours(24)));
    }

    #[test]
    fn a_throttle_locks_one_address_and_grows_r2_3_1() {
        let policy = LockoutPolicy { threshold: 3, base: Duration::minutes(15), max: Duration::hours(24) };
        let now = Utc::now();
        let mut t = Throttle::new("admin", "203.0.113.9");
        assert_eq!(t.fail(&policy, now), None);
        assert_eq!(t.fail(&policy, now), None);
        assert_eq!(t.fail(&policy, now), Some(now + Duration::minutes(15)));
        assert!(t.is_locked(now + Duration::minutes(14)));
        assert!(!t.is_locked(now + Duration::minutes(15)));
        let later = now + Duration::minutes(20);
        t.fail(&policy, later);
        t.fail(&policy, later);
        assert_eq!(t.fail(&policy, later), Some(later + Duration::minutes(30)));
    }
}
