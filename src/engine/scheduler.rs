//! The address of an Apache Ballista scheduler, as `--engine ballista://HOST:PORT` gives it.

/// Where a Ballista scheduler listens, from `ballista://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduler {
    /// Host name or address.
    pub host: String,
    /// gRPC port (Ballista's default is 50050).
    pub port: u16,
}

impl Scheduler {
    /// Ballista's default scheduler port.
    pub const DEFAULT_PORT: u16 = 50050;

    /// Parse `ballista://HOST[:PORT]`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let rest = text
            .strip_prefix("ballista://")
            .ok_or_else(|| format!("`{text}` is not `ballista://HOST:PORT`"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .map_err(|_| format!("`{port}` in `{text}` is not a port number"))?,
            ),
            None => (rest, Self::DEFAULT_PORT),
        };
        if host.is_empty() || host.contains(['/', '@', '?', '#']) {
            return Err(format!(
                "`{text}` names no host: write `ballista://HOST:PORT`"
            ));
        }
        Ok(Scheduler {
            host: host.to_string(),
            port,
        })
    }

    /// Whether the scheduler is on this machine, so that its executors (started beside it) see
    /// the paths this process sees.
    pub fn is_loopback(&self) -> bool {
        matches!(
            self.host.as_str(),
            "localhost" | "127.0.0.1" | "::1" | "[::1]"
        )
    }
}

impl std::fmt::Display for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ballista://{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_addresses() {
        let parsed = Scheduler::parse("ballista://127.0.0.1:50050").unwrap();
        assert_eq!(parsed.host, "127.0.0.1");
        assert_eq!(parsed.port, 50050);
        assert!(parsed.is_loopback());
        let default = Scheduler::parse("ballista://sched.internal").unwrap();
        assert_eq!(default.port, Scheduler::DEFAULT_PORT);
        assert!(!default.is_loopback());
        assert!(Scheduler::parse("ballista://").is_err());
        assert!(Scheduler::parse("ballista://host:port").is_err());
        assert!(Scheduler::parse("df://host:1").is_err());
        assert!(Scheduler::parse("ballista://user@host:1").is_err());
    }
}
