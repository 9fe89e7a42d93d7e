//! The `kith` binary: parses the command line, then either runs a tree (daemon) or acts as a
//! client of the running daemon's control socket.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::io::IsTerminal;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;
use kith::daemon::peer::{IntroPolicy, ServePolicy};
use kith::daemon::uplink::PresenceVisibility;
use kith::identity::Identity;
use kith::net::PeerEndpoint;
use kith::relay::idle_poll::{IdlePollConfig, IdlePoller};
use kith::relay::RouterConfig;
use kith::runtime::private_dir::ensure_private_dir;
use kith::store::Store;
use kith::supervisor::{RootExit, RootSupervisor};
use kith::wire::control::Request;
use kith_supervisors::bench::wake_latency::WakeLatencyHold;
use kith_supervisors::bench::{relay as bench_relay, replicate as bench_replicate};
use kith_supervisors::cli::args::{
    BenchCommand, Cli, Command, DaemonArgs, PresenceCommand, SwitchboardAction, SwitchboardArgs,
    SwitchboardsAction, SwitchboardsArgs,
};
use kith_supervisors::cli::args::{ContactsAction, ContactsArgs};
use kith_supervisors::cli::signal::shutdown_signal;
use kith_supervisors::cli::{client, config, output, port, report, social};
use kith_supervisors::trees::{daemon, switchboard};
use serde_json::json;

/// The system allocator with a per-thread count of live bytes: `kith bench presence` measures
/// memory with it, as `cargo bench` does (one thread-local add per allocation elsewhere).
#[global_allocator]
static ALLOC: kith::bench::alloc::CountingAlloc = kith::bench::alloc::CountingAlloc;

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("kith: {}", report::error_text(&e));
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let dir = config::data_dir(cli.data_dir.clone())?;
    let file = config::load(&dir).unwrap_or_default();
    // Benchmarks print figures; the per-connection info lines of the trees they run would bury them.
    let quiet = match cli.command {
        Command::Bench { .. } => Some("warn".to_string()),
        // Inner connections closed with their relay at teardown make quinn log I/O errors.
        Command::Loadtest(_) => Some("warn,quinn=off".to_string()),
        _ => None,
    };
    init_tracing(&config::log_filter(
        cli.log.clone(),
        std::env::var("RUST_LOG").ok(),
        file.log.clone(),
        quiet,
    ));
    match cli.command {
        Command::Init(f) => init(&dir, f.restore, f.json.json),
        Command::Whoami(f) => {
            let id = Identity::load(&dir)?.id().to_string();
            output::print(f.json, &json!({ "id": id }), |_| id.clone());
            Ok(())
        }
        Command::Daemon(args) => run_daemon(&dir, args, config::load(&dir)?),
        Command::Post {
            text,
            reply_to,
            attach,
            json,
        } if !attach.is_empty() => {
            let request = kith_supervisors::cli::blob::post_attached(text, reply_to, &attach)?;
            ask(&dir, json.json, request, |d| {
                d["id"].as_str().unwrap_or("").to_string()
            })
        }
        Command::Post {
            text,
            reply_to,
            json,
            ..
        } => ask(&dir, json.json, Request::Post { text, reply_to }, |d| {
            d["id"].as_str().unwrap_or("").to_string()
        }),
        Command::Follow { id, addr, json } if id.starts_with("kith:") && addr.is_none() => {
            ask(&dir, json.json, Request::FollowCard { card: id }, contact)
        }
        Command::Follow { id, addr, json } => {
            ask(&dir, json.json, Request::Follow { id, addr }, contact)
        }
        Command::Unfollow(a) => ask(&dir, a.json.json, Request::Unfollow { id: a.id }, contact),
        Command::Block(a) => ask(&dir, a.json.json, Request::Block { id: a.id }, contact),
        Command::Unblock(a) => ask(&dir, a.json.json, Request::Unblock { id: a.id }, contact),
        Command::Feed {
            id,
            limit,
            before,
            json,
        } => ask(
            &dir,
            json.json,
            Request::Feed { id, limit, before },
            output::entries,
        ),
        Command::Timeline {
            limit,
            before,
            json,
        } => ask(
            &dir,
            json.json,
            Request::Timeline { limit, before },
            output::entries,
        ),
        Command::Contacts(ContactsArgs { action: None, json }) => {
            ask(&dir, json.json, Request::Contacts, output::contacts)
        }
        Command::Contacts(ContactsArgs {
            action: Some(ContactsAction::Name { id, name, json }),
            ..
        }) => ask(
            &dir,
            json.json,
            Request::Petname { id, petname: name },
            |d| {
                let c = &d["contact"];
                format!(
                    "{}  {}",
                    c["label"].as_str().unwrap_or(""),
                    c["id"].as_str().unwrap_or("")
                )
            },
        ),
        Command::Social(command) => social::run(&dir, command),
        Command::Private(command) => kith_supervisors::cli::private::run(&dir, command),
        Command::Blob { action } => kith_supervisors::cli::blob::run(&dir, action),
        Command::Status(f) => ask(&dir, f.json, Request::Status, output::status),
        Command::Connect { target, json } => ask(
            &dir,
            json.json,
            Request::Connect { target },
            output::connected,
        ),
        Command::Switchboards(SwitchboardsArgs { action, json }) => match action {
            None => ask(&dir, json.json, Request::Switchboards, output::switchboards),
            Some(SwitchboardsAction::Forget { target, json }) => ask(
                &dir,
                json.json,
                Request::SwitchboardForget { target },
                |d| format!("forgotten: {}", output::join_strings(&d["forgotten"])),
            ),
        },
        Command::Bench { which } => bench(which),
        Command::Web(f) => web_link(&dir, f.json),
        Command::Loadtest(args) => kith_supervisors::loadtest::main(args),
        Command::Presence {
            action: PresenceCommand::Set { text, json },
        } => ask(
            &dir,
            json.json,
            Request::PresenceSet { text },
            |d| match d["status"].as_str() {
                Some(text) => format!("status: {text}"),
                None => "status cleared".to_string(),
            },
        ),
        Command::Switchboard(SwitchboardArgs {
            action: Some(action),
            ..
        }) => switchboard_command(&dir, action),
        Command::Switchboard(args) => run_switchboard(&dir, args),
    }
}

