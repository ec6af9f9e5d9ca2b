//! Each package's replicas. An upstream is configured as addresses (`http://host:port`);
//! an address whose host is a name stands for every address the name resolves to, looked
//! up again whenever the health watcher probes (every few seconds). That is what makes
//! scale-out work behind a Kubernetes headless Service, whose name resolves to each ready
//! pod: a ClusterIP Service balances per connection, and HTTP/2 keeps one connection, so
//! every call would go to the one pod that connection reached.
//!
//! A replica keeps its connection and its count of calls in flight across lookups while
//! its address stays; one that leaves the answer is dropped from the set (calls already
//! on it finish). A lookup that fails or answers nothing changes nothing: a DNS hiccup
//! must not empty an upstream. Until a name first resolves, it is connected to by name.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::SettingError;

/// How long one lookup may take before the upstream keeps what it had.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Looks a host name up: every address it has now, at the given port.
pub type Resolve =
    Arc<dyn Fn(String, u16) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>> + Send + Sync>;

/// The system's resolver (`getaddrinfo`, through tokio).
fn system_resolver() -> Resolve {
    Arc::new(|host, port| Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) }))
}

/// One upstream: the package it serves and its replicas. Each call goes to one replica in
/// service, chosen by the power of two choices (two at random, the one with fewer calls in
/// flight); a call that could not reach its replica is retried on another (see `proxy`).
/// The health watcher (`health::watch`) looks the names up again, takes a replica out of
/// service when it stops answering and puts it back when it answers again; a failed
/// connection takes it out at once.
#[derive(Clone)]
pub struct Upstream {
    /// The proto package, for example `govmedia.identity.v1`.
    pub package: &'static str,
    targets: Arc<[Target]>,
    replicas: Arc<RwLock<Replicas>>,
    resolve: Resolve,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream").field("package", &self.package).field("replicas", &self.replicas()).finish()
    }
}

/// One configured address.
#[derive(Debug)]
struct Target {
    /// As configured.
    url: String,
    scheme: String,
    /// The host name and port to look up; none for an IP address, used as it is.
    name: Option<(String, u16)>,
}

impl Target {
    fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
        let scheme = uri.scheme_str().ok_or_else(|| format!("{url:?} names no scheme (http://host:port)"))?;
        let host = uri.host().ok_or_else(|| format!("{url:?} names no host"))?;
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok();
        Ok(Self { url: url.to_owned(), scheme: scheme.to_owned(), name: (!literal).then(|| (host.to_owned(), port)) })
    }
}

/// One replica of an upstream.
#[derive(Debug)]
pub struct Replica {
    /// Its address: a configured one, or one its configured name resolved to.
    pub address: String,
    /// A channel to it alone, connected lazily and reconnected after a failure.
    pub channel: Channel,
    /// The configured address it came from (an index into the targets).
    target: usize,
    in_service: AtomicBool,
    in_flight: AtomicUsize,
}

impl Replica {
    fn new(address: String, target: usize) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(address.clone())
            .map_err(|e| format!("{address:?}: {e}"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(2));
        Ok(Self {
            address,
            channel: endpoint.connect_lazy(),
            target,
            in_service: AtomicBool::new(true),
            in_flight: AtomicUsize::new(0),
        })
    }

    /// Whether calls go to it.
    pub fn in_service(&self) -> bool {
        self.in_service.load(Ordering::Relaxed)
    }

    /// Puts it in service or takes it out; says whether that changed anything.
    pub fn set_in_service(&self, in_service: bool) -> bool {
        self.in_service.swap(in_service, Ordering::Relaxed) != in_service
    }

    /// Counts a call in flight until the guard drops.
    pub(crate) fn start_call(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }
}

/// A call in flight on a replica.
pub(crate) struct InFlight<'a>(&'a Replica);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The replicas of an upstream at one moment: a call picks from the same set however
/// often it retries, even if a lookup changes the upstream meanwhile.
#[derive(Debug, Clone)]
pub struct Replicas(Arc<[Arc<Replica>]>);

