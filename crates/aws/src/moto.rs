//! A moto server for tests (firedrill's and this crate's): PyPI's `moto[server]`, installed by
//! `.ci/setup` into a venv, started on a free loopback port and stopped on drop. It stands in
//! for AWS where moto implements the API; see the README for where it does not.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub port: u16,
    /// Where moto writes the requests it records (see [`Server::start_recording`]).
    recording: PathBuf,
}

/// `$FIREDRILL_MOTO_SERVER`, else `moto_server` in `$FIREDRILL_MOTO_VENV`, else in
/// `~/.cache/firedrill/moto-venv`.
pub fn program() -> PathBuf {
    if let Some(p) = std::env::var_os("FIREDRILL_MOTO_SERVER") {
        return p.into();
    }
    std::env::var_os("FIREDRILL_MOTO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/firedrill/moto-venv")
        })
        .join("bin/moto_server")
}

impl Server {
    /// Starts moto; panics (this is test support) with the fix when it is not installed.
    pub fn start() -> Server {
        let program = program();
        assert!(
            program.exists(),
            "moto server not found at {}: run .ci/setup (it installs moto[server] into a venv)",
            program.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let recording = std::env::temp_dir().join(format!("moto-recording-{port}"));
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto server did not listen in 30s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            port,
            recording,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An SDK configuration for this server in `region`, with moto's test credentials.
    pub fn conf(&self, region: &str) -> aws_types::SdkConfig {
        use aws_sdk_rds::config::{
            BehaviorVersion, Credentials, Region, SharedCredentialsProvider,
        };
        aws_types::SdkConfig::builder()
            .region(Region::new(region.to_owned()))
            .endpoint_url(self.url())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "moto",
            )))
            .behavior_version(BehaviorVersion::latest())
            .build()
    }

    /// Creates RDS for PostgreSQL instance `id` with `tags`; its ARN.
    pub async fn postgres_instance(
        &self,
        id: &str,
        multi_az: bool,
        tags: &[(&str, &str)],
    ) -> String {
        self.postgres_instance_on(id, multi_az, tags, None).await
    }

    /// [`Self::postgres_instance`] whose endpoint (as moto reports it) has `port`.
    pub async fn postgres_instance_on(
        &self,
        id: &str,
        multi_az: bool,
        tags: &[(&str, &str)],
        port: Option<u16>,
    ) -> String {
        let rds = aws_sdk_rds::Client::new(&self.conf("us-east-1"));
        let out = rds
            .create_db_instance()
            .db_instance_identifier(id)
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("app")
            .master_user_password("not-a-real-password")
            .multi_az(multi_az)
            .set_port(port.map(i32::from))
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .send()
            .await
            .expect("moto: create instance");
        out.db_instance()
            .and_then(|i| i.db_instance_arn())
            .expect("moto: an ARN")
            .to_owned()
    }

    /// Creates Aurora PostgreSQL cluster `id` with `members` instances (the first is the writer).
    pub async fn aurora_cluster(&self, id: &str, members: &[&str]) {
        let rds = aws_sdk_rds::Client::new(&self.conf("us-east-1"));
        rds.create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .master_username("app")
            .master_user_password("not-a-real-password")
            .send()
            .await
            .expect("moto: create cluster");
        for m in members {
            rds.create_db_instance()
                .db_instance_identifier(*m)
                .db_cluster_identifier(id)
                .engine("aurora-postgresql")
                .db_instance_class("db.r6g.large")
                .send()
                .await
                .expect("moto: create cluster member");
        }
    }

    /// Holds a model's state (e.g. `fis::experiment`) for `reads` reads before it advances:
    /// moto otherwise moves an experiment on at every read, to `completed` within a few.
    pub fn hold_state(&self, model: &str, reads: u32) {
        let body = format!(
            "{{\"model_name\": \"{model}\", \"transition\": {{\"progression\": \"manual\", \"times\": {reads}}}}}"
        );
        self.api("POST", "/moto-api/state-manager/set-transition", &body);
    }

    /// Makes moto record every request it serves from now on, for [`Server::recorded`]: how a
    /// test sees a call that changes nothing moto shows (`RebootDBInstance` is a no-op there).
    pub fn start_recording(&self) {
        self.api("POST", "/moto-api/recorder/start-recording", "");
    }

    /// The file moto records requests into, one JSON object per line (`method`, `url`, `body`,
    /// base64 when `body_encoded`); absent until the first request after
    /// [`Server::start_recording`].
    pub fn recording(&self) -> &std::path::Path {
        &self.recording
    }

    fn api(&self, method: &str, path: &str, body: &str) -> String {
        api(self.port, method, path, body)
    }
}

/// One call to moto's own API; its body. Panics (test support) unless moto answers 2xx.
fn api(port: u16, method: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("moto");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("moto request");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 20"), "moto: {answer}");
    answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.recording);
    }
}
