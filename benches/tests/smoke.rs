//! Smoke test of the comparison tools: each peer echo server, driven by the
//! load generator for a fraction of a second in every scenario, produces a
//! sane RESULT line. Catches a peer library upgrade or a loadgen change that
//! would only show up as a failed benchmark run.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child (by its PID) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_peer(imp: &str) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_peer_echo"))
        .args(["--impl", imp, "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start peer_echo");
    let stdout = child.stdout.take().expect("stdout");
    let child = Killed(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read peer_echo stdout");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, addr)
}

fn loadgen(addr: &str, pid: u32, scenario: &str, extra: &[&str]) -> BTreeMap<String, f64> {
    numeric_fields(&result_line(addr, pid, scenario, extra))
}

/// The `key=value` fields of a RESULT line whose values are numbers.
fn numeric_fields(line: &str) -> BTreeMap<String, f64> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| v.parse().ok().map(|v| (k.to_string(), v)))
        .collect()
}

fn result_line(addr: &str, pid: u32, scenario: &str, extra: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--addr", addr, "--scenario", scenario])
        .args(["--server-pid", &pid.to_string()])
        .args(["--warmup", "0.1", "--duration", "0.3"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "loadgen {scenario} hung");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("loadgen output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loadgen {scenario} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in {stdout:?}"))
        .to_string()
}

#[test]
fn the_load_generator_reports_the_congestion_control_its_sockets_use() {
    let (server, addr) = start_peer("fastwebsockets");
    let pid = server.0.id();
    let used = |extra: &[&str]| {
        let line = result_line(&addr, pid, "latency", extra);
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix("congestion="))
            .unwrap_or_else(|| panic!("no congestion= in {line:?}"))
            .to_string()
    };
    assert_eq!(used(&["--congestion", "reno"]), "reno");
    // An algorithm the kernel refuses leaves the sockets on its default.
    let system = used(&["--congestion", "system"]);
    assert_eq!(used(&["--congestion", "no-such-algorithm"]), system);
}

#[test]
fn echoes_dropped_unread_are_counted_like_copied_ones() {
    let (server, addr) = start_peer("tokio-websockets");
    let pid = server.0.id();
    for (extra, mode) in [(&[][..], "dropped"), (&["--copy-echoes"][..], "copied")] {
        for (scenario, size) in [("bulk", "65536"), ("bulk", "5000"), ("large", "1048576")] {
            let args = [extra, &["--conns", "2", "--size", size]].concat();
            let line = result_line(&addr, pid, scenario, &args);
            assert!(line.contains(&format!(" echoes={mode}")), "{line}");
            let fields = numeric_fields(&line);
            // The decoder checks every echo's length, dropped or not: a miscounted
            // payload would end the run with an error.
            assert!(
                fields["msgs"] > 0.0 && fields["errors"] == 0.0,
                "{scenario} {size} {mode}: {line}"
            );
        }
    }
}

