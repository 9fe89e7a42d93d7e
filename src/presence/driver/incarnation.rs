//! Incarnation numbers (`vsn`) for this node's presence shards, monotonic across restarts.
//!
//! Peers tell a restart from a reconnect by the vsn, and refuse a vsn lower than the one they
//! know as stale (a delayed frame must not resurrect a retired incarnation). A vsn taken from
//! the wall clock alone goes backwards when the clock steps back (NTP correction, a bad RTC
//! after a reboot): the restarted node would be refused by every peer until its old entry is
//! permdowned (20 min by default). So the vsn is `max(clock in µs, last vsn used + 1)`, and a
//! node with a data directory keeps the last vsn used in a small file there ([`VSN_FILE`],
//! 0600, written to a temporary file and renamed over the old one before the vsn is used).
//! A process without a data directory (tests, the load test) keeps the floor in memory only.
//!
//! A failed write is logged at WARN and the vsn is used anyway: it is still monotonic within
//! this process, and only a later restart with the clock stepped back would be refused. A
//! floor file that cannot be read or does not hold a number is refused at open with its path.

use crate::runtime::private_dir::write_private_file;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// The floor file's name inside a data directory.
pub const VSN_FILE: &str = "presence.vsn";

/// The clock a vsn is drawn from: microseconds since the Unix epoch.
pub type MicrosClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The floor file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IncarnationError {
    /// Reading or writing the file failed.
    #[error("presence incarnation file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not hold a decimal number.
    #[error("presence incarnation file {path} is damaged (it should hold one number); delete it to start from the clock")]
    Damaged {
        /// The file.
        path: PathBuf,
    },
}

/// The next vsn: the clock, unless it is not past the floor (the last vsn used).
pub fn next_vsn(now_micros: u64, floor: u64) -> u64 {
    now_micros.max(floor.saturating_add(1))
}

/// The wall clock in microseconds (0 before the epoch: the floor still moves on).
pub fn system_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The source of this node's vsns, shared by its shards (one per tracker).
pub struct Incarnations {
    floor: Mutex<u64>,
    file: Option<PathBuf>,
    clock: MicrosClock,
}

impl std::fmt::Debug for Incarnations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incarnations")
            .field("floor", &self.floor)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Incarnations {
    /// A floor kept in memory only, on the wall clock.
    pub fn in_memory() -> Self {
        Self::in_memory_with_clock(Arc::new(system_micros))
    }

    /// A floor kept in memory only, on another clock (tests step it back).
    pub fn in_memory_with_clock(clock: MicrosClock) -> Self {
        Self {
            floor: Mutex::new(0),
            file: None,
            clock,
        }
    }

    /// A floor kept in `dir/`[`VSN_FILE`], on the wall clock. A missing file is a floor of 0.
    pub fn open(dir: &Path) -> Result<Self, IncarnationError> {
        Self::open_with_clock(dir, Arc::new(system_micros))
    }

    /// [`Incarnations::open`] with another clock (tests step it back).
    pub fn open_with_clock(dir: &Path, clock: MicrosClock) -> Result<Self, IncarnationError> {
        let path = dir.join(VSN_FILE);
        let floor = match std::fs::read(&path) {
            Ok(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| IncarnationError::Damaged { path: path.clone() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(IncarnationError::Io { path, source }),
        };
        Ok(Self {
            floor: Mutex::new(floor),
            file: Some(path),
            clock,
        })
    }

    /// The last vsn used (or read from the file).
    pub fn floor(&self) -> u64 {
        *self.floor.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new vsn, larger than every vsn this node used before; recorded before it is returned.
    pub fn next(&self) -> u64 {
        let mut floor = self.floor.lock().unwrap_or_else(PoisonError::into_inner);
        let vsn = next_vsn((self.clock)(), *floor);
        if let Some(path) = &self.file {
            if let Err(source) = write_private_file(path, format!("{vsn}\n").as_bytes()) {
                let e = IncarnationError::Io {
                    path: path.clone(),
                    source,
                };
                tracing::warn!(error = %e, vsn, "presence incarnation not recorded; a restart with the clock stepped back would be refused by peers until permdown");
            }
        }
        *floor = vsn;
        vsn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn stepped_clock() -> (Arc<AtomicU64>, MicrosClock) {
        let now = Arc::new(AtomicU64::new(0));
        let read = Arc::clone(&now);
        (now, Arc::new(move || read.load(Ordering::SeqCst)))
    }

    #[test]
    fn the_clock_wins_while_it_moves_forward() {
        assert_eq!(next_vsn(5_000, 0), 5_000);
        assert_eq!(next_vsn(5_000, 4_999), 5_000);
        assert_eq!(next_vsn(5_000, 5_000), 5_001);
        assert_eq!(next_vsn(10, 5_000), 5_001);
        assert_eq!(next_vsn(0, u64::MAX), u64::MAX);
    }

    #[test]
    fn a_restart_with_the_clock_stepped_back_gets_a_larger_vsn() {
        let dir = tempfile::tempdir().unwrap();
        let (now, clock) = stepped_clock();
        now.store(1_000_000, Ordering::SeqCst);
        let first = Incarnations::open_with_clock(dir.path(), Arc::clone(&clock)).unwrap();
        let a = first.next();
        let b = first.next();
        assert_eq!((a, b), (1_000_000, 1_000_001));
        drop(first);
        // The process restarts and the clock has stepped back.
        now.store(400_000, Ordering::SeqCst);
        let second = Incarnations::open_with_clock(dir.path(), clock).unwrap();
        assert_eq!(second.floor(), b);
        assert_eq!(second.next(), b + 1);
        let path = dir.path().join(VSN_FILE);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", b + 1)
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.path().join("presence.vsn.tmp").exists());
    }

    #[test]
    fn a_damaged_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(VSN_FILE), b"\x00garbage").unwrap();
        let e = Incarnations::open(dir.path()).unwrap_err();
        assert!(matches!(e, IncarnationError::Damaged { .. }), "{e}");
        assert!(e.to_string().contains("presence.vsn"), "{e}");
    }

    #[test]
    fn an_unwritable_directory_still_gives_monotonic_vsns() {
        let (now, clock) = stepped_clock();
        now.store(50, Ordering::SeqCst);
        let gone = Path::new("/nonexistent-kith-dir/for-this-test");
        let inc = Incarnations::open_with_clock(gone, clock).unwrap();
        let a = inc.next();
        now.store(10, Ordering::SeqCst);
        assert!(inc.next() > a);
    }
}
