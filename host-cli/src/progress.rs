//! Progress bars for the library's [`nmm::Progress`] reports (indicatif, on stderr; hidden when
//! stderr is not a terminal, where [`nmm::Progress::log`] lines are printed instead).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar with a template; `who` prefixes the lines printed beside it.
pub struct Bar {
    bar: ProgressBar,
    who: &'static str,
}

impl Bar {
    /// A bar drawn with indicatif's `template`.
    pub fn new(template: &str, who: &'static str) -> Self {
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Self { bar, who }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl nmm::Progress for Bar {
    fn set(&self, done: u64, total: u64) {
        if self.bar.length() != Some(total) {
            self.bar.set_length(total);
        }
        self.bar.set_position(done);
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
