//! The stop signals every long-running command of the binary waits for (`kith daemon`,
//! `kith switchboard`, `kith loadtest`): one place, so they all stop on the same signals.

use anyhow::Result;

/// Wait for SIGTERM or SIGINT; the signal's name.
pub async fn shutdown_signal() -> Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
