//! The benchmarks that need a supervision tree or a `kith` process: `kith bench relay`
//! ([`relay`], with the PM QoS hold in [`wake_latency`]) and `kith bench replicate`
//! ([`replicate`]), and `kith bench web` ([`web`]: the web page on a real daemon tree). Benchmarks that need only the library live in `kith::bench`.

pub mod presence_cluster;
pub mod relay;
pub mod replicate;
pub mod wake_latency;
pub mod web;
