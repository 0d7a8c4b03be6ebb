//! Reading raw CSV values: empty cells, numbers, and UTC days.

/// `NULL` and empty cells are both "no value" in billing exports.
pub(super) fn null_if_empty(v: &[u8]) -> Option<&[u8]> {
    (!v.is_empty() && v != b"NULL" && v != b"null").then_some(v)
}

pub(super) fn parse_number(raw: &[u8]) -> Option<f64> {
    let v = null_if_empty(raw)?;
    let n: f64 = std::str::from_utf8(v).ok()?.trim().parse().ok()?;
    n.is_finite().then_some(n)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date with an optional UTC time.
pub(super) fn parse_day(raw: &[u8]) -> Option<i32> {
    let date = raw.get(..10)?;
    if !valid_time(&raw[10..]) || date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        date[r].iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let d = chrono::NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

/// The part after the date: nothing, or ` HH:MM[:SS[.fff]]` / `THH:MM...`, then optionally a
/// UTC marker (`Z`, `+00:00`, `+0000`). A time in another offset would put cost on the wrong day.
pub(super) fn valid_time(rest: &[u8]) -> bool {
    if rest.is_empty() {
        return true;
    }
    let rest = match rest.strip_suffix(b"Z") {
        Some(r) => r,
        None => ["+00:00", "+0000", "-00:00"]
            .iter()
            .find_map(|s| rest.strip_suffix(s.as_bytes()))
            .unwrap_or(rest),
    };
    if rest.is_empty() {
        return true;
    }
    let (sep, time) = (rest[0], &rest[1..]);
    if sep != b' ' && sep != b'T' {
        return false;
    }
    let shape = |t: &[u8]| t.len() >= 5 && t[2] == b':' && t[..2].iter().all(u8::is_ascii_digit);
    if !shape(time) || !time[3..5].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let more = &time[5..];
    more.is_empty()
        || (more.len() >= 3
            && more[0] == b':'
            && more[1..3].iter().all(u8::is_ascii_digit)
            && (more.len() == 3
                || (more[3] == b'.' && more.len() > 4 && more[4..].iter().all(u8::is_ascii_digit))))
}
