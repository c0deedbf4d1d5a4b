//! Ethernet ports: configured in DPDK's canonical order (device info, configure, adjust descriptors, RX and
//! TX queue setup, start, promiscuous), with one owned handle per queue. A transmit moves the mbufs it sent
//! into the driver and leaves the unsent tail with the caller: nothing is forgotten or leaked.

use std::ffi::CString;
use std::sync::Arc;

use super::eal::Eal;
use super::mbuf::Mbuf;
use super::mempool::PacketPool;
use super::{DpdkError, check, sys};

/// Largest burst handed to the driver in one call.
pub const MAX_BURST: usize = 64;

/// A 40-byte Toeplitz key made of one repeated 16-bit word: with it the RSS hash of (a, b) equals that of
/// (b, a), so both directions of a flow land on the same queue (Woo and Park, "Scalable TCP session
/// monitoring with symmetric receive-side scaling", 2012).
const SYMMETRIC_RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
];

/// RSS hash types from rte_ethdev.h (`RTE_ETH_RSS_*` are `RTE_BIT64` macros bindgen does not expand):
/// IPv4, fragmented IPv4, IPv4/TCP, IPv4/UDP, IPv6, fragmented IPv6, IPv6/TCP, IPv6/UDP.
const RSS_IP_TCP_UDP: u64 =
    (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11);

/// How to set a port up.
#[derive(Clone, Debug)]
pub struct PortSetup {
    /// RX queues.
    pub rx_queues: u16,
    /// TX queues.
    pub tx_queues: u16,
    /// RX descriptors per queue (adjusted to the driver's limits).
    pub rx_descriptors: u16,
    /// TX descriptors per queue (adjusted to the driver's limits).
    pub tx_descriptors: u16,
    /// MTU.
    pub mtu: u16,
    /// A MAC address to set instead of the device's own.
    pub mac: Option<[u8; 6]>,
}

/// Counters DPDK keeps for a port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets the NIC dropped because no descriptor was free (we polled too slowly).
    pub rx_missed: u64,
    /// Erroneous packets received.
    pub rx_errors: u64,
    /// Failed transmissions.
    pub tx_errors: u64,
    /// RX failures for want of a free buffer.
    pub rx_no_mbuf: u64,
}

#[derive(Debug)]
struct PortShared {
    id: u16,
}

/// A started DPDK port.
#[derive(Debug)]
pub struct EthPort {
    shared: Arc<PortShared>,
    name: String,
    mac: [u8; 6],
    queues: u16,
    rss: bool,
    /// Entries of the NIC's redirection table (0 without RSS).
    reta_size: u16,
    running: bool,
}

/// The only handle for receiving on one queue of a port.
#[derive(Debug)]
pub struct RxQueue {
    shared: Arc<PortShared>,
    queue: u16,
}

/// The only handle for transmitting on one queue of a port.
#[derive(Debug)]
pub struct TxQueue {
    shared: Arc<PortShared>,
    queue: u16,
}

