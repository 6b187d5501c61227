//! The `wasi.network` option: which addresses a guest may connect to or bind through
//! `wasi:sockets`, and which names it may look up.
//!
//! Off by default (wasmtime-wasi's own default: every address refused, no name lookup).
//! `Any` is the host's whole network. `Allow` lists `host:port` rules: `host` is an IP address
//! (`[...]` for IPv6), a name, or `*`; `port` a number or `*`. A name in a rule allows the
//! addresses it resolves to when the guest uses them (looked up then, by the host), and the
//! guest may look up only names that a rule names (or any name, under a `*` host).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// What a guest may reach over the network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkPolicy {
    #[default]
    Off,
    Any,
    Allow(Vec<NetworkRule>),
}

/// One `host:port` rule of an allow list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRule {
    host: RuleHost,
    /// `None` for `*`.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RuleHost {
    Any,
    Ip(IpAddr),
    /// Lowercase, without a trailing dot.
    Name(String),
}

impl NetworkRule {
    /// Parses `host:port`; the error says what is wrong with it.
    pub fn parse(rule: &str) -> Result<Self, String> {
        let (host, port) = rule
            .rsplit_once(':')
            .ok_or_else(|| "a rule is \"host:port\" (the port may be *)".to_owned())?;
        let port = match port {
            "*" => None,
            digits => Some(
                digits
                    .parse::<u16>()
                    .map_err(|_| format!("the port {digits:?} is not * or a number from 0 to 65535"))?,
            ),
        };
        let host = if host == "*" {
            RuleHost::Any
        } else if let Some(inner) = host.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            RuleHost::Ip(
                inner
                    .parse::<IpAddr>()
                    .map_err(|_| format!("{inner:?} is not an IPv6 address"))?,
            )
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            RuleHost::Ip(ip)
        } else if is_host_name(host) {
            RuleHost::Name(normalize_name(host))
        } else {
            return Err(format!(
                "{host:?} is not an IP address, a host name or * (an IPv6 address goes in brackets: \"[::1]:80\")"
            ));
        };
        Ok(Self { host, port })
    }

    fn allows_port(&self, port: u16) -> bool {
        self.port.is_none_or(|allowed| allowed == port)
    }
}

impl NetworkPolicy {
    /// Whether the guest may connect to or bind `address`. Names in rules are looked up now.
    pub fn allows_address(&self, address: SocketAddr) -> bool {
        let ip = address.ip().to_canonical();
        match self {
            Self::Off => false,
            Self::Any => true,
            Self::Allow(rules) => rules.iter().any(|rule| {
                rule.allows_port(address.port())
                    && match &rule.host {
                        RuleHost::Any => true,
                        RuleHost::Ip(allowed) => allowed.to_canonical() == ip,
                        RuleHost::Name(name) => (name.as_str(), 0)
                            .to_socket_addrs()
                            .is_ok_and(|mut resolved| resolved.any(|found| found.ip().to_canonical() == ip)),
                    }
            }),
        }
    }

    /// Whether the guest may look `name` up.
    pub fn allows_lookup(&self, name: &str) -> bool {
        match self {
            Self::Off => false,
            Self::Any => true,
            Self::Allow(rules) => {
                let literal = name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .ok()
                    .map(|ip| ip.to_canonical());
                let name = normalize_name(name);
                rules.iter().any(|rule| match (&rule.host, literal) {
                    (RuleHost::Any, _) => true,
                    (RuleHost::Ip(allowed), Some(ip)) => allowed.to_canonical() == ip,
                    (RuleHost::Name(allowed), None) => *allowed == name,
                    _ => false,
                })
            }
        }
    }

    /// Whether name lookup is on at all.
    pub fn may_look_up(&self) -> bool {
        match self {
            Self::Off => false,
            Self::Any => true,
            Self::Allow(rules) => !rules.is_empty(),
        }
    }
}

fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}
