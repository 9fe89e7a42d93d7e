//! Latency histograms: HDR histograms in microseconds (3 significant digits), serialized in the
//! HdrHistogram V2 format and base64, so that shards' reports merge exactly (adding counts, not
//! averaging percentiles). Pure: no clock, no IO.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::limits::LOADTEST_LATENCY_MAX_US;
use crate::loadtest::LoadtestError;

/// Significant digits kept (0.1 % resolution).
const SIGFIG: u8 = 3;

/// A latency histogram in microseconds.
#[derive(Clone, Debug)]
pub struct Hist(Histogram<u64>);

impl Hist {
    /// An empty histogram from 1 µs to [`LOADTEST_LATENCY_MAX_US`].
    pub fn new() -> Result<Hist, LoadtestError> {
        Histogram::new_with_bounds(1, LOADTEST_LATENCY_MAX_US, SIGFIG)
            .map(Hist)
            .map_err(|e| LoadtestError::Histogram(e.to_string()))
    }

    /// Record one latency (clamped into the histogram's range).
    pub fn record(&mut self, micros: u64) {
        self.0
            .saturating_record(micros.clamp(1, LOADTEST_LATENCY_MAX_US));
    }

    /// How many were recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Add another histogram's counts to this one (exact).
    pub fn add(&mut self, other: &Hist) -> Result<(), LoadtestError> {
        self.0
            .add(&other.0)
            .map_err(|e| LoadtestError::Histogram(format!("{e:?}")))
    }

    /// Forget every count.
    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// The value at quantile `q` (0..=1), in the unit recorded (for `kith bench`, whose figures
    /// are in µs or ms as each names them: one percentile helper for the bench and the load test).
    pub fn value_at(&self, q: f64) -> u64 {
        self.0.value_at_quantile(q)
    }

    /// The largest value recorded (0 when empty), in the unit recorded.
    pub fn max_value(&self) -> u64 {
        self.0.max()
    }

    /// The value at quantile `q` (0..=1), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1_000.0
    }

    /// The summary the report prints, with the histogram itself.
    pub fn latency(&self) -> Result<Latency, LoadtestError> {
        Ok(Latency {
            count: self.len(),
            p50: self.quantile_ms(0.50),
            p95: self.quantile_ms(0.95),
            p99: self.quantile_ms(0.99),
            max: self.0.max() as f64 / 1_000.0,
            hist_us: self.encode()?,
        })
    }

    /// V2 bytes, base64 (standard alphabet).
    pub fn encode(&self) -> Result<String, LoadtestError> {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&self.0, &mut bytes)
            .map_err(|e| LoadtestError::Histogram(format!("{e:?}")))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// The inverse of [`Hist::encode`].
    pub fn decode(text: &str) -> Result<Hist, LoadtestError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| LoadtestError::Histogram(e.to_string()))?;
        let decoded: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|e| LoadtestError::Histogram(format!("{e:?}")))?;
        let mut hist = Hist::new()?;
        hist.add(&Hist(decoded))?;
        Ok(hist)
    }
}

/// A latency summary in milliseconds, and the histogram it came from (µs, V2, base64).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Worst.
    pub max: f64,
    /// The HDR histogram in microseconds, V2-serialized, base64.
    pub hist_us: String,
}

impl Latency {
    /// The histogram back.
    pub fn hist(&self) -> Result<Hist, LoadtestError> {
        Hist::decode(&self.hist_us)
    }

    /// The exact merge of two summaries (their histograms added).
    pub fn merge(
        a: Option<&Latency>,
        b: Option<&Latency>,
    ) -> Result<Option<Latency>, LoadtestError> {
        match (a, b) {
            (None, None) => Ok(None),
            (Some(x), None) | (None, Some(x)) => Ok(Some(x.clone())),
            (Some(a), Some(b)) => {
                let mut hist = a.hist()?;
                hist.add(&b.hist()?)?;
                hist.latency().map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() -> Result<(), LoadtestError> {
        let mut h = Hist::new()?;
        for v in 1..=1_000 {
            h.record(v * 1_000);
        }
        let back = Hist::decode(&h.encode()?)?;
        assert_eq!(back.len(), 1_000);
        assert!((back.quantile_ms(0.5) - 500.0).abs() < 1.0);
        Ok(())
    }

    #[test]
    fn merge_is_exact_not_an_average() -> Result<(), LoadtestError> {
        let (mut fast, mut slow, mut both) = (Hist::new()?, Hist::new()?, Hist::new()?);
        for _ in 0..99 {
            fast.record(1_000);
            both.record(1_000);
        }
        slow.record(900_000);
        both.record(900_000);
        let merged = Latency::merge(Some(&fast.latency()?), Some(&slow.latency()?))?;
        let merged = merged.ok_or(LoadtestError::Invalid("no merge"))?;
        assert_eq!(merged.count, 100);
        assert_eq!(merged.p99, both.latency()?.p99);
        assert_eq!(merged.p50, both.latency()?.p50);
        assert_eq!(Latency::merge(None, None)?, None);
        Ok(())
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() -> Result<(), LoadtestError> {
        let mut h = Hist::new()?;
        h.record(0);
        h.record(u64::MAX);
        assert_eq!(h.len(), 2);
        Ok(())
    }
}
