//! One scrape's figures in the Prometheus/OpenMetrics text format, written by
//! `prometheus-client` from a registry built for that scrape (values read, not kept).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::limits::METRICS_SUPERVISORS_MAX;
use crate::supervisor::SupervisorReport;

/// Why a scrape has no text.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The encoder failed (a writer error; not expected with a `String`).
    #[error("encoding the metrics failed: {0}")]
    Encode(#[from] std::fmt::Error),
    /// Gathering the figures took longer than its bound.
    #[error("gathering the metrics took longer than {0:?}")]
    GatherTimeout(std::time::Duration),
}

/// Labels of one series: `(name, value)` pairs.
pub type Labels = Vec<(String, String)>;

/// The figures of one scrape, all named `kith_…`.
#[derive(Debug)]
pub struct Exposition {
    registry: Registry,
}

impl Default for Exposition {
    fn default() -> Self {
        Exposition {
            registry: Registry::with_prefix("kith"),
        }
    }
}

impl Exposition {
    /// A monotonic count (`kith_<name>_total`).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        let counter: Counter = Counter::default();
        counter.inc_by(value);
        self.registry.register(name, help, counter);
    }

    /// A value that goes up and down (`kith_<name>`).
    pub fn gauge(&mut self, name: &str, help: &str, value: i64) {
        let gauge: Gauge = Gauge::default();
        gauge.set(value);
        self.registry.register(name, help, gauge);
    }

    /// A labelled family of counts; a series per distinct label set.
    pub fn counters(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (Labels, u64)>,
    ) {
        let family = Family::<Labels, Counter>::default();
        for (labels, value) in series {
            family.get_or_create(&labels).inc_by(value);
        }
        self.registry.register(name, help, family);
    }

    /// A labelled family of gauges; a series per distinct label set (the last value wins).
    pub fn gauges(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (Labels, i64)>,
    ) {
        let family = Family::<Labels, Gauge>::default();
        for (labels, value) in series {
            family.get_or_create(&labels).set(value);
        }
        self.registry.register(name, help, family);
    }

    /// Restarts per supervisor and children per supervisor and state, from the live tree
    /// (`supervisor` is the path from the root: `switchboard/cluster`). Without a report (the
    /// tree is starting or did not answer in time) only `kith_supervision_reported 0` is said.
    pub fn supervision(&mut self, report: Option<&SupervisorReport>) {
        self.gauge(
            "supervision_reported",
            "1 if the supervision tree answered this scrape, 0 if not",
            i64::from(report.is_some()),
        );
        let mut restarts = Vec::new();
        let mut children = Vec::new();
        if let Some(report) = report {
            walk(report, "", &mut restarts, &mut children);
        }
        self.counters(
            "supervisor_restarts",
            "restarts performed by each supervisor since it started",
            restarts,
        );
        self.gauges(
            "supervisor_children",
            "children of each supervisor, by state",
            children,
        );
    }

    /// The text, ending with `# EOF`.
    pub fn encode(&self) -> Result<String, MetricsError> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// One label set of one pair.
pub fn label(name: &str, value: impl Into<String>) -> Labels {
    vec![(name.to_string(), value.into())]
}

fn walk(
    report: &SupervisorReport,
    parent: &str,
    restarts: &mut Vec<(Labels, u64)>,
    children: &mut Vec<(Labels, i64)>,
) {
    if restarts.len() >= METRICS_SUPERVISORS_MAX {
        return;
    }
    let path = match parent {
        "" => report.name.clone(),
        _ => format!("{parent}/{}", report.name),
    };
    restarts.push((label("supervisor", path.clone()), report.total_restarts));
    let mut by_state = [0i64; 3];
    for child in &report.children {
        let i = match child.state {
            crate::supervisor::ChildState::Running => 0,
            crate::supervisor::ChildState::Restarting => 1,
            crate::supervisor::ChildState::Stopped => 2,
        };
        by_state[i] += 1;
    }
    for (state, n) in ["running", "restarting", "stopped"].iter().zip(by_state) {
        let labels = vec![
            ("supervisor".to_string(), path.clone()),
            ("state".to_string(), (*state).to_string()),
        ];
        children.push((labels, n));
    }
    for child in &report.children {
        if let Some(sub) = &child.supervisor {
            walk(sub, &path, restarts, children);
        }
    }
}

/// Whether every child of the root is running (the readiness of a tree), and if not, which not.
pub fn root_ready(report: Option<&SupervisorReport>) -> Option<String> {
    let Some(report) = report else {
        return Some("the supervision tree did not answer".into());
    };
    let waiting: Vec<&str> = report
        .children
        .iter()
        .filter(|c| !matches!(c.state, crate::supervisor::ChildState::Running))
        .map(|c| c.id.as_str())
        .collect();
    match waiting.is_empty() {
        true => None,
        false => Some(format!("not running: {}", waiting.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_total_and_labels_are_quoted_and_the_text_ends_with_eof() {
        let mut e = Exposition::default();
        e.counter("switchboard_joins", "peers admitted", 7);
        e.gauge("switchboard_clients_online", "peers connected now", 3);
        e.counters(
            "switchboard_joins_refused",
            "by reason",
            [
                (label("reason", "in\"vite"), 2),
                (label("reason", "busy"), 0),
            ],
        );
        let text = e.encode().unwrap();
        assert!(
            text.contains("# TYPE kith_switchboard_joins counter\n"),
            "{text}"
        );
        assert!(text.contains("kith_switchboard_joins_total 7\n"), "{text}");
        assert!(
            text.contains("kith_switchboard_clients_online 3\n"),
            "{text}"
        );
        assert!(
            text.contains("kith_switchboard_joins_refused_total{reason=\"busy\"} 0\n"),
            "{text}"
        );
        assert!(text.contains(r#"reason="in\"vite""#), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn no_report_is_said_and_is_not_ready() {
        let mut e = Exposition::default();
        e.supervision(None);
        let text = e.encode().unwrap();
        assert!(text.contains("kith_supervision_reported 0\n"), "{text}");
        assert!(root_ready(None).is_some());
    }
}
