//! Opening a connection from a URL without ever showing the URL.

use tokio_postgres::Client;
use tokio_postgres::config::Host;

/// Where a connection goes, as it may be shown: never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address (or the socket folder).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// User name.
    pub user: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }
}

impl Target {
    /// The target of a connection URL (`postgres://user:password@host:port/database`) or
    /// key-value string, or why it cannot be read. The reason never quotes the URL.
    pub fn of(url: &str) -> Result<(tokio_postgres::Config, Target), String> {
        // `postgres://user:pa@ss@host/db`: the parser takes what follows the first `@` as the
        // host, so the rest of the password would be shown as one.
        if let Some(rest) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        {
            let authority = rest.split(['/', '?']).next().unwrap_or(rest);
            if authority.matches('@').count() > 1 {
                return Err(
                    "the connection URL is not valid: it has more than one `@` before \
                            the host (write an `@` in the user name or password as %40)"
                        .into(),
                );
            }
        }
        let config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            // The parser's messages name the offending part ("invalid port"), not the URL.
            format!("the connection URL is not valid: {e}")
        })?;
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_string(),
        };
        let target = Target {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            database: config
                .get_dbname()
                .or(config.get_user())
                .unwrap_or("postgres")
                .to_string(),
            user: config.get_user().unwrap_or("postgres").to_string(),
        };
        Ok((config, target))
    }
}

/// Connect to `url`. The connection is driven on the current tokio runtime and closes when the
/// client is dropped. Errors are messages fit to show: they name the target, never the URL.
pub async fn connect(url: &str) -> Result<(Client, Target), String> {
    try_connect(url).await.map_err(|refusal| refusal.message)
}

/// Why a connection could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Whether a server answered (and refused: a wrong password, an unknown database), as
    /// opposed to none being reachable (no route, nothing listening, an unknown host).
    pub answered: bool,
    /// What went wrong, fit to show.
    pub message: String,
}

/// [`connect`], telling a server that refused from one that could not be reached.
pub async fn try_connect(url: &str) -> Result<(Client, Target), Refusal> {
    let (config, target) = Target::of(url).map_err(|message| Refusal {
        answered: false,
        message,
    })?;
    let (client, connection) =
        config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| Refusal {
                answered: e.as_db_error().is_some(),
                message: describe(&e),
            })?;
    tokio::spawn(async move {
        // A dropped connection surfaces as an error of the query that needed it.
        let _ = connection.await;
    });
    Ok((client, target))
}

/// A Postgres error in words: the server's own message (`password authentication failed for
/// user "x"`, `relation "y" does not exist`) when there is one, else the client's.
pub fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_string();
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            text
        }
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                let words = cause.to_string();
                if !text.contains(&words) {
                    text.push_str(&format!(": {words}"));
                }
                source = cause.source();
            }
            text
        }
    }
}

/// Begin a read-only transaction on one snapshot, in UTC, returning the snapshot
/// (`pg_current_snapshot()` needs PostgreSQL 13 or later).
pub async fn begin_snapshot(client: &Client) -> Result<String, tokio_postgres::Error> {
    client
        .batch_execute("SET TIME ZONE 'UTC'; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    Ok(client
        .query_one("SELECT pg_current_snapshot()::text", &[])
        .await?
        .get(0))
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn a_target_shows_host_port_database_and_user_but_never_the_password() {
        let (_, target) = Target::of("postgres://crm:s3cret@db.internal:6543/sales").unwrap();
        assert_eq!(target.to_string(), "crm@db.internal:6543/sales");
        assert!(!format!("{target:?}").contains("s3cret"));
        let (_, defaults) = Target::of("postgres://crm@db.internal").unwrap();
        assert_eq!(defaults.port, 5432);
        assert_eq!(defaults.database, "crm");
    }

    #[test]
    fn a_password_with_a_raw_at_sign_is_refused_without_showing_its_tail() {
        let error = Target::of("postgres://crm:Hunt@erSecretTail@db.internal/sales").unwrap_err();
        assert!(!error.contains("SecretTail"), "{error}");
        assert!(error.contains("%40"), "{error}");
    }

    #[test]
    fn an_invalid_url_is_refused_without_quoting_it() {
        let error = Target::of("postgres://crm:s3cret@db.internal:notaport/sales").unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
        assert!(error.contains("not valid"), "{error}");
    }
}
