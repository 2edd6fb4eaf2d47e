//! Reaching an endpoint by a name, and the endpoint override for tests and demos (like
//! curl's `--resolve`): `PGSTEWARD_ENDPOINT_OVERRIDE=<host>=<ip>:<port>[/<tls-name>][,…]`.
//!
//! An overridden host is connected to at `<ip>:<port>`; TLS still verifies the server's
//! certificate, against `<tls-name>` when given, else against `<host>` itself. An emulated
//! RDS instance's endpoint (`x.….rds.amazonaws.com`) has no server behind it: the override
//! sends its SQL to a local PostgreSQL whose certificate names `localhost`, so the tests say
//! `…rds.amazonaws.com=127.0.0.1:5432/localhost`. Verification is never turned off.

use std::net::IpAddr;

use tokio_postgres::Config as PgConfig;

use crate::error::{Error, Result};

pub const OVERRIDE_VAR: &str = "PGSTEWARD_ENDPOINT_OVERRIDE";
const EXAMPLE: &str = "orders-restore.abc123.us-east-1.rds.amazonaws.com=127.0.0.1:5432/localhost";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub host: String,
    pub addr: IpAddr,
    pub port: u16,
    /// The name the certificate is verified against.
    pub tls_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointOverride(pub Vec<Mapping>);

impl EndpointOverride {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |entry: &str, why: &str| {
            Error::InvalidConfig(format!(
                "{OVERRIDE_VAR} entry '{entry}' {why}; expected <host>=<ip>:<port>[/<tls-name>], e.g. {OVERRIDE_VAR}={EXAMPLE}"
            ))
        };
        let mut out = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (host, rest) = entry
                .split_once('=')
                .ok_or_else(|| bad(entry, "has no '='"))?;
            let (addr_port, tls_name) = match rest.split_once('/') {
                Some((a, n)) => (a, n.trim()),
                None => (rest, host.trim()),
            };
            let (addr, port) = addr_port
                .rsplit_once(':')
                .ok_or_else(|| bad(entry, "has no port"))?;
            let addr: IpAddr = addr
                .trim_matches(|c| c == '[' || c == ']')
                .parse()
                .map_err(|_| bad(entry, "does not map to an IP address"))?;
            let port: u16 = port.parse().map_err(|_| bad(entry, "has a bad port"))?;
            let host = host.trim().to_ascii_lowercase();
            if host.is_empty() || tls_name.is_empty() {
                return Err(bad(entry, "has an empty host or tls name"));
            }
            out.push(Mapping {
                host,
                addr,
                port,
                tls_name: tls_name.to_string(),
            });
        }
        Ok(EndpointOverride(out))
    }

    pub fn find(&self, host: &str) -> Option<&Mapping> {
        let host = host.to_ascii_lowercase();
        self.0.iter().find(|m| m.host == host)
    }
}

/// A copy of `base` (user, password, database, timeouts) aimed at `host:port`, through the
/// override when it maps `host`.
pub fn aim(base: &PgConfig, host: &str, port: u16, over: &EndpointOverride) -> PgConfig {
    let mut c = PgConfig::new();
    if let Some(u) = base.get_user() {
        c.user(u);
    }
    if let Some(p) = base.get_password() {
        c.password(p);
    }
    if let Some(d) = base.get_dbname() {
        c.dbname(d);
    }
    if let Some(a) = base.get_application_name() {
        c.application_name(a);
    }
    if let Some(t) = base.get_connect_timeout() {
        c.connect_timeout(*t);
    }
    match over.find(host) {
        Some(m) => {
            c.host(&m.tls_name).hostaddr(m.addr).port(m.port);
        }
        None => {
            c.host(host).port(port);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mappings_and_names_bad_entries() {
        let o = EndpointOverride::parse("A.rds.amazonaws.com=127.0.0.1:5433/localhost, b=::1:6000")
            .unwrap();
        assert_eq!(o.0.len(), 2);
        let a = o.find("a.RDS.amazonaws.com").unwrap();
        assert_eq!((a.port, a.tls_name.as_str()), (5433, "localhost"));
        assert_eq!(o.find("b").unwrap().tls_name, "b");
        for bad in ["x", "x=127.0.0.1", "x=localhost:5432", "x=127.0.0.1:port"] {
            let e = EndpointOverride::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("e.g."), "{e}");
        }
    }

    #[test]
    fn aims_at_the_mapped_address_and_keeps_the_credentials() {
        let mut base = PgConfig::new();
        base.user("u").password("pw").dbname("orders").host("old");
        let o = EndpointOverride::parse("new.rds.amazonaws.com=127.0.0.1:5433/localhost").unwrap();
        let c = aim(&base, "new.rds.amazonaws.com", 5432, &o);
        assert_eq!(c.get_hostaddrs(), &["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.get_ports(), &[5433]);
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
        let c = aim(&base, "other", 6000, &o);
        assert!(c.get_hostaddrs().is_empty());
        assert_eq!(c.get_ports(), &[6000]);
    }
}
