//! The banding rules: how a count, a share or a duration is published. Pure functions of the
//! number and the settings, so that a reader recomputes every published cell exactly.

use crate::settings::TransparencySettings;

/// A count as published: `0`; `<threshold` from 1 to `threshold - 1`; the number itself above.
pub fn count(value: u64, rules: &TransparencySettings) -> String {
    if value == 0 {
        "0".to_owned()
    } else if value < rules.threshold {
        format!("<{}", rules.threshold)
    } else {
        value.to_string()
    }
}

/// A count of a category a law requires banded: `0-249`, `250-499`, ... for a band of 250;
/// with a band of 0, [`count`].
pub fn banded(value: u64, band: u64, rules: &TransparencySettings) -> String {
    if band == 0 {
        return count(value, rules);
    }
    let low = value / band * band;
    format!("{low}-{}", low + band - 1)
}

/// What is published instead of a share or a statistic over fewer than `threshold` requests.
pub fn too_few(rules: &TransparencySettings) -> String {
    format!("n/a (fewer than {})", rules.threshold)
}

/// A share `part / whole` in percent with one decimal (`97.5%`), or [`too_few`] when `whole`
/// is under the threshold (a share of a small number tells the number).
pub fn share(part: u64, whole: u64, rules: &TransparencySettings) -> String {
    if whole == 0 || whole < rules.threshold {
        return too_few(rules);
    }
    // Integer arithmetic, rounded half up, so that every reader gets the same digits.
    let tenths = (part * 1000 + whole / 2) / whole;
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// The nearest-rank percentile `p` (1 to 100) of sorted durations in seconds, as hours with one
/// decimal (`36.5`), or [`too_few`] when there are fewer than `threshold`.
pub fn hours_percentile(sorted_secs: &[i64], p: u64, rules: &TransparencySettings) -> String {
    let n = sorted_secs.len() as u64;
    if n == 0 || n < rules.threshold {
        return too_few(rules);
    }
    // Nearest rank: the smallest value with at least p% of the values at or below it.
    let rank = (p * n).div_ceil(100).max(1);
    let secs = sorted_secs[usize::try_from(rank - 1).unwrap_or(0)].max(0);
    let secs = u64::try_from(secs).unwrap_or(0);
    let tenths = (secs * 10 + 1800) / 3600;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// Reads a published count back as a number for drawing: exact counts as themselves, `<10` as
/// 10 (drawn as an upper bound), a band as its upper end; `None` for anything else.
pub fn drawable(cell: &str) -> Option<(u64, bool)> {
    if let Ok(v) = cell.parse::<u64>() {
        return Some((v, true));
    }
    if let Some(t) = cell.strip_prefix('<') {
        return t.parse::<u64>().ok().map(|v| (v, false));
    }
    if let Some((_, high)) = cell.split_once('-') {
        return high.parse::<u64>().ok().map(|v| (v, false));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(threshold: u64) -> TransparencySettings {
        TransparencySettings {
            threshold,
            country_minimum: 10,
            categories: vec![],
        }
    }

    #[test]
    fn counts_below_the_threshold_are_published_as_less_than_it() {
        let r = rules(10);
        assert_eq!(count(0, &r), "0");
        assert_eq!(count(1, &r), "<10");
        assert_eq!(count(9, &r), "<10");
        assert_eq!(count(10, &r), "10");
        assert_eq!(count(11, &r), "11");
        let r = rules(25);
        assert_eq!(count(24, &r), "<25");
        assert_eq!(count(25, &r), "25");
        let r = rules(1);
        assert_eq!(count(1, &r), "1");
    }

    #[test]
    fn bands_have_inclusive_edges() {
        let r = rules(10);
        assert_eq!(banded(0, 250, &r), "0-249");
        assert_eq!(banded(1, 250, &r), "0-249");
        assert_eq!(banded(249, 250, &r), "0-249");
        assert_eq!(banded(250, 250, &r), "250-499");
        assert_eq!(banded(499, 250, &r), "250-499");
        assert_eq!(banded(500, 250, &r), "500-749");
        assert_eq!(banded(9, 0, &r), "<10");
    }

    #[test]
    fn shares_and_percentiles_need_enough_requests() {
        let r = rules(10);
        assert_eq!(share(1, 9, &r), "n/a (fewer than 10)");
        assert_eq!(share(9, 10, &r), "90.0%");
        assert_eq!(share(2, 3000, &r), "0.1%");
        assert_eq!(share(1, 3000, &r), "0.0%");
        let secs: Vec<i64> = (1..=10).map(|h| h * 3600).collect();
        assert_eq!(hours_percentile(&secs, 50, &r), "5.0");
        assert_eq!(hours_percentile(&secs, 90, &r), "9.0");
        assert_eq!(hours_percentile(&secs[..9], 50, &r), "n/a (fewer than 10)");
        assert_eq!(drawable("<10"), Some((10, false)));
        assert_eq!(drawable("250-499"), Some((499, false)));
        assert_eq!(drawable("42"), Some((42, true)));
    }
}
