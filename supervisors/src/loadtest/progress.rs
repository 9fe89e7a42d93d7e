//! Live progress while a load test runs: an indicatif bar of connected peers with rates, errors
//! and restarts when stdout is a terminal, else one plain line every few seconds (a log or CI
//! keeps a readable record instead of carriage returns).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use kith::loadtest::metrics::{Measure, Metrics};
use kith::runtime::OwnedTask;

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(200);
/// How often a plain line is printed when stdout is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The display; it stops when dropped.
pub struct Progress {
    _task: OwnedTask,
    bar: Option<ProgressBar>,
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Start showing `metrics` for a run of `peers`.
pub fn start(metrics: Arc<Metrics>, peers: u64) -> Progress {
    if std::io::stdout().is_terminal() {
        let bar = ProgressBar::new(peers);
        let style =
            ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} connected  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        let shown = bar.clone();
        let task = OwnedTask::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(TICK).await;
                let joins = Metrics::get(&metrics.joins);
                let rate = (joins - last) as f64 / TICK.as_secs_f64();
                last = joins;
                shown.set_position(Metrics::get(&metrics.connected));
                shown.set_message(line(&metrics, rate));
            }
        });
        Progress {
            _task: task,
            bar: Some(bar),
        }
    } else {
        let task = OwnedTask::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(PLAIN_EVERY).await;
                let joins = Metrics::get(&metrics.joins);
                let rate = (joins - last) as f64 / PLAIN_EVERY.as_secs_f64();
                last = joins;
                let connected = Metrics::get(&metrics.connected);
                println!(
                    "{:>5.0} s  {connected}/{peers} connected  {}",
                    metrics.started().elapsed().as_secs_f64(),
                    line(&metrics, rate)
                );
            }
        });
        Progress {
            _task: task,
            bar: None,
        }
    }
}

fn line(metrics: &Metrics, joins_per_s: f64) -> String {
    let failures: u64 = metrics.failures().values().sum();
    let mut out = format!(
        "{joins_per_s:.0} joins/s  {failures} errors  {} restarts",
        Metrics::get(&metrics.restarts)
    );
    if let Some(h) = metrics.whole(Measure::RelayRtt) {
        out += &format!("  relay p99 {:.1} ms", h.quantile_ms(0.99));
    }
    if let Ok(Some(h)) = metrics.presence() {
        out += &format!("  presence p99 {:.0} ms", h.quantile_ms(0.99));
    }
    out
}