/// An operator's command to the running switchboard on `dir`.
fn switchboard_command(dir: &Path, action: SwitchboardAction) -> Result<()> {
    match action {
        SwitchboardAction::Invite {
            list: true, json, ..
        } => ask(dir, json.json, Request::InviteList, output::invites),
        SwitchboardAction::Invite {
            revoke: Some(code),
            json,
            ..
        } => ask(dir, json.json, Request::InviteRevoke { code }, |d| {
            format!("revoked {}", d["revoked"].as_str().unwrap_or(""))
        }),
        SwitchboardAction::Invite { hours, json, .. } => {
            ask(dir, json.json, Request::InviteCreate { hours }, |d| {
                format!(
                    "invite code: {}\n(a daemon uses it as --switchboard HOST:PORT#CODE)",
                    d["code"].as_str().unwrap_or("")
                )
            })
        }
        SwitchboardAction::Members { json } => {
            ask(dir, json.json, Request::Members, output::members)
        }
        SwitchboardAction::Remove { id, json } => {
            ask(dir, json.json, Request::MemberRemove { id }, |d| {
                format!("removed {}", d["removed"].as_str().unwrap_or(""))
            })
        }
    }
}

fn contact(data: &serde_json::Value) -> String {
    let c = &data["contact"];
    format!(
        "{}: following={} blocked={}",
        c["id"].as_str().unwrap_or(""),
        c["following"].as_bool().unwrap_or(false),
        c["blocked"].as_bool().unwrap_or(false)
    )
}

