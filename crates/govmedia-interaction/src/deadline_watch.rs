//! The deadline watch: raises every missed reply deadline to the responsible department
//! (R4.1.1, R4.2.1, R4.2.2), and resolves what has since been answered.
//!
//! A comment past its first-response deadline, a conversation whose inbound message
//! waits past its deadline, a referral without an outcome past its due date: each is
//! escalated once per deadline, to the account's owning department (a referral: to the
//! receiving department, whose work it is). Raising one writes the escalation (the
//! department head's queue, `EscalationService`), its audit record
//! (`comment.escalated`, `conversation.escalated`, `referral.escalated`) and counts it in
//! `govmedia.interaction.escalations`, in one transaction. Replicas may watch together:
//! the deadline is the escalation's unique key, so the second insert does nothing.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use govmedia_domain::Error;
use govmedia_domain::audit::{Actor, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, PlatformAccountId};
use govmedia_kit::access::Authorized;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge};
use tokio_util::sync::CancellationToken;

use crate::domain::escalation::{EscalatedItem, Escalation, Overdue};
use crate::store::escalations;
use crate::{Core, PRODUCER};

/// The component named as the actor of what the watch does.
const COMPONENT: &str = "interaction.deadline_watch";

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Escalations raised.
    pub escalated: usize,
    /// Escalations resolved because their item was answered.
    pub resolved: usize,
    /// Overdue items left for the next round: identity could not say their department.
    pub deferred: usize,
}

/// Watches the deadlines of one interaction service.
#[derive(Debug, Clone)]
pub struct DeadlineWatch {
    core: Arc<Core>,
    every: Duration,
    batch: u32,
}

impl DeadlineWatch {
    /// A watch over `core`, looking `every` so often.
    pub fn new(core: Arc<Core>, every: Duration) -> Self {
        Self { core, every, batch: 200 }
    }

    /// Runs rounds until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match self.round().await {
                Ok(r) if r.escalated + r.resolved >= self.batch as usize => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "deadline watch round failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// Escalates what is overdue now and resolves what was answered.
    pub async fn round(&self) -> Result<Round, Error> {
        let mut round = Round::default();
        let now = self.core.now();
        let mut found = Vec::new();
        {
            let mut tx = self.core.db().begin_read().await?;
            for item in EscalatedItem::ALL {
                found.extend(escalations::overdue(&mut tx, item, now, self.batch).await?);
            }
        }
        // Departments are asked of identity before any transaction begins (no lock is
        // held across a network call); an item whose department cannot be learned now
        // waits for the next round rather than going to nobody's queue.
        let mut departments: HashMap<PlatformAccountId, Option<DepartmentId>> = HashMap::new();
        let mut ready: Vec<(Overdue, Option<DepartmentId>)> = Vec::new();
        for o in found {
            if o.department.is_some() {
                let d = o.department;
                ready.push((o, d));
                continue;
            }
            let department = match departments.get(&o.account) {
                Some(d) => *d,
                None => match self.core.account(o.account).await {
                    Ok(facts) => *departments.entry(o.account).or_insert(facts.department),
                    Err(e) => {
                        tracing::warn!(error = %e, account = %o.account, "overdue item's department unknown; escalation deferred");
                        round.deferred += 1;
                        continue;
                    }
                },
            };
            ready.push((o, department));
        }
        let raised = self
            .core
            .work()
            .run_unkeyed(async |m| {
                let mut raised = Vec::new();
                for (overdue, department) in ready {
                    let e = Escalation::raise(overdue, department, m.now());
                    if escalations::insert_new(m.tx(), &e).await? {
                        m.audit(escalated(&e));
                        raised.push(e.item);
                    }
                }
                Ok(raised)
            })
            .await?;
        for item in &raised {
            escalation_counter().add(1, &[KeyValue::new("item_type", item.as_str())]);
        }
        round.escalated = raised.len();
        round.resolved = self.resolve().await?;
        let mut tx = self.core.db().begin_read().await?;
        let open = escalations::unresolved_count(&mut tx).await?;
        unresolved_gauge().record(u64::try_from(open).unwrap_or(0), &[]);
        Ok(round)
    }

    async fn resolve(&self) -> Result<usize, Error> {
        let grant = Authorized::service("deadline watch");
        self.core
            .work()
            .run_unkeyed(async |m| {
                let ids = escalations::resolvable(m.tx(), self.batch).await?;
                for id in &ids {
                    let mut e = escalations::lock(m.tx(), *id, &grant).await?;
                    let action = e.resolve(m.now());
                    escalations::save(m.tx(), &e, e.version - 1).await?;
                    m.audit(
                        AuditRecord::new(action, Actor::system(COMPONENT), resource(&e), PRODUCER, m.now())
                            .rule(e.item.rule())
                            .attr("item_type", e.item.as_str())
                            .attr("item_id", &e.item_id),
                    );
                }
                Ok(ids.len())
            })
            .await
    }
}

/// The escalation as the audit log names it.
pub(crate) fn resource(e: &Escalation) -> AuditResourceRef {
    let mut resource = AuditResourceRef::new("escalation", e.id);
    resource.platform_account = Some(e.account);
    resource.department = e.department;
    resource
}

/// The audit record of raising `e`: on the item that missed its deadline.
fn escalated(e: &Escalation) -> AuditRecord {
    let mut item = AuditResourceRef::new(e.item.as_str(), &e.item_id);
    item.platform_account = Some(e.account);
    item.department = e.department;
    AuditRecord::new(e.item.escalated(), Actor::system(COMPONENT), item, PRODUCER, e.escalated_at)
        .rule(e.item.rule())
        .reason(format!("the deadline {} passed without an answer", e.due_at.to_rfc3339()))
        .attr("escalation_id", e.id)
        .attr("due_at", e.due_at.to_rfc3339())
        .attr("department_id", e.department.map(|d| d.to_string()).unwrap_or_default())
}

fn escalation_counter() -> &'static Counter<u64> {
    static COUNTER: OnceLock<Counter<u64>> = OnceLock::new();
    COUNTER.get_or_init(|| {
        govmedia_kit::telemetry::meter(Some("interaction"))
            .u64_counter("govmedia.interaction.escalations")
            .with_description(
                "Reply deadlines missed and escalated to the responsible department (R4.1.1, R4.2.1, R4.2.2)",
            )
            .with_unit("{escalation}")
            .build()
    })
}

fn unresolved_gauge() -> &'static Gauge<u64> {
    static GAUGE: OnceLock<Gauge<u64>> = OnceLock::new();
    GAUGE.get_or_init(|| {
        govmedia_kit::telemetry::meter(Some("interaction"))
            .u64_gauge("govmedia.interaction.escalations.unresolved")
            .with_description("Escalations whose item still waits for an answer")
            .with_unit("{escalation}")
            .build()
    })
}
