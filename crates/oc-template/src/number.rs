//! Number reading as `SimpleDateFormat` does it through `java.text.DecimalFormat` (`Locale.US`, integers
//! only, no grouping): any Unicode decimal digits, a leading `-`, an exponent (`2E3` is 2000), `NaN` (0) and
//! `∞`, and the value converted with `Number.intValue()` (wrapping for longs, saturating for doubles).

use crate::zone_data::DIGIT_ZEROS;

/// Value of a decimal digit as Java's `Character.digit(c, 10)` sees it, for Basic Multilingual Plane digits.
pub(crate) fn digit_value(c: char) -> Option<u32> {
    if c.is_ascii_digit() {
        return Some(c as u32 - '0' as u32);
    }
    let c = c as u32;
    let i = DIGIT_ZEROS.partition_point(|&z| z <= c);
    let zero = *DIGIT_ZEROS.get(i.checked_sub(1)?)?;
    (c - zero < 10).then_some(c - zero)
}

/// Significant digits kept exactly; more only count towards the magnitude.
const KEPT: usize = 40;

struct Digits {
    kept: [u8; KEPT],
    /// Significant digits seen (leading zeros excluded), like Java's `digitCount`.
    count: usize,
    saw_digit: bool,
}

impl Digits {
    fn read(text: &str, mut pos: usize, limit: usize) -> (Digits, usize) {
        let mut d = Digits { kept: [0; KEPT], count: 0, saw_digit: false };
        while pos < limit {
            let Some(c) = text[pos..limit].chars().next() else { break };
            let Some(v) = digit_value(c) else { break };
            d.saw_digit = true;
            if v != 0 || d.count > 0 {
                if d.count < KEPT {
                    d.kept[d.count] = v as u8;
                }
                d.count += 1;
            }
            pos += c.len_utf8();
        }
        (d, pos)
    }

    /// Digits without trailing zeros, as Java's `DigitList` trims them.
    fn trimmed(&self) -> usize {
        let mut n = self.count.min(KEPT);
        while n > 0 && self.kept[n - 1] == 0 {
            n -= 1;
        }
        if self.count > KEPT { self.count } else { n }
    }
}

/// Reads a number at `pos` within `text[..limit]`. Returns Java's `intValue()` and the end byte, or `None`
/// where `DecimalFormat.parse` returns null.
pub(crate) fn parse_int(text: &str, pos: usize, limit: usize) -> Option<(i32, usize)> {
    let s = text.get(pos..limit)?;
    // Fast path: a run of at most 18 ASCII digits not followed by anything DecimalFormat would read on.
    let bytes = s.as_bytes();
    let n = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if n > 0 && n <= 18 && bytes.get(n).is_none_or(|&b| b != b'E' && b.is_ascii()) {
        let v = bytes[..n].iter().fold(0i64, |v, &b| v * 10 + i64::from(b - b'0'));
        return Some((v as i32, pos + n)); // Java: (int) long
    }
    if s.starts_with("NaN") {
        return Some((0, pos + 3));
    }
    let negative = s.starts_with('-');
    let mut p = pos + usize::from(negative);
    if text[p..limit].starts_with('∞') {
        return Some((if negative { i32::MIN } else { i32::MAX }, p + '∞'.len_utf8()));
    }
    let (digits, end) = Digits::read(text, p, limit);
    p = end;
    let mut exponent: i32 = 0;
    if text[p..limit].starts_with('E') {
        let e_neg = text[p + 1..limit].starts_with('-');
        let e_start = p + 1 + usize::from(e_neg);
        let (e_digits, e_end) = Digits::read(text, e_start, limit);
        if e_digits.saw_digit {
            exponent = match e_digits.as_long(!e_neg) {
                Some(v) => {
                    let v = v as i32; // Java: (int) long
                    if e_neg { v.wrapping_neg() } else { v }
                }
                None if e_neg => i32::MIN,
                None => i32::MAX,
            };
            p = e_end;
        }
    }
    if !digits.saw_digit && digits.count == 0 {
        return None;
    }
    let decimal_at = (digits.count as i32).wrapping_add(exponent);
    Some((digits.int_value(decimal_at, negative), p))
}

