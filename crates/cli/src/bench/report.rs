//! How `bench mcp` prints its cells (a table, or JSON), and the units the benchmarks share:
//! nearest-rank quantiles, rounding, durations on the command line.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Cell, MB};

pub(super) fn table_header() -> String {
    format!(
        "{:<9} {:<11} {:>4} {:>8} {:>7} {:>7} {:>7} {:>6} {:>6} {:>8} {:>6} {:>6} {:>7} {:>6}  {}",
        "server",
        "tool",
        "conc",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "server",
        "us/call",
        "bench",
        "other",
        "RSS MB",
        "vs ref",
        "target"
    )
}

pub(super) fn table_row(cell: &Cell, database_in_memory: bool) -> String {
    let percent = |cpu: Option<f64>| cpu.map_or("-".to_owned(), |c| format!("{:.0}%", c * 100.0));
    let target = cell
        .target(database_in_memory)
        .map(|(goal, met)| format!("{} ({goal})", pass_miss(met)))
        .unwrap_or_default();
    format!(
        "{:<9} {:<11} {:>4} {:>8.0} {:>7.2} {:>7.2} {:>7.1} {:>6} {:>6} {:>8} {:>6} {:>6} {:>7} {:>6}  {}",
        cell.subject.name(),
        cell.tool.name(),
        cell.concurrency,
        cell.calls_per_s(),
        cell.quantile_ms(0.5),
        cell.quantile_ms(0.99),
        cell.max_ms(),
        cell.errors,
        percent(cell.server_cpu),
        cell.server_us_per_call()
            .map_or("-".to_owned(), |us| format!("{us:.0}")),
        percent(cell.bench_cpu),
        percent(cell.other_cpu),
        cell.rss_after
            .map_or("-".to_owned(), |r| format!("{:.1}", r as f64 / MB)),
        cell.ratio.map_or("-".to_owned(), |r| format!("{r:.2}")),
        target
    )
}

pub(super) fn cell_json(cell: &Cell, database_in_memory: bool) -> Value {
    json!({
        "server": cell.subject.name(),
        "tool": cell.tool.name(),
        "concurrency": cell.concurrency,
        "calls": cell.calls,
        "errors": cell.errors,
        "first_error": cell.first_error,
        "calls_per_s": round2(cell.calls_per_s()),
        "p50_ms": round3(cell.quantile_ms(0.5)),
        "p99_ms": round3(cell.quantile_ms(0.99)),
        "max_ms": round3(cell.max_ms()),
        "mean_ms": round3(cell.mean_ms()),
        "server_cpu_pct": cell.server_cpu.map(|c| round2(c * 100.0)),
        "server_cpu_us_per_call": cell.server_us_per_call().map(round2),
        "bench_cpu_pct": cell.bench_cpu.map(|c| round2(c * 100.0)),
        "other_cpu_pct": cell.other_cpu.map(|c| round2(c * 100.0)),
        "server_rss_mb": cell.rss_after.map(|r| round2(r as f64 / MB)),
        "server_private_mb": cell.private_after.map(|r| round2(r as f64 / MB)),
        "ratio_to_reference": cell.ratio.map(round3),
        "target": cell.target(database_in_memory).map(|(goal, pass)| json!({"goal": goal, "pass": pass})),
    })
}

pub(super) fn pass_miss(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "n/a",
    }
}

/// The `q` quantile (nearest rank) of sorted nanoseconds, in milliseconds.
pub(super) fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e6
}

pub(super) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A database URL without its password.
pub(super) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// `5s`, `500ms`, `1.5s`, `2m`, or a bare number of seconds.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 5s, 500ms, 1m)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

pub(super) fn format_duration(duration: Duration) -> String {
    format!("{}s", round3(duration.as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