fn ask(
    dir: &Path,
    json: bool,
    request: Request,
    text: impl FnOnce(&serde_json::Value) -> String,
) -> Result<()> {
    let data = client::call(dir, &request)?;
    output::print(json, &data, text);
    Ok(())
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!(
            "kith: the log filter `{filter}` is not valid ({e}); logging at `{}` instead",
            config::DEFAULT_LOG
        );
        tracing_subscriber::EnvFilter::new(config::DEFAULT_LOG)
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// A restored identity has posted before, but this data directory holds none of its feed: record
/// in the own-feed marker (`kith::daemon::own_seq`) that the feed reaches at least seq 1, so the
/// daemon starts only with `--resync-own-feed` and appends nothing to the own feed (no post, no
/// follow) until a follower has served it back. The marker is read back through its own reader,
/// so a change of its format fails here rather than silently.
fn mark_restored(dir: &Path) -> Result<()> {
    use kith::daemon::own_seq::{load, OWN_SEQ_FILE};
    let path = dir.join(OWN_SEQ_FILE);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, b"kith-own-seq-v1 1\n")?;
    file.sync_all()?;
    match load(&path)? {
        Some(1) => Ok(()),
        other => bail!(
            "the own-feed marker {} reads back as {other:?}",
            path.display()
        ),
    }
}

fn init(dir: &Path, restore: bool, json: bool) -> Result<()> {
    let identity = if restore {
        let restored = Identity::from_recovery_phrase(&social::read_phrase()?)?;
        ensure_private_dir(dir)?;
        let restored = restored.save_new(dir)?;
        mark_restored(dir)?;
        restored
    } else {
        ensure_private_dir(dir)?;
        Identity::create(dir)?
    };
    drop(Store::open(dir)?);
    let id = identity.id().to_string();
    output::print(
        json,
        &json!({ "id": id, "data_dir": dir.display().to_string() }),
        |_| {
            let done = if restore { "restored" } else { "created" };
            let mut text = format!(
                "{done} {id}\nin {}\nstart the node with `kith daemon --data-dir {}`",
                dir.display(),
                dir.display()
            );
            if restore {
                text = format!(
                    "{done} {id}\nin {}\nstart the node with `kith daemon --resync-own-feed --data-dir {}`, \
                     then reach someone who follows you (`kith connect @ID@HOST:PORT`): your feed \
                     comes back from them, and posting resumes once it is back",
                    dir.display(),
                    dir.display()
                );
            }
            text
        },
    );
    Ok(())
}

fn run_daemon(dir: &Path, args: DaemonArgs, file: config::FileConfig) -> Result<()> {
    let identity = Arc::new(Identity::load(dir)?);
    ensure_private_dir(dir)?;
    let store = Store::open(dir)?;
    let resync_own_feed = args.resync_own_feed;
    // With no listen address given, the port is kept in the data directory (a card stays valid).
    let keep_port = args.listen.is_none() && file.listen.is_none();
    let listen: std::net::SocketAddr = match args.listen.or(file.listen) {
        Some(listen) => listen.parse().with_context(|| {
            format!("`{listen}` is not a listen address: expected IP:PORT, e.g. 0.0.0.0:8009")
        })?,
        None => port::default_listen(dir),
    };
    let serve: ServePolicy = match args.serve.or(file.serve) {
        Some(text) => text.parse().map_err(anyhow::Error::msg)?,
        None => ServePolicy::default(),
    };
    let introductions: IntroPolicy = match args.introductions.or(file.introductions) {
        Some(text) => text.parse().map_err(anyhow::Error::msg)?,
        None => IntroPolicy::default_for(serve),
    };
    let presence_visible_to: PresenceVisibility =
        match args.presence_visible_to.or(file.presence_visible_to) {
            Some(text) => text.parse().map_err(anyhow::Error::msg)?,
            None => PresenceVisibility::default(),
        };
    let given = if args.switchboards.is_empty() {
        file.switchboards
    } else {
        args.switchboards
    };
    let switchboards = switchboard_targets(&store, given)?;
    let blobs = file.blobs.limits()?;
    let metrics = bind_metrics(args.metrics.as_deref())?;
    let web = bind_web(args.web.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let endpoint = match PeerEndpoint::bind(listen, identity.signing_key()) {
            Ok(endpoint) => endpoint,
            Err(e) if keep_port => {
                tracing::warn!(error = %e, %listen, "the kept listen port is taken; listening on a free one (contact cards made before no longer hold this node's port)");
                PeerEndpoint::bind(port::any_port(listen), identity.signing_key())
                    .with_context(|| format!("binding the peer endpoint on {}", port::any_port(listen)))?
            }
            Err(e) => return Err(e).with_context(|| format!("binding the peer endpoint on {listen}")),
        };
        if keep_port {
            port::keep(dir, endpoint.local_addr()?.port())?;
        }
        let endpoint = Arc::new(endpoint);
        let parts = daemon::DaemonParts { data_dir: dir.to_path_buf(), identity, store, endpoint, serve, switchboards, introductions, blobs, presence_visible_to };
        let mut running = daemon::start_web(parts, resync_own_feed, metrics, web).await?;
        let addr = running.peers.endpoint.local_addr()?;
        tracing::info!(id = %running.node.identity.id(), dir = %dir.display(), %addr, "kith daemon running");
        run_until_signal(&mut running.root).await
    })
}

