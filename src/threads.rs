//! Scoped threads that never panic for want of a thread. A leaf: it imports nothing of the
//! crate.
//!
//! `std::thread::Scope::spawn` panics when the OS refuses a new thread (a process or cgroup
//! limit on a busy host). Every thread here only speeds work up, so when one cannot start the
//! work runs on the calling thread instead, and the run still succeeds.

use std::sync::{Arc, Mutex};
use std::thread::{Builder, Scope, ScopedJoinHandle};

/// Work started by [`spawn`]: on its own thread, or already done here.
pub enum Handle<'scope, T> {
    /// Running on its own thread.
    Thread(ScopedJoinHandle<'scope, Option<T>>),
    /// The OS refused a thread, so it ran on the caller's.
    Done(Option<T>),
}

impl<T> Handle<'_, T> {
    /// The work's result; a panic on its thread goes on here, as with a plain `join`.
    ///
    /// `None` would mean the work never ran, which [`spawn`] rules out (the thread takes the
    /// work, or there is no thread and the caller ran it); callers then run it themselves.
    pub fn join(self) -> Option<T> {
        match self {
            Handle::Thread(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            Handle::Done(result) => result,
        }
    }
}

/// Runs `work` on a new thread of `scope`, or right here if the OS refuses one.
pub fn spawn<'scope, 'env, T, F>(scope: &'scope Scope<'scope, 'env>, work: F) -> Handle<'scope, T>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    // Shared so that the work is not lost with the closure when the spawn fails.
    let slot = Arc::new(Mutex::new(Some(work)));
    let theirs = Arc::clone(&slot);
    let started = Builder::new().spawn_scoped(scope, move || {
        let work = theirs.lock().ok().and_then(|mut w| w.take());
        work.map(|w| w())
    });
    match started {
        Ok(handle) => Handle::Thread(handle),
        Err(e) => {
            log::debug!("no thread to spare ({e}); working on the caller's");
            let work = slot.lock().ok().and_then(|mut w| w.take());
            Handle::Done(work.map(|w| w()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_once_and_its_result_comes_back() {
        let mut data = vec![1, 2, 3];
        let sum = std::thread::scope(|scope| {
            let h = spawn(scope, || data.iter().sum::<i32>());
            h.join()
        });
        assert_eq!(sum, Some(6));
        data.push(4);
        assert_eq!(Handle::<i32>::Done(Some(7)).join(), Some(7));
    }
}