impl Deref for Replicas {
    type Target = [Arc<Replica>];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Replicas {
    /// The replica for the next call, other than those in `tried`: two in service picked
    /// at random, the less busy one; when none is in service, any not yet tried (health
    /// may lag behind a replica that came back); `None` once every replica was tried.
    pub fn pick(&self, tried: &[usize]) -> Option<usize> {
        use rand::seq::IteratorRandom;
        let untried = |i: &usize| !tried.contains(i);
        let mut rng = rand::rng();
        let in_service = (0..self.len()).filter(untried).filter(|&i| self[i].in_service());
        let two = in_service.choose_multiple(&mut rng, 2);
        match two.as_slice() {
            [a, b] => {
                let load = |i: usize| self[i].in_flight.load(Ordering::Relaxed);
                Some(if load(*b) < load(*a) { *b } else { *a })
            }
            [a] => Some(*a),
            _ => (0..self.len()).filter(untried).choose(&mut rng),
        }
    }

    fn addresses(&self) -> Vec<&str> {
        self.iter().map(|r| r.address.as_str()).collect()
    }
}

impl Upstream {
    /// An upstream for `package` over `addresses` (`http://host:port`), connected lazily;
    /// every replica starts in service until a probe or a call finds it down. Names are
    /// connected to by name until [`Upstream::refresh`] looks them up.
    pub fn new(package: &str, addresses: &[String]) -> Result<Self, SettingError> {
        let Some(package) = crate::routes::PACKAGES.iter().copied().find(|p| *p == package) else {
            return Err(SettingError::new(
                package.to_owned(),
                format!("is not a package the gateway fronts ({})", crate::routes::PACKAGES.join(", ")),
            ));
        };
        if addresses.is_empty() {
            return Err(SettingError::new(package.to_owned(), "names no replica"));
        }
        let invalid = |why: String| SettingError::new(package.to_owned(), why);
        let targets = addresses.iter().map(|a| Target::parse(a).map_err(invalid)).collect::<Result<Vec<_>, _>>()?;
        let replicas = targets
            .iter()
            .enumerate()
            .map(|(i, t)| Replica::new(t.url.clone(), i).map(Arc::new).map_err(invalid))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            package,
            targets: targets.into(),
            replicas: Arc::new(RwLock::new(Replicas(replicas.into()))),
            resolve: system_resolver(),
        })
    }

    /// Looks names up with `resolve` instead of the system's resolver.
    pub fn with_resolver(mut self, resolve: Resolve) -> Self {
        self.resolve = resolve;
        self
    }

    /// The replicas now.
    pub fn replicas(&self) -> Replicas {
        self.replicas.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Looks every configured name up again and makes the replicas what the answers say:
    /// replicas whose address is still there stay as they are (connection, health, calls
    /// in flight), new addresses are added in service, vanished ones are dropped. A name
    /// whose lookup fails or finds nothing keeps what it had.
    pub async fn refresh(&self) {
        let current = self.replicas();
        let mut next: Vec<Arc<Replica>> = Vec::with_capacity(current.len());
        for (index, target) in self.targets.iter().enumerate() {
            let of_target = || current.iter().filter(move |r| r.target == index);
            let addresses = match &target.name {
                None => vec![target.url.clone()],
                Some((host, port)) => {
                    match tokio::time::timeout(LOOKUP_TIMEOUT, (self.resolve)(host.clone(), *port)).await {
                        Ok(Ok(found)) if !found.is_empty() => {
                            let mut addresses: Vec<String> =
                                found.iter().map(|a| format!("{}://{a}", target.scheme)).collect();
                            addresses.sort();
                            addresses.dedup();
                            addresses
                        }
                        outcome => {
                            let why = match outcome {
                                Ok(Ok(_)) => "no address".to_owned(),
                                Ok(Err(e)) => e.to_string(),
                                Err(_) => format!("no answer within {LOOKUP_TIMEOUT:?}"),
                            };
                            // Health probes say whether the kept replicas answer.
                            tracing::debug!(package = self.package, name = %host, %why, "lookup failed; replicas kept");
                            next.extend(of_target().cloned());
                            continue;
                        }
                    }
                }
            };
            for address in addresses {
                match of_target().find(|r| r.address == address) {
                    Some(kept) => next.push(kept.clone()),
                    None => match Replica::new(address, index) {
                        Ok(added) => next.push(Arc::new(added)),
                        Err(why) => tracing::warn!(package = self.package, %why, "a looked-up address is not usable"),
                    },
                }
            }
        }
        let next = Replicas(next.into());
        if next.addresses() != current.addresses() {
            tracing::info!(package = self.package, replicas = ?next.addresses(), "replicas changed");
            *self.replicas.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        }
    }

    /// A channel balanced over the configured addresses, for the gateway's own calls
    /// (fetching the token keys from identity).
    pub fn balanced(&self) -> Channel {
        Channel::balance_list(self.targets.iter().filter_map(|t| Endpoint::from_shared(t.url.clone()).ok()))
    }
}
