//! Patroni's REST API, as much of it as a drill needs: the cluster's members (`GET /cluster`),
//! a member's own status (`GET /patroni`), the dynamic configuration (`GET /config`), the
//! timeline history (`GET /history`), and the planned actions (`POST /switchover`,
//! `POST /failover`).
//!
//! Boundary: HTTP and Patroni's JSON shapes. Which member a fault hits is the driver's.

use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use crate::cluster::{HistoryEntry, MemberState};
use crate::error::EnvError;

/// The members' API base URLs; any one that answers will do for reads.
#[derive(Clone, Debug)]
pub struct Api {
    http: reqwest::Client,
    urls: Vec<Endpoint>,
}

#[derive(Clone, Debug)]
struct Endpoint {
    base: Url,
    /// `user:password` from the URL, sent as HTTP basic auth.
    auth: Option<(String, String)>,
}

impl Endpoint {
    /// The URL as messages show it: without credentials.
    fn shown(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }
}

/// One member as `GET /cluster` has it.
#[derive(Debug, Deserialize)]
struct RawMember {
    name: String,
    role: String,
    state: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    timeline: Option<u64>,
    /// A number of bytes, or `"unknown"`.
    #[serde(default)]
    lag: Option<serde_json::Value>,
    #[serde(default)]
    api_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawCluster {
    members: Vec<RawMember>,
}

/// A member's own status (`GET /patroni`), the parts a drill reads.
#[derive(Clone, Debug, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub patroni: Option<PatroniVersion>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PatroniVersion {
    pub version: String,
}

/// The cluster as one call saw it, with each member's API address.
#[derive(Clone, Debug)]
pub struct Topology {
    pub members: Vec<MemberState>,
    api_urls: Vec<(String, Option<String>)>,
}

impl Topology {
    pub fn leader(&self) -> Option<&MemberState> {
        self.members
            .iter()
            .find(|m| m.role == "leader" || m.role == "master")
    }

    pub fn member(&self, name: &str) -> Option<&MemberState> {
        self.members.iter().find(|m| m.name == name)
    }

    /// A member's own API URL, as it advertises it.
    pub fn api_url(&self, name: &str) -> Option<&str> {
        self.api_urls
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, u)| u.as_deref())
    }
}

