//! Operating figures of publications (R5.1.1): totals, engagement, publishing frequency
//! and how long an account has been silent. Platforms report cumulative counts, so a
//! publication's figures for a period are its latest observation before the period ends.

use chrono::{DateTime, Utc};
use govmedia_domain::ids::{PlatformAccountId, PublicationId};

/// R5.1.1: operating data is tracked and analysed.
pub const METRICS_RULE: &str = "R5.1.1";

/// How many publications a report ranks.
pub const TOP: usize = 10;

/// Cumulative counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Reads or views.
    pub reads: u64,
    /// Likes.
    pub likes: u64,
    /// Comments.
    pub comments: u64,
    /// Shares.
    pub shares: u64,
    /// Favourites.
    pub favourites: u64,
}

impl Totals {
    /// The sum of two sets of counts (saturating: counts never wrap).
    pub fn plus(self, o: Totals) -> Totals {
        Totals {
            reads: self.reads.saturating_add(o.reads),
            likes: self.likes.saturating_add(o.likes),
            comments: self.comments.saturating_add(o.comments),
            shares: self.shares.saturating_add(o.shares),
            favourites: self.favourites.saturating_add(o.favourites),
        }
    }

    /// (likes + comments + shares) / reads; 0 without reads.
    pub fn engagement_rate(self) -> f64 {
        if self.reads == 0 {
            return 0.0;
        }
        let engaged = self.likes.saturating_add(self.comments).saturating_add(self.shares);
        // Counts of real posts stay far below 2^52, where f64 is exact.
        engaged as f64 / self.reads as f64
    }
}

/// One publication's figures in a report.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicationFigures {
    /// The publication.
    pub id: PublicationId,
    /// Its title.
    pub title: String,
    /// Its account.
    pub account: PlatformAccountId,
    /// When it went out.
    pub published_at: DateTime<Utc>,
    /// Its latest counts before the period's end.
    pub totals: Totals,
}

/// A report over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Publications published in the period.
    pub count: usize,
    /// Publications per week over the period.
    pub per_week: f64,
    /// Totals over them.
    pub totals: Totals,
    /// Their engagement rate.
    pub engagement_rate: f64,
    /// The most read, most read first (ties: the more engaging, then the later).
    pub top: Vec<PublicationFigures>,
    /// The last publication before the period's end (possibly before the period).
    pub last_published_at: Option<DateTime<Utc>>,
    /// Whole days from the last publication to the period's end, or to now if the
    /// period has not ended; -1 when it never published.
    pub days_since_last: i32,
}

/// Builds a report over `[start, end)` seen at `now`.
pub fn report(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
    mut publications: Vec<PublicationFigures>,
    last_published_at: Option<DateTime<Utc>>,
) -> Report {
    let totals = publications.iter().fold(Totals::default(), |t, p| t.plus(p.totals));
    let weeks = (end - start).num_seconds().max(1) as f64 / (7.0 * 86_400.0);
    let per_week = publications.len() as f64 / weeks;
    publications.sort_by(|a, b| {
        b.totals
            .reads
            .cmp(&a.totals.reads)
            .then(b.totals.engagement_rate().total_cmp(&a.totals.engagement_rate()))
            .then(b.published_at.cmp(&a.published_at))
    });
    let count = publications.len();
    publications.truncate(TOP);
    let until = end.min(now);
    let days_since_last =
        last_published_at.map_or(-1, |last| i32::try_from((until - last).num_days().max(0)).unwrap_or(i32::MAX));
    Report {
        count,
        per_week,
        totals,
        engagement_rate: totals.engagement_rate(),
        top: publications,
        last_published_at,
        days_since_last,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).single().expect("time")
    }

    fn figures(reads: u64, likes: u64, day: u32) -> PublicationFigures {
        PublicationFigures {
            id: PublicationId::new(),
            title: format!("{reads}"),
            account: PlatformAccountId::new(),
            published_at: at(day),
            totals: Totals { reads, likes, comments: 1, shares: 1, favourites: 5 },
        }
    }

    #[test]
    fn a_report_ranks_totals_and_counts_silence_r5_1_1() {
        let r = report(
            at(1),
            at(15),
            at(27),
            vec![figures(100, 8, 2), figures(300, 1, 3), figures(100, 18, 4)],
            Some(at(4)),
        );
        assert_eq!(r.count, 3);
        assert!((r.per_week - 1.5).abs() < 1e-9, "3 in two weeks: {}", r.per_week);
        assert_eq!(r.totals.reads, 500);
        assert!((r.engagement_rate - (27.0 + 3.0 + 3.0) / 500.0).abs() < 1e-9, "favourites do not count");
        let order: Vec<&str> = r.top.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(order, ["300", "100", "100"]);
        assert_eq!(r.top[1].totals.likes, 18, "ties go to the more engaging");
        assert_eq!(r.days_since_last, 11, "to the period's end");
        let ongoing = report(at(20), at(30), at(27), vec![], Some(at(4)));
        assert_eq!(ongoing.days_since_last, 23, "to now when the period has not ended");
        assert_eq!(report(at(1), at(2), at(27), vec![], None).days_since_last, -1);
        assert_eq!(Totals::default().engagement_rate(), 0.0);
    }
}