impl EthPort {
    /// Finds the ethdev `name` (a vdev's name such as `net_pcap0`, or a PCI address), configures and starts
    /// it, and returns it with one RX and one TX handle per queue.
    pub fn start(
        _eal: &Eal,
        name: &str,
        pool: &'static PacketPool,
        setup: &PortSetup,
    ) -> Result<(EthPort, Vec<RxQueue>, Vec<TxQueue>), DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::Nul(name.to_string()))?;
        let mut id = 0u16;
        // SAFETY: cname is a valid C string and id a valid out-pointer; the EAL is running (&Eal).
        if unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) } != 0 {
            return Err(DpdkError::NoSuchPort(name.to_string()));
        }
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: id names an existing port; info is a valid out-pointer.
        check("rte_eth_dev_info_get", unsafe {
            sys::rte_eth_dev_info_get(id, &mut info)
        })?;

        let mut conf = sys::rte_eth_conf::default();
        conf.rxmode.mtu = u32::from(setup.mtu);
        let rss_types = RSS_IP_TCP_UDP & info.flow_type_rss_offloads;
        let rss = setup.rx_queues > 1 && rss_types != 0;
        let mut key = SYMMETRIC_RSS_KEY;
        if rss {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
            conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_types;
        }
        // SAFETY: id is valid; conf (and the key it points to, alive until this function returns; the driver
        // copies it during configure) is a valid configuration.
        check("rte_eth_dev_configure", unsafe {
            sys::rte_eth_dev_configure(id, setup.rx_queues, setup.tx_queues, &conf)
        })?;
        let (mut rxd, mut txd) = (setup.rx_descriptors, setup.tx_descriptors);
        // SAFETY: id is valid; rxd and txd are valid in/out pointers.
        check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rxd, &mut txd)
        })?;
        // SAFETY: id is valid. A negative socket (SOCKET_ID_ANY) is passed on as is.
        let socket = unsafe { sys::rte_eth_dev_socket_id(id) } as u32;
        for q in 0..setup.rx_queues {
            // SAFETY: the port is configured with `rx_queues` RX queues and q is below that; a null rxconf
            // asks for the driver's defaults; the pool outlives the port ('static).
            check("rte_eth_rx_queue_setup", unsafe {
                sys::rte_eth_rx_queue_setup(id, q, rxd, socket, std::ptr::null(), pool.as_ptr())
            })?;
        }
        for q in 0..setup.tx_queues {
            // SAFETY: as above, for the `tx_queues` TX queues.
            check("rte_eth_tx_queue_setup", unsafe {
                sys::rte_eth_tx_queue_setup(id, q, txd, socket, std::ptr::null())
            })?;
        }
        if let Some(mac) = setup.mac {
            let mut addr = sys::rte_ether_addr { addr_bytes: mac };
            // SAFETY: id is valid and addr a valid address.
            check("rte_eth_dev_default_mac_addr_set", unsafe {
                sys::rte_eth_dev_default_mac_addr_set(id, &mut addr)
            })?;
        }
        // SAFETY: the port is configured and its queues set up.
        check("rte_eth_dev_start", unsafe { sys::rte_eth_dev_start(id) })?;
        // Promiscuous mode lets the port see frames for VRRP virtual MACs and, in wire mode, everything;
        // virtual devices without the notion answer -ENOTSUP, which is fine.
        // SAFETY: id is a started port.
        let _ = unsafe { sys::rte_eth_promiscuous_enable(id) };
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: id is valid and addr a valid out-pointer.
        check("rte_eth_macaddr_get", unsafe {
            sys::rte_eth_macaddr_get(id, &mut addr)
        })?;

        let shared = Arc::new(PortShared { id });
        let rx = (0..setup.rx_queues)
            .map(|queue| RxQueue {
                shared: shared.clone(),
                queue,
            })
            .collect();
        let tx = (0..setup.tx_queues)
            .map(|queue| TxQueue {
                shared: shared.clone(),
                queue,
            })
            .collect();
        let port = EthPort {
            shared,
            name: name.to_string(),
            mac: addr.addr_bytes,
            queues: setup.rx_queues,
            rss,
            reta_size: if rss { info.reta_size } else { 0 },
            running: true,
        };
        Ok((port, rx, tx))
    }

    /// DPDK's port id.
    pub fn id(&self) -> u16 {
        self.shared.id
    }

    /// The ethdev name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Number of RX (and TX) queues.
    pub fn queues(&self) -> u16 {
        self.queues
    }

    /// Whether the NIC spreads flows over the queues with the symmetric RSS key.
    pub fn symmetric_rss(&self) -> bool {
        self.rss
    }

    /// Entries of the NIC's RSS redirection table, when the port spreads flows with RSS.
    pub fn reta_size(&self) -> Option<u32> {
        (self.rss && self.reta_size > 0).then_some(u32::from(self.reta_size))
    }

    /// Programs the NIC's redirection table with `queue_of(entry)` for every entry and reads it back: the
    /// queue each hash reaches is then the one software expects, not whatever the driver chose.
    /// `Err(DpdkError::Mismatch)` if the table read back differs.
    pub fn program_reta(&self, queue_of: impl Fn(u32) -> u16) -> Result<(), DpdkError> {
        let size = self.reta_size;
        let groups = usize::from(size).div_ceil(64);
        let mut table = vec![sys::rte_eth_rss_reta_entry64::default(); groups];
        for (g, group) in table.iter_mut().enumerate() {
            for i in 0..64 {
                let entry = g * 64 + i;
                if entry < usize::from(size) {
                    group.mask |= 1 << i;
                    group.reta[i] = queue_of(entry as u32);
                }
            }
        }
        let wanted = table.clone();
        // SAFETY: the port id is valid; `table` holds `size` entries in 64-entry groups, as the call reads.
        check("rte_eth_dev_rss_reta_update", unsafe {
            sys::rte_eth_dev_rss_reta_update(self.shared.id, table.as_mut_ptr(), size)
        })?;
        for group in &mut table {
            group.reta = [0; 64];
        }
        // SAFETY: as above; the masks select every entry to read.
        check("rte_eth_dev_rss_reta_query", unsafe {
            sys::rte_eth_dev_rss_reta_query(self.shared.id, table.as_mut_ptr(), size)
        })?;
        if table
            .iter()
            .zip(&wanted)
            .any(|(got, want)| got.reta != want.reta)
        {
            return Err(DpdkError::Mismatch("RSS redirection table".to_string()));
        }
        Ok(())
    }

    /// Whether the link is up.
    pub fn link_up(&self) -> bool {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: the port id is valid and link a valid out-pointer.
        let ret = unsafe { sys::rte_eth_link_get_nowait(self.shared.id, &mut link) };
        ret == 0 && link.link_status() == sys::RTE_ETH_LINK_UP as u16
    }

    /// DPDK's counters for the port.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: the port id is valid and s a valid out-pointer.
        check("rte_eth_stats_get", unsafe {
            sys::rte_eth_stats_get(self.shared.id, &mut s)
        })?;
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_no_mbuf: s.rx_nombuf,
        })
    }

    /// Stops and closes the port. Every queue handle must have been dropped first (the threads polling
    /// them have finished), else nothing is done and an error says so. A memif peer, for one, crashes
    /// if its partner exits without this.
    pub fn close(mut self) -> Result<(), DpdkError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), DpdkError> {
        if !self.running {
            return Ok(());
        }
        if Arc::strong_count(&self.shared) > 1 {
            return Err(DpdkError::Call {
                call: "close",
                code: libc::EBUSY,
                message: format!("queues of port {} are still held by a thread", self.name),
            });
        }
        self.running = false;
        // SAFETY: no queue handle exists any more, so nothing polls the port while it stops and closes.
        check("rte_eth_dev_stop", unsafe {
            sys::rte_eth_dev_stop(self.shared.id)
        })?;
        // SAFETY: as above; the port id is not used after close.
        check("rte_eth_dev_close", unsafe {
            sys::rte_eth_dev_close(self.shared.id)
        })
        .map(|_| ())
    }
}

