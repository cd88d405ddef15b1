//! The benchmarks end to end. `bench mcp`: idp0 in process, todo0's MCP server as a child
//! process, real HTTP; a short run must report throughput for both tools, no errors and the
//! server's RSS; with `--reference`, the reference server's cells and todo0's ratio to them.
//! `bench agent`: the whole stack in process; turns reported, no warm IdP trips; with
//! `--database`, `--redis` and `--replicas 2`, the same on the real PostgreSQL and Redis; with
//! `--github`, a GitHub read after each person's consent, no warm IdP trips either. `bench
//! idp`: every workload against idp0 and the reference. Not timed: only completion and the
//! fields.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_secure-agent");

fn run_bench(extra: &[&str]) -> Value {
    let mut args = vec![
        "mcp",
        "--concurrency",
        "1,4",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--json",
    ];
    args.extend(extra);
    bench(&args)
}

/// `secure-agent bench ARGS`, which must succeed and print a JSON report.
fn bench(args: &[&str]) -> Value {
    bench_with_stderr(args).0
}

/// `secure-agent bench ARGS` (`--json`), which must succeed: its report and its standard error.
/// agent0's database and Redis come from the arguments only, never from this environment.
fn bench_with_stderr(args: &[&str]) -> (Value, String) {
    let run = Command::new(BIN)
        .arg("bench")
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("AGENT_DATABASE_URL")
        .env_remove("AGENT_REDIS_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (report, stderr.into_owned())
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
    // The highest RSS as each cell ended, the same figures as the cells' own.
    let open = report["server"]["sessions_open_rss_mb"].as_f64().unwrap();
    let cells_max = results
        .iter()
        .filter_map(|c| c["server_rss_mb"].as_f64())
        .fold(0.0_f64, f64::max);
    assert_eq!(open, cells_max, "{report}");
    assert!(
        open > 1.0 && open <= peak + 0.01,
        "open {open} MB, peak {peak} MB"
    );
    assert_eq!(
        report["server"]["rss_target"]["sessions_open_pass"].as_bool(),
        Some(open < 40.0)
    );
    // The private part (`RssAnon`) of each reading: some, less than the whole, and the open
    // figure's is that same cell's.
    let private = report["server"]["sessions_open_private_mb"]
        .as_f64()
        .unwrap();
    assert!(
        results
            .iter()
            .any(|c| c["server_rss_mb"].as_f64() == Some(open)
                && c["server_private_mb"].as_f64() == Some(private)),
        "{report}"
    );
    assert!(
        private > 0.5 && private < open,
        "private {private} MB of {open} MB"
    );
    let now = report["server"]["private_mb"].as_f64().unwrap();
    assert!(
        now > 0.5 && now < report["server"]["rss_mb"].as_f64().unwrap(),
        "{report}"
    );
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

/// `secure-agent bench agent --reference`: people log in through idp0's form and chat; every
/// run reports turns and latencies, and no warm turn made an IdP round trip. The reference (the
/// session lookup and a fixed reply) runs the same loads first, and each agent0 run is given as
/// a share of it.
#[test]
fn bench_agent_reports_turn_latency_and_no_idp_round_trips() {
    let report = bench(&[
        "agent",
        "--concurrency",
        "1,3",
        "--duration",
        "500ms",
        "--warmup",
        "200ms",
        "--pace",
        "50ms",
        "--reference",
        "--json",
    ]);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        8,
        "the reference, then agent0, closed loop and paced at each concurrency: {report}"
    );
    let (references, agent0) = runs.split_at(4);
    for run in runs {
        assert!(run["turns"].as_u64().unwrap() > 0, "{run}");
        assert_eq!(run["idp_round_trips"], 0, "{run}");
        let (p50, p99) = (
            run["p50_ms"].as_f64().unwrap(),
            run["p99_ms"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p99, "{run}");
    }
    for (reference, run) in references.iter().zip(agent0) {
        assert_eq!(reference["setup"], "reference", "{reference}");
        assert_eq!(reference["target_met"], Value::Null, "{reference}");
        assert_eq!(run["setup"], "sqlite+in-process x1", "{run}");
        assert_eq!(
            (&run["concurrency"], &run["load"]),
            (&reference["concurrency"], &reference["load"])
        );
        let ratio = run["ratio_to_reference"].as_f64().unwrap();
        let expected =
            run["turns_per_s"].as_f64().unwrap() / reference["turns_per_s"].as_f64().unwrap();
        assert!(ratio > 0.0 && (ratio - expected).abs() < 1e-9, "{run}");
    }
}

/// `bench agent --github`: github0 runs in the bench too, each person walks the consent once
/// (idp0's and github0's pages, over HTTP) and then reads a pull request through the brokered
/// `application` connection. Every turn ran the tool with no confirmation card, no warm turn
/// made an IdP round trip (brokered exchanges count), and each person exchanged three times in
/// all: the brokered exchange answered `interaction_required`, the one after the consent, and
/// todo0's ID-JAG (its tools are listed too) — never per turn.
#[test]
fn bench_agent_github_reads_a_pull_request_with_no_warm_idp_round_trips() {
    let (report, stderr) = bench_with_stderr(&[
        "agent",
        "--github",
        "--concurrency",
        "1,2",
        "--duration",
        "500ms",
        "--warmup",
        "200ms",
        "--pace",
        "50ms",
        "--json",
    ]);
    assert!(
        stderr.contains("2 people hold a GitHub token (2 walked the consent"),
        "{stderr}"
    );
    assert_eq!(report["github"], true, "{report}");
    assert_eq!(
        report["message"], "show me PR 1 in acme/widgets",
        "{report}"
    );
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "closed loop and paced at 1 and 2: {report}");
    for run in runs {
        assert!(run["turns"].as_u64().unwrap() > 0, "{run}");
        assert_eq!(run["idp_round_trips"], 0, "{run}");
        assert_eq!(run["target_met"], true, "{run}");
    }
    assert_eq!(runs[3]["exchanges_per_replica"], serde_json::json!([6]));
}

/// `bench agent` on the shared engines (the real PostgreSQL, in a private schema, and Redis):
/// the embedded default, PostgreSQL with in-process caches, PostgreSQL + Redis, and two replicas
/// on them, requests alternating between the replicas. Every turn succeeded, no warm turn made
/// an IdP round trip, and the two replicas together exchanged once per person, not per turn or
/// per replica; Redis's cost per turn is reported for each closed-loop concurrency.
#[test]
fn bench_agent_on_postgres_and_redis_with_two_replicas() {
    let schema = dbconn::testing::TestSchema::new("SECURE_AGENT_TEST_DATABASE_URL");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(schema.create())
        .unwrap_or_else(|e| panic!("{e}"));
    let redis = std::env::var("SECURE_AGENT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let report = bench(&[
        "agent",
        "--database",
        &schema.url_with_search_path(),
        "--redis",
        &redis,
        "--replicas",
        "2",
        "--concurrency",
        "1,2",
        "--duration",
        "200ms",
        "--warmup",
        "100ms",
        "--pace",
        "0s",
        "--json",
    ]);
    let runs = report["runs"].as_array().unwrap();
    let setups: Vec<(&str, u64)> = runs
        .iter()
        .map(|r| {
            (
                r["setup"].as_str().unwrap(),
                r["concurrency"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        setups,
        [
            ("sqlite+in-process x1", 1),
            ("sqlite+in-process x1", 2),
            ("postgres+in-process x1", 1),
            ("postgres+in-process x1", 2),
            ("postgres+redis x1", 1),
            ("postgres+redis x1", 2),
            ("postgres+redis x2", 1),
            ("postgres+redis x2", 2),
        ],
        "{report}"
    );
    for run in runs {
        assert!(run["turns"].as_u64().unwrap() > 0, "{run}");
        assert_eq!(run["idp_round_trips"], 0, "{run}");
        let (p50, p99) = (
            run["p50_ms"].as_f64().unwrap(),
            run["p99_ms"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p99, "{run}");
        assert!(run["cpu_us_per_turn"].as_f64().unwrap() > 0.0, "{run}");
        if run["sessions"] == "redis" {
            // Read from the server's INFO: a turn reads the session and the token there.
            let commands = run["redis_commands_per_turn"].as_f64().unwrap();
            assert!(commands >= 1.0, "{run}");
        }
        let exchanges: Vec<u64> = run["exchanges_per_replica"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect();
        assert_eq!(exchanges.len() as u64, run["replicas"].as_u64().unwrap());
        // Each person's token was minted once, on whichever replica served them first.
        let people = run["concurrency"].as_u64().unwrap();
        assert_eq!(exchanges.iter().sum::<u64>(), people, "{run}");
    }
    let costs = report["redis_cost_per_turn"].as_array().unwrap();
    assert_eq!(costs.len(), 2, "{report}");
    for cost in costs {
        assert!(cost["p50_ms"].is_number(), "{cost}");
        assert!(cost["cpu_us"].is_number(), "{cost}");
        assert!(cost["redis_commands"].as_f64().unwrap() >= 1.0, "{cost}");
    }
}

/// A measured cell's common fields: calls, quantiles, CPU shares.
fn check_cell(cell: &Value, client_cpu: &str) {
    assert!(cell["calls"].as_u64().unwrap() > 0, "{cell}");
    assert!(cell["calls_per_s"].as_f64().unwrap() > 0.0, "{cell}");
    let (p50, p99) = (
        cell["p50_ms"].as_f64().unwrap(),
        cell["p99_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{cell}");
    assert!(cell["server_cpu_pct"].as_f64().is_some(), "{cell}");
    assert!(cell[client_cpu].as_f64().is_some(), "{cell}");
}

/// `bench mcp --reference`: each todo0 cell is followed by the reference's, and carries the
/// ratio of its calls/s to the reference's.
#[test]
fn bench_mcp_reference_reports_ratios_and_the_clients_cpu() {
    let report = bench(&[
        "mcp",
        "--reference",
        "--tools",
        "get-todos",
        "--concurrency",
        "1",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--seed",
        "2",
        "--json",
    ]);
    assert_eq!(report["reference"], true);
    assert!(report["bench_cpu_method"].is_string());
    let results = report["results"].as_array().unwrap();
    let servers: Vec<&str> = results
        .iter()
        .map(|c| c["server"].as_str().unwrap())
        .collect();
    assert_eq!(servers, ["todo0", "reference"], "{report}");
    for cell in results {
        check_cell(cell, "bench_cpu_pct");
        assert_eq!(cell["errors"], 0, "{cell}");
    }
    assert!(results[0]["ratio_to_reference"].as_f64().unwrap() > 0.0);
    assert!(results[1]["ratio_to_reference"].is_null());
}

/// `bench idp --reference`: the three token-endpoint workloads against idp0 and the reference.
#[test]
fn bench_idp_reports_every_workload_against_the_reference() {
    let report = bench(&[
        "idp",
        "--reference",
        "--concurrency",
        "1",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--codes",
        "3000",
        "--json",
    ]);
    assert_eq!(report["reference"], true);
    assert!(report["client_cpu_method"].is_string());
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 6, "{report}");
    for workload in ["exchange", "jwt-bearer", "code"] {
        for server in ["idp0", "reference"] {
            let cell = results
                .iter()
                .find(|c| c["workload"] == workload && c["server"] == server)
                .unwrap_or_else(|| panic!("no {server} {workload} in {report}"));
            check_cell(cell, "client_cpu_pct");
            assert_eq!(
                cell["ratio_to_reference"].is_number(),
                server == "idp0",
                "{cell}"
            );
        }
    }
}
