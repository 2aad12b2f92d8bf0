//! The outbound policy: which addresses the platform may dial for a URL
//! that someone else chose (an agent's registration, the `url` of
//! `POST /workspaces`). Such a URL is a request to connect somewhere on the
//! platform's behalf, from inside its network, so it may only lead where
//! the policy allows:
//!
//! - always refused: the platform's own listeners (the API and the
//!   container gateway listener), so the proxy never calls itself;
//! - refused unless the operator allow-lists them (`MOLECULE_OUTBOUND_ALLOW`,
//!   a list of networks): in production loopback, link-local (cloud
//!   metadata included), unspecified, private (RFC 1918, shared 100.64/10,
//!   IPv6 unique-local and site-local), multicast and reserved addresses;
//!   in development only the link-local, metadata, unspecified, multicast
//!   and reserved ones (a development server is a developer's machine:
//!   agents run on 127.0.0.1 and the LAN, and every API caller is local);
//! - IPv4-mapped, IPv4-compatible and NAT64 IPv6 forms are judged as the
//!   IPv4 address they carry.
//!
//! The guard is [`CheckedConnector`] (`connector.rs`): it resolves the host
//! itself, judges every address the name resolves to, and connects only to
//! an allowed one, so a name that resolves elsewhere between registration
//! and the call (DNS rebinding) gains nothing. The URL checks at the API
//! edge ([`OutboundPolicy::check_registration_url`],
//! [`OutboundPolicy::check_workspace_url`]) only give a clear 400 early.
//!
//! Not here: URLs the provisioner set for runtimes it started (trusted,
//! `a2a::UrlOrigin::Provisioned`), TLS, connection pooling (`a2a/upstream.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use super::ListenAddrs;
use crate::config::Mode;

mod connector;
#[cfg(test)]
mod tests;

pub use connector::{CheckedConnector, Refused};

/// The variable that opens networks to supplied URLs.
pub const ALLOW_VAR: &str = "MOLECULE_OUTBOUND_ALLOW";

