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
        // SAFETY: no arguments; the EAL is running.
        let raw = if unsafe { sys::rte_eal_has_hugepages() } == 0 {
            Self::create_packed(&cname, size, cache, data_room)?
        } else {
            // SAFETY: name is a valid C string and the EAL is running (we hold &Eal); socket -1 is
            // SOCKET_ID_ANY.
            let raw = unsafe {
                sys::rte_pktmbuf_pool_create(cname.as_ptr(), size, cache, 0, data_room, -1)
            };
            NonNull::new(raw).ok_or_else(|| from_errno("rte_pktmbuf_pool_create"))?
        };
        Ok(Box::leak(Box::new(PacketPool { raw, size })))
    }

    /// Without hugepages (`--no-huge`: virtual devices only, no device DMA) DPDK would keep every buffer
    /// inside one 4 KiB page, leaving the rest of each page unused; the af_xdp driver registers the pool
    /// with the kernel as `buffers x buffer size` bytes from its start, so buffers past that span are
    /// refused by the kernel and frames sent from them vanish. Packed back to back (no IOVA-contiguity
    /// demand, which only device DMA needs), the pool is exactly that span.
    fn create_packed(
        name: &CString,
        size: u32,
        cache: u32,
        data_room: u16,
    ) -> Result<NonNull<sys::rte_mempool>, DpdkError> {
        let elt_size = std::mem::size_of::<sys::rte_mbuf>() as u32 + u32::from(data_room);
        let private = std::mem::size_of::<sys::rte_pktmbuf_pool_private>() as u32;
        // SAFETY: name is a valid C string and the EAL is running; socket -1 is SOCKET_ID_ANY.
        let raw = unsafe {
            sys::rte_mempool_create_empty(
                name.as_ptr(),
                size,
                elt_size,
                cache,
                private,
                -1,
                sys::RTE_MEMPOOL_F_NO_IOVA_CONTIG,
            )
        };
        let mp = NonNull::new(raw).ok_or_else(|| from_errno("rte_mempool_create_empty"))?;
        let mut private_data = sys::rte_pktmbuf_pool_private {
            mbuf_data_room_size: data_room,
            mbuf_priv_size: 0,
            flags: 0,
        };
        // SAFETY: mp is the empty pool just created, with room for this private data; the ops name is
        // DPDK's own static string; pool_init copies the private data; populate and the iteration run once
        // on the pool before anyone else can see it. On failure the pool is freed and never used again.
        unsafe {
            let ops = sys::rte_mbuf_best_mempool_ops();
            if sys::rte_mempool_set_ops_byname(mp.as_ptr(), ops, std::ptr::null_mut()) != 0 {
                sys::rte_mempool_free(mp.as_ptr());
                return Err(from_errno("rte_mempool_set_ops_byname"));
            }
            sys::rte_pktmbuf_pool_init(
                mp.as_ptr(),
                (&mut private_data as *mut sys::rte_pktmbuf_pool_private).cast(),
            );
            if sys::rte_mempool_populate_default(mp.as_ptr()) < 0 {
                sys::rte_mempool_free(mp.as_ptr());
                return Err(from_errno("rte_mempool_populate_default"));
            }
            sys::rte_mempool_obj_iter(
                mp.as_ptr(),
                Some(sys::rte_pktmbuf_init),
                std::ptr::null_mut(),
            );
        }
        Ok(mp)
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
