//! The invariants of ARCHITECTURE.md that a program can check, checked on the source tree:
//!
//! - the sans-IO cores import no tokio, quinn, heed, dashmap or ractor;
//! - only `store/` touches heed, and quinn is touched only where ARCHITECTURE.md says;
//! - restart policy (`Restart::…`) is chosen only in the supervision engine and in `supervisors/`;
//! - a role's folder (`daemon/`, `switchboard/`, `loadtest/`) imports no other role's, and the
//!   shared folders import none (benchmarks aside);
//! - no import cycle between files of `src/`, and none between folders that are not one
//!   inside the other (a folder may use its parent's types and the parent its children's).
//!
//! Comment lines are ignored (a doc link is not an import). The scan reads `crate::…` paths,
//! including one level of `{…}` grouping, and resolves each to the longest module prefix that
//! exists as a file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Folders and files (relative to `src/`) that must stay sans-IO.
const PURE: &[&str] = &[
    "feed/",
    "replicate/",
    "supervisor/decision/",
    "relay/router.rs",
    "relay/router/",
    "relay/bucket.rs",
    "net/admission.rs",
    "rolodex/change.rs",
    "rolodex/entry.rs",
    "wire/",
    "presence/clock.rs",
    "presence/delta.rs",
    "presence/generations.rs",
    "presence/memory.rs",
    "presence/message.rs",
    "presence/options.rs",
    "presence/replica.rs",
    "presence/shard.rs",
    "presence/sim.rs",
    "presence/state.rs",
    "presence/types.rs",
    // Policies beside the actors that carry them out.
    "switchboard/intro.rs",
    "switchboard/intro/",
    "switchboard/join_guesses.rs",
    "daemon/uplink/retry.rs",
    "daemon/uplink/audience.rs",
    "daemon/uplink/seal.rs",
    "runtime/backoff.rs",
    "loadtest/schedule.rs",
    "loadtest/plan.rs",
    "loadtest/graph.rs",
    "loadtest/histogram.rs",
    "loadtest/replica.rs",
    // Blobs: ids, verified streaming, the exchange's messages, the fetch and serve decisions.
    "blob/id.rs",
    "blob/plan.rs",
    "blob/verify.rs",
    "blob/wire.rs",
];

/// Where quinn may be named (relative to `src/`): the network module, the relay's virtual
/// socket and links, and the connection actors of each role (with the dial and punch they start).
const QUINN: &[&str] = &[
    "net/",
    "relay/vsock.rs",
    "relay/vsock/",
    "relay/link.rs",
    "relay/config.rs",
    "daemon/connection.rs",
    "daemon/listener.rs",
    "daemon/connect.rs",
    "daemon/punch.rs",
    "daemon/switchboard_link.rs",
    "switchboard/session",
    "switchboard/listener.rs",
    "switchboard/cluster/",
    // The load test's simulated peers are connection actors of the third role.
    "loadtest/client.rs",
    "loadtest/error.rs",
    "loadtest/inner.rs",
    "loadtest/peer.rs",
    // The relayed pairs' lane: the quinn runtime their endpoints and connections run on.
    "loadtest/lane.rs",
    // Its replication sessions drive inner connections, as daemon/connection.rs does.
    "loadtest/replicate.rs",
    // Blob streams beside a peer connection's replication stream (serve and fetch).
    "daemon/blob/serve.rs",
    "daemon/blob/fetch.rs",
];

const IO_CRATES: &[&str] = &["tokio", "quinn", "heed", "dashmap", "ractor"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, as (path relative to `src/`, code lines without comments).
fn sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![src()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(src())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, code(&fs::read_to_string(&path).unwrap())));
            }
        }
    }
    out.sort();
    assert!(out.len() > 50, "the scan found only {} files", out.len());
    out
}

/// The file's lines that are not comments, with `#[cfg(test)] mod tests { … }` at the end cut
/// off (a unit test may use anything).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn under(rel: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| rel.starts_with(p))
}

/// Whether `code` names the crate `name` as a path root (`name::…` or `use name`).
fn names_crate(code: &str, name: &str) -> bool {
    let bytes = code.as_bytes();
    code.match_indices(name).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j] as char);
        let starts = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
        starts && code[i + name.len()..].starts_with("::")
    })
}

