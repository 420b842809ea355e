//! The connection strings firedrill reads from the environment: parsed without ever echoing
//! them (they may hold a password), registered as secrets, and for AWS targets filled in from
//! what AWS says about an instance, so that one scenario reaches every instance of a fleet.
//!
//! A DSN may name `{host}`, `{port}` (the instance's endpoint), `{instance}` (its identifier)
//! and, for a restored instance, `{source}` (the instance it was restored from), e.g.
//! `host={host} port={port} dbname={instance} user=drill sslmode=require`.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::Config;

use crate::error::EnvError;

/// The placeholders a DSN may hold, in the order the help text lists them.
pub const PLACEHOLDERS: [&str; 4] = ["host", "port", "instance", "source"];

/// A DSN as read from its environment variable, before placeholders are filled.
#[derive(Clone)]
pub struct Template {
    env: String,
    raw: String,
}

// Never the DSN itself: it may hold a password.
impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Template(${})", self.env)
    }
}

impl Template {
    pub fn read(env: &str) -> Result<Template, EnvError> {
        let raw = std::env::var(env).map_err(|_| EnvError::MissingDsn {
            name: env.to_owned(),
        })?;
        Ok(Template {
            env: env.to_owned(),
            raw,
        })
    }

    pub fn env(&self) -> &str {
        &self.env
    }

    /// Whether it names any placeholder (and so says where each instance of a fleet is).
    pub fn is_template(&self) -> bool {
        PLACEHOLDERS
            .iter()
            .any(|p| self.raw.contains(&format!("{{{p}}}")))
    }

    /// The DSN with `vars` filled in, parsed; and how to name it (hosts, never the DSN). A
    /// placeholder without a value here is an error naming it, never a DSN with braces in it.
    pub fn fill(&self, vars: &[(&str, &str)]) -> Result<(Config, String), EnvError> {
        let mut dsn = self.raw.clone();
        for (k, v) in vars {
            dsn = dsn.replace(&format!("{{{k}}}"), v);
        }
        if let Some(p) = PLACEHOLDERS
            .iter()
            .find(|p| dsn.contains(&format!("{{{p}}}")))
        {
            let known: Vec<String> = vars.iter().map(|(k, _)| format!("{{{k}}}")).collect();
            return Err(EnvError::BadDsn {
                name: self.env.clone(),
                reason: format!(
                    "it names {{{p}}}, which is not known here ({})",
                    if known.is_empty() {
                        "placeholders are filled for `aws-rds` targets only".to_owned()
                    } else {
                        format!("known: {}", known.join(", "))
                    }
                ),
            });
        }
        // The parse error names the offending key, never the DSN.
        let mut config = Config::from_str(&dsn).map_err(|e| EnvError::BadDsn {
            name: self.env.clone(),
            reason: e.to_string(),
        })?;
        if let Some(p) = config.get_password() {
            crate::secrets::register(&String::from_utf8_lossy(p));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let via = format!("${} ({})", self.env, describe_hosts(&config));
        Ok((config, via))
    }

    /// [`Template::fill`] with `{host}` and `{port}` from an instance's endpoint, when it has
    /// one, besides `vars`.
    pub fn fill_at(
        &self,
        endpoint: Option<&(String, u16)>,
        vars: &[(&str, &str)],
    ) -> Result<(Config, String), EnvError> {
        let port = endpoint.map(|(_, p)| p.to_string());
        let mut all = vars.to_vec();
        if let (Some((host, _)), Some(port)) = (endpoint, &port) {
            all.extend([("host", host.as_str()), ("port", port.as_str())]);
        }
        self.fill(&all)
    }
}

/// The DSN in environment variable `name`, which must not name placeholders.
pub(crate) fn dsn_config(name: &str) -> Result<(Config, String), EnvError> {
    Template::read(name)?.fill(&[])
}

/// `source` with another endpoint as host and port: same user, same password (a restore keeps
/// the master credentials), same database.
pub(crate) fn at_endpoint(source: &Config, host: &str, port: u16) -> Config {
    let mut c = Config::new();
    c.host(host).port(port);
    if let Some(u) = source.get_user() {
        c.user(u);
    }
    if let Some(p) = source.get_password() {
        c.password(p);
    }
    if let Some(db) = source.get_dbname() {
        c.dbname(db);
    }
    c.ssl_mode(source.get_ssl_mode());
    c.connect_timeout(Duration::from_secs(5));
    c
}

/// Hosts and ports of a DSN, to name it in messages and lock keys.
pub(crate) fn describe_hosts(config: &Config) -> String {
    let ports = config.get_ports();
    config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(raw: &str) -> Template {
        Template {
            env: "APP_DSN".into(),
            raw: raw.into(),
        }
    }

    #[test]
    fn placeholders_are_filled_from_the_instance() {
        let tpl = t("host={host} port={port} dbname={instance} user=drill password=s3cret");
        assert!(tpl.is_template());
        let (c, via) = tpl
            .fill(&[
                ("host", "orders-1.abc.eu-west-1.rds.amazonaws.com"),
                ("port", "6432"),
                ("instance", "orders-1"),
            ])
            .unwrap();
        assert_eq!(c.get_ports(), [6432]);
        assert_eq!(c.get_dbname(), Some("orders-1"));
        assert_eq!(
            via,
            "$APP_DSN (orders-1.abc.eu-west-1.rds.amazonaws.com:6432)"
        );
        assert!(!format!("{tpl:?}").contains("s3cret"));
    }

    #[test]
    fn a_placeholder_without_a_value_is_named_and_the_dsn_is_not() {
        let e = t("host={host} password=s3cret").fill(&[]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("APP_DSN") && msg.contains("{host}"), "{msg}");
        assert!(msg.contains("`aws-rds` targets only"), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
        let e = t("host={host} dbname={source}")
            .fill(&[("host", "h"), ("port", "1")])
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("{source}, which is not known here (known: {host}, {port})"),
            "{e}"
        );
    }

    #[test]
    fn a_plain_dsn_is_not_a_template() {
        assert!(!t("host=db.internal port=5432 dbname=app").is_template());
    }
}
