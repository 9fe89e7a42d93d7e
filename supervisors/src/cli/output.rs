//! Printing answers: one JSON document with `--json`, readable text otherwise.

use serde_json::Value;

/// Print `data` as JSON, or as text through `text`.
pub fn print(json: bool, data: &Value, text: impl FnOnce(&Value) -> String) {
    if json {
        println!("{data}");
    } else {
        let out = text(data);
        if !out.is_empty() {
            println!("{out}");
        }
    }
}

/// A benchmark's report: one JSON document with `--json`, else what `text` makes of it.
pub fn print_report<T: serde::Serialize>(
    json: bool,
    report: &T,
    text: impl FnOnce(&T) -> String,
) -> Result<(), serde_json::Error> {
    let data = serde_json::to_value(report)?;
    print(json, &data, |_| text(report));
    Ok(())
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Entries of a feed or timeline: who (by name), what, what a reply answers, reactions.
pub fn entries(data: &Value) -> String {
    crate::cli::social::entries_text(data)
}

/// `kith switchboard invite --list`: one code a line with its expiry.
pub fn invites(data: &Value) -> String {
    rows(&data["invites"], |c| {
        format!("{}  expires {}", s(c, "code"), from_now(&c["expires_ms"]))
    })
}

/// `kith switchboard members`: one member a line, since when.
pub fn members(data: &Value) -> String {
    rows(&data["members"], |m| {
        format!("{}  since {}", s(m, "id"), from_now(&m["since_ms"]))
    })
}

/// One line per item of the array `list`, or "none".
fn rows(list: &Value, row: impl Fn(&Value) -> String) -> String {
    match list.as_array() {
        Some(items) if !items.is_empty() => items.iter().map(row).collect::<Vec<_>>().join("\n"),
        _ => "none".into(),
    }
}

/// A time in ms since the epoch, against now: "in 3600 s" or "120 s ago".
fn from_now(ms: &Value) -> String {
    let (at, now) = (ms.as_u64().unwrap_or(0), kith::feed::now_ms());
    match at.checked_sub(now) {
        Some(ahead) => format!("in {} s", ahead / 1000),
        None => format!("{} s ago", (now - at) / 1000),
    }
}

/// The rolodex as a table.
pub fn contacts(data: &Value) -> String {
    let Some(list) = data.get("contacts").and_then(Value::as_array) else {
        return String::new();
    };
    if list.is_empty() {
        return "(no contacts; add one with `kith follow ID`)".into();
    }
    list.iter()
        .map(|c| {
            let flag = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
            let state = match (flag("following"), flag("blocked")) {
                (_, true) => "blocked",
                (true, _) => "following",
                _ => "known",
            };
            let seq = c.get("latest_seq").and_then(Value::as_u64).unwrap_or(0);
            format!(
                "{:<24}  {}  {state:<9}  seq {seq}  {}; {}",
                crate::cli::social::safe_text(s(c, "label")),
                s(c, "id"),
                presence(c, "online_since_ms"),
                reach(c)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a contact is online (with since when and its status line), as the switchboards say.
fn presence(c: &Value, since_key: &str) -> String {
    if c.get("online").and_then(Value::as_bool) != Some(true) {
        return "offline".into();
    }
    let since = match c.get(since_key).filter(|v| v.is_u64()) {
        Some(ms) => format!(" since {}", from_now(ms)),
        None => String::new(),
    };
    match c.get("status").and_then(Value::as_str) {
        Some(text) => format!("online{since}: \"{text}\""),
        None => format!("online{since}"),
    }
}

/// How this node reaches a contact: connected directly or relayed, or why not (the last
/// introduction's outcome).
fn reach(c: &Value) -> String {
    match c.get("connection").and_then(Value::as_str) {
        Some("direct") => return "connected directly".into(),
        Some(_) => return "connected, relayed through a switchboard".into(),
        None => {}
    }
    let intro = &c["introduction"];
    match intro.get("answer").and_then(Value::as_str) {
        Some("refused") => "refused: they do not follow you".into(),
        Some("failed") => format!("not connected: {}", s(intro, "reason")),
        _ => "not connected".into(),
    }
}

/// `kith connect`: whom, and how.
pub fn connected(data: &Value) -> String {
    let how = match data.get("connection").and_then(Value::as_str) {
        Some("direct") => "directly",
        Some(_) => "relayed through a switchboard",
        None => "(the connection closed again)",
    };
    let only = match data["introduction"].get("answer").and_then(Value::as_str) {
        Some("relay_only") => " (they let you reach them through the relay only)",
        _ => "",
    };
    format!("connected to {} {how}{only}", s(data, "peer"))
}

/// `kith switchboards`: one switchboard a line: host, pinned key, invite, state.
pub fn switchboards(data: &Value) -> String {
    rows(&data["switchboards"], |b| {
        let id = b
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("key not pinned yet");
        let invite = match b.get("invite").and_then(Value::as_str) {
            Some(code) => format!(", invite {code}"),
            None => String::new(),
        };
        let link = &b["link"];
        let state = match link.get("state").and_then(Value::as_str) {
            Some(state) => {
                let why = link
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                format!("{state} since {}{why}", from_now(&link["since_ms"]))
            }
            None => "no link (forgotten or not started)".into(),
        };
        let kept = match b.get("remembered").and_then(Value::as_bool) {
            Some(true) => "remembered",
            _ => "not remembered",
        };
        format!("{}  {id}{invite}  {kept}  {state}", s(b, "host"))
    })
}

/// The strings of a JSON array, comma-separated.
pub fn join_strings(list: &Value) -> String {
    list.as_array()
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The supervision tree drawn as text, then the feeds held.
pub fn status(data: &Value) -> String {
    let mut out = format!(
        "node {}\nlistening on {}\n",
        s(data, "id"),
        s(data, "listen")
    );
    if let Some(conns) = data.get("connections").and_then(Value::as_array) {
        out.push_str(&format!("connections: {}\n", conns.len()));
        for c in conns {
            let path = if c.get("relayed").and_then(Value::as_bool) == Some(true) {
                "through a switchboard"
            } else {
                "direct"
            };
            out.push_str(&format!(
                "  {} {} ({}, {path})\n",
                s(c, "peer"),
                s(c, "addr"),
                s(c, "direction")
            ));
        }
    }
    if data.get("role").and_then(Value::as_str) == Some("switchboard") {
        out.push_str(&switchboard_counters(data));
    }
    out.push_str(&handshakes(data));
    if let Some(links) = data
        .get("switchboards")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    {
        out.push_str(&format!("switchboards: {}\n", links.len()));
        for l in links {
            let seen = l
                .get("observed")
                .and_then(Value::as_str)
                .map(|a| format!(", sees us at {a}"))
                .unwrap_or_default();
            let why = l
                .get("reason")
                .and_then(Value::as_str)
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let next = match l.get("next_attempt_ms").and_then(Value::as_u64) {
                Some(_) => format!("; next attempt {}", from_now(&l["next_attempt_ms"])),
                None if l.get("waiting_for_invite").and_then(Value::as_bool) == Some(true) => {
                    "; waiting for a new invite code (--switchboard HOST:PORT#CODE)".into()
                }
                None => String::new(),
            };
            out.push_str(&format!(
                "  {} {}{seen}{why}{next}\n",
                s(l, "target"),
                s(l, "state")
            ));
        }
    }
    if let Some(follows) = data
        .get("follows")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    {
        out.push_str(&format!("following: {}\n", follows.len()));
        for f in follows {
            let online = match f.get("online").and_then(Value::as_bool) {
                Some(true) => "online",
                _ => "offline",
            };
            out.push_str(&format!("  {} {online}; {}\n", s(f, "id"), reach(f)));
        }
    }
    if let Some(tree) = data.get("supervision") {
        draw(tree, "", &mut out);
    }
    if let Some(feeds) = data.get("feeds").and_then(Value::as_array) {
        out.push_str(&format!("feeds held: {}\n", feeds.len()));
        for f in feeds {
            let seq = f.get("seq").and_then(Value::as_u64).unwrap_or(0);
            out.push_str(&format!("  {} seq {seq}\n", s(f, "id")));
        }
    }
    out.trim_end().to_string()
}

/// A switchboard's counters: who is here (a count), introductions, relaying, limits.
fn switchboard_counters(data: &Value) -> String {
    let n = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
    let (c, r) = (&data["counters"], &data["relay"]);
    let nodes = data
        .get("cluster")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let membership = if data.get("invite_only").and_then(Value::as_bool) == Some(true) {
        "invite only"
    } else {
        "open"
    };
    format!(
        "online: {} ({membership}; {} joins, {} refused; {nodes} other cluster nodes linked)\n\
         introductions: {} made, {} refused\n\
         relayed: {} packets, {} bytes; refused {} (queue full {}, rate limited {}); lost to closed links {}; idle pairs expired {}\n\
         per-client limits: {} packets/s, {} bytes/s\n{}",
        n(data, "online"), n(c, "joins"), n(c, "refused"),
        n(c, "introductions"), n(c, "introductions_refused"),
        n(r, "forwarded_packets"), n(r, "forwarded_bytes"), n(r, "refused_packets"), n(r, "refused_queue_full"),
        n(r, "refused_rate_limited"), n(r, "lost_closed"), n(r, "pairs_expired"),
        n(r, "client_packets_per_sec"), n(r, "client_bytes_per_sec"),
        if data.get("cpus_polled_when_idle").and_then(Value::as_bool) == Some(true) { "idle CPUs kept polling (--poll-idle)\n" } else { "" },
    )
}

/// The listener's handshake admission counts (a daemon's at the top, a switchboard's among its
/// counters); empty when the node has no listener.
fn handshakes(data: &Value) -> String {
    let Some(h) = data
        .get("handshakes")
        .or_else(|| data.get("counters").and_then(|c| c.get("handshakes")))
        .filter(|h| h.is_object())
    else {
        return String::new();
    };
    let n = |key: &str| h.get(key).and_then(Value::as_u64).unwrap_or(0);
    let door = match h.get("on_guard").and_then(Value::as_bool) {
        Some(true) => "on guard",
        _ => "calm",
    };
    format!(
        "handshakes: {} pending, {} completed, {} waited for a slot; address checks (Retry) {}; refused {} per address, {} all slots taken; {} timed out, {} ignored; door {door} now, went on guard {} times\n",
        n("pending"), n("completed"), n("queued_total"), n("retried"), n("refused_per_address"),
        n("refused_busy"), n("timed_out"), n("ignored"), n("guarded"),
    )
}

fn draw(sup: &Value, indent: &str, out: &mut String) {
    out.push_str(&format!(
        "{indent}{} ({}, restarts {})\n",
        s(sup, "name"),
        sup.get("strategy")
            .and_then(Value::as_str)
            .unwrap_or("dynamic"),
        sup.get("total_restarts")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    ));
    let Some(children) = sup.get("children").and_then(Value::as_array) else {
        return;
    };
    for child in children {
        if let Some(nested) = child.get("supervisor").filter(|v| !v.is_null()) {
            draw(nested, &format!("{indent}  "), out);
        } else {
            out.push_str(&format!(
                "{indent}  {} [{}] {} restarts {}\n",
                s(child, "id"),
                s(child, "restart"),
                s(child, "state"),
                child
                    .get("restart_count")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            ));
        }
    }
}
