//! Progress on standard error (indicatif): records, rate, and with a known size a bar and an
//! ETA. Drawn only on a terminal unless asked for; the counting itself is two atomic stores
//! every few thousand records, so it costs the publish loop nothing measurable.

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};

use crate::args::ProgressMode;

/// A progress display (or nothing, when hidden).
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    records: Arc<AtomicU64>,
    started: Instant,
}

/// `1.23 M`, `45.6 k`, `789`.
pub(crate) fn human(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2} M", n / 1e6)
    } else if n >= 1e4 {
        format!("{:.1} k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

impl Progress {
    /// Progress of `what` (e.g. "published"); `total_bytes` gives a bar and an ETA.
    pub(crate) fn new(mode: ProgressMode, what: &'static str, total_bytes: Option<u64>) -> Self {
        let records = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let target = match mode {
            ProgressMode::Never => None,
            ProgressMode::Auto if !io::stderr().is_terminal() => None,
            ProgressMode::Auto => Some(ProgressDrawTarget::stderr_with_hz(5)),
            ProgressMode::Always if io::stderr().is_terminal() => {
                Some(ProgressDrawTarget::stderr_with_hz(5))
            }
            ProgressMode::Always => Some(ProgressDrawTarget::term_like_with_hz(
                Box::new(PlainStderr),
                5,
            )),
        };
        let Some(target) = target else {
            return Progress {
                bar: None,
                records,
                started,
            };
        };
        let counter = Arc::clone(&records);
        let count_key = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let n = counter.load(Ordering::Relaxed);
            let secs = state.elapsed().as_secs_f64().max(1e-3);
            let _ = write!(w, "{n} records {what} ({}/s)", human(n as f64 / secs));
        };
        let template = if total_bytes.is_some() {
            "{spinner} {elapsed_precise} [{wide_bar}] {percent:>3}% {records} ETA {eta}"
        } else {
            "{spinner} {elapsed_precise} {records}"
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key("records", count_key)
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(total_bytes, target).with_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar: Some(bar),
            records,
            started,
        }
    }

    /// `records` done, `bytes` of the input consumed.
    pub(crate) fn update(&self, records: u64, bytes: u64) {
        if let Some(bar) = &self.bar {
            self.records.store(records, Ordering::Relaxed);
            bar.set_position(bytes);
        }
    }

    /// Time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Remove the bar (the summary line follows it).
    pub(crate) fn finish(&self, records: u64, bytes: u64) {
        self.update(records, bytes);
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `N records <what> in S s (R/s)`.
pub(crate) fn summary(what: &str, records: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = records as f64 / secs.max(1e-9);
    format!(
        "{records} records {what} in {secs:.3} s ({}/s)",
        human(rate)
    )
}

/// Standard error when it is not a terminal (`--progress always`): each redraw on a line of
/// its own, no cursor movement.
#[derive(Debug)]
struct PlainStderr;

impl TermLike for PlainStderr {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        writeln!(io::stderr(), "{s}")
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        write!(io::stderr(), "{s}")
    }
    fn clear_line(&self) -> io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_well() {
        assert_eq!(human(1_234_567.0), "1.23 M");
        assert_eq!(human(45_600.0), "45.6 k");
        assert_eq!(human(789.0), "789");
        assert_eq!(
            summary("published", 2_000_000, Duration::from_secs(2)),
            "2000000 records published in 2.000 s (1.00 M/s)"
        );
    }
}
