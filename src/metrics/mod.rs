//! Metrics for operators: `--metrics ADDR` on `kith switchboard` and `kith daemon` serves the
//! process's figures as Prometheus/OpenMetrics text over plain HTTP/1.1 (issue 17, item 4).
//!
//! Nothing here keeps a second copy of a counter: each scrape reads the figures the process
//! already keeps (a switchboard's counters and relay stats, a daemon's connection table and
//! replicators, the supervision report) through a role's [`MetricsSource`], and [`Exposition`]
//! writes them in the text format with `prometheus-client`. Labels are bounded: no per-peer
//! label anywhere, supervisors are a fixed tree, and a daemon's per-feed lag names at most
//! [`crate::limits::METRICS_LAG_FEEDS_MAX`] followed feeds.
//!
//! The server ([`MetricsServer`]) is a worker of each tree: the TCP listener is bound before the
//! tree (a taken port is a start-up error, and a restart never rebinds), and the worker serves
//! `GET /metrics` and `GET /ready` (200 when every child of the tree's root is running, 503
//! otherwise: a Kubernetes readiness probe).

mod exposition;
mod server;

pub use exposition::{label, root_ready, Exposition, Labels, MetricsError};
pub use server::{
    bind, Gathered, MetricsArgs, MetricsMsg, MetricsServer, MetricsSource, MetricsState, ReportFn,
};
