//! The safe layer over DPDK, and the only code in the workspace that says `unsafe`.
//!
//! One safe function per DPDK call, errors built from `rte_errno` or the returned code, and ownership in
//! the types: the EAL starts once per process ([`eal::Eal`]); packet pools live for the whole process
//! ([`mempool::PacketPool`] is `'static`); an [`mbuf::Mbuf`] frees itself on drop and is moved into the
//! driver by a transmit; each RX and TX queue has exactly one owner ([`port::RxQueue`], [`port::TxQueue`]),
//! so no queue is ever polled by two threads. Every `unsafe` block says why it is sound.

pub mod eal;
pub mod mbuf;
pub mod mempool;
pub mod port;
pub mod sys;

use std::ffi::CStr;

/// A failed DPDK call.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// A call returned an error code.
    #[error("{call}: {message} (error {code})")]
    Call {
        /// The DPDK function.
        call: &'static str,
        /// The positive errno value.
        code: i32,
        /// DPDK's text for it.
        message: String,
    },
    /// The EAL was already started in this process (it can start only once, and never again after cleanup).
    #[error("the DPDK EAL was already initialised in this process")]
    EalAlreadyStarted,
    /// No ethdev has the name a profile gave.
    #[error("no DPDK port named `{0}` (is the device string right, and was its driver loaded?)")]
    NoSuchPort(String),
    /// A string passed to DPDK contained a NUL byte.
    #[error("`{0}` contains a NUL byte")]
    Nul(String),
    /// A setting read back from the device is not the one written.
    #[error("the device does not keep the {0} it was given")]
    Mismatch(String),
}

/// DPDK's description of an error number.
fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror accepts any value and returns a pointer to a NUL-terminated static or
    // thread-local string, valid at least until the next call on this thread; we copy it at once.
    let text = unsafe { CStr::from_ptr(sys::rte_strerror(code)) };
    text.to_string_lossy().into_owned()
}

/// The calling thread's `rte_errno`.
fn errno() -> i32 {
    // SAFETY: reads a thread-local integer through the shim; no preconditions.
    unsafe { sys::tandem_errno() }
}

/// An error for `call` from a negative return value `-code` (the ethdev convention).
fn from_ret(call: &'static str, ret: i32) -> DpdkError {
    let code = ret.checked_neg().unwrap_or(i32::MAX);
    DpdkError::Call {
        call,
        code,
        message: strerror(code),
    }
}

/// An error for `call` from `rte_errno` (the convention of calls that return -1 or NULL).
fn from_errno(call: &'static str) -> DpdkError {
    let code = errno();
    DpdkError::Call {
        call,
        code,
        message: strerror(code),
    }
}

/// `Ok(ret)` for a non-negative return value, else the error it encodes.
fn check(call: &'static str, ret: i32) -> Result<i32, DpdkError> {
    if ret < 0 {
        Err(from_ret(call, ret))
    } else {
        Ok(ret)
    }
}

/// The DPDK version string, such as `DPDK 22.11.11`.
pub fn version() -> String {
    // SAFETY: rte_version returns a pointer to a static NUL-terminated string.
    let text = unsafe { CStr::from_ptr(sys::rte_version()) };
    text.to_string_lossy().into_owned()
}
