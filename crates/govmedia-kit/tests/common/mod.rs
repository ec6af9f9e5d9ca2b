//! A stand-in audit receiver for the kit's tests: `AppendEvents` over real gRPC,
//! idempotent by event id exactly as the audit service must be, counting how often each
//! event arrived, with a switch to crash part-way through a batch. Only `AppendEvents`
//! exists here; the audit service implements the rest.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use govmedia_proto::audit::v1::audit_log_service_server::{AuditLogService, AuditLogServiceServer};
use govmedia_proto::audit::v1::*;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// What the receiver has stored, shared across restarts.
#[derive(Debug, Default)]
pub struct Store {
    /// Event ids in append order.
    pub log: Vec<String>,
    /// How many times each event id was received (appended or duplicate).
    pub received: HashMap<String, u32>,
    /// Crash after storing this many events of the next batch.
    pub crash_after: Option<usize>,
    /// Make each call take this long.
    pub delay: Option<Duration>,
    /// Cancelled when the receiver "crashes".
    pub crashed: Option<CancellationToken>,
    /// Event ids refused as invalid: a batch holding one is refused whole, as the audit
    /// service validates a whole batch before appending any of it.
    pub invalid: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FakeAuditLog(pub Arc<Mutex<Store>>);

#[tonic::async_trait]
impl AuditLogService for FakeAuditLog {
    async fn append_events(
        &self,
        request: Request<AppendEventsRequest>,
    ) -> Result<Response<AppendEventsResponse>, Status> {
        let delay = self.0.lock().expect("store").delay;
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let mut store = self.0.lock().expect("store");
        let request = request.into_inner();
        if let Some(bad) = request.events.iter().position(|e| store.invalid.contains(&e.id)) {
            return Err(Status::invalid_argument(format!("events[{bad}].action: is not a known action")));
        }
        let mut appended = 0;
        let mut duplicates = Vec::new();
        let crash_after = store.crash_after.take();
        for (i, event) in request.events.into_iter().enumerate() {
            if crash_after == Some(i) {
                if let Some(token) = store.crashed.take() {
                    token.cancel();
                }
                return Err(Status::unavailable("receiver crashed mid-batch"));
            }
            *store.received.entry(event.id.clone()).or_default() += 1;
            if store.log.contains(&event.id) {
                duplicates.push(event.id);
            } else {
                store.log.push(event.id);
                appended += 1;
            }
        }
        Ok(Response::new(AppendEventsResponse {
            appended_count: appended,
            duplicate_event_ids: duplicates,
            last_sequence: store.log.len() as u64,
        }))
    }

    async fn get_event(&self, _: Request<GetEventRequest>) -> Result<Response<GetEventResponse>, Status> {
        Err(Status::unimplemented("not part of the test receiver"))
    }

    async fn query_events(&self, _: Request<QueryEventsRequest>) -> Result<Response<QueryEventsResponse>, Status> {
        Err(Status::unimplemented("not part of the test receiver"))
    }

    type ExportEventsStream = tokio_stream::Empty<Result<ExportEventsResponse, Status>>;

    async fn export_events(
        &self,
        _: Request<ExportEventsRequest>,
    ) -> Result<Response<Self::ExportEventsStream>, Status> {
        Err(Status::unimplemented("not part of the test receiver"))
    }

    async fn verify_log(&self, _: Request<VerifyLogRequest>) -> Result<Response<VerifyLogResponse>, Status> {
        Err(Status::unimplemented("not part of the test receiver"))
    }

    async fn get_latest_checkpoint(
        &self,
        _: Request<GetLatestCheckpointRequest>,
    ) -> Result<Response<GetLatestCheckpointResponse>, Status> {
        Err(Status::unimplemented("not part of the test receiver"))
    }
}

/// The generated server for the fake.
pub fn server(store: Arc<Mutex<Store>>) -> AuditLogServiceServer<FakeAuditLog> {
    AuditLogServiceServer::new(FakeAuditLog(store))
}
