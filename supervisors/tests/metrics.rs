//! `--metrics ADDR` on real processes (issue 17, item 4): a two-node switchboard cluster and two
//! daemons, each serving Prometheus text; every scrape is parsed strictly (each line a HELP, a
//! TYPE, a sample of a declared family, or the final `# EOF`) and its figures are checked
//! against what was done: clients online, joins, presence size, cluster links and node states,
//! introductions across the cluster, relay counters and refusals by reason, restarts
//! per supervisor, a daemon's connections, entries ingested and per-feed lag; `/ready` answers.
//! Also as an attacker: idle connections holding every slot are cut at the header deadline and
//! the next scrape is answered; a request that is not HTTP gets a 400; a taken port stops the
//! start with a sentence.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use kith::identity::FeedId;
use kith::limits::{METRICS_CONNECTIONS_MAX, METRICS_HEADER_TIMEOUT};
use kith::net::hello::NodeRole;
use kith::testing::eventually_blocking;
use support::sb_client::Client;
use support::{free_port, identity, kith, kith_json, Daemon, Home, Switchboard, POLL};

/// One parsed sample: family name with its suffix, labels sorted by name.
type Key = (String, Vec<(String, String)>);

/// A strictly parsed exposition.
#[derive(Debug, Default)]
struct Scrape {
    samples: BTreeMap<Key, f64>,
}

impl Scrape {
    /// Parse `text`; panics naming the first line that is not valid.
    fn parse(text: &str) -> Scrape {
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut samples = BTreeMap::new();
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines.last(), Some(&"# EOF"), "the text ends with # EOF");
        for (n, line) in lines.iter().enumerate() {
            let at = || format!("line {}: `{line}`", n + 1);
            if *line == "# EOF" {
                assert_eq!(n + 1, lines.len(), "# EOF before the end at {}", at());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                let (kind, name) = (
                    parts.next().unwrap(),
                    parts.next().unwrap_or_else(|| panic!("{}", at())),
                );
                assert!(valid_name(name), "bad metric name at {}", at());
                match kind {
                    "HELP" => assert!(parts.next().is_some_and(|h| !h.is_empty()), "{}", at()),
                    "TYPE" => {
                        let t = parts.next().unwrap_or_else(|| panic!("{}", at()));
                        assert!(
                            ["counter", "gauge", "histogram", "info", "unknown"].contains(&t),
                            "unknown type at {}",
                            at()
                        );
                        assert!(
                            types.insert(name.to_string(), t.to_string()).is_none(),
                            "TYPE twice at {}",
                            at()
                        );
                    }
                    "UNIT" => {}
                    _ => panic!("unknown comment at {}", at()),
                }
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{}", at()));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value at {}", at()));
            assert!(
                value.is_finite() && value >= 0.0,
                "kith's figures are counts: {}",
                at()
            );
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), Vec::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{}", at()));
                    (
                        name.to_string(),
                        parse_labels(body).unwrap_or_else(|| panic!("{}", at())),
                    )
                }
            };
            assert!(valid_name(&name), "bad sample name at {}", at());
            let family = types
                .keys()
                .find(|f| name == **f || (types[*f] == "counter" && name == format!("{f}_total")))
                .unwrap_or_else(|| panic!("sample of an undeclared family at {}", at()));
            if types[family] == "counter" {
                assert!(
                    name.ends_with("_total"),
                    "a counter sample without _total at {}",
                    at()
                );
            }
            let mut labels = labels;
            labels.sort();
            assert!(
                samples.insert((name, labels), value).is_none(),
                "a series twice at {}",
                at()
            );
        }
        Scrape { samples }
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        self.samples.get(&(name.to_string(), labels)).copied()
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in the scrape"))
    }

    fn series_of(&self, name: &str) -> Vec<&Vec<(String, String)>> {
        self.samples
            .keys()
            .filter(|(n, _)| n == name)
            .map(|(_, l)| l)
            .collect()
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `k="v",k2="v2"` with `\\`, `\"` and `\n` escapes.
fn parse_labels(body: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        if !valid_name(key) {
            return None;
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    _ => return None,
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        out.push((key.to_string(), value));
        rest = &after[end + 1..];
        rest = match rest.strip_prefix(',') {
            Some(r) => r,
            None if rest.is_empty() => rest,
            None => return None,
        };
    }
    Some(out)
}

/// `GET path` over a fresh connection: the status code and the body.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_string())
}

fn scrape(port: u16) -> Scrape {
    let (code, body) = get(port, "/metrics");
    assert_eq!(code, 200, "{body}");
    Scrape::parse(&body)
}

