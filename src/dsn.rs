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
        let mut config =
            parse(&dsn, &|k| std::env::var(k).ok()).map_err(|reason| EnvError::BadDsn {
                name: self.env.clone(),
                reason,
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

/// A DSN as libpq reads it: `target_session_attrs=primary` means `read-write` (as in libpq 14
/// and later), and what the DSN leaves out comes from libpq's environment variables
/// (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`, `PGPASSFILE` or `~/.pgpass`,
/// `PGCONNECT_TIMEOUT`, `PGTARGETSESSIONATTRS`), the user at last from the operating system's
/// (`USER`). An error names the key, never the DSN.
fn parse(dsn: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
    let dsn = primary_is_read_write(dsn);
    let mut c = Config::from_str(&dsn).map_err(|e| {
        // tokio-postgres's messages name the option; a URL's say only that it is invalid.
        let key = KEYS.iter().find(|k| {
            e.to_string().contains(&format!("`{k}`"))
                || dsn.contains(&format!("{k}=")) && !valid(&dsn, k)
        });
        match key {
            Some(k) => format!("`{k}`: {e}"),
            None => e.to_string(),
        }
    })?;
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    if c.get_hosts().is_empty()
        && let Some(hosts) = var("PGHOST")
    {
        for h in hosts.split(',') {
            if h.starts_with('/') {
                c.host_path(h);
            } else {
                c.host(h);
            }
        }
    }
    if c.get_ports().is_empty()
        && let Some(ports) = var("PGPORT")
    {
        for p in ports.split(',') {
            c.port(
                p.trim()
                    .parse()
                    .map_err(|_| format!("PGPORT: bad port {p:?}"))?,
            );
        }
    }
    if c.get_user().is_none()
        && let Some(u) = var("PGUSER").or_else(|| var("USER"))
    {
        c.user(&u);
    }
    if c.get_dbname().is_none()
        && let Some(d) = var("PGDATABASE")
    {
        c.dbname(&d);
    }
    if c.get_connect_timeout().is_none()
        && let Some(t) = var("PGCONNECT_TIMEOUT")
    {
        let secs: u64 = t
            .trim()
            .parse()
            .map_err(|_| format!("PGCONNECT_TIMEOUT: not a number of seconds: {t:?}"))?;
        c.connect_timeout(Duration::from_secs(secs.max(2)));
    }
    if !dsn.contains("target_session_attrs")
        && let Some(t) = var("PGTARGETSESSIONATTRS")
    {
        c.target_session_attrs(match t.as_str() {
            "read-write" | "primary" => tokio_postgres::config::TargetSessionAttrs::ReadWrite,
            "any" => tokio_postgres::config::TargetSessionAttrs::Any,
            other => return Err(format!("PGTARGETSESSIONATTRS: {other:?} is not supported")),
        });
    }
    if c.get_password().is_none() {
        if let Some(p) = var("PGPASSWORD") {
            c.password(p);
        } else if let Some(p) = from_pgpass(&c, env) {
            c.password(p);
        }
    }
    Ok(c)
}

/// The DSN keys a parse error is checked against, to name the one at fault.
const KEYS: [&str; 9] = [
    "target_session_attrs",
    "sslmode",
    "port",
    "host",
    "hostaddr",
    "connect_timeout",
    "keepalives",
    "channel_binding",
    "load_balance_hosts",
];

/// Whether `key=value` in `dsn` parses on its own.
fn valid(dsn: &str, key: &str) -> bool {
    dsn.split(['&', ' ', '?'])
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == key)
        .all(|(k, v)| Config::from_str(&format!("{k}={v}")).is_ok())
}

fn primary_is_read_write(dsn: &str) -> String {
    dsn.replace(
        "target_session_attrs=primary",
        "target_session_attrs=read-write",
    )
}

/// The password `~/.pgpass` (or `$PGPASSFILE`) holds for the first host, port, database and
/// user, as libpq looks it up: the first matching line, `*` matching anything, `\:` a colon.
/// A file others can read is ignored, as libpq does.
fn from_pgpass(c: &Config, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = env("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| env("HOME").map(|h| std::path::Path::new(&h).join(".pgpass")))?;
    if std::fs::metadata(&path).ok()?.permissions().mode() & 0o077 != 0 {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let host = match c.get_hosts().first()? {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(_) => "localhost".into(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432).to_string();
    let user = c.get_user()?.to_owned();
    let db = c.get_dbname().unwrap_or(&user).to_owned();
    let wanted = [host, port, db, user];
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let fields = pgpass_fields(line);
            (fields.len() == 5
                && fields[..4]
                    .iter()
                    .zip(&wanted)
                    .all(|(f, w)| f == "*" || f == w))
            .then(|| fields[4].clone())
        })
}

/// A `.pgpass` line's fields: `:` separates, `\` escapes the next character.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => fields.last_mut().unwrap().extend(chars.next()),
            ':' => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
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

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn what_the_dsn_leaves_out_comes_from_libpq_s_variables() {
        let e = [
            ("PGHOST", "db1,db2"),
            ("PGPORT", "5433,5434"),
            ("PGUSER", "drill"),
            ("PGDATABASE", "app"),
            ("PGPASSWORD", "s3cret"),
            ("PGCONNECT_TIMEOUT", "7"),
            ("PGTARGETSESSIONATTRS", "primary"),
            ("USER", "root"),
        ];
        let c = parse("", &env(&e)).unwrap();
        assert_eq!(describe_hosts(&c), "db1:5433, db2:5434");
        assert_eq!(c.get_user(), Some("drill"));
        assert_eq!(c.get_dbname(), Some("app"));
        assert_eq!(c.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(7)));
        assert_eq!(
            c.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
        // What the DSN says wins.
        let c = parse("host=h user=u dbname=d target_session_attrs=any", &env(&e)).unwrap();
        assert_eq!(describe_hosts(&c), "h:5433");
        assert_eq!((c.get_user(), c.get_dbname()), (Some("u"), Some("d")));
        assert_eq!(
            c.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::Any
        );
        // Without PGUSER, the operating system's user, as libpq.
        let c = parse("host=h", &env(&[("USER", "root")])).unwrap();
        assert_eq!(c.get_user(), Some("root"));
    }

    #[test]
    fn target_session_attrs_primary_is_read_write_and_a_bad_value_names_its_key() {
        let c = parse("host=h user=u target_session_attrs=primary", &env(&[])).unwrap();
        assert_eq!(
            c.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
        let c = parse(
            "postgresql://u@h/app?target_session_attrs=primary",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(
            c.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
        let e = parse(
            "host=h user=u target_session_attrs=prefer-standby",
            &env(&[]),
        )
        .unwrap_err();
        assert!(e.starts_with("`target_session_attrs`"), "{e}");
    }

    #[test]
    fn a_pgpass_line_supplies_the_password_as_libpq_matches_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:drill:wrong\ndb1:*:app:drill:pa\\:ss\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = file.to_str().unwrap();
        let e = [("PGPASSFILE", path)];
        let c = parse("host=db1 port=6432 user=drill dbname=app", &env(&e)).unwrap();
        assert_eq!(c.get_password(), Some(&b"pa:ss"[..]));
        let c = parse("host=db9 user=x", &env(&e)).unwrap();
        assert_eq!(c.get_password(), Some(&b"fallback"[..]));
        // Readable by others: ignored, as libpq does.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = parse("host=db1 user=drill dbname=app", &env(&e)).unwrap();
        assert_eq!(c.get_password(), None);
    }

    #[test]
    fn a_plain_dsn_is_not_a_template() {
        assert!(!t("host=db.internal port=5432 dbname=app").is_template());
    }
}