/// The switchboards (and clusters) to use: those given (flags or config), merged with those
/// remembered in the store (a remembered key stays pinned), and the remembered ones not given
/// again. A given one that does not parse is refused here, before the daemon starts.
fn switchboard_targets(store: &Store, given: Vec<String>) -> Result<Vec<String>> {
    let remembered = store.read()?.switchboards()?;
    kith::net::target::merge_targets(&given, &remembered).map_err(anyhow::Error::msg)
}

fn run_switchboard(dir: &Path, args: SwitchboardArgs) -> Result<()> {
    let relay =
        RouterConfig::with_client_rate(args.client_packets_per_sec, args.client_bytes_per_sec)?;
    // Held for the life of the process; dropping it withdraws the request.
    let _polling = args.poll_idle.then(WakeLatencyHold::zero).transpose()?;
    ensure_private_dir(dir)?;
    let identity = match Identity::load(dir) {
        Ok(identity) => identity,
        Err(kith::identity::IdentityError::Missing(_)) => Identity::create(dir)?,
        Err(e) => return Err(e.into()),
    };
    let identity = Arc::new(identity);
    let _lock = kith::store::DirLock::acquire(dir)?;
    let listen: std::net::SocketAddr = args.listen.parse().with_context(|| {
        format!(
            "`{}` is not a listen address: expected IP:PORT",
            args.listen
        )
    })?;
    let metrics = bind_metrics(args.metrics.as_deref())?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    // Workers watch the socket a while before sleeping (kith::relay::idle_poll).
    let idle_poll = (args.idle_poll_us > 0).then(|| {
        let config = IdlePollConfig::with_max(std::time::Duration::from_micros(args.idle_poll_us));
        let poller = Arc::new(IdlePoller::new(config));
        kith::relay::idle_poll::install(&mut builder, Arc::clone(&poller));
        poller
    });
    let runtime = builder.build()?;
    runtime.block_on(async move {
        let endpoint = PeerEndpoint::bind(listen, identity.signing_key())
            .with_context(|| format!("binding the switchboard on {listen}"))?;
        if let (Some(poller), Some(probe)) = (&idle_poll, endpoint.socket_probe()) {
            poller.watch(probe?)?;
        }
        // Relay links need datagrams big enough for an inner QUIC packet and its header.
        endpoint
            .quinn()
            .set_server_config(Some(kith::relay::config::outer_server_config(
                identity.signing_key(),
            )?));
        let endpoint = Arc::new(endpoint);
        let parts = switchboard::SwitchboardParts {
            data_dir: dir.to_path_buf(),
            identity: Arc::clone(&identity),
            endpoint,
            invite_only: args.invite_only,
            members: switchboard::cluster_members(
                &args.join,
                &args.cluster_key,
                args.cluster_keys.as_deref(),
            )?,
            join: args.join,
            relay,
            cpus_polled_when_idle: args.poll_idle,
            metrics,
            presence_broadcast_ms: args.presence_broadcast_ms,
        };
        let mut running = switchboard::start(parts).await?;
        let addr = running.ctx.endpoint.local_addr()?;
        tracing::info!(id = %identity.id(), %addr, "kith switchboard running");
        run_until_signal(&mut running.root).await
    })
}

