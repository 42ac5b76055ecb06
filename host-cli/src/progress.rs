//! Progress bars for the library's [`nmm::Progress`] reports (indicatif, on stderr). Where
//! stderr is not a terminal (a batch job's log, a pipe) the bar is hidden and plain lines take
//! its place: the [`nmm::Progress::log`] lines, and every [`LINE_EVERY`] a line with the count
//! done, the elapsed time and an estimate of the time left.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Interval between progress lines where the bar is hidden.
pub const LINE_EVERY: Duration = Duration::from_secs(15);

/// A bar with a template; `who` prefixes the lines printed beside it, `unit` names what is
/// counted (`steps`, `runs`; empty: the bar's message names it).
pub struct Bar {
    bar: ProgressBar,
    who: &'static str,
    unit: &'static str,
    /// When the counted phase started (a new total starts a new one: a network's construction,
    /// then its time steps) and when the last progress line was printed (hidden bars only).
    clock: Mutex<(Instant, Instant)>,
}

impl Bar {
    /// A bar drawn with indicatif's `template`.
    pub fn new(template: &str, who: &'static str, unit: &'static str) -> Self {
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        let now = Instant::now();
        Self {
            bar,
            who,
            unit,
            clock: Mutex::new((now, now)),
        }
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, (Instant, Instant)> {
        self.clock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The line a hidden bar prints: `done/total unit (p %), elapsed, about ... left`.
    fn line(&self, done: u64, total: u64) -> String {
        let elapsed = self.clock().0.elapsed().as_secs_f64();
        let frac = if total > 0 {
            done as f64 / total as f64
        } else {
            0.0
        };
        let left = if frac > 0.0 {
            format!(", about {} left", secs(elapsed * (1.0 - frac) / frac))
        } else {
            String::new()
        };
        // Without a unit, the message says what is counted.
        let what = match self.unit {
            "" => self.bar.message(),
            unit => unit.to_string(),
        };
        format!(
            "{}: {done}/{total} {what} ({:.0} %), {} elapsed{left}",
            self.who,
            100.0 * frac,
            secs(elapsed)
        )
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl nmm::Progress for Bar {
    fn set(&self, done: u64, total: u64) {
        if self.bar.length() != Some(total) {
            // A new phase: its own elapsed time and estimate.
            self.bar.set_length(total);
            self.bar.reset_elapsed();
            self.bar.reset_eta();
            let now = Instant::now();
            *self.clock() = (now, now);
        }
        self.bar.set_position(done);
        if self.bar.is_hidden() && done < total {
            let due = {
                let mut c = self.clock();
                let due = c.1.elapsed() >= LINE_EVERY;
                if due {
                    c.1 = Instant::now();
                }
                due
            };
            if due {
                crate::note!("{}", self.line(done, total));
            }
        }
    }

    fn message(&self, text: &str) {
        self.bar.set_message(text.to_string());
    }

    fn log(&self, line: &str) {
        if self.bar.is_hidden() {
            crate::note!("{}: {line}", self.who);
        }
    }

    fn note(&self, text: &str) {
        self.bar.suspend(|| crate::note!("{}: {text}", self.who));
    }
}

/// Whole seconds as `42 s`, `3 min 05 s` or `2 h 07 min`.
fn secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_person_writes_them() {
        assert_eq!(secs(0.4), "0 s");
        assert_eq!(secs(59.4), "59 s");
        assert_eq!(secs(185.0), "3 min 05 s");
        assert_eq!(secs(7620.0), "2 h 07 min");
    }

    #[test]
    fn a_line_estimates_the_time_left_from_the_rate_so_far() {
        let bar = Bar::new("{bar}", "batch", "runs");
        bar.clock().0 = Instant::now() - Duration::from_secs(30);
        // A quarter done in 30 s: 90 s left at that rate.
        assert_eq!(
            bar.line(5, 20),
            "batch: 5/20 runs (25 %), 30 s elapsed, about 1 min 30 s left"
        );
        assert_eq!(bar.line(0, 20), "batch: 0/20 runs (0 %), 30 s elapsed");
        // A new total is a new phase: its clock restarts.
        nmm::Progress::set(&bar, 0, 100);
        assert_eq!(bar.line(0, 100), "batch: 0/100 runs (0 %), 0 s elapsed");
        // What is counted can come with the message instead.
        let bar = Bar::new("{bar}", "spiking", "");
        bar.clock().0 = Instant::now() - Duration::from_secs(10);
        nmm::Progress::message(&bar, "time steps");
        assert_eq!(
            bar.line(1, 2),
            "spiking: 1/2 time steps (50 %), 10 s elapsed, about 10 s left"
        );
    }
}
