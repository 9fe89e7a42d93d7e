//! The control server: owns the control socket and answers client commands.
//!
//! On start it binds `control.sock` in the data directory (owner-only) and runs an accept loop
//! as a task it owns; each client connection is served by a short task, at most
//! [`CONTROL_CONNECTIONS_MAX`] at once. If accepting fails the loop tells the actor, which fails,
//! so that its supervisor restarts it with a fresh socket. Spawned by the daemon's root supervisor.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::limits::{CONTROL_CONNECTIONS_MAX, CONTROL_LINE_BYTES_MAX};
use crate::runtime::OwnedTask;
use crate::wire::control::SOCKET_FILE;
use crate::wire::control::{Request, Response};

/// Messages to the control server.
pub enum ControlMsg {
    /// The accept loop failed; the actor fails so that it is restarted.
    AcceptFailed(String),
}

/// The control server actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct ControlServer;

/// What the control server starts with.
#[derive(Clone)]
pub struct ControlArgs {
    /// The data directory holding the socket.
    pub data_dir: PathBuf,
    /// Answers requests (a daemon's node, or a switchboard).
    pub handler: Handler,
}

/// Something that reports the live supervision tree as JSON (provided by whoever built the tree,
/// so that the handlers do not need to know their supervisors).
pub type TreeReporter =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = serde_json::Value> + Send>> + Send + Sync>;

/// Answers one control request.
pub type Handler =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// The control server's state: its accept loop, aborted with it, and the socket file, removed
/// with it (so a stopped daemon leaves no socket for clients to find).
pub struct ControlState {
    _accept: OwnedTask,
    socket: PathBuf,
}

impl Drop for ControlState {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Actor for ControlServer {
    type Msg = ControlMsg;
    type State = ControlState;
    type Arguments = ControlArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let socket = args.data_dir.join(SOCKET_FILE);
        let listener = bind(&socket)?;
        Ok(ControlState {
            _accept: OwnedTask::spawn(accept_loop(listener, args, myself)),
            socket,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ControlMsg::AcceptFailed(reason) => {
                Err(format!("control socket accept failed: {reason}").into())
            }
        }
    }
}

fn bind(path: &PathBuf) -> Result<UnixListener, ActorProcessingErr> {
    // The data-directory lock is held by this process, so a socket file left here is stale.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("removing stale {}: {e}", path.display()).into()),
    }
    let listener =
        UnixListener::bind(path).map_err(|e| format!("binding {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn accept_loop(listener: UnixListener, args: ControlArgs, myself: ActorRef<ControlMsg>) {
    let slots = Arc::new(Semaphore::new(CONTROL_CONNECTIONS_MAX));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                let _ = myself.cast(ControlMsg::AcceptFailed(e.to_string()));
                return;
            }
        };
        // Waiting for a slot here is the backpressure: past the bound, clients queue in the
        // kernel's listen backlog instead of in our memory.
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let handler = Arc::clone(&args.handler);
        tokio::spawn(async move {
            if let Err(e) = serve(stream, &handler).await {
                tracing::debug!(error = %e, "control client failed");
            }
            drop(permit);
        });
    }
}

async fn serve(stream: UnixStream, handler: &Handler) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take(CONTROL_LINE_BYTES_MAX as u64 + 1));
    let mut line = String::new();
    while {
        line.clear();
        lines.read_line(&mut line).await?
    } > 0
    {
        let response = if line.len() > CONTROL_LINE_BYTES_MAX {
            Response::err(format!(
                "request longer than {CONTROL_LINE_BYTES_MAX} bytes"
            ))
        } else {
            match serde_json::from_str::<Request>(&line) {
                Ok(request) => handler(request).await,
                Err(e) => Response::err(format!("malformed request: {e}")),
            }
        };
        let mut out = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
        out.push(b'\n');
        write.write_all(&out).await?;
        lines.get_mut().set_limit(CONTROL_LINE_BYTES_MAX as u64 + 1);
    }
    Ok(())
}
