//! The client side of the control socket: one request, one response.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};
use kith::limits::CONTROL_TIMEOUT;
use kith::wire::control::SOCKET_FILE;
use kith::wire::control::{Request, Response};

/// Send `request` to the daemon running on `data_dir`; the data on success.
pub fn call(data_dir: &Path, request: &Request) -> Result<serde_json::Value> {
    let path = data_dir.join(SOCKET_FILE);
    let stream = UnixStream::connect(&path).map_err(|_| {
        anyhow::anyhow!(
            "no kith daemon is running for {}; start one with `kith daemon --data-dir {}`",
            data_dir.display(),
            data_dir.display()
        )
    })?;
    stream.set_read_timeout(Some(CONTROL_TIMEOUT))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    (&stream)
        .write_all(&line)
        .context("sending the request to the daemon")?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .context("reading the daemon's answer")?;
    if answer.is_empty() {
        bail!("the daemon closed the connection without answering; check its log");
    }
    let response: Response =
        serde_json::from_str(&answer).context("the daemon's answer is not valid")?;
    match (response.ok, response.data, response.error) {
        (true, Some(data), _) => Ok(data),
        (_, _, Some(error)) => bail!(error),
        _ => bail!("the daemon's answer is empty"),
    }
}
