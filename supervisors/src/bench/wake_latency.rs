//! A PM QoS wake-latency request, as `cyclictest` makes one: for latency benchmarks, and for a
//! switchboard whose operator asks for it (`kith switchboard --poll-idle`).
//!
//! On this kind of VM (cpuidle driver `haltpoll`, `guest_halt_poll_ns=0`) an idle vCPU halts
//! at once, and waking it for the next packet costs tens of microseconds, sometimes hundreds.
//! A relayed round trip wakes four sleepers (switchboard, B, switchboard, A), so without care a
//! latency benchmark measures the hypervisor's wake-ups more than the software. Linux's answer
//! is the PM QoS interface `/dev/cpu_dma_latency`: while a process keeps it open with a value
//! of 0 µs written, idle CPUs poll instead of halting. Closing it (dropping [`WakeLatencyHold`])
//! withdraws the request. It needs root; without it the benchmark says so and measures anyway.

use std::fs::{File, OpenOptions};
use std::io::Write;

/// The PM QoS device.
const DEVICE: &str = "/dev/cpu_dma_latency";

/// An open wake-latency request; dropping it withdraws the request.
pub struct WakeLatencyHold {
    _device: File,
}

/// Why no request could be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot request a wake latency through {DEVICE}: {0}")]
pub struct WakeLatencyError(#[from] std::io::Error);

impl WakeLatencyHold {
    /// Asks that idle CPUs wake within 0 µs (poll instead of halting) while this is held.
    pub fn zero() -> Result<Self, WakeLatencyError> {
        let mut device = OpenOptions::new().write(true).open(DEVICE)?;
        // The kernel reads a binary native-endian s32 of microseconds.
        device.write_all(&0i32.to_ne_bytes())?;
        Ok(Self { _device: device })
    }
}
