//! Lockout after repeated login failures (R2.3.1): after `threshold` consecutive failures
//! the login locks for `base`, doubling with each further lockout up to `max`. An
//! administrator can unlock; a successful login resets the count of failures.

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
}