/// Bind the web page before the tree: `--web ADDR` must bind (loopback only); without it the
/// default port is tried and, if taken, the daemon runs without the page and says so.
fn bind_web(given: Option<&str>) -> Result<Option<Arc<std::net::TcpListener>>> {
    match given {
        Some("off") => Ok(None),
        Some(text) => {
            let addr: std::net::SocketAddr = text.parse().with_context(|| {
                format!("`{text}` is not a web address: expected 127.0.0.1:PORT, or `off`")
            })?;
            Ok(Some(kith::daemon::web::bind(addr)?))
        }
        None => {
            let addr = std::net::SocketAddr::from((
                std::net::Ipv4Addr::LOCALHOST,
                kith::limits::WEB_PORT_DEFAULT,
            ));
            match kith::daemon::web::bind(addr) {
                Ok(listener) => Ok(Some(listener)),
                Err(e) => {
                    tracing::warn!(error = %e, "the web page is not served (another daemon may hold its port); give --web 127.0.0.1:PORT to serve it elsewhere");
                    Ok(None)
                }
            }
        }
    }
}

/// `kith web`: the running page's login link, from the files the daemon keeps.
fn web_link(dir: &Path, json: bool) -> Result<()> {
    use kith::daemon::web::auth::{read_token, ADDR_FILE};
    let not_running = || {
        anyhow::anyhow!(
            "the web page is not running: start `kith daemon` (it serves the page unless given --web off)"
        )
    };
    let text = std::fs::read_to_string(dir.join(ADDR_FILE)).map_err(|_| not_running())?;
    let addr: std::net::SocketAddr = text.trim().parse().map_err(|_| not_running())?;
    // A daemon killed outright leaves the file behind: only a page that answers is printed.
    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))
        .map_err(|_| not_running())?;
    let token = read_token(dir)?;
    let url = format!("http://{addr}/login?token={token}");
    let data = json!({ "url": url, "addr": addr.to_string(), "token": token });
    output::print(json, &data, |_| url.clone());
    Ok(())
}

/// Bind `--metrics ADDR` before the tree, so that a bad or taken address stops the start.
fn bind_metrics(addr: Option<&str>) -> Result<Option<Arc<std::net::TcpListener>>> {
    let Some(text) = addr else {
        return Ok(None);
    };
    let addr: std::net::SocketAddr = text.parse().with_context(|| {
        format!("`{text}` is not a metrics address: expected IP:PORT, e.g. 127.0.0.1:9464")
    })?;
    let listener = kith::metrics::bind(addr)
        .with_context(|| format!("binding the metrics endpoint on {addr}"))?;
    Ok(Some(listener))
}

/// Run a tree until SIGINT/SIGTERM (ordered shutdown, exit 0) or until it gives up (exit non-zero).
async fn run_until_signal(root: &mut RootSupervisor) -> Result<()> {
    let exit = tokio::select! {
        exit = root.wait() => exit,
        signal = shutdown_signal() => {
            tracing::info!(signal = signal?, "stopping");
            root.shutdown().await?
        }
    };
    match exit {
        RootExit::Stopped => Ok(()),
        RootExit::Escalated(why) => bail!("the supervision tree gave up: {why}"),
    }
}

