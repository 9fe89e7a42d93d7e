//! The daemon's listen port, kept across restarts so that a contact card stays valid.
//!
//! With no `--listen` (nor KITH_LISTEN, nor `listen` in config.toml), the daemon listens on all
//! interfaces at the port kept in `listen.port` in the data directory, or at first on
//! [`DEFAULT_PEER_PORT`]; if that port is taken it takes a free one. Whichever port it got is
//! written back to `listen.port` (0600), so the next start listens on the same port.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result};
use kith::limits::DEFAULT_PEER_PORT;
use kith::runtime::private_dir::write_private_file;

/// File name of the kept port inside the data directory.
pub const PORT_FILE: &str = "listen.port";

/// Where to listen when nothing was given: the kept port, else [`DEFAULT_PEER_PORT`].
pub fn default_listen(dir: &Path) -> SocketAddr {
    let kept = std::fs::read_to_string(dir.join(PORT_FILE))
        .ok()
        .and_then(|t| t.trim().parse::<u16>().ok())
        .filter(|p| *p != 0);
    SocketAddr::from((Ipv4Addr::UNSPECIFIED, kept.unwrap_or(DEFAULT_PEER_PORT)))
}

/// The same address with a port the system picks (when the kept one is taken).
pub fn any_port(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip(), 0)
}

/// Keep `port` for the next start.
pub fn keep(dir: &Path, port: u16) -> Result<()> {
    let path = dir.join(PORT_FILE);
    write_private_file(&path, format!("{port}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_kept_and_junk_falls_back_to_the_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(default_listen(dir.path()).port(), DEFAULT_PEER_PORT);
        keep(dir.path(), 40123).unwrap();
        assert_eq!(default_listen(dir.path()).port(), 40123);
        for junk in ["0\n", "x\n", "99999\n"] {
            std::fs::write(dir.path().join(PORT_FILE), junk).unwrap();
            assert_eq!(default_listen(dir.path()).port(), DEFAULT_PEER_PORT);
        }
    }
}
