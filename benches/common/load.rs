//! A small HTTP/1.1 load driver for the service bench: blocking keep-alive connections, one
//! thread each, over plain sockets (no HTTP client library in the measured path, so the driver
//! costs little beside the server it measures).
//!
//! Two modes:
//! - closed loop: every connection sends its next request as soon as the last answer arrived,
//!   for the maximum rate;
//! - open loop: request `k` is due at `start + k / rate`; its latency runs from that moment, not
//!   from when a connection was free to send it, so a slow server cannot hide its queueing
//!   (no "coordinated omission").
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A parsed answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Header lines as sent, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection.
pub struct Conn {
    addr: SocketAddr,
    stream: TcpStream,
    buf: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    /// Connects (TCP_NODELAY on).
    pub fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Self {
            addr,
            stream,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Sends a complete request and reads the whole answer.
    pub fn exchange(&mut self, request: &[u8]) -> std::io::Result<Answer> {
        self.stream.write_all(request)?;
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        self.buf.drain(..head_end + 4);
        let mut answer = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        if answer
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    self.fill()?;
                };
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&self.buf[..line_end])
                        .split(';')
                        .next()
                        .unwrap_or("0")
                        .trim(),
                    16,
                )
                .unwrap_or(0);
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    self.fill()?;
                }
                answer.body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
                if size == 0 {
                    break;
                }
            }
        } else {
            let len: usize = answer
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while self.buf.len() < len {
                self.fill()?;
            }
            answer.body = self.buf.drain(..len).collect();
        }
        if answer
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            *self = Conn::open(self.addr)?;
        }
        Ok(answer)
    }
}

/// A raw request: `method path`, extra header lines, body.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Answers received with the expected status.
    pub ok: u64,
    /// Answers with another status, or failed exchanges.
    pub failed: u64,
    /// The first unexpected answer, for the report.
    pub first_failure: Option<String>,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// Latency of every expected answer, microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// The request pool ran out before the time was up.
    pub exhausted: bool,
}

impl Run {
    /// Expected answers per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    /// The `p` quantile (0..=1) of the latencies, milliseconds.
    pub fn quantile_ms(&self, p: f64) -> f64 {
        percentile_us(&self.latencies_us, p) / 1000.0
    }

    fn merge(&mut self, other: Run) {
        self.ok += other.ok;
        self.failed += other.failed;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
        self.latencies_us.extend(other.latencies_us);
        self.exhausted |= other.exhausted;
    }
}

/// The `p` quantile of sorted microsecond values (nearest rank).
pub fn percentile_us(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// How requests are paced.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// As fast as answers come back.
    Closed,
    /// This many requests per second in total, whatever the server does.
    Open(f64),
}

/// Sends `requests` (each at most once, in order; cycled when `cycle`) over `connections`
/// connections for at most `duration`, expecting `expect` as the status of every answer.
pub fn drive(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    cycle: bool,
    connections: usize,
    pace: Pace,
    duration: Duration,
    expect: u16,
) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(50);
    let deadline = start + duration;
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let requests = requests.clone();
            let next = next.clone();
            std::thread::spawn(move || {
                let mut run = Run::default();
                let mut conn = match Conn::open(addr) {
                    Ok(c) => c,
                    Err(e) => {
                        run.failed += 1;
                        run.first_failure = Some(format!("connect: {e}"));
                        return run;
                    }
                };
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if !cycle && k >= requests.len() {
                        run.exhausted = true;
                        break;
                    }
                    let due = match pace {
                        Pace::Closed => None,
                        Pace::Open(rate) => Some(start + Duration::from_secs_f64(k as f64 / rate)),
                    };
                    let now = Instant::now();
                    if due.unwrap_or(now) >= deadline || now >= deadline {
                        break;
                    }
                    if let Some(due) = due
                        && due > now
                    {
                        std::thread::sleep(due - now);
                    }
                    let sent = due.unwrap_or_else(Instant::now);
                    let req = &requests[k % requests.len()];
                    match conn.exchange(req) {
                        Ok(a) if a.status == expect => {
                            run.ok += 1;
                            let us = sent.elapsed().as_micros();
                            run.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                        }
                        Ok(a) => {
                            run.failed += 1;
                            if run.first_failure.is_none() {
                                run.first_failure = Some(format!(
                                    "{}: {}",
                                    a.status,
                                    String::from_utf8_lossy(&a.body)
                                        .chars()
                                        .take(300)
                                        .collect::<String>()
                                ));
                            }
                        }
                        Err(e) => {
                            run.failed += 1;
                            if run.first_failure.is_none() {
                                run.first_failure = Some(e.to_string());
                            }
                            match Conn::open(addr) {
                                Ok(c) => conn = c,
                                Err(_) => break,
                            }
                        }
                    }
                }
                run
            })
        })
        .collect();
    let mut total = Run::default();
    for t in threads {
        total.merge(t.join().unwrap());
    }
    // Rates are over the time requests were being sent: the full duration unless the pool ran
    // out first.
    total.seconds = start.elapsed().as_secs_f64().min(duration.as_secs_f64());
    total.latencies_us.sort_unstable();
    total
}

/// One request over a fresh connection.
pub fn once(addr: SocketAddr, request: &[u8]) -> Answer {
    Conn::open(addr).unwrap().exchange(request).unwrap()
}
