//! A loopback HTTP server for the AWS APIs moto lacks (AWS Backup's restore jobs and recovery
//! points, CloudWatch's CBOR protocol). It is not the service: each test that uses it says so
//! and answers with the shapes of AWS's API reference examples. The SDK reaches it through its
//! own endpoint chain (`AWS_ENDPOINT_URL_<SERVICE>`), as a user would point it at a VPC endpoint.
//!
//! Bounded by design: it serves at most `MAX_REQUESTS` requests for at most two minutes and
//! stops when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const MAX_REQUESTS: u32 = 2000;
const LIFETIME: Duration = Duration::from_secs(120);

pub(crate) struct Request {
    pub(crate) method: String,
    /// The path with its query, percent-encoding undone.
    pub(crate) path: String,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn json(status: u16, v: serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: v.to_string().into_bytes(),
        }
    }

    /// The Smithy RPC v2 CBOR protocol CloudWatch's SDK speaks (moto does not: getmoto/moto#9195).
    pub(crate) fn cbor(status: u16, v: serde_json::Value) -> Response {
        let mut body = Vec::new();
        ciborium::into_writer(&v, &mut body).unwrap();
        Response {
            status,
            headers: vec![
                ("Content-Type", "application/cbor".into()),
                ("smithy-protocol", "rpc-v2-cbor".into()),
            ],
            body,
        }
    }

    /// AWS's REST-JSON error shape (`x-amzn-ErrorType` and `__type`).
    pub(crate) fn error(status: u16, kind: &str, message: &str) -> Response {
        let mut r = Response::json(
            status,
            serde_json::json!({"__type": kind, "message": message}),
        );
        r.headers.push(("x-amzn-ErrorType", kind.into()));
        r
    }
}

pub(crate) struct StandIn {
    pub(crate) url: String,
    stop: Arc<AtomicBool>,
}

impl StandIn {
    pub(crate) fn start(mut answer: impl FnMut(&Request) -> Response + Send + 'static) -> StandIn {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let done = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + LIFETIME;
            let mut served = 0;
            while !done.load(Ordering::Relaxed)
                && Instant::now() < deadline
                && served < MAX_REQUESTS
            {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                served += 1;
                let _ = serve(conn, &mut answer);
            }
        });
        StandIn { url, stop }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One request per connection (`Connection: close`), which the SDK's client accepts.
fn serve(
    mut conn: std::net::TcpStream,
    answer: &mut impl FnMut(&Request) -> Response,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let raw_path = parts.next().unwrap_or("");
    let mut length = 0;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let request = Request {
        method,
        path: percent_encoding::percent_decode_str(raw_path)
            .decode_utf8_lossy()
            .into_owned(),
        body,
    };
    let r = answer(&request);
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(&r.body)
}

/// Seconds since the epoch, as AWS's JSON protocols write timestamps.
pub(crate) fn epoch(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