fn id_of(dir: &Path) -> FeedId {
    kith_json(dir, &["status", "--json"])["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_and_two_daemons_serve_figures_that_match_what_happened() {
    let homes = tempfile::tempdir().unwrap();
    let (d1, d2) = (homes.path().join("n1"), homes.path().join("n2"));
    let (p1, p2) = (free_port(), free_port());
    let (m1, m2) = (tcp_port(), tcp_port());
    let n2_key = identity(&d2);
    let _n1 = Switchboard::start_with(
        &d1,
        p1,
        &[
            "--cluster-key",
            &n2_key,
            "--metrics",
            &format!("127.0.0.1:{m1}"),
        ],
    );
    let n1 = id_of(&d1);
    let _n2 = Switchboard::start_with(
        &d2,
        p2,
        &[
            "--join",
            &format!("{n1}@127.0.0.1:{p1}"),
            "--metrics",
            &format!("127.0.0.1:{m2}"),
        ],
    );
    let n2 = id_of(&d2);

    // Raw clients: a on node 1, b on node 2.
    let a = Client::join(1, p1, &n1).await;
    let b = Client::join(2, p2, &n2).await;
    tokio::task::spawn_blocking(move || {
        eventually_blocking(
            "both nodes list both clients",
            Duration::from_secs(20),
            POLL,
            || {
                let (s1, s2) = (scrape(m1), scrape(m2));
                s1.value("kith_switchboard_presences", &[]) == 2.0
                    && s2.value("kith_switchboard_presences", &[]) == 2.0
            },
        )
    })
    .await
    .unwrap();
    // Refusals by reason: a packet to someone a was not introduced to, and a client claiming
    // to be a node.
    let stranger = FeedId::from(ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key());
    a.conn
        .send_datagram(bytes::Bytes::from([&stranger.0[..], b"sneak"].concat()))
        .unwrap();
    assert!(Client::hello(7, p1, &n1, NodeRole::Switchboard)
        .await
        .is_err());

    let checked = tokio::task::spawn_blocking(move || {
        eventually_blocking(
            "node 1's refusals are counted",
            Duration::from_secs(10),
            POLL,
            || {
                let s = scrape(m1);
                s.value(
                    "kith_switchboard_relay_refused_total",
                    &[("reason", "not_introduced")],
                ) >= 1.0
                    && s.value("kith_switchboard_nodes_refused_total", &[]) >= 1.0
            },
        );
        let (s1, s2) = (scrape(m1), scrape(m2));
        for s in [&s1, &s2] {
            assert_eq!(s.value("kith_switchboard_clients_online", &[]), 1.0);
            assert!(s.value("kith_switchboard_joins_total", &[]) >= 1.0);
            assert_eq!(s.value("kith_switchboard_presences", &[]), 2.0);
            assert_eq!(s.value("kith_switchboard_cluster_links", &[]), 1.0);
            assert_eq!(s.value("kith_switchboard_cluster_members", &[]), 1.0);
            assert_eq!(
                s.value("kith_switchboard_cluster_nodes", &[("state", "up")]),
                1.0
            );
            assert_eq!(
                s.value("kith_switchboard_cluster_nodes", &[("state", "down")]),
                0.0
            );
            // Nothing was introduced yet, so nothing was forwarded (the refused packet is below).
            assert_eq!(s.value("kith_switchboard_relayed_packets_total", &[]), 0.0);
            assert_eq!(s.value("kith_switchboard_relayed_bytes_total", &[]), 0.0);
            assert_eq!(s.value("kith_supervision_reported", &[]), 1.0);
            assert_eq!(
                s.value(
                    "kith_supervisor_restarts_total",
                    &[("supervisor", "switchboard")]
                ),
                0.0
            );
            assert!(s
                .get(
                    "kith_supervisor_restarts_total",
                    &[("supervisor", "switchboard/cluster")]
                )
                .is_some());
            assert_eq!(
                s.value(
                    "kith_supervisor_children",
                    &[("supervisor", "switchboard"), ("state", "running")]
                ),
                7.0,
                "presence, clients, notifier, listener, cluster, control, metrics"
            );
            // No label names a peer or a node.
            for (name, labels) in s.samples.keys() {
                for (k, v) in labels {
                    assert!(!v.contains(".ed25519"), "{name} labels a key: {k}={v}");
                }
            }
        }
        assert_eq!(get(m1, "/ready"), (200, "ready\n".to_string()));
        s1
    })
    .await
    .unwrap();
    assert_eq!(
        checked.value(
            "kith_switchboard_joins_refused_total",
            &[("reason", "invite")]
        ),
        0.0
    );
    drop((a, b));

    // Two daemons, A on node 1 and B on node 2, following each other; A posts.
    let (ha, hb) = (Home::init(), Home::init());
    let (ma, mb) = (tcp_port(), tcp_port());
    let sb1 = format!("{n1}@127.0.0.1:{p1}");
    let sb2 = format!("{n2}@127.0.0.1:{p2}");
    let ma_arg = format!("127.0.0.1:{ma}");
    let mb_arg = format!("127.0.0.1:{mb}");
    let _da = Daemon::start(
        &ha.dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--switchboard",
            &sb1,
            "--metrics",
            &ma_arg,
        ],
    );
    let _db = Daemon::start(
        &hb.dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--switchboard",
            &sb2,
            "--metrics",
            &mb_arg,
        ],
    );
    let (ida, idb) = (ha.id(), hb.id());
    assert!(kith(&ha.dir, &["follow", &idb]).status.success());
    assert!(kith(&hb.dir, &["follow", &ida]).status.success());
    for i in 0..5 {
        assert!(kith(&ha.dir, &["post", &format!("post {i}")])
            .status
            .success());
    }
    tokio::task::spawn_blocking(move || {
        eventually_blocking("B holds A's 5 posts", Duration::from_secs(30), POLL, || {
            support::head_seq(&hb.dir, &ida) >= 5
        });
        // A, on node 1, was introduced to B, on node 2, across the cluster.
        let (s1, s2) = (scrape(m1), scrape(m2));
        assert!(
            s1.value("kith_switchboard_introductions_total", &[])
                + s2.value("kith_switchboard_introductions_total", &[])
                >= 1.0
        );
        let s = scrape(mb);
        assert!(s.value("kith_daemon_entries_ingested_total", &[]) >= 5.0);
        let open = s.value("kith_daemon_connections", &[("path", "direct")])
            + s.value("kith_daemon_connections", &[("path", "relayed")]);
        assert!(open >= 1.0, "B is connected to A");
        assert_eq!(s.value("kith_daemon_following", &[]), 1.0);
        assert_eq!(
            s.value(
                "kith_daemon_replication_lag_entries",
                &[("feed", ida.as_str())]
            ),
            0.0
        );
        assert_eq!(
            s.series_of("kith_daemon_replication_lag_entries").len(),
            1,
            "only followed feeds"
        );
        assert_eq!(s.value("kith_daemon_replication_feeds_behind", &[]), 0.0);
        assert_eq!(
            s.value("kith_daemon_switchboard_links", &[("state", "joined")]),
            1.0
        );
        assert_eq!(s.value("kith_daemon_store_readable", &[]), 1.0);
        assert_eq!(
            s.value(
                "kith_supervisor_restarts_total",
                &[("supervisor", "daemon")]
            ),
            0.0
        );
        assert!(s
            .get(
                "kith_supervisor_restarts_total",
                &[("supervisor", "daemon/replicators")]
            )
            .is_some());
        assert_eq!(get(mb, "/ready"), (200, "ready\n".to_string()));
        assert_eq!(get(ma, "/nope").0, 404);
        drop(ha);
    })
    .await
    .unwrap();
}