impl Api {
    /// From comma-separated base URLs; credentials in a URL are registered as secrets, so no
    /// report or message shows them.
    pub fn new(list: &str, what: &str) -> Result<Api, EnvError> {
        let mut urls = Vec::new();
        for raw in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let mut base = Url::parse(raw).map_err(|e| {
                EnvError::Database(format!(
                    "{what}: {e} in a URL (expected http(s)://host:port)"
                ))
            })?;
            if !matches!(base.scheme(), "http" | "https") {
                return Err(EnvError::Database(format!(
                    "{what}: a URL must be http:// or https://, not {}:",
                    base.scheme()
                )));
            }
            let auth = (!base.username().is_empty()).then(|| {
                let pass = base.password().unwrap_or_default().to_owned();
                crate::secrets::register(&pass);
                (base.username().to_owned(), pass)
            });
            let _ = base.set_username("");
            let _ = base.set_password(None);
            urls.push(Endpoint { base, auth });
        }
        if urls.is_empty() {
            return Err(EnvError::Database(format!("{what} lists no URL")));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| EnvError::Database(format!("cannot set up HTTP: {e}")))?;
        Ok(Api { http, urls })
    }

    /// The API bases as messages show them.
    pub fn shown(&self) -> String {
        self.urls
            .iter()
            .map(Endpoint::shown)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `GET /cluster` from the first member that answers.
    pub async fn cluster(&self) -> Result<Topology, EnvError> {
        let raw: RawCluster = self.get_any("cluster").await?;
        let api_urls = raw
            .members
            .iter()
            .map(|m| (m.name.clone(), m.api_url.clone()))
            .collect();
        let members = raw
            .members
            .into_iter()
            .map(|m| MemberState {
                name: m.name,
                role: m.role,
                state: m.state,
                host: m.host,
                port: m.port,
                timeline: m.timeline,
                lag_bytes: m.lag.and_then(|l| l.as_u64()),
            })
            .collect();
        Ok(Topology { members, api_urls })
    }

    pub async fn config(&self) -> Result<serde_json::Map<String, serde_json::Value>, EnvError> {
        self.get_any("config").await
    }

    pub async fn status(&self) -> Result<Status, EnvError> {
        self.get_any("patroni").await
    }

    /// `GET /history`: `[timeline, lsn, reason, timestamp, new_leader]` per switch.
    pub async fn history(&self) -> Result<Vec<HistoryEntry>, EnvError> {
        let rows: Vec<Vec<serde_json::Value>> = self.get_any("history").await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(HistoryEntry {
                    timeline: r.first()?.as_u64()?,
                    lsn: r.get(1)?.as_u64()?,
                    reason: r.get(2)?.as_str()?.to_owned(),
                    at: r.get(3).and_then(|v| v.as_str()).map(str::to_owned),
                    new_leader: r.get(4).and_then(|v| v.as_str()).map(str::to_owned),
                })
            })
            .collect())
    }

    /// `POST /switchover`: Patroni answers once the switch is done (or refused).
    pub async fn switchover(
        &self,
        leader: &str,
        candidate: Option<&str>,
    ) -> Result<String, EnvError> {
        let mut body = serde_json::json!({ "leader": leader });
        if let Some(c) = candidate {
            body["candidate"] = c.into();
        }
        self.post_any("switchover", body).await
    }

    /// `GET /failsafe` of every listed member: the members each one's failsafe topology holds
    /// (empty where it holds none, as Patroni answers 502 before it wrote one).
    pub async fn failsafe_everywhere(&self) -> Vec<(String, Vec<String>)> {
        let mut seen = Vec::new();
        for e in &self.urls {
            let mut req = self.http.get(join(&e.base, "failsafe"));
            if let Some((u, p)) = &e.auth {
                req = req.basic_auth(u, Some(p));
            }
            let names = match req.send().await.and_then(|r| r.error_for_status()) {
                Ok(r) => r
                    .json::<std::collections::BTreeMap<String, serde_json::Value>>()
                    .await
                    .map(|m| m.into_keys().collect())
                    .unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            seen.push((e.shown(), names));
        }
        seen
    }

    /// `POST /failover` to `candidate`.
    pub async fn failover(&self, candidate: &str) -> Result<String, EnvError> {
        self.post_any("failover", serde_json::json!({ "candidate": candidate }))
            .await
    }

    async fn get_any<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, EnvError> {
        let mut last = None;
        for e in &self.urls {
            let url = join(&e.base, path);
            let mut req = self.http.get(url);
            if let Some((u, p)) = &e.auth {
                req = req.basic_auth(u, Some(p));
            }
            match req.send().await.and_then(|r| r.error_for_status()) {
                Ok(r) => match r.json::<T>().await {
                    Ok(v) => return Ok(v),
                    Err(err) => last = Some(format!("{}/{path}: {err}", e.shown())),
                },
                Err(err) => last = Some(format!("{}/{path}: {}", e.shown(), without_url(&err))),
            }
        }
        Err(EnvError::Unreachable {
            what: format!("Patroni's REST API ({})", self.shown()),
            reason: last.unwrap_or_default(),
        })
    }

    /// POSTs to the first member that answers at all; Patroni's refusal (4xx/5xx with its
    /// reason) is the error, as `patronictl` prints it.
    async fn post_any(&self, path: &str, body: serde_json::Value) -> Result<String, EnvError> {
        let mut last = None;
        for e in &self.urls {
            let mut req = self
                .http
                .post(join(&e.base, path))
                .timeout(Duration::from_secs(60))
                .json(&body);
            if let Some((u, p)) = &e.auth {
                req = req.basic_auth(u, Some(p));
            }
            match req.send().await {
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default().trim().to_owned();
                    if status.is_success() {
                        return Ok(text);
                    }
                    return Err(EnvError::Database(format!(
                        "Patroni refused the {path} ({status}): {text}"
                    )));
                }
                Err(err) => last = Some(format!("{}/{path}: {}", e.shown(), without_url(&err))),
            }
        }
        Err(EnvError::Unreachable {
            what: format!("Patroni's REST API ({})", self.shown()),
            reason: last.unwrap_or_default(),
        })
    }
}

fn join(base: &Url, path: &str) -> Url {
    let mut u = base.clone();
    let p = format!("{}/{path}", base.path().trim_end_matches('/'));
    u.set_path(&p);
    u
}

/// reqwest's message without the URL it repeats (the caller names the endpoint).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(&format!(" for url ({u})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s = format!("{s}: {inner}");
        source = inner.source();
    }
    s
}
