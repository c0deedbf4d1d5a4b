//! State expiry without scanning the table: a hashed timing wheel of doubly linked slot lists over state
//! indices, with lazy rescheduling.
//!
//! A packet that refreshes a state only writes the state's new deadline; nothing is relinked on the packet
//! path. When the wheel reaches the slot a state was filed under, it asks the owner for the state's real
//! deadline and either expires it or files it again under that deadline. A state is therefore visited at
//! most once per timeout interval (or once per turn of the wheel for timeouts longer than a turn): O(1)
//! amortised per state, and never per packet. Work per call is bounded so a mass expiry cannot stall a
//! worker.

use tandem_sync::time::{Duration, Instant};

const NONE: u32 = u32::MAX;

/// The wheel. Entries are state indices below the capacity it was built with.
#[derive(Debug)]
pub struct ExpiryWheel {
    heads: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
    slot_of: Vec<u32>,
    tick: u64,
    /// The first tick not yet processed.
    cursor: u64,
    /// Entries filed.
    len: usize,
}

/// What the owner says about a state the wheel reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// It has expired: the wheel forgets it and the owner removes it.
    Expired,
    /// It was refreshed: file it under this deadline.
    Later(Instant),
}

impl ExpiryWheel {
    /// A wheel for `capacity` states, with `slots` slots of `tick` each.
    pub fn new(capacity: usize, slots: usize, tick: Duration, now: Instant) -> ExpiryWheel {
        let tick = tick.as_micros().max(1);
        ExpiryWheel {
            heads: vec![NONE; slots.max(1)],
            next: vec![NONE; capacity],
            prev: vec![NONE; capacity],
            slot_of: vec![NONE; capacity],
            tick,
            cursor: now.0 / tick,
            len: 0,
        }
    }

    /// Entries filed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is filed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Files `index` under `deadline` (moving it if it was filed already). A deadline in the past is filed
    /// under the next tick to process.
    pub fn schedule(&mut self, index: u32, deadline: Instant) {
        let i = index as usize;
        if self.slot_of[i] != NONE {
            self.unlink(index);
        }
        let tick = (deadline.0 / self.tick).max(self.cursor);
        let slot = (tick % self.heads.len() as u64) as u32;
        let head = self.heads[slot as usize];
        self.next[i] = head;
        self.prev[i] = NONE;
        if head != NONE {
            self.prev[head as usize] = index;
        }
        self.heads[slot as usize] = index;
        self.slot_of[i] = slot;
        self.len += 1;
    }

    /// Removes `index` from the wheel (the state went away for another reason); a no-op if not filed.
    pub fn cancel(&mut self, index: u32) {
        if self.slot_of[index as usize] != NONE {
            self.unlink(index);
        }
    }

    fn unlink(&mut self, index: u32) {
        let i = index as usize;
        let (next, prev) = (self.next[i], self.prev[i]);
        if prev == NONE {
            self.heads[self.slot_of[i] as usize] = next;
        } else {
            self.next[prev as usize] = next;
        }
        if next != NONE {
            self.prev[next as usize] = prev;
        }
        self.next[i] = NONE;
        self.prev[i] = NONE;
        self.slot_of[i] = NONE;
        self.len -= 1;
    }

    /// Processes the slots whose time has come, up to `budget` entries, asking `due` about each; returns
    /// the number of entries expired. Call it often (every poll) with a small budget.
    pub fn advance(
        &mut self,
        now: Instant,
        budget: usize,
        mut due: impl FnMut(u32) -> Due,
    ) -> usize {
        let now_tick = now.0 / self.tick;
        // After a long pause, one turn of the wheel covers every slot.
        let turn = self.heads.len() as u64;
        if now_tick > self.cursor + turn {
            self.cursor = now_tick - turn;
        }
        let mut work = 0;
        let mut expired = 0;
        while self.cursor <= now_tick {
            let slot = (self.cursor % turn) as usize;
            // Entries re-filed under this same slot (a deadline a whole turn away) go to the list head, so
            // walking from the head could meet them again: take the list out first.
            let mut entry = std::mem::replace(&mut self.heads[slot], NONE);
            while entry != NONE {
                if work == budget {
                    // Put the unvisited rest back and resume here next time.
                    self.relink_rest(slot, entry);
                    return expired;
                }
                work += 1;
                let next = self.next[entry as usize];
                if next != NONE {
                    self.prev[next as usize] = NONE;
                }
                self.next[entry as usize] = NONE;
                self.prev[entry as usize] = NONE;
                self.slot_of[entry as usize] = NONE;
                self.len -= 1;
                match due(entry) {
                    Due::Expired => expired += 1,
                    Due::Later(deadline) => {
                        // Never file back into the slot being processed for this same tick.
                        let deadline = if deadline.0 / self.tick <= self.cursor {
                            Instant((self.cursor + 1) * self.tick)
                        } else {
                            deadline
                        };
                        self.schedule(entry, deadline);
                    }
                }
                entry = next;
            }
            self.cursor += 1;
        }
        expired
    }

