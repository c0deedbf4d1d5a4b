//! An owned packet buffer. An [`Mbuf`] is a unique handle to one single-segment `rte_mbuf`: it reads and
//! writes the packet bytes as a slice, frees the buffer when dropped, and is consumed by a transmit.

use std::ptr::NonNull;

use super::sys;

/// One packet in a DPDK buffer, owned.
#[derive(Debug)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf is the unique owner of its rte_mbuf (we never take extra references or share it), and
// mbufs may be freed from any thread (unregistered threads bypass the pool cache).
unsafe impl Send for Mbuf {}

/// `rte_mbuf.ol_flags` bit: the driver filled in the RSS hash (rte_mbuf_core.h).
const RX_RSS_HASH: u64 = sys::RTE_MBUF_F_RX_RSS_HASH as u64;

impl Mbuf {
    /// Takes ownership of a raw mbuf; `None` for null.
    ///
    /// # Safety
    /// `raw` must be null or point to a valid mbuf with refcount 1 that nothing else will use or free.
    pub(crate) unsafe fn from_raw(raw: *mut sys::rte_mbuf) -> Option<Mbuf> {
        NonNull::new(raw).map(Mbuf)
    }

    /// Gives up ownership, for handing the buffer to the driver.
    pub(crate) fn into_raw(self) -> *mut sys::rte_mbuf {
        let raw = self.0.as_ptr();
        std::mem::forget(self);
        raw
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.0.as_ptr()
    }

    fn header(&self) -> &sys::rte_mbuf {
        // SAFETY: we own a valid mbuf for as long as self lives.
        unsafe { self.0.as_ref() }
    }

    /// The packet's length in this (first and only) segment.
    pub fn len(&self) -> usize {
        usize::from(self.header().data_len)
    }

    /// Whether the packet is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The DPDK port the packet arrived on.
    pub fn port(&self) -> u16 {
        self.header().port
    }

    /// The NIC's RSS hash, when the driver computed one.
    pub fn rss_hash(&self) -> Option<u32> {
        let header = self.header();
        if header.ol_flags & RX_RSS_HASH == 0 {
            return None;
        }
        // SAFETY: the RX_RSS_HASH flag says the driver wrote the `rss` member of the hash union.
        Some(unsafe { header.__bindgen_anon_2.hash.rss })
    }

    /// Room after the packet in this buffer.
    pub fn tailroom(&self) -> usize {
        let h = self.header();
        usize::from(h.buf_len).saturating_sub(usize::from(h.data_off) + usize::from(h.data_len))
    }

    /// Grows or shrinks the packet to `len` bytes; false (and unchanged) when the buffer has no room.
    /// New bytes are left as they were in the buffer: callers write them.
    pub fn resize(&mut self, len: usize) -> bool {
        let current = self.len();
        if len >= current {
            let Ok(grow) = u16::try_from(len - current) else {
                return false;
            };
            if grow == 0 {
                return true;
            }
            // SAFETY: we own the mbuf; append checks the tailroom and returns null when it is too small.
            !unsafe { sys::tandem_pktmbuf_append(self.0.as_ptr(), grow) }.is_null()
        } else {
            let Ok(cut) = u16::try_from(current - len) else {
                return false;
            };
            // SAFETY: we own the mbuf; trim checks the length and returns -1 when it cannot.
            unsafe { sys::tandem_pktmbuf_trim(self.0.as_ptr(), cut) == 0 }
        }
    }
}

impl AsRef<[u8]> for Mbuf {
    fn as_ref(&self) -> &[u8] {
        let h = self.header();
        // SAFETY: buf_addr + data_off is the start of data_len initialised bytes inside the buffer, owned
        // by us (single segment: the first segment is all we expose), valid while &self lives.
        unsafe {
            std::slice::from_raw_parts(
                h.buf_addr.cast::<u8>().add(usize::from(h.data_off)),
                usize::from(h.data_len),
            )
        }
    }
}

impl AsMut<[u8]> for Mbuf {
    fn as_mut(&mut self) -> &mut [u8] {
        let h = self.header();
        let (addr, off, len) = (
            h.buf_addr.cast::<u8>(),
            usize::from(h.data_off),
            usize::from(h.data_len),
        );
        // SAFETY: as in as_ref; &mut self guarantees no other reference to the bytes exists, and the mbuf
        // has refcount 1 so no other mbuf shares the buffer.
        unsafe { std::slice::from_raw_parts_mut(addr.add(off), len) }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and nothing uses it after this.
        unsafe { sys::tandem_pktmbuf_free(self.0.as_ptr()) };
    }
}