impl Drop for EthPort {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl RxQueue {
    /// The DPDK port id.
    pub fn port_id(&self) -> u16 {
        self.shared.id
    }

    /// The queue number.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to `max` packets (at most [`MAX_BURST`]) and appends them to `out`; returns how many.
    pub fn recv(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let mut raw = [std::ptr::null_mut::<sys::rte_mbuf>(); MAX_BURST];
        let want = max.min(MAX_BURST) as u16;
        // SAFETY: this handle is the only one for (port, queue), so no other thread polls it; raw has room
        // for `want` pointers.
        let got =
            unsafe { sys::tandem_rx_burst(self.shared.id, self.queue, raw.as_mut_ptr(), want) };
        for &m in &raw[..usize::from(got)] {
            // SAFETY: the driver hands us ownership of each received mbuf, with refcount 1.
            if let Some(m) = unsafe { Mbuf::from_raw(m) } {
                out.push(m);
            }
        }
        usize::from(got)
    }
}

impl TxQueue {
    /// The DPDK port id.
    pub fn port_id(&self) -> u16 {
        self.shared.id
    }

    /// Transmits packets from the front of `pkts` (at most [`MAX_BURST`]); the ones sent are removed and
    /// now belong to the driver, the unsent ones stay in `pkts` for the caller to retry or drop.
    pub fn send(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        let n = pkts.len().min(MAX_BURST);
        if n == 0 {
            return 0;
        }
        let mut raw = [std::ptr::null_mut::<sys::rte_mbuf>(); MAX_BURST];
        for (slot, m) in raw.iter_mut().zip(pkts.iter()) {
            *slot = m.as_ptr();
        }
        // SAFETY: this handle is the only one for (port, queue); raw holds n valid mbufs we own. The driver
        // takes ownership of the first `sent` of them, which we give up below without freeing.
        let sent = usize::from(unsafe {
            sys::tandem_tx_burst(self.shared.id, self.queue, raw.as_mut_ptr(), n as u16)
        });
        for m in pkts.drain(..sent) {
            let _ = m.into_raw();
        }
        sent
    }
}
