//! Properties of the business calendar behind every reply deadline (R4.1.1, R4.2.1,
//! R4.2.2), over generated instants, durations and calendars — the shipped official
//! holidays in Asia/Shanghai, and zones with daylight saving — rather than examples:
//! the working time from a start to the deadline it gives is exactly what was asked;
//! deadlines never go back as the time allowed grows; a deadline ends working time;
//! "within N working days" ends on a working day with exactly N working days counted.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use govmedia_domain::holidays::OfficialCalendar;
use govmedia_interaction::domain::calendar::{BusinessCalendar, Period};
use proptest::prelude::*;

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

/// The office calendar with the shipped official holidays and make-up working days, or
/// one in a zone with daylight saving (its changes fall inside working periods in some
/// of these: 01:00–03:30 local for Europe/Berlin's 02:00 change).
fn calendar() -> impl Strategy<Value = BusinessCalendar> {
    let official = OfficialCalendar::shipped();
    prop_oneof![
        Just(BusinessCalendar::china_office(official.holidays(), official.working_dates()).expect("calendar")),
        Just(
            BusinessCalendar::new(
                chrono_tz::Europe::Berlin,
                vec![Period { start: t(1, 0), end: t(3, 30) }, Period { start: t(9, 0), end: t(17, 0) }],
                &[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sun],
                [],
                [],
            )
            .expect("calendar")
        ),
        Just(
            BusinessCalendar::new(
                chrono_tz::America::New_York,
                vec![Period { start: t(0, 30), end: t(4, 0) }, Period { start: t(8, 0), end: t(12, 0) }],
                &[Weekday::Sat, Weekday::Sun, Weekday::Mon],
                [NaiveDate::from_ymd_opt(2026, 3, 9).unwrap_or_default()],
                [NaiveDate::from_ymd_opt(2026, 3, 10).unwrap_or_default()],
            )
            .expect("calendar")
        ),
    ]
}

/// An instant from 2024 to the end of 2026 (the shipped holiday years), to the second.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (1_704_067_200_i64..1_798_761_600).prop_map(|s| Utc.timestamp_opt(s, 0).single().unwrap_or_default())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_working_time_to_a_deadline_is_what_was_allowed_r4_1_1(
        calendar in calendar(),
        start in instant(),
        minutes in 0_i64..(60 * 60),
    ) {
        let allowed = Duration::minutes(minutes);
        let due = calendar.add(start, allowed).expect("a deadline");
        prop_assert!(due >= start);
        prop_assert_eq!(calendar.between(start, due), allowed, "from {} to {}", start, due);
    }

    #[test]
    fn a_deadline_never_comes_earlier_for_more_time_r4_1_1(
        calendar in calendar(),
        start in instant(),
        a in 0_i64..(40 * 60),
        b in 0_i64..(40 * 60),
    ) {
        let (less, more) = (a.min(b), a.max(b));
        let early = calendar.add(start, Duration::minutes(less)).expect("a deadline");
        let late = calendar.add(start, Duration::minutes(more)).expect("a deadline");
        prop_assert!(early <= late);
        prop_assert_eq!(calendar.between(early, late), Duration::minutes(more - less));
    }

    #[test]
    fn the_second_before_a_deadline_is_working_time_r4_1_1(
        calendar in calendar(),
        start in instant(),
        minutes in 1_i64..(40 * 60),
    ) {
        // A deadline ends working time: it never falls in a lunch break, a night or a
        // holiday (it may be the very end of a working period).
        let due = calendar.add(start, Duration::minutes(minutes)).expect("a deadline");
        let before = due - Duration::seconds(1);
        prop_assert!(before >= start);
        prop_assert_eq!(calendar.between(before, due), Duration::seconds(1), "deadline {}", due);
    }

    #[test]
    fn within_n_working_days_ends_on_the_nth_working_day_after_r4_2_2(
        start in instant(),
        days in 1_u32..15,
    ) {
        let official = OfficialCalendar::shipped();
        let calendar = BusinessCalendar::china_office(official.holidays(), official.working_dates()).expect("calendar");
        let due = calendar.add_working_days(start, days).expect("a due time");
        let zone = chrono_tz::Asia::Shanghai;
        let (from, to) = (start.with_timezone(&zone).date_naive(), due.with_timezone(&zone).date_naive());
        prop_assert!(calendar.is_working_day(to), "{} is not a working day", to);
        let counted = from.iter_days().skip(1).take_while(|d| *d <= to).filter(|d| calendar.is_working_day(*d)).count();
        prop_assert_eq!(counted, days as usize);
        prop_assert_eq!(due.with_timezone(&zone).time(), t(17, 30));
    }
}
