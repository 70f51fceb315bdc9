//! A fixed-size log-linear histogram of `u64` values (nanoseconds, in practice): exact below 128,
//! then 64 buckets per power of two, so every recorded value is known to within 1/64 (1.6 %).
//! Recording is an index computation and an increment; merging is adding bucket counts.

use serde::{Deserialize, Serialize};

/// Values below this are counted exactly.
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above [`LINEAR`] (2^6).
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// The highest power of two with its own buckets: 2^40 ns is about 18 minutes; larger values
/// land in the last bucket (and still count in `max`).
const MAX_EXPONENT: u32 = 40;
const BUCKETS: usize = (LINEAR + (MAX_EXPONENT as u64 - SUB_BITS as u64) * SUB) as usize;

/// Counts of values in log-linear buckets, plus the exact count, sum, minimum and maximum.
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// Percentiles and extremes of a histogram, in the histogram's unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

fn bucket_of(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    // `value >= 128`, so the exponent is at least 7 = SUB_BITS + 1.
    let exponent = 63 - value.leading_zeros();
    if exponent > MAX_EXPONENT {
        return BUCKETS - 1;
    }
    let mantissa = (value >> (exponent - SUB_BITS)) & (SUB - 1);
    let index = LINEAR + u64::from(exponent - SUB_BITS - 1) * SUB + mantissa;
    (index as usize).min(BUCKETS - 1)
}

/// The largest value that falls in `bucket` (what a percentile reports: an upper bound).
fn bucket_high(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < LINEAR {
        return bucket;
    }
    let exponent = (bucket - LINEAR) / SUB + u64::from(SUB_BITS) + 1;
    let mantissa = (bucket - LINEAR) % SUB;
    let step = 1u64 << (exponent - u64::from(SUB_BITS));
    (1u64 << exponent) + mantissa * step + (step - 1)
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.count += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// Add another histogram's values to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` in `[0, 1]`: an upper bound within 1/64 of the true value, never
    /// above the maximum recorded. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                if bucket == BUCKETS - 1 {
                    return self.max;
                }
                return bucket_high(bucket).min(self.max).max(self.min);
            }
        }
        self.max
    }

    pub fn summary(&self) -> Summary {
        if self.count == 0 {
            return Summary::default();
        }
        Summary {
            count: self.count,
            min: self.min,
            mean: self.sum as f64 / self.count as f64,
            p50: self.quantile(0.50),
            p90: self.quantile(0.90),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
            max: self.max,
        }
    }

    /// The summary with every value divided by `unit` (e.g. 1000 for ns → µs).
    pub fn summary_in(&self, unit: u64) -> Summary {
        let s = self.summary();
        let d = |v: u64| v / unit.max(1);
        Summary {
            count: s.count,
            min: d(s.min),
            mean: s.mean / unit.max(1) as f64,
            p50: d(s.p50),
            p90: d(s.p90),
            p99: d(s.p99),
            p999: d(s.p999),
            max: d(s.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover_their_values() {
        let mut previous = 0;
        for v in 0..100_000u64 {
            let b = bucket_of(v);
            assert!(b >= previous, "{v}");
            previous = b;
        }
        for v in (0..10_000u64).chain((1..40).map(|e| (1u64 << e) + 12_345)) {
            let b = bucket_of(v);
            assert!(
                bucket_high(b) >= v,
                "{v} above its bucket's top {}",
                bucket_high(b)
            );
            if v >= LINEAR {
                let width = bucket_high(b) - v;
                assert!(width <= v / 64, "{v}: bucket too wide ({width})");
            }
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_close() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 10);
        }
        let s = h.summary();
        assert_eq!(s.count, 100_000);
        assert_eq!(s.max, 1_000_000);
        assert_eq!(s.min, 10);
        for (got, want) in [(s.p50, 500_000), (s.p99, 990_000), (s.p90, 900_000)] {
            let err = (got as f64 - want as f64).abs() / want as f64;
            assert!(err < 0.02, "{got} vs {want}");
        }
        assert!((s.mean - 500_005.0).abs() < 1.0);
    }

    #[test]
    fn merges_and_handles_empty() {
        let mut a = Histogram::new();
        assert_eq!(a.summary(), Summary::default());
        assert_eq!(a.quantile(0.5), 0);
        let mut b = Histogram::new();
        a.record(5);
        b.record(7);
        b.record(1 << 50);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.max(), 1 << 50);
        assert_eq!(a.quantile(0.0), 5);
        assert_eq!(a.quantile(0.5), 7);
        assert_eq!(a.quantile(1.0), 1 << 50);
        assert_eq!(a.summary_in(1).min, 5);
    }
}
