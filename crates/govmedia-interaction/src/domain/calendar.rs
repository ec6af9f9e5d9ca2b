//! The business calendar: working time in the bureau's time zone, for reply deadlines
//! ("reply within 4 working hours") and for time-to-first-response figures.
//!
//! A working day has one or more working periods (for example 09:00–12:00 and
//! 13:30–17:30). Which days work is decided, in order: a listed working date (the
//! make-up working weekend days, 调休, of the official holiday schedule) works; a listed
//! holiday does not; otherwise the weekday decides. The holiday schedule changes every
//! year, so both lists are configuration, not code. No general crate models make-up
//! working dates (decision 0017), hence this module.
//!
//! Times come in and go out as UTC instants; working periods are wall-clock times in the
//! calendar's zone. A wall-clock time that does not exist (a DST gap) is read as the
//! first instant after the gap; one that exists twice is read as the earlier.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// Searches stop after this many days without finding working time.
const SEARCH_DAYS: i64 = 800;

/// Why a calendar is not usable, or a question has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// A working period ends before it starts, or overlaps the next one.
    #[error("working period {0} is empty or overlaps another")]
    BadPeriod(String),
    /// No weekday works and no working date is listed.
    #[error("the calendar has no working time")]
    NoWorkingTime,
    /// A date is listed both as a holiday and as a working date.
    #[error("{0} is listed both as a holiday and as a working date")]
    Conflict(NaiveDate),
    /// No working time within the search horizon.
    #[error("no working time within {SEARCH_DAYS} days")]
    Horizon,
}

/// A working period of a day, wall-clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Start (inclusive).
    pub start: NaiveTime,
    /// End (exclusive).
    pub end: NaiveTime,
}

/// When the bureau works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessCalendar {
    zone: Tz,
    periods: Vec<Period>,
    working_weekdays: BTreeSet<u32>,
    holidays: BTreeSet<NaiveDate>,
    working_dates: BTreeSet<NaiveDate>,
}

impl BusinessCalendar {
    /// A calendar; periods are sorted and must not overlap.
    pub fn new(
        zone: Tz,
        mut periods: Vec<Period>,
        working_weekdays: &[Weekday],
        holidays: impl IntoIterator<Item = NaiveDate>,
        working_dates: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<Self, CalendarError> {
        periods.sort_by_key(|p| p.start);
        for (i, p) in periods.iter().enumerate() {
            let overlaps_next = periods.get(i + 1).is_some_and(|next| next.start < p.end);
            if p.end <= p.start || overlaps_next {
                return Err(CalendarError::BadPeriod(format!("{}–{}", p.start, p.end)));
            }
        }
        let holidays: BTreeSet<NaiveDate> = holidays.into_iter().collect();
        let working_dates: BTreeSet<NaiveDate> = working_dates.into_iter().collect();
        if let Some(both) = holidays.intersection(&working_dates).next() {
            return Err(CalendarError::Conflict(*both));
        }
        if periods.is_empty() || (working_weekdays.is_empty() && working_dates.is_empty()) {
            return Err(CalendarError::NoWorkingTime);
        }
        Ok(Self {
            zone,
            periods,
            working_weekdays: working_weekdays.iter().map(Weekday::num_days_from_monday).collect(),
            holidays,
            working_dates,
        })
    }

    /// A Chinese government office: Asia/Shanghai, Monday to Friday, 09:00–12:00 and
    /// 13:30–17:30, with the given holidays and make-up working days.
    pub fn china_office(
        holidays: impl IntoIterator<Item = NaiveDate>,
        working_dates: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<Self, CalendarError> {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN);
        Self::new(
            chrono_tz::Asia::Shanghai,
            vec![Period { start: t(9, 0), end: t(12, 0) }, Period { start: t(13, 30), end: t(17, 30) }],
            &[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
            holidays,
            working_dates,
        )
    }

    /// The length of a working day in minutes: its working periods added up ("one
    /// working day" of a target is this, not 8 hours).
    pub fn working_day_minutes(&self) -> u32 {
        let minutes: i64 = self.periods.iter().map(|p| (p.end - p.start).num_minutes()).sum();
        u32::try_from(minutes).unwrap_or(u32::MAX)
    }

    /// Whether `date` (in the calendar's zone) is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.working_dates.contains(&date) {
            return true;
        }
        !self.holidays.contains(&date) && self.working_weekdays.contains(&date.weekday().num_days_from_monday())
    }

    fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let mut probe = local;
        // Walk out of a DST gap minute by minute (a gap is at most a few hours).
        for _ in 0..(24 * 60) {
            if let Some(t) = self.zone.from_local_datetime(&probe).earliest() {
                return t.with_timezone(&Utc);
            }
            probe += Duration::minutes(1);
        }
        Utc.from_utc_datetime(&local)
    }

    /// The working intervals of `date`, as UTC instants.
    fn intervals(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if !self.is_working_day(date) {
            return Vec::new();
        }
        self.periods
            .iter()
            .map(|p| (self.instant(date.and_time(p.start)), self.instant(date.and_time(p.end))))
            .filter(|(a, b)| a < b)
            .collect()
    }

    /// The instant reached after `working` working time from `start` (a deadline).
    pub fn add(&self, start: DateTime<Utc>, working: Duration) -> Result<DateTime<Utc>, CalendarError> {
        let mut left = working.max(Duration::zero());
        let mut date = start.with_timezone(&self.zone).date_naive();
        for _ in 0..SEARCH_DAYS {
            for (a, b) in self.intervals(date) {
                let from = a.max(start);
                if from >= b {
                    continue;
                }
                let available = b - from;
                if left <= available {
                    // A zero duration lands on the first working instant at or after start.
                    return Ok(from + left);
                }
                left -= available;
            }
            date = date.succ_opt().ok_or(CalendarError::Horizon)?;
        }
        Err(CalendarError::Horizon)
    }

    /// The end of the `days`-th working day after the day of `start` (a referral's due
    /// time: "within 5 working days" of a Friday-afternoon referral ends with the fifth
    /// working day that follows, not counting the Friday).
    pub fn add_working_days(&self, start: DateTime<Utc>, days: u32) -> Result<DateTime<Utc>, CalendarError> {
        let mut date = start.with_timezone(&self.zone).date_naive();
        let mut left = days;
        for _ in 0..SEARCH_DAYS {
            date = date.succ_opt().ok_or(CalendarError::Horizon)?;
            if self.is_working_day(date) {
                left = left.saturating_sub(1);
                if left == 0 {
                    let end = self.periods.last().map_or(NaiveTime::MIN, |p| p.end);
                    return Ok(self.instant(date.and_time(end)));
                }
            }
        }
        Err(CalendarError::Horizon)
    }

    /// The working time between two instants (zero when `to` is not after `from`).
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        if to <= from {
            return Duration::zero();
        }
        let mut total = Duration::zero();
        let mut date = from.with_timezone(&self.zone).date_naive();
        let last = to.with_timezone(&self.zone).date_naive();
        while date <= last {
            for (a, b) in self.intervals(date) {
                let (a, b) = (a.max(from), b.min(to));
                if a < b {
                    total += b - a;
                }
            }
            let Some(next) = date.succ_opt() else { break };
            date = next;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Beijing wall-clock time as a UTC instant.
    fn bj(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("time").with_timezone(&Utc)
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    /// An example holiday week with a make-up working Saturday (illustrative dates).
    fn office() -> BusinessCalendar {
        BusinessCalendar::china_office((1..=9).map(|d| date(2026, 10, d)), [date(2026, 10, 10)]).expect("calendar")
    }

    #[test]
    fn deadlines_skip_lunch_evenings_and_weekends_r4_1_1() {
        let c = office();
        // Wednesday 11:00 + 2 h: one hour before lunch, one after it.
        assert_eq!(c.add(bj(2026, 11, 25, 11, 0), Duration::hours(2)), Ok(bj(2026, 11, 25, 14, 30)));
        // Friday 16:30 + 4 h: one hour on Friday, three on Monday morning.
        assert_eq!(c.add(bj(2026, 11, 27, 16, 30), Duration::hours(4)), Ok(bj(2026, 11, 30, 12, 0)));
        // Arriving in the evening: the clock starts at the next opening.
        assert_eq!(c.add(bj(2026, 11, 25, 20, 0), Duration::minutes(30)), Ok(bj(2026, 11, 26, 9, 30)));
        assert_eq!(c.add(bj(2026, 11, 28, 10, 0), Duration::zero()), Ok(bj(2026, 11, 30, 9, 0)));
    }

    #[test]
    fn holidays_stop_the_clock_and_make_up_days_run_it() {
        let c = office();
        assert!(!c.is_working_day(date(2026, 10, 1)), "a holiday on a Thursday");
        assert!(c.is_working_day(date(2026, 10, 10)), "a make-up working Saturday (调休)");
        assert!(!c.is_working_day(date(2026, 10, 11)), "an ordinary Sunday");
        // Wednesday 30 September 17:00 + 1 h: half an hour that day, then the holiday
        // week, then the make-up Saturday morning.
        assert_eq!(c.add(bj(2026, 9, 30, 17, 0), Duration::hours(1)), Ok(bj(2026, 10, 10, 9, 30)));
        assert_eq!(c.between(bj(2026, 9, 30, 17, 0), bj(2026, 10, 10, 9, 30)), Duration::hours(1));
    }

    #[test]
    fn referrals_are_due_at_the_end_of_the_fifth_working_day_r4_2_1() {
        let c = office();
        // Friday 27 November afternoon + 5 working days: Mon–Fri of the next week.
        assert_eq!(c.add_working_days(bj(2026, 11, 27, 15, 0), 5), Ok(bj(2026, 12, 4, 17, 30)));
        // Across the holiday week: 30 September + 2 → the make-up Saturday, then Monday.
        assert_eq!(c.add_working_days(bj(2026, 9, 30, 10, 0), 2), Ok(bj(2026, 10, 12, 17, 30)));
    }

    #[test]
    fn between_is_the_inverse_of_add() {
        let c = office();
        let start = bj(2026, 11, 24, 10, 17);
        for minutes in [0, 1, 43, 180, 420, 421, 2000, 10_000] {
            let due = c.add(start, Duration::minutes(minutes)).expect("due");
            assert_eq!(c.between(start, due), Duration::minutes(minutes), "{minutes} min");
        }
        assert_eq!(c.between(bj(2026, 11, 24, 10, 0), bj(2026, 11, 24, 9, 0)), Duration::zero());
    }

    #[test]
    fn unusable_calendars_are_refused() {
        let t = |h| NaiveTime::from_hms_opt(h, 0, 0).expect("time");
        let tz = chrono_tz::Asia::Shanghai;
        let weekdays = [Weekday::Mon];
        let overlap = vec![Period { start: t(9), end: t(13) }, Period { start: t(12), end: t(17) }];
        assert!(matches!(BusinessCalendar::new(tz, overlap, &weekdays, [], []), Err(CalendarError::BadPeriod(_))));
        let backwards = vec![Period { start: t(17), end: t(9) }];
        assert!(matches!(BusinessCalendar::new(tz, backwards, &weekdays, [], []), Err(CalendarError::BadPeriod(_))));
        let day = vec![Period { start: t(9), end: t(17) }];
        assert_eq!(BusinessCalendar::new(tz, day.clone(), &[], [], []), Err(CalendarError::NoWorkingTime));
        assert_eq!(
            BusinessCalendar::new(tz, day.clone(), &weekdays, [date(2026, 1, 5)], [date(2026, 1, 5)]),
            Err(CalendarError::Conflict(date(2026, 1, 5)))
        );
        // Only one make-up date, long past: no working time ahead.
        let once = BusinessCalendar::new(tz, day, &[], [], [date(2020, 1, 4)]).expect("calendar");
        assert_eq!(once.add(bj(2026, 1, 1, 9, 0), Duration::hours(1)), Err(CalendarError::Horizon));
    }

    #[test]
    fn a_zone_with_daylight_saving_counts_real_time() {
        let t = |h| NaiveTime::from_hms_opt(h, 0, 0).expect("time");
        // Berlin springs forward at 02:00 on Sunday 29 March 2026; a night shift across it
        // is one hour shorter.
        let c = BusinessCalendar::new(
            chrono_tz::Europe::Berlin,
            vec![Period { start: t(0), end: t(6) }],
            &[Weekday::Sun],
            [],
            [],
        )
        .expect("calendar");
        let midnight = chrono_tz::Europe::Berlin
            .with_ymd_and_hms(2026, 3, 29, 0, 0, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(c.between(midnight, midnight + Duration::hours(12)), Duration::hours(5));
    }
}