    /// Puts the chain starting at `first` (already detached) back at the head of `slot`, keeping entries
    /// filed there meanwhile.
    fn relink_rest(&mut self, slot: usize, first: u32) {
        let mut last = first;
        while self.next[last as usize] != NONE {
            last = self.next[last as usize];
        }
        let head = self.heads[slot];
        self.next[last as usize] = head;
        if head != NONE {
            self.prev[head as usize] = last;
        }
        self.prev[first as usize] = NONE;
        self.heads[slot] = first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn at(ms: u64) -> Instant {
        Instant(ms * 1000)
    }

    #[test]
    fn states_expire_after_their_deadline_and_not_before() {
        let mut wheel = ExpiryWheel::new(8, 64, Duration::millis(100), at(0));
        wheel.schedule(1, at(1000));
        wheel.schedule(2, at(3000));
        let mut gone = Vec::new();
        wheel.advance(at(900), 100, |i| {
            gone.push(i);
            Due::Expired
        });
        assert!(gone.is_empty());
        wheel.advance(at(1100), 100, |i| {
            gone.push(i);
            Due::Expired
        });
        assert_eq!(gone, [1]);
        wheel.advance(at(3100), 100, |i| {
            gone.push(i);
            Due::Expired
        });
        assert_eq!(gone, [1, 2]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn a_refreshed_state_is_filed_again_under_its_new_deadline() {
        let mut wheel = ExpiryWheel::new(8, 64, Duration::millis(100), at(0));
        wheel.schedule(3, at(500));
        let mut visits = 0;
        wheel.advance(at(600), 100, |_| {
            visits += 1;
            Due::Later(at(2000))
        });
        assert_eq!((visits, wheel.len()), (1, 1));
        let expired = wheel.advance(at(2100), 100, |_| {
            visits += 1;
            Due::Expired
        });
        assert_eq!((visits, expired), (2, 1));
    }

    #[test]
    fn deadlines_beyond_one_turn_come_round_again() {
        // 16 slots of 100 ms: one turn is 1.6 s; a deadline 10 s away is seen about six times.
        let mut wheel = ExpiryWheel::new(4, 16, Duration::millis(100), at(0));
        wheel.schedule(0, at(10_000));
        let mut visits = 0;
        let mut expired_at = None;
        for ms in (0..12_000).step_by(50) {
            wheel.advance(at(ms), 10, |_| {
                visits += 1;
                if ms >= 10_000 {
                    expired_at = Some(ms);
                    Due::Expired
                } else {
                    Due::Later(at(10_000))
                }
            });
        }
        assert!(visits <= 8, "visited {visits} times");
        let expired_at = expired_at.expect("expired");
        assert!(
            (10_000..=10_100).contains(&expired_at),
            "expired at {expired_at}"
        );
    }

    #[test]
    fn cancelled_states_are_never_reported() {
        let mut wheel = ExpiryWheel::new(8, 8, Duration::millis(100), at(0));
        for i in 0..5 {
            wheel.schedule(i, at(100));
        }
        wheel.cancel(2);
        wheel.cancel(2);
        let mut seen = Vec::new();
        wheel.advance(at(200), 100, |i| {
            seen.push(i);
            Due::Expired
        });
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 3, 4]);
    }

    #[test]
    fn the_budget_bounds_work_per_call_and_nothing_is_lost() {
        let mut wheel = ExpiryWheel::new(1000, 32, Duration::millis(100), at(0));
        for i in 0..1000 {
            wheel.schedule(i, at(100));
        }
        let mut seen = HashMap::new();
        let mut calls = 0;
        while !wheel.is_empty() {
            calls += 1;
            let expired = wheel.advance(at(150), 64, |i| {
                *seen.entry(i).or_insert(0) += 1;
                Due::Expired
            });
            assert!(expired <= 64);
            // New entries filed under the slot being processed keep their place.
            if calls == 3 {
                wheel.schedule(5000 % 1000, at(150));
            }
        }
        assert_eq!(seen.len(), 1000);
        assert!(seen.values().all(|v| *v <= 2));
        assert!(calls >= 1000 / 64);
    }

    #[test]
    fn a_long_pause_costs_one_turn_of_the_wheel() {
        let mut wheel = ExpiryWheel::new(4, 16, Duration::millis(100), at(0));
        wheel.schedule(1, at(50));
        let expired = wheel.advance(at(86_400_000), 10, |_| Due::Expired);
        assert_eq!(expired, 1);
    }
}
