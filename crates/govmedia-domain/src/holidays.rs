//! The official calendar of public holidays and make-up working days (调休) in mainland
//! China, shipped as data ([`data/official-holidays-cn.txt`]) for the years published,
//! plus what an administrator adds through settings before the next release ships a
//! new year. Read by interaction's reply deadlines (R4.1.1, R4.2.1, R4.2.2) and by
//! identity's check of sign-ins outside working hours (R2.3.3).

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, Weekday};

const SHIPPED: &str = include_str!("../data/official-holidays-cn.txt");

/// Holidays and make-up working days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficialCalendar {
    holidays: BTreeSet<NaiveDate>,
    working_dates: BTreeSet<NaiveDate>,
}

impl OfficialCalendar {
    /// The shipped schedule.
    pub fn shipped() -> Self {
        let mut holidays = BTreeSet::new();
        let mut working_dates = BTreeSet::new();
        for line in SHIPPED.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let mut parts = line.split_whitespace();
            let (Some(date), Some(kind)) = (parts.next(), parts.next()) else { continue };
            // The file is ours and tested (`the_shipped_schedule_parses`): a bad line
            // cannot ship.
            let Ok(date) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else { continue };
            match kind {
                "holiday" => holidays.insert(date),
                "workday" => working_dates.insert(date),
                _ => continue,
            };
        }
        Self { holidays, working_dates }
    }

    /// The shipped schedule with an administrator's additions: more holidays, and
    /// make-up working days, which also correct a shipped holiday (a date listed as
    /// working is working). A date in both additions is a contradiction: `Err(date)`.
    pub fn with_additions(holidays: &[NaiveDate], working_dates: &[NaiveDate]) -> Result<Self, NaiveDate> {
        if let Some(both) = holidays.iter().find(|d| working_dates.contains(d)) {
            return Err(*both);
        }
        let mut calendar = Self::shipped();
        calendar.holidays.extend(holidays);
        for date in working_dates {
            calendar.holidays.remove(date);
            calendar.working_dates.insert(*date);
        }
        Ok(calendar)
    }

    /// The holidays.
    pub fn holidays(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.holidays.iter().copied()
    }

    /// The make-up working days.
    pub fn working_dates(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.working_dates.iter().copied()
    }

    /// Whether `date` is a working day when the working week is `weekdays`: a make-up day
    /// is, a holiday is not, otherwise the weekday decides.
    pub fn is_working_day(&self, date: NaiveDate, weekdays: &[Weekday]) -> bool {
        if self.working_dates.contains(&date) {
            return true;
        }
        !self.holidays.contains(&date) && weekdays.contains(&date.weekday())
    }

    /// The last year the calendar knows holidays for.
    pub fn last_year(&self) -> Option<i32> {
        self.holidays.iter().next_back().map(Datelike::year)
    }
}

/// Dates as settings give them: `YYYY-MM-DD` separated by commas.
pub fn parse_dates(value: &str) -> Result<Vec<NaiveDate>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| format!("{d:?} is not a YYYY-MM-DD date")))
        .collect()
}

/// Monday to Friday.
pub const OFFICE_WEEK: [Weekday; 5] = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn the_shipped_schedule_parses() {
        let data_lines = SHIPPED.lines().filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#')).count();
        let c = OfficialCalendar::shipped();
        assert_eq!(c.holidays().count() + c.working_dates().count(), data_lines, "every line is read");
        assert_eq!(c.last_year(), Some(2026));
        for date in c.working_dates() {
            assert!(!OFFICE_WEEK.contains(&date.weekday()), "{date} is a make-up day on a weekend");
        }
    }

    #[test]
    fn spring_festival_and_national_day_are_not_working_days_r4_1_1() {
        let c = OfficialCalendar::shipped();
        // 2026-02-16, a Monday, is Spring Festival; 2026-10-08, a Thursday, is not.
        assert!(!c.is_working_day(day(2026, 2, 16), &OFFICE_WEEK));
        assert!(!c.is_working_day(day(2025, 10, 8), &OFFICE_WEEK), "2025's National Day runs to the 8th");
        assert!(c.is_working_day(day(2026, 10, 8), &OFFICE_WEEK));
        // Make-up days on weekends are working days.
        assert!(c.is_working_day(day(2026, 2, 14), &OFFICE_WEEK), "a Saturday worked for Spring Festival");
        assert!(c.is_working_day(day(2026, 9, 20), &OFFICE_WEEK), "a Sunday worked for National Day");
        assert!(!c.is_working_day(day(2026, 11, 28), &OFFICE_WEEK), "an ordinary Saturday");
    }

    #[test]
    fn an_administrator_adds_a_year_and_corrects_a_date() {
        let c = OfficialCalendar::with_additions(&[day(2027, 1, 1)], &[day(2026, 10, 7)]).expect("no contradiction");
        assert!(!c.is_working_day(day(2027, 1, 1), &OFFICE_WEEK));
        assert!(c.is_working_day(day(2026, 10, 7), &OFFICE_WEEK), "listed as working, it is working");
        assert_eq!(c.last_year(), Some(2027));
        assert_eq!(OfficialCalendar::with_additions(&[day(2027, 1, 1)], &[day(2027, 1, 1)]), Err(day(2027, 1, 1)));
    }
}
