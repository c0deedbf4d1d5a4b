//! VRRP version 3 virtual routers (RFC 5798 section 6), one per failover group, as state machines that
//! never touch a socket or a clock (the control thread feeds them advertisements and the time, and sends
//! what they ask). Beyond the RFC, a router is sync-aware: while its node is not in sync (a bulk update
//! pending) or has lost its sync peers, it advertises its priority lowered by the profile's demotion and
//! never preempts, so that a node without the states does not take traffic from one that has them.
//!
//! Times are microseconds on the control thread's clock; the RFC's are centiseconds.

use std::net::IpAddr;

use tandem_dataplane::wire::vrrp::{HOP_LIMIT, VrrpRepr};

/// Microseconds on the control thread's clock.
pub type Micros = u64;

const CS: Micros = 10_000;

/// A virtual router's state (section 6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not started, or shut down.
    Initialize,
    /// Watching a master.
    Backup,
    /// Forwarding for the virtual addresses.
    Master,
}

impl State {
    /// The RFC's name, for `tandem show failover`.
    pub const fn name(self) -> &'static str {
        match self {
            State::Initialize => "initialize",
            State::Backup => "backup",
            State::Master => "master",
        }
    }
}

/// One group's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// Virtual router id.
    pub vrid: u8,
    /// Priority, 1-254, or 255 for the owner of the virtual addresses.
    pub priority: u8,
    /// Advertisement interval, centiseconds (1-4095).
    pub interval_cs: u16,
    /// Whether a higher-priority backup takes over from a lower-priority master.
    pub preempt: bool,
    /// After start, how long a backup waits before it preempts.
    pub preempt_delay: Micros,
    /// The virtual addresses.
    pub addresses: Vec<IpAddr>,
    /// This router's primary address on the port (the advertisements' source; it breaks ties).
    pub primary: IpAddr,
    /// Subtracted from the priority while demoted.
    pub demotion: u8,
}

/// What a router asks the control thread to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Multicast this advertisement.
    Advertise(VrrpRepr),
    /// It became master: accept frames to the virtual MAC, answer ARP and ND for the virtual addresses,
    /// announce them (gratuitous ARP, unsolicited neighbour advertisements).
    BecameMaster,
    /// It stopped being master: stop accepting and answering for the virtual router.
    LeftMaster,
}

/// Why a received advertisement was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its TTL or hop limit was not 255: it was forwarded, or forged from off the link.
    HopLimit,
    /// It lists other addresses than ours for the virtual router (a misconfiguration: used anyway, as the
    /// RFC says, and counted).
    AddressMismatch,
    /// It advertises another interval than ours (used anyway: a backup learns the master's).
    IntervalMismatch,
}

/// A router's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouterCounts {
    /// Advertisements sent.
    pub sent: u64,
    /// Advertisements received and used.
    pub received: u64,
    /// Refused for a TTL or hop limit other than 255.
    pub bad_hop_limit: u64,
    /// Used, but listing other addresses.
    pub address_mismatch: u64,
    /// Used, but with another interval.
    pub interval_mismatch: u64,
    /// Times it became master.
    pub became_master: u64,
    /// Times it became backup (from master or initialize).
    pub became_backup: u64,
    /// Priority-0 advertisements received (a master leaving).
    pub master_left: u64,
}

/// One virtual router.
#[derive(Clone, Debug)]
pub struct Router {
    cfg: RouterConfig,
    state: State,
    /// The master's advertisement interval, learnt from it while backup.
    master_interval_cs: u16,
    adver_at: Option<Micros>,
    master_down_at: Option<Micros>,
    started: Micros,
    demoted: bool,
    /// The master's address, as last heard (ours while master).
    master: Option<IpAddr>,
    counts: RouterCounts,
    out: Vec<Output>,
}

