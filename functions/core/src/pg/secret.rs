//! The RDS-format Secrets Manager secret: `host`, `port`, `username`, `password`, `dbname`.

use crate::error::{Error, Result};

/// The RDS-format secret. `dbname` defaults to `postgres` as RDS omits it for some engines.
#[derive(serde::Deserialize)]
struct RawSecret {
    host: Option<String>,
    port: Option<serde_json::Value>,
    username: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
}

pub struct DbSecret {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub dbname: String,
}

// Manual Debug: never print the password.
impl std::fmt::Debug for DbSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DbSecret({}@{}:{}/{})",
            self.username, self.host, self.port, self.dbname
        )
    }
}

impl DbSecret {
    pub fn parse(text: &str, arn: &str) -> Result<Self> {
        // Never echo serde's message: it can quote the secret's text.
        let raw: RawSecret = serde_json::from_str(text).map_err(|_| {
            Error::InvalidConfig(format!(
                "secret {arn} is not JSON in the RDS format; expected {{\"host\",\"port\",\"username\",\"password\",\"dbname\"}}"
            ))
        })?;
        let missing = |f: &str| {
            Error::InvalidConfig(format!(
                "secret {arn} has no '{f}' field; add it (RDS secret format)"
            ))
        };
        let port = match raw.port {
            None => 5432,
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| missing("port"))?,
            Some(serde_json::Value::String(s)) => s.parse().map_err(|_| missing("port"))?,
            Some(_) => return Err(missing("port")),
        };
        Ok(DbSecret {
            host: raw.host.ok_or_else(|| missing("host"))?,
            port,
            username: raw.username.ok_or_else(|| missing("username"))?,
            password: raw.password.ok_or_else(|| missing("password"))?,
            dbname: raw.dbname.unwrap_or_else(|| "postgres".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_secret_format() {
        let s = DbSecret::parse(
            r#"{"host":"h","port":"5433","username":"u","password":"p","engine":"postgres"}"#,
            "arn",
        )
        .unwrap();
        assert_eq!((s.port, s.dbname.as_str()), (5433, "postgres"));
        let e = DbSecret::parse(r#"{"host":"h","password":"hunter2"}"#, "arn:x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("username") && !e.contains("hunter2"), "{e}");
        let e = DbSecret::parse("password=hunter2", "arn:x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
