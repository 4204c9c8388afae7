//! Medians, percentiles and number formatting for the result tables.

/// The median of `values` (mean of the middle two for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The `p`-th percentile (0..=100, nearest rank) of `values`, sorting them in place.
pub fn percentile(values: &mut [u64], p: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

/// A histogram of durations (or any `u64`) in log-linear buckets: exact below 64, then
/// 32 buckets per power of two (within about 3%). Fixed size (about 15 KiB), so a run
/// can record millions of latencies without keeping them.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; Histogram::bucket(u64::MAX) + 1],
            total: 0,
        }
    }
}

impl Histogram {
    fn bucket(v: u64) -> usize {
        if v < 64 {
            return v as usize;
        }
        let exp = 63 - v.leading_zeros(); // 6..=63
        let mantissa = (v >> (exp - 5)) & 31;
        64 + ((exp - 6) * 32) as usize + mantissa as usize
    }

    /// The smallest value of bucket `i`, and its width.
    fn range(i: usize) -> (u64, u64) {
        if i < 64 {
            return (i as u64, 1);
        }
        let exp = (i - 64) / 32 + 6;
        let mantissa = ((i - 64) % 32) as u64;
        ((32 + mantissa) << (exp - 5), 1 << (exp - 5))
    }

    /// Counts `v` once.
    pub fn record(&mut self, v: u64) {
        self.counts[Self::bucket(v)] += 1;
        self.total += 1;
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `p`-th percentile (0..=100, nearest rank), as the middle of its bucket;
    /// `None` if empty.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = Self::range(i);
                return Some(low + width / 2);
            }
        }
        None
    }
}

/// Formats a number with a k/M/G suffix and three significant digits.
pub fn si(x: f64) -> String {
    let (v, unit) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, "G"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e3 => (x / 1e3, "k"),
        _ => (x, ""),
    };
    let digits = match v.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        _ => 2,
    };
    format!("{v:.digits$}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentile() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut v, 50.0), Some(50));
        assert_eq!(percentile(&mut v, 99.0), Some(99));
        assert_eq!(percentile(&mut v, 0.0), Some(1));
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    #[test]
    fn histogram_percentiles_within_its_precision() {
        let mut h = Histogram::default();
        assert_eq!(h.percentile(50.0), None);
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        assert_eq!(h.count(), 100_000);
        for (p, want) in [(50.0, 50_000_000.0), (99.0, 99_000_000.0), (100.0, 1e8)] {
            let got = h.percentile(p).unwrap() as f64;
            assert!((got / want - 1.0).abs() < 0.035, "p{p}: {got} vs {want}");
        }
        let mut small = Histogram::default();
        small.record(7);
        small.record(u64::MAX);
        assert_eq!(small.percentile(50.0), Some(7));
        for v in [0u64, 63, 64, 65, 127, 128, 1 << 40, u64::MAX] {
            let (low, width) = Histogram::range(Histogram::bucket(v));
            assert!(low <= v && v - low < width, "{v}: {low} + {width}");
        }
    }

    #[test]
    fn si_suffixes() {
        assert_eq!(si(405_000.0), "405k");
        assert_eq!(si(4_700_000_000.0), "4.70G");
        assert_eq!(si(12.345), "12.3");
        assert_eq!(si(0.5), "0.50");
    }
}
