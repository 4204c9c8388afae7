//! HTTP dates (RFC 9110 §5.6.7), as a server may give them in `Retry-After`: the
//! preferred IMF-fixdate and the two obsolete forms every recipient must still read.
//! No clock here: the caller passes the current time where the rules need it.

/// Seconds since the Unix epoch for an HTTP date in any of its three forms, or `None` if
/// `value` is not one (or names a day that does not exist). `now` (Unix seconds) places
/// the two-digit years of the RFC 850 form: a year more than 50 years ahead of `now` is
/// taken as the most recent past year with those digits. Dates before 1970 give 0.
///
/// ```
/// use sockeye_proto::handshake::date::http_date;
///
/// let now = 1_764_000_000; // November 2025
/// let expected = Some(784_111_777);
/// assert_eq!(http_date(b"Sun, 06 Nov 1994 08:49:37 GMT", now), expected); // IMF-fixdate
/// assert_eq!(http_date(b"Sunday, 06-Nov-94 08:49:37 GMT", now), expected); // RFC 850
/// assert_eq!(http_date(b"Sun Nov  6 08:49:37 1994", now), expected); // asctime
/// assert_eq!(http_date(b"Sun, 31 Nov 1994 08:49:37 GMT", now), None);
/// ```
pub fn http_date(value: &[u8], now: u64) -> Option<u64> {
    let text = core::str::from_utf8(value).ok()?;
    let mut fields = text.split_ascii_whitespace();
    let day_name = fields.next()?;
    let (day, month, year, time) = match day_name.strip_suffix(',') {
        Some(long_or_short) => {
            let first = fields.next()?;
            if first.contains('-') {
                // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`.
                is_day_name(long_or_short, true).then_some(())?;
                let mut parts = first.split('-');
                let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
                if parts.next().is_some() || year.len() != 2 {
                    return None;
                }
                let year = two_digit_year(number(year)?, now);
                (number(day)?, month, year, fields.next()?)
            } else {
                // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
                is_day_name(long_or_short, false).then_some(())?;
                let (month, year) = (fields.next()?, fields.next()?);
                if year.len() != 4 {
                    return None;
                }
                (number(first)?, month, number(year)?, fields.next()?)
            }
        }
        None => {
            // asctime: `Sun Nov  6 08:49:37 1994` (no zone: it is GMT).
            is_day_name(day_name, false).then_some(())?;
            let (month, day, time, year) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
            );
            if fields.next().is_some() || year.len() != 4 {
                return None;
            }
            return unix_seconds(number(day)?, month, number(year)?, time);
        }
    };
    if fields.next()? != "GMT" || fields.next().is_some() {
        return None;
    }
    unix_seconds(day, month, year, time)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A day name, short (`Sun`) or in full (`Sunday`). Whether it is the right day is not
/// checked: the date decides.
fn is_day_name(name: &str, long: bool) -> bool {
    DAYS.iter().any(|day| {
        if long {
            *day == name
        } else {
            &day[..3] == name
        }
    })
}

