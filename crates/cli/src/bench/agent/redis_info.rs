//! The Redis server's own counters for `bench agent`: its CPU time (`used_cpu_user` +
//! `used_cpu_sys`) and `total_commands_processed`, read with `INFO` (RESP over a plain TCP
//! connection, `AUTH` first when the URL has a password), so a run can report Redis's CPU and
//! commands per turn. `rediss://` URLs are not read (the figures are then absent).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one reading may take.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The most of a reply read (INFO is a few kB).
const MAX_REPLY: usize = 1 << 20;

/// The counters at one moment.
#[derive(Clone, Copy)]
pub(super) struct RedisCounters {
    /// CPU seconds the server has used.
    pub(super) cpu: f64,
    /// Commands it has processed.
    pub(super) commands: u64,
}

/// The counters of the Redis at `url`, or `None` (and why, on standard error, once per reading)
/// when they cannot be read.
pub(super) async fn read(url: &str) -> Option<RedisCounters> {
    match tokio::time::timeout(TIMEOUT, try_read(url)).await {
        Ok(Ok(counters)) => Some(counters),
        Ok(Err(e)) => {
            eprintln!("bench: Redis INFO: {e}");
            None
        }
        Err(_) => {
            eprintln!("bench: Redis INFO: no answer in time");
            None
        }
    }
}

async fn try_read(url: &str) -> Result<RedisCounters, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    if parsed.scheme() != "redis" {
        return Err(format!(
            "{}:// is not read (plain redis:// only)",
            parsed.scheme()
        ));
    }
    let host = parsed.host_str().unwrap_or("127.0.0.1");
    let port = parsed.port().unwrap_or(6379);
    let mut stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    if let Some(password) = parsed.password() {
        let password = percent_decoded(password);
        let user = match parsed.username() {
            "" => "default",
            user => user,
        };
        stream
            .write_all(&command(&["AUTH", user, &password]))
            .await
            .map_err(|e| e.to_string())?;
        let reply = read_reply(&mut stream).await?;
        if !reply.starts_with(b"+OK") {
            return Err("AUTH was refused".to_owned());
        }
    }
    stream
        .write_all(&command(&["INFO"]))
        .await
        .map_err(|e| e.to_string())?;
    let reply = read_reply(&mut stream).await?;
    parse(&String::from_utf8_lossy(&reply)).ok_or_else(|| "no CPU or command counts".to_owned())
}

/// `text` with its `%XX` escapes decoded (a URL's password).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A RESP array of bulk strings.
fn command(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend_from_slice(format!("${}\r\n{part}\r\n", part.len()).as_bytes());
    }
    out
}

/// One reply: a simple string or error line, or a whole bulk string (header included).
async fn read_reply(stream: &mut tokio::net::TcpStream) -> Result<Vec<u8>, String> {
    let mut reply = Vec::new();
    let mut chunk = [0_u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("Redis closed the connection".to_owned());
        }
        reply.extend_from_slice(&chunk[..n]);
        if reply.len() > MAX_REPLY {
            return Err("the reply is too long".to_owned());
        }
        let Some(end) = reply.windows(2).position(|w| w == b"\r\n") else {
            continue;
        };
        match reply.first() {
            Some(b'$') => {
                let length: usize = std::str::from_utf8(&reply[1..end])
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .ok_or("a malformed bulk reply")?;
                if reply.len() >= end + 2 + length {
                    return Ok(reply);
                }
            }
            Some(b'-') => {
                return Err(String::from_utf8_lossy(&reply[1..end]).into_owned());
            }
            _ => return Ok(reply),
        }
    }
}

/// The counters in an `INFO` text.
fn parse(info: &str) -> Option<RedisCounters> {
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let seconds = |name: &str| field(name)?.parse::<f64>().ok();
    Some(RedisCounters {
        cpu: seconds("used_cpu_user")? + seconds("used_cpu_sys")?,
        commands: field("total_commands_processed")?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_counters_are_read_by_name() {
        let info = "# Stats\r\ntotal_commands_processed:1234\r\n# CPU\r\nused_cpu_sys:1.5\r\nused_cpu_user:2.25\r\nused_cpu_sys_children:9.0\r\n";
        let counters = parse(info).unwrap_or_else(|| panic!("no counters"));
        assert_eq!(counters.commands, 1234);
        assert!((counters.cpu - 3.75).abs() < 1e-9);
        assert!(parse("# CPU\r\nused_cpu_sys:1\r\n").is_none());
    }

    #[test]
    fn passwords_are_percent_decoded() {
        assert_eq!(percent_decoded("p%40ss%2Fw%zz%"), "p@ss/w%zz%");
    }

    #[test]
    fn commands_are_resp_arrays() {
        assert_eq!(
            command(&["AUTH", "default", "pw"]),
            b"*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$2\r\npw\r\n"
        );
    }
}
