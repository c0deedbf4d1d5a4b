//! Time as the sans-IO parts of Tandem see it: a monotonic instant in microseconds that the caller passes in.
//! Nothing in `sync` or `dataplane` reads a clock, so simulations can run in virtual time.

use std::fmt;
use std::ops::{Add, Sub};

/// A point in time, microseconds since an arbitrary start (the process start, or a simulation's zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

/// An instant or none, in the 8 bytes of an [`Instant`] (an `Option<Instant>` takes 16): for records kept
/// per state, by the million. Stored as the instant plus one, 0 for none (`u64::MAX` saturates).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaybeInstant(u64);

impl MaybeInstant {
    /// No instant.
    pub const NONE: MaybeInstant = MaybeInstant(0);

    /// `at`.
    pub fn some(at: Instant) -> MaybeInstant {
        MaybeInstant(at.0.saturating_add(1))
    }

    /// The instant, if any.
    pub fn get(self) -> Option<Instant> {
        self.0.checked_sub(1).map(Instant)
    }

    /// The instant, if any, leaving none.
    pub fn take(&mut self) -> Option<Instant> {
        std::mem::take(self).get()
    }
}

impl From<Option<Instant>> for MaybeInstant {
    fn from(at: Option<Instant>) -> MaybeInstant {
        at.map_or(MaybeInstant::NONE, MaybeInstant::some)
    }
}

/// A span of time in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

impl Instant {
    /// The start of time.
    pub const ZERO: Instant = Instant(0);

    /// Whole seconds since the start (pf keeps state times in seconds).
    pub fn secs(self) -> u64 {
        self.0 / 1_000_000
    }

    /// The time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    /// No time.
    pub const ZERO: Duration = Duration(0);

    /// `n` microseconds.
    pub const fn micros(n: u64) -> Duration {
        Duration(n)
    }

    /// `n` milliseconds.
    pub const fn millis(n: u64) -> Duration {
        Duration(n * 1_000)
    }

    /// `n` seconds.
    pub const fn secs(n: u64) -> Duration {
        Duration(n * 1_000_000)
    }

    /// The span in microseconds.
    pub fn as_micros(self) -> u64 {
        self.0
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(d.0))
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, d: Duration) -> Duration {
        Duration(self.0.saturating_add(d.0))
    }
}

impl std::ops::Mul<u32> for Duration {
    type Output = Duration;
    fn mul(self, k: u32) -> Duration {
        Duration(self.0.saturating_mul(u64::from(k)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            us if us < 1_000 => write!(f, "{us}us"),
            us if us < 1_000_000 => write!(f, "{:.3}ms", us as f64 / 1e3),
            us => write!(f, "{:.3}s", us as f64 / 1e6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maybe_instant_keeps_zero_and_none_apart() {
        assert_eq!(MaybeInstant::NONE.get(), None);
        assert_eq!(MaybeInstant::some(Instant::ZERO).get(), Some(Instant::ZERO));
        let mut m = MaybeInstant::some(Instant(42));
        assert_eq!(m.take(), Some(Instant(42)));
        assert_eq!(m, MaybeInstant::NONE);
        assert_eq!(MaybeInstant::from(Some(Instant(7))).get(), Some(Instant(7)));
        assert_eq!(std::mem::size_of::<MaybeInstant>(), 8);
    }
}