/// A decimal number of 1 to 4 ASCII digits.
fn number(digits: &str) -> Option<i64> {
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The year of `yy` nearest `now` that is not more than 50 years ahead of it.
fn two_digit_year(yy: i64, now: u64) -> i64 {
    // An average Gregorian year; off by a day at most, which the 50-year rule absorbs.
    let now_year = 1970 + i64::try_from(now / 31_556_952).unwrap_or(i64::MAX / 2);
    let year = now_year - now_year.rem_euclid(100) + yy;
    if year > now_year + 50 {
        year - 100
    } else {
        year
    }
}

fn unix_seconds(day: i64, month: &str, year: i64, time: &str) -> Option<u64> {
    let month = MONTHS.iter().position(|m| *m == month)? + 1;
    let month = i64::try_from(month).ok()?;
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut clock = time.split(':');
    let (hour, minute, second) = (clock.next()?, clock.next()?, clock.next()?);
    if clock.next().is_some() || [hour, minute, second].iter().any(|part| part.len() != 2) {
        return None;
    }
    let (hour, minute, second) = (number(hour)?, number(minute)?, number(second)?);
    // 60: a leap second.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let seconds = days_since_epoch(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(u64::try_from(seconds).unwrap_or(0))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (the usual
/// era-based count: 400-year eras of 146,097 days, years starting in March).
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let march_based_month = (month + 9) % 12;
    let day_of_year = (153 * march_based_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_764_000_000; // 2025-11-24

    #[test]
    fn known_instants() {
        assert_eq!(http_date(b"Thu, 01 Jan 1970 00:00:00 GMT", NOW), Some(0));
        assert_eq!(
            http_date(b"Tue, 29 Feb 2000 12:00:00 GMT", NOW),
            Some(951_825_600)
        );
        assert_eq!(
            http_date(b"Wed, 21 Oct 2026 07:28:00 GMT", NOW),
            Some(1_792_567_680)
        );
        assert_eq!(
            http_date(b"Sat, 31 Dec 2016 23:59:60 GMT", NOW),
            Some(1_483_228_800)
        );
        assert_eq!(http_date(b"Mon, 01 Jan 1900 00:00:00 GMT", NOW), Some(0));
    }

    #[test]
    fn two_digit_years_are_at_most_50_years_ahead() {
        let at = |yy: &str| {
            let date = std::format!("Sunday, 01-Jan-{yy} 00:00:00 GMT");
            http_date(date.as_bytes(), NOW)
        };
        assert_eq!(at("70"), Some(3_155_760_000)); // 2070: 45 years ahead
        assert_eq!(at("26"), http_date(b"Thu, 01 Jan 2026 00:00:00 GMT", NOW));
        assert_eq!(at("75"), http_date(b"Thu, 01 Jan 2075 00:00:00 GMT", NOW));
        assert_eq!(at("76"), Some(189_302_400)); // 1976: 2076 is over 50 years ahead
    }

    #[test]
    fn malformed_dates_are_none() {
        for value in [
            &b""[..],
            b"Sun, 06 Nov 1994 08:49:37",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 06 Nov 1994 08:49:37 GMT extra",
            b"Sun, 06 Nov 94 08:49:37 GMT",
            b"Sun, 06 Now 1994 08:49:37 GMT",
            b"Sun, 00 Nov 1994 08:49:37 GMT",
            b"Sun, 29 Feb 1900 08:49:37 GMT",
            b"Sun, 06 Nov 1994 24:00:00 GMT",
            b"Sun, 06 Nov 1994 8:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49 GMT",
            b"Sun, +6 Nov 1994 08:49:37 GMT",
            b"Sunday, 06 Nov 1994 08:49:37 GMT",
            b"Sun, 06-Nov-94 08:49:37 GMT",
            b"Sunday, 06-Nov-1994 08:49:37 GMT",
            b"Sunday Nov  6 08:49:37 1994",
            b"Sun Nov  6 08:49:37 94",
            b"Sun Nov  6 08:49:37 1994 GMT",
            b"120",
            b"Sun, 06 Nov 1994 08:49:37 GMT\xff",
        ] {
            assert_eq!(
                http_date(value, NOW),
                None,
                "{:?}",
                core::str::from_utf8(value)
            );
        }
    }

    /// Writes `seconds` as an IMF-fixdate by counting days forward: an independent
    /// check of the era arithmetic.
    fn imf_fixdate(seconds: u64) -> std::string::String {
        let (mut days, rest) = (seconds / 86_400, seconds % 86_400);
        let weekday = DAYS[usize::try_from((days + 3) % 7).unwrap()];
        let mut year = 1970;
        loop {
            let length = if days_in_month(year, 2) == 29 {
                366
            } else {
                365
            };
            if days < length {
                break;
            }
            days -= length;
            year += 1;
        }
        let mut month = 1;
        while days >= u64::try_from(days_in_month(year, month)).unwrap() {
            days -= u64::try_from(days_in_month(year, month)).unwrap();
            month += 1;
        }
        std::format!(
            "{}, {:02} {} {year} {:02}:{:02}:{:02} GMT",
            &weekday[..3],
            days + 1,
            MONTHS[usize::try_from(month - 1).unwrap()],
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        )
    }

    proptest! {
        #[test]
        fn every_instant_round_trips(seconds in 0u64..253_402_300_800) {
            let date = imf_fixdate(seconds);
            prop_assert_eq!(http_date(date.as_bytes(), NOW), Some(seconds), "{}", date);
        }

        #[test]
        fn arbitrary_input_never_panics(value in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = http_date(&value, NOW);
        }
    }
}
