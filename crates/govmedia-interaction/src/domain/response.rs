//! Response-time figures (R4.1.1, R4.2.1): how promptly the public got a first answer,
//! per person and per account — how many items arrived and were answered, the average
//! and median time to first response in working time, and the share answered by the
//! deadline.
//!
//! The share counts only items that can be judged: answered ones, and unanswered ones
//! whose deadline has passed. An item still within its deadline is neither a success nor
//! a failure yet.

use chrono::{DateTime, Duration, Utc};

use super::calendar::BusinessCalendar;

/// One item to report on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// When the response clock started.
    pub arrived: DateTime<Utc>,
    /// When the first response came, if it has.
    pub responded: Option<DateTime<Utc>>,
    /// When it was due.
    pub due: DateTime<Utc>,
}

/// The figures of a set of items.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Items.
    pub item_count: usize,
    /// Items with a first response.
    pub responded_count: usize,
    /// Average working time to first response of the answered items.
    pub average: Duration,
    /// Median working time to first response (the lower middle for an even count).
    pub median: Duration,
    /// Answered by the deadline, among the items that can be judged; 0 to 1.
    pub within_deadline_share: f64,
}

/// The figures of `items` as of `now`, working time measured on `calendar`.
pub fn summarise(items: &[Item], calendar: &BusinessCalendar, now: DateTime<Utc>) -> Summary {
    let mut times: Vec<Duration> =
        items.iter().filter_map(|i| i.responded.map(|r| calendar.between(i.arrived, r.max(i.arrived)))).collect();
    times.sort();
    let responded_count = times.len();
    let (average, median) = if times.is_empty() {
        (Duration::zero(), Duration::zero())
    } else {
        let total = times.iter().fold(Duration::zero(), |t, d| t + *d);
        (total / i32::try_from(responded_count).unwrap_or(i32::MAX), times[(responded_count - 1) / 2])
    };
    let judged = items.iter().filter(|i| i.responded.is_some() || now > i.due).count();
    let within = items.iter().filter(|i| i.responded.is_some_and(|r| r <= i.due)).count();
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let within_deadline_share = if judged == 0 { 0.0 } else { within as f64 / judged as f64 };
    Summary { item_count: items.len(), responded_count, average, median, within_deadline_share }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        // Monday 2026-11-30 in Beijing.
        chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 11, 30, h, m, 0).single().expect("time").with_timezone(&Utc)
    }

    fn item(arrived: DateTime<Utc>, minutes: Option<i64>) -> Item {
        Item { arrived, responded: minutes.map(|m| arrived + Duration::minutes(m)), due: arrived + Duration::hours(2) }
    }

    #[test]
    fn figures_count_average_median_and_share_within_deadline_r4_1_1() {
        let calendar = BusinessCalendar::china_office([], []).expect("calendar");
        let start = at(9, 0);
        let items = [
            item(start, Some(30)),
            item(start, Some(150)), // after its 2-hour deadline
            item(start, Some(60)),
            item(start, Some(120)),
            item(start, None),      // overdue by 15:00: judged, missed
            item(at(14, 30), None), // still within its deadline: not judged
        ];
        let s = summarise(&items, &calendar, at(15, 0));
        // Lunch (12:00–13:30) is not working time.
        let over_lunch = item(at(11, 0), Some(180));
        assert_eq!(summarise(&[over_lunch], &calendar, at(15, 0)).average, Duration::minutes(90));
        assert_eq!((s.item_count, s.responded_count), (6, 4));
        assert_eq!(s.median, Duration::minutes(60), "the lower middle of 30, 60, 120, 150");
        assert_eq!(s.average, Duration::minutes(90));
        assert!((s.within_deadline_share - 0.6).abs() < 1e-9, "3 of 5 judged: {}", s.within_deadline_share);
    }

    #[test]
    fn nothing_to_report_is_all_zero() {
        let calendar = BusinessCalendar::china_office([], []).expect("calendar");
        let s = summarise(&[], &calendar, at(9, 0));
        assert_eq!((s.item_count, s.responded_count, s.average), (0, 0, Duration::zero()));
        assert!(s.within_deadline_share.abs() < f64::EPSILON);
    }
}