#[test]
fn every_peer_serves_every_scenario() {
    for imp in [
        "tungstenite",
        "fastwebsockets",
        "tokio-websockets",
        "yawc",
        "axum",
        "tcp-floor",
    ] {
        let (server, addr) = start_peer(imp);
        let pid = server.0.id();
        let r = loadgen(&addr, pid, "latency", &[]);
        assert!(r["msgs"] > 0.0 && r["p50_us"] > 0.0, "{imp} latency: {r:?}");
        let r = loadgen(&addr, pid, "small", &["--conns", "4"]);
        assert!(r["msgs"] > 0.0 && r["errors"] == 0.0, "{imp} small: {r:?}");
        let r = loadgen(&addr, pid, "bulk", &["--conns", "2"]);
        assert!(
            r["mb_per_s"] > 0.0 && r["errors"] == 0.0,
            "{imp} bulk: {r:?}"
        );
        let r = loadgen(&addr, pid, "bulk", &["--conns", "2", "--text"]);
        assert!(
            r["mb_per_s"] > 0.0 && r["errors"] == 0.0,
            "{imp} text: {r:?}"
        );
        // crowd: latency with idle connections held open.
        let r = loadgen(&addr, pid, "latency", &["--hold", "40"]);
        assert_eq!(r["held"], 40.0, "{imp} crowd: {r:?}");
        assert!(r["msgs"] > 0.0 && r["errors"] == 0.0, "{imp} crowd: {r:?}");
        let r = loadgen(&addr, pid, "large", &["--size", "3000000"]);
        assert!(r["msgs"] > 0.0 && r["errors"] == 0.0, "{imp} large: {r:?}");
        let r = loadgen(&addr, pid, "handshake", &["--conns", "2"]);
        assert!(r["handshakes"] > 0.0, "{imp} handshake: {r:?}");
        assert_eq!(
            r["no_fin"], 0.0,
            "{imp}: server did not close TCP after Close"
        );
        let r = loadgen(&addr, pid, "idle", &["--conns", "50"]);
        assert_eq!(r["conns"], 50.0, "{imp} idle: {r:?}");
        assert!(r["rss_echo_kib"] > 0.0, "{imp} idle: {r:?}");
    }
}

#[test]
fn compressed_scenarios_run_against_a_peer_with_permessage_deflate() {
    let (server, addr) = start_peer("yawc");
    let pid = server.0.id();
    for (scenario, low) in [("deflate-1k", 3.0), ("deflate-64k", 4.0)] {
        let line = result_line(&addr, pid, scenario, &["--conns", "2"]);
        assert!(line.contains(" deflate=1"), "{line}");
        assert!(line.contains("extensions=permessage-deflate;"), "{line}");
        let r = numeric_fields(&line);
        assert!(r["msgs"] > 0.0 && r["errors"] == 0.0, "{scenario}: {r:?}");
        // The server compressed its echoes (every one) about as well as the client.
        assert!(r["compressed_share"] == 1.0, "{scenario}: {r:?}");
        assert!(r["wire_ratio_echo"] > low, "{scenario}: {r:?}");
        assert!(r["wire_ratio_sent"] > low, "{scenario}: {r:?}");
    }
    let r = loadgen(&addr, pid, "deflate-idle", &["--conns", "20"]);
    assert_eq!(r["conns"], 20.0, "deflate-idle: {r:?}");
    // --deflate with another scenario.
    let r = loadgen(&addr, pid, "latency", &["--deflate", "--size", "1024"]);
    assert!(
        r["msgs"] > 0.0 && r["errors"] == 0.0,
        "latency --deflate: {r:?}"
    );
}

/// The floor accepts permessage-deflate and echoes the client's compressed frames:
/// every echo compressed, the first one checked by inflating it.
#[test]
fn the_floor_serves_the_compressed_scenarios() {
    let (server, addr) = start_peer("tcp-floor");
    let pid = server.0.id();
    for scenario in ["deflate-1k", "deflate-64k"] {
        let line = result_line(&addr, pid, scenario, &["--conns", "2"]);
        assert!(line.contains(" deflate=1"), "{line}");
        let r = numeric_fields(&line);
        assert!(r["msgs"] > 0.0 && r["errors"] == 0.0, "{scenario}: {r:?}");
        assert!(r["compressed_share"] == 1.0, "{scenario}: {r:?}");
        assert_eq!(
            r["wire_ratio_echo"], r["wire_ratio_sent"],
            "{scenario}: {r:?}"
        );
    }
}

#[test]
fn a_server_that_declines_compression_fails_a_compressed_run() {
    let (server, addr) = start_peer("tokio-websockets");
    let pid = server.0.id();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--addr", &addr, "--scenario", "deflate-1k"])
        .args(["--server-pid", &pid.to_string()])
        .args(["--warmup", "0.1", "--duration", "0.2", "--conns", "1"])
        .stdin(Stdio::null())
        .output()
        .expect("loadgen");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("declined permessage-deflate"), "{stderr}");
}
