//! HTTP dates (RFC 9110, 5.6.7): `If-Modified-Since` is written in the one preferred form
//! (`Sun, 06 Nov 1994 08:49:37 GMT`), and `Last-Modified` is read in any of the three forms a
//! server may send (that one, RFC 850's `Sunday, 06-Nov-94 08:49:37 GMT`, and C's asctime
//! `Sun Nov  6 08:49:37 1994`). Whole seconds only, as HTTP has them.
//!
//! Not for anything but HTTP headers: no time zones but GMT, no dates before 1970.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `time` as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT` (before 1970: the epoch).
pub fn format(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Reads an HTTP date in any of its three forms; `None` for anything else.
pub fn parse(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    if value.len() > 64 || !value.is_ascii() {
        return None;
    }
    let words: Vec<&str> = value.split_ascii_whitespace().collect();
    let (year, month, day, clock) = match words.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [wd, d, mon, y, clock, "GMT"] if wd.ends_with(',') => {
            (y.parse::<i64>().ok()?, *mon, d.parse::<u32>().ok()?, *clock)
        }
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [wd, date, clock, "GMT"] if wd.ends_with(',') => {
            let mut parts = date.split('-');
            let d = parts.next()?.parse::<u32>().ok()?;
            let mon = parts.next()?;
            let y = parts.next()?;
            if parts.next().is_some() || y.len() != 2 {
                return None;
            }
            let y = y.parse::<i64>().ok()?;
            // Two-digit years: RFC 9110 says a date more than 50 years ahead is in the past.
            (if y < 70 { 2000 + y } else { 1900 + y }, mon, d, *clock)
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [_, mon, d, clock, y] => (y.parse::<i64>().ok()?, *mon, d.parse::<u32>().ok()?, *clock),
        _ => return None,
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let mut hms = clock.split(':').map(|p| p.parse::<u64>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || h > 23 || mi > 59 || s > 60 || !(1..=31).contains(&day) {
        return None;
    }
    if !(1970..=9999).contains(&year) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_three_forms_of_rfc_9110s_example() {
        let t = at(784_111_777);
        assert_eq!(format(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse("Sunday, 06-Nov-94 08:49:37 GMT"), Some(t));
        assert_eq!(parse("Sun Nov  6 08:49:37 1994"), Some(t));
    }

    #[test]
    fn round_trips_and_edges() {
        for secs in [0, 86_399, 951_782_400, 1_709_164_800, 4_102_444_800] {
            assert_eq!(parse(&format(at(secs))), Some(at(secs)), "{secs}");
        }
        // Leap day, and sub-second precision is dropped.
        assert_eq!(format(at(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            format(at(0) + Duration::from_millis(1500)),
            "Thu, 01 Jan 1970 00:00:01 GMT"
        );
    }

    #[test]
    fn refuses_what_is_not_a_date() {
        for bad in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Sun, 06 Nov 1960 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
