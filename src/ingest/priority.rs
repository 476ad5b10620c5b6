//! The cameras' streaming threads run at a lower scheduling priority than the detector.
//!
//! GStreamer starts each camera's streaming threads itself; the decoder's input probe and the
//! probe on rtspsrc's video pad (its jitterbuffer's thread) call [`lower_this_thread`] on each
//! buffer, which lowers the calling thread's priority once (Linux scheduling priority is per
//! thread). With many cameras the streaming threads outnumber the
//! detector's threads many times over; at the same priority the scheduler gives each thread an
//! even share, so they took the detector's CPU (issue 21: 96 cameras, the streaming threads at
//! 182 % of 200, inference near 0). At [`STREAMING_NICE`] a streaming thread weighs about a
//! thirtieth of a normal one (scheduler weights 36 against 1024), so even a hundred cameras'
//! threads weigh less than the detector's workers: the detector gets the CPU it can use, the
//! cameras the rest.

use std::cell::Cell;

/// Nice value of the cameras' streaming threads (0 is normal, 19 the lowest).
pub const STREAMING_NICE: libc::c_int = 15;

thread_local! {
    static LOWERED: Cell<bool> = const { Cell::new(false) };
}

/// Lowers the calling thread's priority to [`STREAMING_NICE`], once per thread.
pub fn lower_this_thread() {
    LOWERED.with(|done| {
        if done.replace(true) {
            return;
        }
        // SAFETY: plain system calls on the calling thread's own id; a failure leaves the
        // priority as it was.
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, STREAMING_NICE);
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_thread_is_lowered_once_and_others_are_not() {
        let nice =
            || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        let before = nice();
        let lowered = std::thread::spawn(move || {
            super::lower_this_thread();
            super::lower_this_thread();
            nice()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, super::STREAMING_NICE.max(before));
        assert_eq!(nice(), before, "the calling thread is untouched");
    }
}