impl Router {
    /// A router in Initialize.
    pub fn new(cfg: RouterConfig) -> Router {
        Router {
            master_interval_cs: cfg.interval_cs,
            cfg,
            state: State::Initialize,
            adver_at: None,
            master_down_at: None,
            started: 0,
            demoted: false,
            master: None,
            counts: RouterCounts::default(),
            out: Vec::new(),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &RouterConfig {
        &self.cfg
    }

    /// Its state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The master's address as last heard (ours while master).
    pub fn master(&self) -> Option<IpAddr> {
        self.master
    }

    /// Whether it is demoted (not in sync, or no sync peer).
    pub fn demoted(&self) -> bool {
        self.demoted
    }

    /// Counters.
    pub fn counts(&self) -> RouterCounts {
        self.counts
    }

    /// The priority it advertises: the configured one, less the demotion while demoted (never below 1;
    /// the address owner's 255 is never demoted, since no other router can take its addresses).
    pub fn effective_priority(&self) -> u8 {
        if self.demoted && self.cfg.priority != 255 {
            self.cfg.priority.saturating_sub(self.cfg.demotion).max(1)
        } else {
            self.cfg.priority
        }
    }

    fn skew(&self) -> Micros {
        (256 - Micros::from(self.effective_priority())) * Micros::from(self.master_interval_cs) * CS
            / 256
    }

    fn master_down_interval(&self) -> Micros {
        3 * Micros::from(self.master_interval_cs) * CS + self.skew()
    }

    fn advertisement(&self, priority: u8) -> VrrpRepr {
        VrrpRepr {
            vrid: self.cfg.vrid,
            priority,
            interval_cs: self.cfg.interval_cs,
            addresses: self.cfg.addresses.clone(),
        }
    }

    fn advertise(&mut self, now: Micros) {
        let adv = self.advertisement(self.effective_priority());
        self.out.push(Output::Advertise(adv));
        self.counts.sent += 1;
        self.adver_at = Some(now + Micros::from(self.cfg.interval_cs) * CS);
    }

    fn become_master(&mut self, now: Micros) {
        self.advertise(now);
        self.master_down_at = None;
        self.state = State::Master;
        self.master = Some(self.cfg.primary);
        self.counts.became_master += 1;
        self.out.push(Output::BecameMaster);
    }

    fn become_backup(&mut self, now: Micros, interval_cs: u16, master: Option<IpAddr>) {
        let was_master = self.state == State::Master;
        self.adver_at = None;
        self.master_interval_cs = interval_cs.max(1);
        self.master_down_at = Some(now + self.master_down_interval());
        self.state = State::Backup;
        self.master = master;
        self.counts.became_backup += 1;
        if was_master {
            self.out.push(Output::LeftMaster);
        }
    }

    /// The Startup event (section 6.4.1): the owner becomes master at once, any other router backup.
    pub fn start(&mut self, now: Micros) {
        if self.state != State::Initialize {
            return;
        }
        self.started = now;
        if self.cfg.priority == 255 {
            self.become_master(now);
        } else {
            self.become_backup(now, self.cfg.interval_cs, None);
        }
    }

    /// The Shutdown event: a master sends one advertisement of priority 0, so that a backup takes over
    /// after its skew time rather than the whole master-down interval.
    pub fn shutdown(&mut self) {
        if self.state == State::Master {
            let adv = self.advertisement(0);
            self.out.push(Output::Advertise(adv));
            self.counts.sent += 1;
            self.out.push(Output::LeftMaster);
        }
        self.state = State::Initialize;
        self.adver_at = None;
        self.master_down_at = None;
        self.master = None;
    }

    /// Whether a backup may preempt a lower-priority master now.
    fn may_preempt(&self, now: Micros) -> bool {
        self.cfg.preempt && !self.demoted && now >= self.started + self.cfg.preempt_delay
    }

    /// Demotes (or restores) the router. A demoted master advertises its lowered priority at once, so a
    /// peer in sync can take over; a restored backup preempts at the next master-down interval, if
    /// preemption is on.
    pub fn set_demoted(&mut self, now: Micros, demoted: bool) {
        if self.demoted == demoted {
            return;
        }
        self.demoted = demoted;
        if self.state == State::Master {
            self.advertise(now);
        }
    }

    /// An advertisement for this router's VRID from `from`, which arrived with `hop_limit`. Returns the
    /// first reason it was refused or found odd, if any (a refused one changes nothing).
    pub fn receive(
        &mut self,
        now: Micros,
        from: IpAddr,
        hop_limit: u8,
        adv: &VrrpRepr,
    ) -> Option<Refusal> {
        if hop_limit != HOP_LIMIT {
            self.counts.bad_hop_limit += 1;
            return Some(Refusal::HopLimit);
        }
        if from == self.cfg.primary {
            // Our own, looped back by the link.
            return None;
        }
        self.counts.received += 1;
        let mut odd = None;
        if adv.priority != 255 && adv.addresses != self.cfg.addresses {
            self.counts.address_mismatch += 1;
            odd = Some(Refusal::AddressMismatch);
        }
        if adv.interval_cs != self.cfg.interval_cs {
            self.counts.interval_mismatch += 1;
            odd = odd.or(Some(Refusal::IntervalMismatch));
        }
        let mine = self.effective_priority();
        match self.state {
            State::Initialize => {}
            State::Backup => {
                if adv.priority == 0 {
                    self.counts.master_left += 1;
                    self.master_down_at = Some(now + self.skew());
                    self.master = None;
                } else if !self.may_preempt(now) || adv.priority >= mine {
                    self.master_interval_cs = adv.interval_cs.max(1);
                    self.master_down_at = Some(now + self.master_down_interval());
                    self.master = Some(from);
                }
                // Otherwise a lower-priority master is ignored: its master-down timer runs out and this
                // router takes over.
            }
            State::Master => {
                if adv.priority == 0 {
                    self.counts.master_left += 1;
                    self.advertise(now);
                } else if adv.priority > mine
                    || (adv.priority == mine && address_greater(from, self.cfg.primary))
                {
                    self.become_backup(now, adv.interval_cs, Some(from));
                }
            }
        }
        odd
    }

    /// When [`Router::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Micros> {
        match self.state {
            State::Initialize => None,
            State::Backup => self.master_down_at,
            State::Master => self.adver_at,
        }
    }

    /// Runs the timers due at `now`: a backup whose master fell silent becomes master; a master
    /// advertises.
    pub fn handle_timeout(&mut self, now: Micros) {
        match self.state {
            State::Backup if self.master_down_at.is_some_and(|t| t <= now) => {
                self.become_master(now)
            }
            State::Master if self.adver_at.is_some_and(|t| t <= now) => self.advertise(now),
            _ => {}
        }
    }

    /// Takes what the router asked for since the last call.
    pub fn drain(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }
}

/// The RFC's tie-break: the greater primary address wins, compared as unsigned integers.
fn address_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u32::from(a) > u32::from(b),
        (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(a) > u128::from(b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 254));
    const US: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 3));

    fn router(priority: u8, preempt: bool) -> Router {
        Router::new(RouterConfig {
            vrid: 7,
            priority,
            interval_cs: 100,
            preempt,
            preempt_delay: 0,
            addresses: vec![VIP],
            primary: US,
            demotion: 50,
        })
    }

    fn adv(priority: u8) -> VrrpRepr {
        VrrpRepr {
            vrid: 7,
            priority,
            interval_cs: 100,
            addresses: vec![VIP],
        }
    }

    fn advertised(r: &mut Router) -> Vec<u8> {
        r.drain()
            .into_iter()
            .filter_map(|o| match o {
                Output::Advertise(a) => Some(a.priority),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_lone_backup_becomes_master_after_the_master_down_interval() {
        let mut r = router(100, true);
        r.start(0);
        assert_eq!(r.state(), State::Backup);
        // 3 x 1 s + skew (256 - 100) / 256 s = 3.609375 s.
        assert_eq!(r.poll_timeout(), Some(3_609_375));
        r.handle_timeout(3_609_374);
        assert_eq!(r.state(), State::Backup);
        r.handle_timeout(3_609_375);
        assert_eq!(r.state(), State::Master);
        assert_eq!(
            r.drain(),
            vec![Output::Advertise(adv(100)), Output::BecameMaster]
        );
        assert_eq!(r.poll_timeout(), Some(3_609_375 + 1_000_000));
        r.handle_timeout(4_609_375);
        assert_eq!(advertised(&mut r), [100]);
    }

    #[test]
    fn the_address_owner_is_master_at_once() {
        let mut r = router(255, false);
        r.start(5);
        assert_eq!(r.state(), State::Master);
        assert_eq!(advertised(&mut r), [255]);
    }

    #[test]
    fn a_backup_follows_a_higher_master_and_preempts_a_lower_one() {
        let mut r = router(100, true);
        r.start(0);
        r.receive(1_000, PEER, 255, &adv(200));
        assert_eq!(r.master(), Some(PEER));
        assert_eq!(r.poll_timeout(), Some(1_000 + 3_609_375));
        // A lower master is ignored by a preempting backup: it takes over when its timer runs out.
        let mut low = router(100, true);
        low.start(0);
        low.receive(1_000, PEER, 255, &adv(50));
        assert_eq!(low.poll_timeout(), Some(3_609_375), "not reset");
        // Without preemption it follows whoever is master.
        let mut meek = router(100, false);
        meek.start(0);
        meek.receive(1_000, PEER, 255, &adv(50));
        assert_eq!(meek.poll_timeout(), Some(1_000 + 3_609_375));
    }

    #[test]
    fn a_master_yields_to_higher_priority_or_an_equal_one_with_a_greater_address() {
        let mut r = router(100, true);
        r.start(0);
        r.handle_timeout(3_609_375);
        r.drain();
        r.receive(4_000_000, PEER, 255, &adv(100));
        assert_eq!(
            r.state(),
            State::Backup,
            "198.18.1.3 > 198.18.1.2 at equal priority"
        );
        assert_eq!(r.drain(), vec![Output::LeftMaster]);
        let mut r = router(100, true);
        r.start(0);
        r.handle_timeout(3_609_375);
        r.receive(
            4_000_000,
            IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1)),
            255,
            &adv(100),
        );
        assert_eq!(r.state(), State::Master, "a smaller address loses the tie");
        r.receive(4_000_000, PEER, 255, &adv(99));
        assert_eq!(r.state(), State::Master);
    }

    #[test]
    fn a_leaving_master_hands_over_after_the_skew_time() {
        let mut r = router(100, true);
        r.start(0);
        r.receive(1_000, PEER, 255, &adv(200));
        r.receive(2_000, PEER, 255, &adv(0));
        // Skew: (256 - 100) / 256 s.
        assert_eq!(r.poll_timeout(), Some(2_000 + 609_375));
        assert_eq!(r.counts().master_left, 1);
        let mut m = router(200, true);
        m.start(0);
        m.handle_timeout(10_000_000);
        m.drain();
        m.shutdown();
        assert_eq!(advertised(&mut m), [0]);
        assert_eq!(m.state(), State::Initialize);
    }

    #[test]
    fn a_forwarded_advertisement_is_refused_and_an_odd_one_counted() {
        let mut r = router(100, true);
        r.start(0);
        assert_eq!(
            r.receive(1_000, PEER, 254, &adv(200)),
            Some(Refusal::HopLimit)
        );
        assert_eq!(r.master(), None, "changed nothing");
        let mut other = adv(200);
        other.addresses = vec![IpAddr::V4(Ipv4Addr::new(198, 18, 1, 253))];
        assert_eq!(
            r.receive(1_000, PEER, 255, &other),
            Some(Refusal::AddressMismatch)
        );
        assert_eq!(r.master(), Some(PEER), "used, as the RFC says");
        let c = r.counts();
        assert_eq!((c.bad_hop_limit, c.address_mismatch, c.received), (1, 1, 1));
    }

    #[test]
    fn a_demoted_master_advertises_lower_and_a_demoted_backup_never_preempts() {
        // fw-b (priority 100) is master while fw-a (200) starts without its states.
        let mut a = router(200, true);
        a.set_demoted(0, true);
        a.start(0);
        assert_eq!(a.effective_priority(), 150);
        a.receive(1_000, PEER, 255, &adv(100));
        assert_eq!(
            a.poll_timeout(),
            Some(1_000 + 3_000_000 + 414_062),
            "follows the lower master: demoted, it does not preempt"
        );
        // In sync: it preempts (the lower master's advertisements no longer reset its timer).
        a.set_demoted(2_000, false);
        let before = a.poll_timeout();
        a.receive(3_000, PEER, 255, &adv(100));
        assert_eq!(a.poll_timeout(), before);
        // A master that loses sync advertises its lowered priority at once.
        let mut m = router(200, true);
        m.start(0);
        m.handle_timeout(10_000_000);
        m.drain();
        m.set_demoted(10_000_001, true);
        assert_eq!(advertised(&mut m), [150]);
        m.receive(10_000_002, PEER, 255, &adv(160));
        assert_eq!(m.state(), State::Backup);
    }

    #[test]
    fn preemption_waits_out_the_preempt_delay() {
        let mut r = Router::new(RouterConfig {
            preempt_delay: 5_000_000,
            ..router(200, true).config().clone()
        });
        r.start(0);
        r.receive(1_000_000, PEER, 255, &adv(100));
        assert_eq!(r.poll_timeout(), Some(1_000_000 + 3_000_000 + 218_750));
        r.receive(6_000_000, PEER, 255, &adv(100));
        assert_eq!(
            r.poll_timeout(),
            Some(1_000_000 + 3_000_000 + 218_750),
            "past the delay, the lower master is ignored"
        );
    }
}
