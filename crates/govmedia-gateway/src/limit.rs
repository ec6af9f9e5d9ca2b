//! Per-principal rate limits at the edge: a token bucket for each caller (GCRA, from
//! `governor`), keyed by the verified principal, or by the peer address for calls that
//! need no token (login). Over the limit a call is refused with RESOURCE_EXHAUSTED and
//! the time to retry (`google.rpc.RetryInfo`), and never reaches the service.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use govmedia_kit::auth::Principal;

/// Who a call is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// A verified principal.
    Principal(govmedia_domain::ids::PrincipalId),
    /// A call without a token, by its peer address.
    Anonymous(Option<IpAddr>),
}

impl Caller {
    /// The caller of `request`, as the auth layer and the transport left it.
    pub fn of<B>(request: &http::Request<B>) -> Self {
        if let Some(p) = request.extensions().get::<Principal>() {
            return Caller::Principal(p.id);
        }
        let peer = request
            .extensions()
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(tonic::transport::server::TcpConnectInfo::remote_addr)
            .map(|a| a.ip());
        Caller::Anonymous(peer)
    }
}

/// The gateway's rate limits.
#[derive(Debug, Clone)]
pub struct Limits {
    limiter: Arc<DefaultKeyedRateLimiter<Caller>>,
    clock: DefaultClock,
}

impl Limits {
    /// `per_second` calls per caller, in bursts of up to `burst`; `None` when the rate is
    /// zero (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(rate);
        Some(Self {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))),
            clock: DefaultClock::default(),
        })
    }

    /// `Ok` when `caller` may make a call now, else how long to wait.
    pub fn check(&self, caller: &Caller) -> Result<(), std::time::Duration> {
        self.limiter.check_key(caller).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets callers idle long enough to be back at a full bucket.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_has_its_own_bucket() {
        let limits = Limits::new(1, 3).expect("limited");
        let a = Caller::Anonymous(Some(IpAddr::from([10, 0, 0, 1])));
        let b = Caller::Anonymous(Some(IpAddr::from([10, 0, 0, 2])));
        for _ in 0..3 {
            assert!(limits.check(&a).is_ok());
        }
        let wait = limits.check(&a).expect_err("over the burst");
        assert!(wait > std::time::Duration::ZERO && wait <= std::time::Duration::from_secs(1), "{wait:?}");
        assert!(limits.check(&b).is_ok(), "another caller is not held up");
        assert!(Limits::new(0, 10).is_none(), "zero means no limit");
    }
}