#[test]
fn pure_cores_import_no_runtime_or_io_crate() {
    let mut bad = Vec::new();
    for (rel, code) in sources() {
        if !under(&rel, PURE) {
            continue;
        }
        for krate in IO_CRATES {
            if names_crate(&code, krate) {
                bad.push(format!("{rel} uses {krate}"));
            }
        }
    }
    assert!(bad.is_empty(), "sans-IO cores import I/O crates: {bad:#?}");
}

#[test]
fn heed_only_in_store_and_quinn_only_where_allowed() {
    let mut bad = Vec::new();
    for (rel, code) in sources() {
        if names_crate(&code, "heed") && !rel.starts_with("store/") {
            bad.push(format!("{rel} uses heed"));
        }
        if names_crate(&code, "quinn") && !under(&rel, QUINN) {
            bad.push(format!("{rel} uses quinn"));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn each_role_imports_no_other_role_and_shared_code_imports_none() {
    const ROLES: &[&str] = &["daemon", "switchboard", "loadtest"];
    let mut bad = Vec::new();
    for (rel, code) in sources() {
        let own = ROLES.iter().find(|r| rel.starts_with(&format!("{r}/")));
        // Benchmarks measure the roles' code, so their library part may use any of them.
        if rel.starts_with("bench/") {
            continue;
        }
        for role in ROLES {
            if Some(role) != own && code.contains(&format!("crate::{role}::")) {
                bad.push(format!("{rel} imports {role}"));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn restart_policy_is_chosen_only_by_the_supervision_engine() {
    let bad: Vec<String> = sources()
        .into_iter()
        .filter(|(rel, code)| !rel.starts_with("supervisor/") && code.contains("Restart::"))
        .map(|(rel, _)| rel)
        .collect();
    assert!(
        bad.is_empty(),
        "restart types chosen outside supervisors/: {bad:?}"
    );
}

/// A file's module path: `daemon/peer/mod.rs` → `daemon::peer`.
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The module each `crate::…` path in `code` names (longest prefix that is a module).
fn imports(code: &str, modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let base: Vec<String> = rest[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let mut paths = vec![base.clone()];
        if rest[end..].starts_with('{') {
            let group = &rest[end + 1..rest[end..].find('}').map_or(end + 1, |j| end + j)];
            for item in group.split(',') {
                let first = item.trim().split("::").next().unwrap_or("").to_string();
                if !first.is_empty() {
                    let mut p = base.clone();
                    p.push(first);
                    paths.push(p);
                }
            }
        }
        for p in paths {
            if let Some(m) = (1..=p.len())
                .rev()
                .map(|n| p[..n].to_vec())
                .find(|m| modules.contains(m))
            {
                out.insert(m);
            }
        }
    }
    out
}

/// A cycle in `graph`, if any (depth-first search with colours).
fn find_cycle<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>) -> Option<Vec<N>> {
    fn visit<N: Ord + Clone>(
        n: &N,
        graph: &BTreeMap<N, BTreeSet<N>>,
        done: &mut BTreeSet<N>,
        stack: &mut Vec<N>,
    ) -> Option<Vec<N>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            return Some(stack[i..].to_vec());
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.clone());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, done, stack) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut done, &mut Vec::new()))
}

/// The folder a module's file sits in (`daemon::peer` for `daemon/peer/mod.rs` and for
/// `daemon/peer/table.rs`).
fn folder_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.split('/').map(String::from).collect();
    parts.pop();
    parts
}

#[test]
fn imports_have_no_cycle_between_files_or_unrelated_folders() {
    let files = sources();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(rel, _)| module_of(rel)).collect();
    let folder: BTreeMap<Vec<String>, Vec<String>> = files
        .iter()
        .map(|(rel, _)| (module_of(rel), folder_of(rel)))
        .collect();
    let mut by_file: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut by_folder: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (rel, code) in &files {
        let me = module_of(rel);
        for target in imports(code, &modules) {
            if target == me {
                continue;
            }
            let (a, b) = (folder[&me].clone(), folder[&target].clone());
            let related = a.starts_with(&b) || b.starts_with(&a);
            if !related {
                by_folder.entry(a).or_default().insert(b);
            }
            by_file.entry(me.clone()).or_default().insert(target);
        }
    }
    assert!(by_file.len() > 30, "the import scan found too few edges");
    assert_eq!(
        find_cycle(&by_file),
        None,
        "an import cycle between files of src/"
    );
    assert_eq!(
        find_cycle(&by_folder),
        None,
        "an import cycle between folders of src/"
    );
}
