//! Calendar arithmetic of Java's `java.util.GregorianCalendar` in `Locale.US`: the Julian calendar before
//! 1582-10-15 and the Gregorian one from then on, weeks starting on Sunday, the first week of a year being
//! the one that contains January 1 (minimal days in first week = 1).
//!
//! Days are counted as epoch days (0 = 1970-01-01) and years astronomically (0 = 1 BC) throughout.

pub(crate) const MS_PER_DAY: i64 = 86_400_000;
/// Epoch day of 1582-10-15 (Gregorian), Java's default Gregorian cutover.
pub(crate) const CUTOVER_DAY: i64 = -141_427;
/// The Gregorian cutover year: years after it are purely Gregorian.
pub(crate) const CUTOVER_YEAR: i64 = 1582;

pub(crate) fn floor_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b)
}

pub(crate) fn floor_mod(a: i64, b: i64) -> i64 {
    a.rem_euclid(b)
}

/// Epoch day of a proleptic Gregorian date (month 1..=12; `day` may run past the month end).
pub(crate) fn gregorian_days(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = floor_div(y, 400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn gregorian_civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = floor_div(z, 146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Epoch day of a proleptic Julian date (month 1..=12; `day` may run past the month end).
pub(crate) fn julian_days(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = floor_div(y, 4);
    let yoe = y - era * 4;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    era * 1461 + yoe * 365 + doy - 719_470
}

fn julian_civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_470;
    let era = floor_div(z, 1461);
    let doe = z - era * 1461;
    let yoe = (doe - doe / 1460) / 365;
    let doy = doe - 365 * yoe;
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 4 + i64::from(m <= 2), m, d)
}

/// Calendar date (astronomical year, month 1..=12, day) of an epoch day, Julian before the cutover.
pub(crate) fn civil(days: i64) -> (i64, i64, i64) {
    if days >= CUTOVER_DAY { gregorian_civil(days) } else { julian_civil(days) }
}

/// Epoch day of January 1 of `year` in the calendar that year starts in.
pub(crate) fn year_start(year: i64) -> i64 {
    if year > CUTOVER_YEAR { gregorian_days(year, 1, 1) } else { julian_days(year, 1, 1) }
}

pub(crate) fn is_leap(year: i64, gregorian: bool) -> bool {
    if gregorian { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) } else { year % 4 == 0 }
}

pub(crate) fn month_length(year: i64, month: i64, gregorian: bool) -> i64 {
    match month {
        2 => {
            if is_leap(year, gregorian) {
                29
            } else {
                28
            }
        }
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of week, Java numbering: 1 = Sunday … 7 = Saturday.
pub(crate) fn day_of_week(days: i64) -> i64 {
    floor_mod(days + 4, 7) + 1
}

/// The epoch day on or before `days` that falls on `dow` (1 = Sunday … 7 = Saturday).
pub(crate) fn dow_on_or_before(days: i64, dow: i64) -> i64 {
    days - floor_mod(day_of_week(days) - dow, 7)
}

/// Sunday on or before `days`: the first day of its week.
fn week_start(days: i64) -> i64 {
    dow_on_or_before(days, 1)
}

/// All the calendar fields Java computes for a local time, in `java.util.Calendar` terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fields {
    /// 0 = BC, 1 = AD.
    pub(crate) era: i32,
    /// Year of era (≥ 1).
    pub(crate) year: i64,
    /// Week year, astronomical (`YYYY`).
    pub(crate) week_year: i64,
    /// 0 = January.
    pub(crate) month: i32,
    pub(crate) day_of_month: i32,
    pub(crate) day_of_year: i32,
    /// 1 = Sunday.
    pub(crate) day_of_week: i32,
    pub(crate) week_of_year: i32,
    pub(crate) week_of_month: i32,
    pub(crate) day_of_week_in_month: i32,
    pub(crate) hour_of_day: i32,
    pub(crate) minute: i32,
    pub(crate) second: i32,
    pub(crate) millisecond: i32,
}

impl Fields {
    /// Fields of a local (wall clock) time given as milliseconds since the local epoch.
    pub(crate) fn from_local_millis(local_ms: i64) -> Fields {
        Fields::compute(local_ms, true)
    }

    /// As [`from_local_millis`](Self::from_local_millis); with `weeks` false, the week of year and the
    /// week year are left at 0 (they cost two more date computations).
    pub(crate) fn compute(local_ms: i64, weeks: bool) -> Fields {
        let days = floor_div(local_ms, MS_PER_DAY);
        let ms_of_day = floor_mod(local_ms, MS_PER_DAY);
        let (year, month, day) = civil(days);
        let jan1 = year_start(year);
        let dow = day_of_week(days);
        let mut week_of_year = if weeks { (days - week_start(jan1)) / 7 + 1 } else { 0 };
        let mut week_year = if weeks { year } else { 0 };
        if week_of_year >= 52 {
            let next_jan1 = year_start(year + 1);
            if day_of_week(next_jan1) != 1 && days >= week_start(next_jan1) {
                week_of_year = 1;
            }
        }
        if weeks && month != 1 && week_of_year == 1 {
            week_year += 1;
        }
        // In October 1582 the month restarts at the cutover for week-of-month counts, as in Java.
        let month1 =
            if year == CUTOVER_YEAR && month == 10 && days >= CUTOVER_DAY { CUTOVER_DAY } else { days - (day - 1) };
        let (era, year_of_era) = if year >= 1 { (1, year) } else { (0, 1 - year) };
        Fields {
            era,
            year: year_of_era,
            week_year,
            month: (month - 1) as i32,
            day_of_month: day as i32,
            day_of_year: (days - jan1 + 1) as i32,
            day_of_week: dow as i32,
            week_of_year: week_of_year as i32,
            week_of_month: ((days - week_start(month1)) / 7 + 1) as i32,
            day_of_week_in_month: ((days - month1) / 7 + 1) as i32,
            hour_of_day: (ms_of_day / 3_600_000) as i32,
            minute: (ms_of_day / 60_000 % 60) as i32,
            second: (ms_of_day / 1000 % 60) as i32,
            millisecond: (ms_of_day % 1000) as i32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gregorian_round_trip() {
        for d in -800_000..800_000 {
            let (y, m, dd) = gregorian_civil(d);
            assert_eq!(gregorian_days(y, m, dd), d);
        }
        assert_eq!(gregorian_days(1970, 1, 1), 0);
        assert_eq!(gregorian_days(1582, 10, 15), CUTOVER_DAY);
    }

    #[test]
    fn julian_round_trip() {
        for d in -800_000..800_000 {
            let (y, m, dd) = julian_civil(d);
            assert_eq!(julian_days(y, m, dd), d);
        }
        assert_eq!(julian_days(1582, 10, 5), CUTOVER_DAY);
        assert_eq!(civil(CUTOVER_DAY - 1), (1582, 10, 4));
    }

    #[test]
    fn weeks_follow_locale_us() {
        let check = |y, m, d, woy, wy| {
            let f = Fields::from_local_millis(gregorian_days(y, m, d) * MS_PER_DAY);
            assert_eq!((f.week_of_year, f.week_year), (woy, wy), "{y}-{m}-{d}");
        };
        check(2024, 12, 28, 52, 2024);
        check(2024, 12, 29, 1, 2025);
        check(2025, 1, 1, 1, 2025);
        check(2020, 12, 26, 52, 2020);
        check(2020, 12, 27, 1, 2021);
        check(2021, 1, 2, 1, 2021);
        check(2022, 12, 31, 53, 2022);
    }
}