impl Digits {
    /// The exponent's value when it fits a long (Java's `fitsIntoLong` then `getLong`), unsigned.
    fn as_long(&self, positive: bool) -> Option<i64> {
        let n = self.trimmed();
        if n == 0 {
            return Some(0);
        }
        let decimal_at = self.count;
        if decimal_at < n || decimal_at > 19 {
            return None;
        }
        let v = self.magnitude(n, decimal_at)?;
        if v > i64::MAX as u128 + u128::from(!positive) {
            return None;
        }
        Some(v as i64)
    }

    /// kept[..n] followed by zeros up to `decimal_at` digits.
    fn magnitude(&self, n: usize, decimal_at: usize) -> Option<u128> {
        if n > KEPT || decimal_at > 38 {
            return None;
        }
        let mut v: u128 = 0;
        for i in 0..decimal_at {
            v = v * 10 + u128::from(if i < n { self.kept[i] } else { 0 });
        }
        Some(v)
    }

    fn int_value(&self, decimal_at: i32, negative: bool) -> i32 {
        let n = self.trimmed();
        if n == 0 {
            return 0;
        }
        let saturated = if negative { i32::MIN } else { i32::MAX };
        if decimal_at > 19 {
            return saturated; // a double beyond any int
        }
        if decimal_at <= 0 {
            return 0; // |value| < 1, truncated
        }
        let at = decimal_at as usize;
        if at >= n {
            // Fits a long unless it is 19 digits beyond Long.MAX_VALUE: then Java goes through a double.
            let Some(v) = self.magnitude(n, at) else { return saturated };
            let limit = i64::MAX as u128 + u128::from(negative);
            if v > limit {
                return saturated;
            }
            let l = if negative { (v as i128).wrapping_neg() as i64 } else { v as i64 };
            return l as i32; // Java: (int) long, wrapping
        }
        // A fraction: Java makes a double and truncates it toward zero, saturating.
        let Some(int_part) = self.magnitude(n.min(at), at) else { return saturated };
        let f = int_part as f64;
        let f = if negative { -f } else { f };
        if f >= f64::from(i32::MAX) {
            i32::MAX
        } else if f <= f64::from(i32::MIN) {
            i32::MIN
        } else {
            f as i32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<(i32, usize)>) {
        assert_eq!(parse_int(input, 0, input.len()), expected, "{input:?}");
    }

    #[test]
    fn reads_like_decimal_format() {
        check("2024-", Some((2024, 4)));
        check("-5", Some((-5, 2)));
        check("+5", None);
        check("-", None);
        check("x", None);
        check("007", Some((7, 3)));
        check("000", Some((0, 3)));
        check("2E3", Some((2000, 3)));
        check("2e3", Some((2, 1)));
        check("2E-3", Some((0, 4)));
        check("25E-1", Some((2, 5)));
        check("2E+3", Some((2, 1)));
        check("2E", Some((2, 1)));
        check("1.5", Some((1, 1)));
        check("NaN", Some((0, 3)));
        check("∞", Some((i32::MAX, 3)));
        check("-∞", Some((i32::MIN, 4)));
        check("4294967297", Some((1, 10)));
        check("99999999999999999999", Some((i32::MAX, 20)));
        check("-99999999999999999999", Some((i32::MIN, 21)));
        check("٢٠٢٤", Some((2024, 8)));
        check("２０", Some((20, 6)));
        check("1E99999999999", Some((i32::MAX, 13)));
        check("1E4294967295", Some((0, 12)));
    }

    #[test]
    fn digits() {
        assert_eq!(digit_value('٣'), Some(3));
        assert_eq!(digit_value('a'), None);
        assert_eq!(digit_value('\u{10000}'), None);
    }
}
