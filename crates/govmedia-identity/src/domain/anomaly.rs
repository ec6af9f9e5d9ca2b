//! Login anomalies that raise security events (R2.3.3, R7.2.2): a burst of failures, a
//! login from an address never seen for the user, a login outside working hours in the
//! bureau's time zone, on a day that is no working day by the official calendar (a
//! holiday on a weekday is not; a make-up Saturday is).

use std::str::FromStr;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use govmedia_domain::holidays::{OFFICE_WEEK, OfficialCalendar};

/// When staff normally work, in the bureau's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingHours {
    /// The bureau's time zone.
    pub zone: Tz,
    /// Start of the working day.
    pub start: NaiveTime,
    /// End of the working day.
    pub end: NaiveTime,
    /// Holidays and make-up working days.
    pub calendar: OfficialCalendar,
}

/// Why a working-hours setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WorkingHoursError(String);

impl WorkingHours {
    /// Parses `"08:00-18:00"` in the zone named like `"Asia/Shanghai"`.
    pub fn parse(zone: &str, hours: &str) -> Result<Self, WorkingHoursError> {
        let zone = Tz::from_str(zone).map_err(|_| WorkingHoursError(format!("unknown time zone {zone:?}")))?;
        let (start, end) = hours
            .split_once('-')
            .ok_or_else(|| WorkingHoursError(format!("working hours {hours:?} are not like 08:00-18:00")))?;
        let time = |t: &str| {
            NaiveTime::parse_from_str(t.trim(), "%H:%M")
                .map_err(|_| WorkingHoursError(format!("{t:?} is not a time like 08:00")))
        };
        let (start, end) = (time(start)?, time(end)?);
        if start >= end {
            return Err(WorkingHoursError(format!("working hours {hours:?} end before they start")));
        }
        Ok(Self { zone, start, end, calendar: OfficialCalendar::shipped() })
    }

    /// The same hours on `calendar`.
    pub fn with_calendar(self, calendar: OfficialCalendar) -> Self {
        Self { calendar, ..self }
    }

    /// True when `at` falls on a working day between start and end, local time.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.zone);
        let time = local.time();
        self.calendar.is_working_day(local.date_naive(), &OFFICE_WEEK) && time >= self.start && time < self.end
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn working_hours_are_local_working_days_of_the_official_calendar_r2_3_3() {
        let hours = WorkingHours::parse("Asia/Shanghai", "08:00-18:00").expect("parses");
        // Friday 2026-11-27 09:30 in Shanghai is 01:30 UTC.
        assert!(hours.contains(Utc.with_ymd_and_hms(2026, 11, 27, 1, 30, 0).single().expect("time")));
        // 22:00 Shanghai.
        assert!(!hours.contains(Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).single().expect("time")));
        // Saturday 10:00 Shanghai.
        assert!(!hours.contains(Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).single().expect("time")));
        // Monday 2026-02-16 10:00 is Spring Festival; Saturday 2026-02-14 a make-up day.
        assert!(!hours.contains(Utc.with_ymd_and_hms(2026, 2, 16, 2, 0, 0).single().expect("time")));
        assert!(hours.contains(Utc.with_ymd_and_hms(2026, 2, 14, 2, 0, 0).single().expect("time")));
        assert!(WorkingHours::parse("Mars/Olympus", "08:00-18:00").is_err());
        assert!(WorkingHours::parse("Asia/Shanghai", "18:00-08:00").is_err());
    }
}
