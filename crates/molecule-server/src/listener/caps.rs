//! Connection caps: how many client connections are open, in total and per
//! client address, and the permit each open connection holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::metrics::Metrics;

/// Open connections of every listener of one server.
pub struct Caps {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<Open>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was refused (the metric's `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Total,
    PerIp,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Total => "total",
            Refusal::PerIp => "per_ip",
        }
    }
}

/// One open connection's place under the caps, given back when dropped.
pub struct Permit {
    caps: Arc<Caps>,
    ip: IpAddr,
}

impl Caps {
    pub fn new(max_total: usize, max_per_ip: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            open: Mutex::default(),
            metrics,
        })
    }

    /// A permit for a new connection from `ip`, or why there is none.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let verdict = self.take(ip);
        match verdict {
            Ok(()) => {
                self.metrics.connection_opened();
                Ok(Permit {
                    caps: self.clone(),
                    ip,
                })
            }
            Err(refusal) => {
                self.metrics.inc(
                    "molecule_http_connections_refused_total",
                    &[("reason", refusal.as_str())],
                );
                Err(refusal)
            }
        }
    }

    fn take(&self, ip: IpAddr) -> Result<(), Refusal> {
        // A poisoned lock means a panic while counting; refusing everything
        // from then on would take the platform down, so count afresh.
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.max_total {
            return Err(Refusal::Total);
        }
        let mine = open.per_ip.entry(ip).or_insert(0);
        if *mine >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *mine += 1;
        open.total += 1;
        Ok(())
    }

    fn give_back(&self, ip: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_ip.remove(&ip);
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.caps.give_back(self.ip);
        self.caps.metrics.connection_closed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_address_and_in_total_and_permits_give_back() {
        let caps = Caps::new(3, 2, Arc::default());
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let a1 = caps.admit(a).unwrap();
        let _a2 = caps.admit(a).unwrap();
        assert_eq!(caps.admit(a).err(), Some(Refusal::PerIp));
        let _b1 = caps.admit(b).unwrap();
        assert_eq!(caps.admit(b).err(), Some(Refusal::Total));
        drop(a1);
        assert!(caps.admit(b).is_ok(), "a dropped permit frees its slot");
        assert!(
            caps.open.lock().unwrap().per_ip.len() <= 2,
            "no entry outlives its last connection"
        );
    }
}
