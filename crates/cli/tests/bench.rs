//! The benchmarks end to end. `bench mcp`: idp0 in process, todo0's MCP server as a child
//! process, real HTTP; a short run must report throughput for both tools, no errors and the
//! server's RSS. `bench agent`: the whole stack in process; turns reported, no warm IdP trips.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_secure-agent");

fn run_bench(extra: &[&str]) -> Value {
    let run = Command::new(BIN)
        .args([
            "bench",
            "mcp",
            "--concurrency",
            "1,4",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--json",
        ])
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn check(report: &Value) {
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "2 tools x 2 concurrency levels");
    for tool in ["get-todos", "create-todo"] {
        for concurrency in [1, 4] {
            let cell = results
                .iter()
                .find(|c| c["tool"] == tool && c["concurrency"] == concurrency)
                .unwrap_or_else(|| panic!("no {tool} x {concurrency} in {report}"));
            assert!(cell["calls_per_s"].as_f64().unwrap() > 0.0, "{cell}");
            assert!(cell["calls"].as_u64().unwrap() > 0, "{cell}");
            assert_eq!(cell["errors"], 0, "{cell}");
            let (p50, p99) = (
                cell["p50_ms"].as_f64().unwrap(),
                cell["p99_ms"].as_f64().unwrap(),
            );
            assert!(p50 > 0.0 && p50 <= p99, "{cell}");
        }
    }
    assert_eq!(report["errors"], 0);
    let peak = report["server"]["peak_rss_mb"].as_f64().unwrap();
    assert!(peak > 1.0 && peak < 1024.0, "peak RSS {peak} MB");
    assert!(report["server"]["rss_mb"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_mcp_reports_throughput_latency_and_rss() {
    let report = run_bench(&[]);
    assert_eq!(report["mode"], "stateful");
    check(&report);
}

#[test]
fn bench_mcp_stateless_reports_throughput_latency_and_rss() {
    let report = run_bench(&["--stateless"]);
    assert_eq!(report["mode"], "stateless");
    check(&report);
}

/// `secure-agent bench agent`: people log in through idp0's form and chat; every run reports
/// turns and latencies, and no warm turn made an IdP round trip.
#[test]
fn bench_agent_reports_turn_latency_and_no_idp_round_trips() {
    let run = Command::new(BIN)
        .args([
            "bench",
            "agent",
            "--concurrency",
            "1,3",
            "--duration",
            "500ms",
            "--warmup",
            "200ms",
            "--pace",
            "50ms",
            "--json",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        4,
        "closed loop and paced at each concurrency: {report}"
    );
    for run in runs {
        assert!(run["turns"].as_u64().unwrap() > 0, "{run}");
        assert_eq!(run["idp_round_trips"], 0, "{run}");
        let (p50, p99) = (
            run["p50_ms"].as_f64().unwrap(),
            run["p99_ms"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p99, "{run}");
    }
}
