//! The Environment Abstraction Layer: started once per process, and the registration of our own threads as
//! DPDK threads (an unregistered thread has no lcore id, hence no mempool cache, and runs about 1.75x slower
//! on this machine, see the feasibility notes).

use std::ffi::{CString, c_char, c_int};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{DpdkError, check, from_errno, sys};

static STARTED: AtomicBool = AtomicBool::new(false);

/// Proof that the EAL is running in this process.
#[derive(Debug)]
pub struct Eal {
    _started: (),
}

impl Eal {
    /// Starts the EAL with `args` (without the program name). Fails if it was started before in this
    /// process: DPDK refuses a second start even after cleanup.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::EalAlreadyStarted);
        }
        let mut owned = Vec::with_capacity(args.len() + 1);
        for arg in std::iter::once("tandem").chain(args.iter().map(String::as_str)) {
            owned.push(CString::new(arg).map_err(|_| DpdkError::Nul(arg.to_string()))?);
        }
        // EAL may keep pointers into argv and permutes the array: both live for the whole process.
        let strings: &'static [CString] = Box::leak(owned.into_boxed_slice());
        let argv: &'static mut [*mut c_char] = Box::leak(
            strings
                .iter()
                .map(|s| s.as_ptr().cast_mut())
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let argc = c_int::try_from(argv.len()).unwrap_or(c_int::MAX);
        // SAFETY: argv holds argc valid NUL-terminated strings that are never freed; EAL is started at most
        // once, which the STARTED flag guarantees.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(from_errno("rte_eal_init"));
        }
        Ok(Eal { _started: () })
    }

    /// Registers the calling thread with DPDK, giving it an lcore id (and so a mempool cache) until the
    /// returned guard is dropped. Call it first thing in every data-path thread.
    pub fn register_thread(&self) -> Result<RegisteredThread, DpdkError> {
        // SAFETY: the EAL is initialised (we hold &Eal); registration affects only the calling thread.
        let ret = unsafe { sys::rte_thread_register() };
        if ret < 0 {
            return Err(from_errno("rte_thread_register"));
        }
        // SAFETY: reads the calling thread's lcore id; no preconditions.
        let lcore = unsafe { sys::tandem_lcore_id() };
        Ok(RegisteredThread {
            lcore,
            _not_send: std::marker::PhantomData,
        })
    }

    /// Releases the EAL's resources. Ports must be closed and data-path threads finished first; the EAL
    /// cannot be started again in this process.
    pub fn cleanup(self) -> Result<(), DpdkError> {
        // SAFETY: consumes the only Eal value; callers have stopped every user of DPDK objects.
        check("rte_eal_cleanup", unsafe { sys::rte_eal_cleanup() }).map(|_| ())
    }
}

/// A thread registered with DPDK; unregistered when dropped (on the same thread: the guard is not `Send`).
#[derive(Debug)]
pub struct RegisteredThread {
    lcore: u32,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl RegisteredThread {
    /// The lcore id DPDK gave this thread.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }
}

impl Drop for RegisteredThread {
    fn drop(&mut self) {
        // SAFETY: the guard is !Send, so this runs on the thread that registered itself.
        unsafe { sys::rte_thread_unregister() };
    }
}
