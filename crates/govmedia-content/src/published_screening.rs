//! Published content screened again when the lexicon grows (R7.1.1, R3.2.3). A draft is
//! screened when submitted and once more before it goes out; but a misspelt critical
//! name added to the lexicon later (after an inspection found one elsewhere, say) must
//! also be found in what is already out. Every so often the published publications not
//! yet screened with the lexicon's current version are screened again; a blocking term
//! found for the first time in one is written to the audit log — as a serious wording
//! error for misspelt critical names and non-standard wording (an inspection-readiness
//! veto item), as a blocked term otherwise (a violation detector's evidence). Nothing is
//! retracted here: that is the security officer's decision, through an incident.

use std::sync::Arc;
use std::time::Duration;

use govmedia_domain::Error;
use govmedia_domain::audit::{Actor, AuditAction, AuditRecord, AuditResourceRef};
use govmedia_kit::access::Authorized;
use govmedia_kit::screening::{Screened, category_name, is_block};
use govmedia_proto::common::v1::ScreeningCategory;
use tokio_util::sync::CancellationToken;

use crate::domain::publication::Publication;
use crate::store::{drafts, publications};
use crate::{Core, PRODUCER};

/// Publications screened again per round at most.
const BATCH: u32 = 50;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// The lexicon version screened against (0 when nothing is published).
    pub lexicon_version: u64,
    /// Publications screened.
    pub screened: usize,
    /// Terms found for the first time.
    pub found: usize,
}

/// Screens published content again as the lexicon changes.
#[derive(Debug)]
pub struct PublishedScreening {
    core: Arc<Core>,
    every: Duration,
    known_version: std::sync::atomic::AtomicU64,
}

impl PublishedScreening {
    /// A watch over `core`'s publications, every `every`.
    pub fn new(core: Arc<Core>, every: Duration) -> Self {
        Self { core, every, known_version: std::sync::atomic::AtomicU64::new(0) }
    }

    /// Runs rounds until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            match self.round().await {
                Ok(r) if r.screened > 0 => tracing::info!(
                    lexicon_version = r.lexicon_version,
                    screened = r.screened,
                    found = r.found,
                    "published content screened again"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "published content could not be screened again; next round retries")
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// One round: learns the lexicon's version (by screening the latest publication when
    /// nothing is due), then screens what was not screened with it, batch by batch.
    pub async fn round(&self) -> Result<Round, Error> {
        use std::sync::atomic::Ordering;
        let mut round = Round::default();
        loop {
            let known = self.known_version.load(Ordering::Relaxed);
            let due = publications::screening_due(&mut self.core.db().begin_read().await?, known.max(1), BATCH).await?;
            let batch = if due.is_empty() {
                // Everything was screened with the version known: is there a newer one?
                let Some(latest) = publications::any_published(&mut self.core.db().begin_read().await?).await? else {
                    return Ok(round);
                };
                let screened = self.screen(&latest).await?;
                if screened.lexicon_version <= known {
                    round.lexicon_version = known;
                    return Ok(round);
                }
                self.known_version.store(screened.lexicon_version, Ordering::Relaxed);
                continue;
            } else {
                due
            };
            for p in &batch {
                let screened = self.screen(p).await?;
                round.found += self.record(p, &screened).await?;
                round.screened += 1;
                round.lexicon_version = round.lexicon_version.max(screened.lexicon_version);
                self.known_version.fetch_max(screened.lexicon_version, Ordering::Relaxed);
            }
        }
    }

    async fn screen(&self, p: &Publication) -> Result<Screened, Error> {
        let mut tx = self.core.db().begin_read().await?;
        let content = drafts::content(&mut tx, p.draft, p.draft_version).await?;
        drop(tx);
        let (title, body) = content.for_account(p.account);
        self.core.screen(vec![("title".to_owned(), title.to_owned()), ("body".to_owned(), body.to_owned())]).await
    }

    /// Records the screening of `p`, and each block term found in it for the first time.
    async fn record(&self, p: &Publication, screened: &Screened) -> Result<usize, Error> {
        let blocking: Vec<_> = screened.findings.iter().filter(|f| is_block(f)).collect();
        let mut terms: Vec<String> = blocking.iter().map(|f| f.matched_term.clone()).collect();
        terms.sort();
        terms.dedup();
        let version = screened.lexicon_version;
        self.core
            .work()
            .run_unkeyed(async |m| {
                // The publication's row is the round's lock: two rounds (the watch and
                // an operator's) never record the same term twice.
                publications::lock(m.tx(), p.id, &Authorized::service("published-screening")).await?;
                let before = publications::found_terms(m.tx(), p.id).await?;
                let mut seen = before.clone();
                let mut found = 0;
                for f in &blocking {
                    if seen.contains(&f.matched_term) {
                        continue;
                    }
                    seen.push(f.matched_term.clone());
                    let wording = f.category == ScreeningCategory::CriticalName as i32
                        || f.category == ScreeningCategory::NonStandardWording as i32;
                    let (action, rule) = if wording {
                        (AuditAction::PublicationWordingErrorFound, "R3.2.3")
                    } else {
                        (AuditAction::PublicationBlockedTermFound, "R7.1.1")
                    };
                    let mut resource = AuditResourceRef::new("publication", p.id);
                    resource.platform_account = Some(p.account);
                    m.audit(
                        AuditRecord::new(action, Actor::system("published-screening"), resource, PRODUCER, m.now())
                            .rule(rule)
                            .attr("draft_id", p.draft)
                            .attr("draft_version", p.draft_version)
                            .attr("category", category_name(f.category))
                            .attr("term", &f.matched_term)
                            .attr("excerpt", &f.excerpt)
                            .attr("suggestion", &f.suggestion)
                            .attr("text_key", &f.text_key)
                            .attr("lexicon_version", version),
                    );
                    found += 1;
                }
                seen.extend(terms.iter().cloned());
                seen.sort();
                seen.dedup();
                let now = m.now();
                publications::screened(m.tx(), p.id, version, &seen, now).await?;
                Ok(found)
            })
            .await
    }
}
