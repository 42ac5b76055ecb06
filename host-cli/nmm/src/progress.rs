//! Progress of long jobs, reported by the library and drawn by the caller.
//!
//! The library never prints. A long job (a whole-brain run, a network simulation, a batch, a
//! training) takes a `&dyn Progress` and reports through it; the `nmm` command line draws
//! progress bars with it, a notebook or a service can log or ignore it ([`Silent`]). Every
//! method has a default that does nothing, and a closure `Fn(done, total)` is a `Progress`.

/// Where a long job reports how far it got.
///
/// ```
/// use nmm::Progress;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// struct Count(AtomicU64);
/// impl Progress for Count {
///     fn set(&self, done: u64, _total: u64) {
///         self.0.store(done, Ordering::Relaxed);
///     }
/// }
/// let c = Count(AtomicU64::new(0));
/// c.set(5, 10);
/// assert_eq!(c.0.load(Ordering::Relaxed), 5);
/// ```
pub trait Progress: Sync {
    /// `done` units of `total` are finished (steps, runs or batches, as the job documents).
    fn set(&self, done: u64, total: u64) {
        let _ = (done, total);
    }
    /// A short status that replaces the previous one (e.g. `3/200  train 1.2e-2`).
    fn message(&self, text: &str) {
        let _ = text;
    }
    /// A line worth keeping in a log where no live display is shown (about twenty per job).
    fn log(&self, line: &str) {
        let _ = line;
    }
    /// Something the user should know that is not an error (runs skipped, data missing).
    fn note(&self, text: &str) {
        let _ = text;
    }
}

/// Reports nothing.
///
/// ```
/// use nmm::progress::{Progress, Silent};
/// Silent.set(1, 2);
/// Silent.note("ignored");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {}

/// A closure `Fn(done, total)` reports counts and ignores messages.
///
/// ```
/// use nmm::Progress;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// let last = AtomicU64::new(0);
/// let p = |done: u64, _total: u64| last.store(done, Ordering::Relaxed);
/// p.set(7, 9);
/// assert_eq!(last.load(Ordering::Relaxed), 7);
/// ```
impl<F: Fn(u64, u64) + Sync> Progress for F {
    fn set(&self, done: u64, total: u64) {
        self(done, total)
    }
}