fn bench(which: BenchCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match which {
        BenchCommand::Ingest { entries, json } => {
            let report = runtime.block_on(kith::bench::ingest::run(entries))?;
            output::print_report(json.json, &report, |report| {
                format!(
                    "ingest: {:.0} entries/s ({} entries in {:.2} s, {} cores)\n\
                     raw ed25519, same run: verify_strict {:.0}/s and verify_batch {:.0}/s on one core, verify_batch {:.0}/s on all {} cores\n\
                     ingest / verify_batch: {:.0}% of one core, {:.0}% of all cores\n\
                     the pipeline's own batch check (one term per author): {:.0}/s on all {} cores, {:.1} µs per signature on one; ingest / it: {:.0}%\n\
                     CPU per entry: {:.1} µs in all (verifiers {:.1}, committer {:.1}); raw verify_batch {:.1} µs per signature, {:.0}% of the pipeline's CPU\n\
                     written: {:.0} bytes per entry",
                    report.ingest_per_s, report.entries, report.seconds, report.cores,
                    report.verify_single_per_s, report.verify_batch_per_s,
                    report.verify_batch_all_cores_per_s, report.cores,
                    report.ingest_vs_verify_one_core * 100.0, report.ingest_vs_verify_all_cores * 100.0,
                    report.verify_coalesced_all_cores_per_s, report.cores,
                    report.verify_coalesced_cpu_us_per_entry,
                    report.ingest_vs_coalesced_verify_all_cores * 100.0,
                    report.pipeline_cpu_us_per_entry, report.verifiers_cpu_us_per_entry,
                    report.committer_cpu_us_per_entry, report.verify_batch_cpu_us_per_entry,
                    report.verify_cpu_share * 100.0, report.written_bytes_per_entry
                )
            })?;
            Ok(())
        }
        BenchCommand::Presence {
            cluster: Some(nodes),
            broadcast_ms,
            joins,
            presences,
            catchups,
            json,
            ..
        } => {
            use kith_supervisors::bench::presence_cluster::{run, text, Options};
            let options = Options {
                nodes,
                broadcast_ms,
                joins,
                presences,
                catchups,
            };
            let report = runtime.block_on(run(options))?;
            output::print_report(json.json, &report, text)?;
            Ok(())
        }
        BenchCommand::Presence { tiny, json, .. } => {
            use kith::bench::presence::{run, BenchOptions};
            let options = if tiny {
                BenchOptions::tiny()
            } else {
                BenchOptions::default()
            };
            let report = run(options);
            output::print_report(json.json, &report, bench_presence_text)?;
            Ok(())
        }
        BenchCommand::Relay {
            connects_only: true,
            json,
            ..
        } => {
            let report = runtime.block_on(bench_relay::run_connects())?;
            output::print_report(json.json, &report, bench_relay::connects_text)?;
            Ok(())
        }
        BenchCommand::Relay {
            latency_only: true,
            json,
            ..
        } => {
            let report = runtime.block_on(bench_relay::run_latency())?;
            output::print_report(json.json, &report, bench_relay::latency_text)?;
            Ok(())
        }
        BenchCommand::Relay { json, .. } => {
            let report = runtime.block_on(bench_relay::run())?;
            output::print_report(json.json, &report, bench_relay::text)?;
            Ok(())
        }
        BenchCommand::Replicate { entries, json } => {
            let report = runtime.block_on(bench_replicate::run(entries))?;
            output::print_report(json.json, &report, bench_replicate::text)?;
            Ok(())
        }
        BenchCommand::Web { posts, json } => {
            let report = runtime.block_on(kith_supervisors::bench::web::run(posts))?;
            output::print_report(json.json, &report, kith_supervisors::bench::web::text)?;
            Ok(())
        }
    }
}

fn bench_presence_text(r: &kith::bench::presence::BenchReport) -> String {
    let mut out = format!(
        "full transfer of {} presences: {:.0} ms (extract/encode/decode/merge {:?} ms)\n\
         delta merges ({} of {} joins each, growing to {} presences): {:.0}/s\n\
         catch-up of a new node ({} presences, simulated time): {} ms\n",
        r.presences,
        r.full_transfer_ms,
        r.full_transfer_phases_ms,
        r.deltas,
        r.delta_joins,
        r.deltas * r.delta_joins,
        r.delta_merges_per_s,
        r.catchup_presences,
        r.catchup_ms
    );
    for (nodes, p) in &r.convergence_ms {
        out.push_str(&format!(
            "convergence, {nodes} nodes ({} presences at {}/s, simulated time): p50 {} ms, p99 {} ms{}\n",
            r.convergence_presences, r.joins_per_s, p.p50, p.p99,
            match p.unconverged { 0 => String::new(), n => format!(" ({n} never listed everywhere)") }
        ));
    }
    let bytes = |b: Option<f64>| b.map_or("not measured".to_string(), |b| format!("{b:.0} B"));
    out.push_str(&format!(
        "memory (counting allocator): {} per presence, {} per own presence, +{} in the read view",
        bytes(r.bytes_per_presence),
        bytes(r.bytes_per_local_presence),
        bytes(r.view_bytes_per_presence)
    ));
    out
}
