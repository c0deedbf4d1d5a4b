//! Packet buffer pools. A pool lives for the rest of the process (it is leaked on creation), so an [`Mbuf`]
//! can never outlive the memory it points into.

use std::ffi::CString;
use std::ptr::NonNull;

use super::eal::Eal;
use super::mbuf::Mbuf;
use super::{DpdkError, from_errno, sys};

/// A pool of packet buffers (`rte_pktmbuf_pool_create`).
#[derive(Debug)]
pub struct PacketPool {
    raw: NonNull<sys::rte_mempool>,
    size: u32,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe (the default ring ops); the per-lcore caches
// are indexed by the calling thread's lcore id, and unregistered threads bypass them.
unsafe impl Send for PacketPool {}
// SAFETY: as above: every operation on a mempool may be called from several threads at once.
unsafe impl Sync for PacketPool {}

impl PacketPool {
    /// Creates a pool of `size` buffers with `data_room` bytes each (headroom included) and a per-lcore
    /// cache of `cache` buffers, on any NUMA socket.
    pub fn create(
        _eal: &Eal,
        name: &str,
        size: u32,
        cache: u32,
        data_room: u16,
    ) -> Result<&'static PacketPool, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::Nul(name.to_string()))?;
        // SAFETY: name is a valid C string and the EAL is running (we hold &Eal); socket -1 is SOCKET_ID_ANY.
        let raw =
            unsafe { sys::rte_pktmbuf_pool_create(cname.as_ptr(), size, cache, 0, data_room, -1) };
        let raw = NonNull::new(raw).ok_or_else(|| from_errno("rte_pktmbuf_pool_create"))?;
        Ok(Box::leak(Box::new(PacketPool { raw, size })))
    }

    /// A fresh, empty buffer, or `None` when the pool is exhausted.
    pub fn alloc(&'static self) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid for the process; a returned mbuf is owned by the caller.
        let m = unsafe { sys::tandem_pktmbuf_alloc(self.raw.as_ptr()) };
        // SAFETY: m is null or a freshly allocated mbuf with refcount 1 that nobody else references.
        unsafe { Mbuf::from_raw(m) }
    }

    /// Buffers currently handed out (in flight in drivers, held by threads, or in per-lcore caches count as
    /// available). After a clean stop this is 0: a leak check for tests.
    pub fn in_use(&self) -> u32 {
        // SAFETY: reads counters of a valid pool.
        unsafe { sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    /// The number of buffers in the pool.
    pub fn size(&self) -> u32 {
        self.size
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.raw.as_ptr()
    }
}