#[test]
fn idle_connections_are_cut_at_the_header_deadline_and_junk_gets_a_400() {
    let home = tempfile::tempdir().unwrap();
    let m = tcp_port();
    let _sb = Switchboard::start_with(
        home.path(),
        free_port(),
        &["--metrics", &format!("127.0.0.1:{m}")],
    );
    // Every slot held by a client that sends nothing.
    let idle: Vec<TcpStream> = (0..METRICS_CONNECTIONS_MAX)
        .map(|_| TcpStream::connect(("127.0.0.1", m)).unwrap())
        .collect();
    let started = Instant::now();
    let s = scrape(m);
    assert_eq!(s.value("kith_switchboard_clients_online", &[]), 0.0);
    assert!(
        started.elapsed() >= METRICS_HEADER_TIMEOUT - Duration::from_millis(500),
        "the scrape waited for a slot (the idle ones held them all)"
    );
    for mut stream in idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rest = Vec::new();
        // Closed by the server (hyper may say 408 first): the read ends instead of hanging.
        let _ = stream.read_to_end(&mut rest);
    }
    let mut junk = TcpStream::connect(("127.0.0.1", m)).unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    junk.write_all(b"\x16\x03\x01 not http at all\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = junk.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    // Still serving.
    assert_eq!(get(m, "/ready").0, 200);
}

#[test]
fn a_taken_metrics_port_stops_the_start_with_a_sentence() {
    let home = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = kith(
        home.path(),
        &[
            "switchboard",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--metrics",
            &addr,
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("binding the metrics endpoint on {addr}")),
        "{err}"
    );
    let out = kith(home.path(), &["switchboard", "--metrics", "nonsense"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a metrics address"));
}