/// One network of the allow-list: `10.0.0.0/8`, `fd00::/8`, or a single
/// address (`127.0.0.1` = `127.0.0.1/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parse `address[/prefix]`. Host bits set under the prefix are refused
    /// (`10.1.2.3/8` is probably a typo for `10.0.0.0/8` or `10.1.2.3/32`).
    pub fn parse(raw: &str) -> Result<Network, String> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw, None),
        };
        let base: IpAddr = addr
            .parse()
            .map_err(|_| format!("{raw:?} is not an address or a network (a.b.c.d/n, x::/n)"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{raw:?}: the prefix must be 0-{max}")),
            },
        };
        let net = Network { base, prefix };
        if net.masked(base) != bits(base) {
            return Err(format!(
                "{raw:?} has host bits set under /{prefix}; write the network address"
            ));
        }
        Ok(net)
    }

    /// Parse a comma-separated list; every bad entry is reported.
    pub fn parse_list(raw: &str) -> Result<Vec<Network>, Vec<String>> {
        let (mut nets, mut problems) = (Vec::new(), Vec::new());
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match Network::parse(entry) {
                Ok(n) => nets.push(n),
                Err(p) => problems.push(format!("{ALLOW_VAR}: {p}")),
            }
        }
        if problems.is_empty() {
            Ok(nets)
        } else {
            Err(problems)
        }
    }

    /// Whether `ip` (in its [`canonical`] form) is in this network. An IPv4
    /// network matches IPv4 addresses and their IPv6-embedded forms.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.base.is_ipv4() && self.masked(ip) == bits(self.base)
    }

    fn masked(&self, ip: IpAddr) -> u128 {
        let width = if ip.is_ipv4() { 32 } else { 128 };
        let host_bits = width - u32::from(self.prefix);
        let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
        bits(ip) & mask
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address an IPv6 form stands for: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`) addresses
/// reach the IPv4 address they carry, so they are judged as it.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let embedded = Ipv4Addr::from(((u32::from(s[6])) << 16) | u32::from(s[7]));
    let compatible = s[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback();
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    if compatible || nat64 {
        IpAddr::V4(embedded)
    } else {
        ip
    }
}

/// The kinds of address the policy cares about; anything else is a public
/// unicast address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// A cloud instance-metadata service (169.254.169.254, Alibaba's
    /// 100.100.100.200, AWS's fd00:ec2::254): credentials live there.
    Metadata,
    /// 0.0.0.0/8 and `::`: connecting there reaches this host.
    Unspecified,
    Loopback,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (shared), fc00::/7,
    /// fec0::/10 (deprecated site-local).
    Private,
    /// Multicast, broadcast and reserved (240/4) addresses.
    NotUnicast,
}

impl std::fmt::Display for AddressClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddressClass::Metadata => "a cloud metadata address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Private => "a private address",
            AddressClass::NotUnicast => "not a unicast address",
        })
    }
}

const METADATA_V4: [Ipv4Addr; 2] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(100, 100, 100, 200),
];
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// The class of `ip` (judged in its [`canonical`] form), `None` for a
/// public unicast address.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    use AddressClass::*;
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if METADATA_V4.contains(&v4) {
                Some(Metadata)
            } else if a == 0 {
                Some(Unspecified)
            } else if v4.is_loopback() {
                Some(Loopback)
            } else if v4.is_link_local() {
                Some(LinkLocal)
            } else if v4.is_private() || (a == 100 && (b & 0xc0) == 64) {
                Some(Private)
            } else if a >= 224 {
                Some(NotUnicast)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6 == METADATA_V6 {
                Some(Metadata)
            } else if v6.is_unspecified() {
                Some(Unspecified)
            } else if v6.is_loopback() {
                Some(Loopback)
            } else if (first & 0xffc0) == 0xfe80 {
                Some(LinkLocal)
            } else if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfec0 {
                Some(Private)
            } else if (first & 0xff00) == 0xff00 {
                Some(NotUnicast)
            } else {
                None
            }
        }
    }
}

/// Every class: what production refuses, and what registration refuses in
/// an IP-literal host in either mode (the contract's rule: no loopback,
/// private or link-local literals).
const REFUSED_IN_PRODUCTION: &[AddressClass] = &[
    AddressClass::Metadata,
    AddressClass::Unspecified,
    AddressClass::Loopback,
    AddressClass::LinkLocal,
    AddressClass::Private,
    AddressClass::NotUnicast,
];

/// Development keeps loopback and private networks open (see the module
/// docs).
const REFUSED_IN_DEVELOPMENT: &[AddressClass] = &[
    AddressClass::Metadata,
    AddressClass::Unspecified,
    AddressClass::LinkLocal,
    AddressClass::NotUnicast,
];

/// Why an address may not be dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// One of the platform's own listeners.
    OwnListener,
    /// Its class is refused in this mode and no allow-listed network holds it.
    Class(AddressClass),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::OwnListener => f.write_str("one of the platform's own listeners"),
            Refusal::Class(c) => write!(f, "{c}, not in {ALLOW_VAR}"),
        }
    }
}

/// The policy of one server: its mode, the operator's allow-list and its
/// own listeners (known once they are bound). Cheap to clone.
#[derive(Clone)]
pub struct OutboundPolicy {
    mode: Mode,
    allow: Arc<[Network]>,
    listeners: Arc<Mutex<ListenAddrs>>,
}

impl OutboundPolicy {
    pub fn new(mode: Mode, allow: &[Network], listeners: Arc<Mutex<ListenAddrs>>) -> Self {
        OutboundPolicy {
            mode,
            allow: allow.into(),
            listeners,
        }
    }

    /// May a supplied URL lead to `addr`? The connect-time check.
    pub fn check(&self, addr: SocketAddr) -> Result<(), Refusal> {
        if self.is_own_listener(addr) {
            return Err(Refusal::OwnListener);
        }
        self.check_ip(addr.ip(), self.refused_classes())
    }

    /// `ip` is allow-listed, or its class is not one of `refused`.
    fn check_ip(&self, ip: IpAddr, refused: &[AddressClass]) -> Result<(), Refusal> {
        if self.allow.iter().any(|n| n.contains(ip)) {
            return Ok(());
        }
        match classify(ip) {
            Some(class) if refused.contains(&class) => Err(Refusal::Class(class)),
            _ => Ok(()),
        }
    }

    fn refused_classes(&self) -> &'static [AddressClass] {
        match self.mode {
            Mode::Production => REFUSED_IN_PRODUCTION,
            Mode::Development => REFUSED_IN_DEVELOPMENT,
        }
    }

    /// `addr` reaches the API listener or the gateway listener. A listener
    /// on an unspecified address answers on every local address.
    fn is_own_listener(&self, addr: SocketAddr) -> bool {
        // A poisoned lock: refuse rather than risk calling ourselves.
        let Ok(own) = self.listeners.lock().map(|l| l.clone()) else {
            return true;
        };
        let ip = canonical(addr.ip());
        [own.main, own.gateway].into_iter().flatten().any(|l| {
            let own_ip = canonical(l.ip());
            l.port() == addr.port()
                && (own_ip == ip
                    || ip.is_unspecified()
                    || (own_ip.is_unspecified() && is_local_address(ip)))
        })
    }

    /// The 400 check of `POST /registry/register`: scheme and host, an
    /// IP-literal host by the contract's rule (no loopback, private,
    /// link-local, … literal in either mode, unless allow-listed), and in
    /// production the names that always mean loopback (`localhost`,
    /// `*.localhost`). Other names are judged when they are dialled.
    pub fn check_registration_url(&self, raw: &str) -> Result<(), String> {
        self.check_url(raw, REFUSED_IN_PRODUCTION)
    }

    /// The 400 check of the `url` of `POST /workspaces` (an external
    /// agent's address given by an operator): as registration, but an
    /// IP-literal host is judged by this mode's classes (development takes
    /// `http://127.0.0.1:…`, as it always did).
    pub fn check_workspace_url(&self, raw: &str) -> Result<(), String> {
        self.check_url(raw, self.refused_classes())
    }

    fn check_url(&self, raw: &str, literal_refused: &[AddressClass]) -> Result<(), String> {
        let url = url::Url::parse(raw.trim()).map_err(|e| format!("invalid url: {e}"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err("url must use http or https".into());
        }
        let ip = match url.host() {
            None => return Err("url must have a host".into()),
            Some(url::Host::Domain(name)) => {
                let loopback = [
                    IpAddr::from(Ipv4Addr::LOCALHOST),
                    Ipv6Addr::LOCALHOST.into(),
                ];
                if self.mode == Mode::Production
                    && is_loopback_name(name)
                    && loopback
                        .iter()
                        .all(|ip| self.check_ip(*ip, literal_refused).is_err())
                {
                    return Err(format!(
                        "url host {name} is a loopback name, not in {ALLOW_VAR}"
                    ));
                }
                return Ok(());
            }
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        };
        self.check_ip(ip, literal_refused)
            .map_err(|refusal| format!("url host {ip} is {refusal}"))
    }
}

/// `localhost` and the `.localhost` domain always resolve to loopback
/// (RFC 6761), whatever DNS says.
fn is_loopback_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// `ip` is an address of this host: loopback, or one a socket can be bound
/// to (binding is local and immediate; nothing is sent).
fn is_local_address(ip: IpAddr) -> bool {
    ip.is_loopback() || std::net::UdpSocket::bind((ip, 0)).is_ok()
}
