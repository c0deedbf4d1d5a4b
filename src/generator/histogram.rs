//! A latency histogram of fixed size: exact below 64 µs, then 32 buckets per power of two (about 3 %
//! resolution) up to 2^40 µs. Recording is an index computation and an increment, so the generator's hot
//! path can record every connection without allocating.

/// Values below this are counted exactly.
const LINEAR: u64 = 64;
/// Buckets per power of two above [`LINEAR`].
const SUB_BITS: u32 = 5;
/// Highest power of two kept apart; larger values share the last bucket.
const MAX_EXP: u32 = 40;
const BUCKETS: usize =
    LINEAR as usize + ((MAX_EXP - LINEAR.trailing_zeros() + 1) as usize) * (1 << SUB_BITS);

/// Counts of values in microseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max: 0,
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.total)
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .field("max", &self.max)
            .finish()
    }
}

fn bucket_of(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = (63 - v.leading_zeros()).min(MAX_EXP);
    let sub = if exp == MAX_EXP && v >> MAX_EXP > 1 {
        (1 << SUB_BITS) - 1
    } else {
        (v >> (exp - SUB_BITS)) as usize & ((1 << SUB_BITS) - 1)
    };
    LINEAR as usize + (exp - LINEAR.trailing_zeros()) as usize * (1 << SUB_BITS) + sub
}

/// The smallest value that falls in `bucket`.
fn low_of(bucket: usize) -> u64 {
    if bucket < LINEAR as usize {
        return bucket as u64;
    }
    let rel = bucket - LINEAR as usize;
    let exp = (rel >> SUB_BITS) as u32 + LINEAR.trailing_zeros();
    let sub = (rel & ((1 << SUB_BITS) - 1)) as u64;
    (1 << exp) | (sub << (exp - SUB_BITS))
}

impl Histogram {
    /// Counts one value.
    pub fn record(&mut self, micros: u64) {
        self.counts[bucket_of(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value below which a fraction `q` (0 to 1) of the values lie: the low edge of the bucket that
    /// holds it (never above the maximum); 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return low_of(bucket).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut last = 0;
        for v in (0..5000).chain([1 << 20, (1 << 20) + 12345, 1 << 39, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b < BUCKETS);
            assert!(
                low_of(b) <= v,
                "{v} in bucket {b} starting at {}",
                low_of(b)
            );
            assert!(b >= last || v > 5000);
            last = b;
        }
        for b in 0..BUCKETS - 1 {
            assert_eq!(bucket_of(low_of(b)), b);
            assert!(low_of(b + 1) > low_of(b));
        }
    }

    #[test]
    fn quantiles_are_within_the_resolution() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        for (q, exact) in [(0.5, 5000.0), (0.9, 9000.0), (0.99, 9900.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - exact).abs() / exact < 0.04, "q{q}: {got} vs {exact}");
        }
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!(h.max(), 10_000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }
}
