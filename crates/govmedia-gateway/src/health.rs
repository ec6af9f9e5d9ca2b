//! Replica health and aggregated health: every few seconds the gateway looks each
//! upstream's names up again (see `upstream`) and asks every replica
//! (`grpc.health.v1`, the server as a whole). A replica that does not
//! answer SERVING is taken out of service, and put back when it answers again (the proxy
//! also takes a replica out the moment a call cannot reach it; only a probe puts it back);
//! the package's services are reported SERVING while at least one replica is in,
//! NOT_SERVING when none is — so a load balancer or an operator pointed at the gateway
//! sees which part of the system is down.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as Wire;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::server::HealthReporter;

use crate::routes::services_of;
use crate::{Replica, Upstream};

/// How long one probe may take before the upstream counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a replica answers SERVING now.
pub async fn probe(replica: &Replica) -> bool {
    let mut client = HealthClient::new(replica.channel.clone());
    let check = client.check(HealthCheckRequest { service: String::new() });
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, check).await,
        Ok(Ok(answer)) if answer.get_ref().status == Wire::Serving as i32
    )
}

/// Probes every upstream every `every` and reports its package's services, until `stop`.
pub async fn watch(upstreams: Vec<Upstream>, reporter: HealthReporter, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        for upstream in &upstreams {
            upstream.refresh().await;
            let mut any = false;
            for replica in upstream.replicas().iter() {
                let up = probe(replica).await;
                if replica.set_in_service(up) {
                    tracing::warn!(package = upstream.package, replica = %replica.address, up, "replica health changed");
                }
                any |= up;
            }
            if stop.is_cancelled() {
                // Shutdown reports NOT_SERVING itself; never flip it back.
                return;
            }
            let up = any;
            let status = if up { ServingStatus::Serving } else { ServingStatus::NotServing };
            for service in services_of(upstream.package) {
                reporter.set_service_status(&service, status).await;
            }
        }
    }
}
