//! What the user sees on stderr: a live bar while bytes arrive (only on a terminal), one
//! line per file saying where its bytes came from, and notes, warnings and errors, each on
//! one line prefixed `pacxfer:`. pacman shows nothing of its own while an XferCommand runs,
//! so this is the whole of the download's display.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of bytes: source, file, bytes of all, rate, bar, percent.
const BYTES: &str = " {prefix:>6} {msg:36!} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} [{bar:20}] {percent:>3}%";

/// A bar of packages: repository, done of all, bar, what was added, time.
const PACKAGES: &str =
    " [{prefix}] {pos:>6}/{len:<6} packages [{bar:24}] {msg} {elapsed_precise} eta {eta}";

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#-")
}

/// A bar counting the `len` packages of `repo` (publish), on a terminal only.
pub fn packages_bar(repo: &str, len: u64, verbosity: Verbosity) -> Option<ProgressBar> {
    if verbosity == Verbosity::Quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(5));
    bar.set_style(style(PACKAGES));
    bar.set_prefix(crate::ui::shown::escape(repo).into_owned());
    Some(bar)
}

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Errors and warnings only.
    Quiet,
    /// Plus one line per file.
    Normal,
    /// Plus each source tried and why it was passed over.
    Verbose,
}

/// The display for one file.
pub struct Progress {
    verbosity: Verbosity,
    bar: Option<ProgressBar>,
    /// A bar drawn by someone else (a whole run's), kept clear of this display's lines.
    outer: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    /// A display for `filename`; the bar appears only when stderr is a terminal.
    pub fn new(filename: &str, verbosity: Verbosity) -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress::with_bar(filename, verbosity, tty)
    }

    /// A display that never draws a bar (for lookups and tests).
    pub fn plain(verbosity: Verbosity) -> Progress {
        Progress::with_bar("", verbosity, false)
    }

    /// A display without a bar of its own whose lines go above `outer`, another display's
    /// bar (a whole run's, drawn while files come and go).
    pub fn under(outer: Option<ProgressBar>, verbosity: Verbosity) -> Progress {
        Progress {
            outer,
            ..Progress::plain(verbosity)
        }
    }

    /// How much this display says.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    fn with_bar(filename: &str, verbosity: Verbosity, tty: bool) -> Progress {
        let bar = (tty && verbosity != Verbosity::Quiet).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            bar.set_style(style(BYTES));
            bar.set_message(crate::ui::shown::escape(filename).into_owned());
            bar
        });
        Progress {
            verbosity,
            bar,
            outer: None,
            started: Instant::now(),
        }
    }

    /// A source starts sending: `total` bytes expected in all, `at` already there.
    pub fn start(&self, source: &str, total: Option<u64>, at: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total.unwrap_or(0));
            bar.set_position(at);
            bar.set_prefix(source.to_string());
        }
    }

    /// The output now holds `pos` bytes.
    pub fn advance(&self, pos: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
        }
    }

    fn line(&self, text: &str) {
        let text = crate::ui::shown::shown(text);
        match self.outer.as_ref().or(self.bar.as_ref()) {
            Some(bar) => bar.suspend(|| eprintln!("pacxfer: {text}")),
            None => eprintln!("pacxfer: {text}"),
        }
    }

    /// A detail shown with `-v`.
    pub fn note(&self, text: &str) {
        if self.verbosity == Verbosity::Verbose {
            self.line(text);
        }
    }

    /// Something worth a line unless `-q` was given (such as waiting for another process).
    pub fn info(&self, text: &str) {
        if self.verbosity != Verbosity::Quiet {
            self.line(text);
        }
    }

    /// Something the user should know even when it did not stop the download.
    pub fn warn(&self, text: &str) {
        self.line(&format!("warning: {text}"));
    }

    /// The one success line: where the bytes came from, size, time, rate.
    pub fn done(&self, filename: &str, source: &str, detail: &str, bytes: u64, resumed: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let elapsed = self.started.elapsed();
        let fresh = bytes.saturating_sub(resumed);
        let mut text = if source == "unchanged" {
            format!(
                "{filename} {} unchanged on the mirror (304): the copy pacman has, kept in {}",
                size(bytes),
                secs(elapsed)
            )
        } else if source == "updates" {
            format!(
                "{filename} {} built from the {detail}; the mirror has nothing newer (304), in {}",
                size(bytes),
                secs(elapsed)
            )
        } else {
            format!(
                "{filename} {} from {source} in {} ({}/s)",
                size(bytes),
                secs(elapsed),
                size(rate(fresh, elapsed))
            )
        };
        if resumed > 0 {
            text.push_str(&format!(", resumed at {}", size(resumed)));
        }
        if self.verbosity == Verbosity::Verbose && !detail.is_empty() && source != "updates" {
            text.push_str(&format!(" [{detail}]"));
        }
        self.line(&text);
    }

    /// Clears the bar without a success line.
    pub fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The display of a batch of downloads running side by side (prefetch): on a terminal a bar
/// per active download above a total bar; otherwise one line per file as each ends.
pub struct Batch {
    verbosity: Verbosity,
    multi: Option<MultiProgress>,
    total: Option<ProgressBar>,
}

impl Batch {
    /// A batch of `files` files, `bytes` bytes in all.
    pub fn new(files: u64, bytes: u64, verbosity: Verbosity) -> Batch {
        let tty = std::io::stderr().is_terminal() && verbosity != Verbosity::Quiet;
        if !tty {
            return Batch {
                verbosity,
                multi: None,
                total: None,
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let total = multi.add(ProgressBar::new(bytes));
        total.set_style(style(BYTES));
        total.set_prefix("total");
        total.set_message(format!("0 of {files} files"));
        Batch {
            verbosity,
            multi: Some(multi),
            total: Some(total),
        }
    }

    /// The display of one file of the batch.
    pub fn file(&self, filename: &str) -> Progress {
        let mut progress = Progress::with_bar(filename, self.verbosity, self.multi.is_some());
        if let (Some(multi), Some(bar), Some(total)) = (&self.multi, &progress.bar, &self.total) {
            progress.bar = Some(multi.insert_before(total, bar.clone()));
            progress.outer = Some(total.clone());
        }
        progress
    }

    /// A file is over: `bytes` more of the total, `done` files of `files`.
    pub fn file_over(&self, bytes: u64, done: u64, files: u64) {
        if let Some(total) = &self.total {
            total.inc(bytes);
            total.set_message(format!("{done} of {files} files"));
        }
    }

    /// A line above the bars.
    pub fn line(&self, text: &str) {
        let text = format!("pacxfer: {}", crate::ui::shown::shown(text));
        match &self.total {
            Some(total) => total.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        if let Some(total) = &self.total {
            total.finish_and_clear();
        }
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }
}

/// Bytes per second.
pub fn rate(bytes: u64, elapsed: Duration) -> u64 {
    let s = elapsed.as_secs_f64();
    if s <= 0.0 {
        return bytes;
    }
    (bytes as f64 / s) as u64
}

/// A byte count for people: `512 B`, `3.4 KiB`, `12.0 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration for people: `0.04s`, `12.3s`.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.2}s")
    } else {
        format!("{s:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn durations() {
        assert_eq!(secs(Duration::from_millis(40)), "0.04s");
        assert_eq!(secs(Duration::from_secs(12)), "12.0s");
    }
}
