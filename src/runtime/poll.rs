//! How a polling thread waits when there is nothing to do: `busy` spins; `adaptive` spins for a short
//! while after the last packet, then sleeps for exponentially longer naps up to the profile's limit, so
//! that several appliances and their traffic can share two cores.

use std::time::Duration;

use tandem_config::{PollMode, Workers};

/// Empty polls in a row before an adaptive poller starts to sleep.
const SPIN_POLLS: u32 = 256;

/// The waiting policy of one polling thread.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    mode: PollMode,
    max_sleep: Duration,
    empty_polls: u32,
    sleep: Duration,
}

impl Backoff {
    /// The policy a profile asks for.
    pub fn from_profile(workers: &Workers) -> Backoff {
        Backoff::new(
            workers.polling,
            Duration::from_micros(u64::from(workers.idle_sleep_us)),
        )
    }

    /// A policy with an explicit mode and longest sleep.
    pub fn new(mode: PollMode, max_sleep: Duration) -> Backoff {
        Backoff {
            mode,
            max_sleep,
            empty_polls: 0,
            sleep: Duration::from_micros(1),
        }
    }

    /// Called after every poll with whether it found work; sleeps when an adaptive poller has been idle.
    pub fn after_poll(&mut self, busy: bool) {
        if busy {
            self.empty_polls = 0;
            self.sleep = Duration::from_micros(1);
            return;
        }
        match self.mode {
            PollMode::Busy => std::hint::spin_loop(),
            PollMode::Adaptive => {
                self.empty_polls = self.empty_polls.saturating_add(1);
                if self.empty_polls > SPIN_POLLS {
                    std::thread::sleep(self.sleep);
                    self.sleep = (self.sleep * 2).min(self.max_sleep);
                }
            }
        }
    }
}
