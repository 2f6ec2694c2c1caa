//! The gateway's circuit breaker. pacman starts pacxfer once per file, so a gateway that is
//! down or hung would cost its timeout on every one of a few hundred files. After the gateway
//! refuses, cannot be reached or does not answer in time, the breaker opens: later calls
//! within `[gateway] breaker` skip the gateway without trying. Any answer from the gateway
//! (even "not cached") closes it again; once the time is up the next call tries again.
//!
//! The state is one small file per gateway URL in the cache places (see `cache::Places`),
//! written atomically. With no writable place there is no breaker: every call tries the
//! gateway, which is correct, only slower when it is down.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cache::Places;

/// The breaker of one gateway.
#[derive(Debug, Clone)]
pub struct Breaker {
    places: Places,
    name: String,
    open_for: Duration,
}

/// What the breaker says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The gateway is tried.
    Closed,
    /// The gateway is skipped for `left` more, because of `reason`.
    Open { left: Duration, reason: String },
}

const TAG: &str = "pacxfer-breaker-1";

impl Breaker {
    /// The breaker of `gateway_url`; `open_for` 0 turns it off.
    pub fn new(places: Places, gateway_url: &str, open_for: Duration) -> Breaker {
        Breaker {
            name: Places::name_for("gateway", gateway_url.as_bytes(), "state"),
            places,
            open_for,
        }
    }

    /// Reads the state. A missing, unreadable or foreign file means closed.
    pub fn state(&self) -> State {
        if self.open_for.is_zero() {
            return State::Closed;
        }
        let now = unix_now();
        for dir in self.places.trusted() {
            let Ok(Some(bytes)) = dir.read(&self.name, 4096) else {
                continue;
            };
            let Ok(text) = String::from_utf8(bytes) else {
                continue;
            };
            let mut parts = text.trim_end().splitn(3, ' ');
            let (Some(TAG), Some(until), reason) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(until) = until.parse::<u64>() else {
                continue;
            };
            // A state set further ahead than the breaker could have is not believed.
            let longest = now.saturating_add(self.open_for.as_millis() as u64);
            if until > now && until <= longest {
                return State::Open {
                    left: Duration::from_millis(until - now),
                    reason: reason.unwrap_or("").to_string(),
                };
            }
        }
        State::Closed
    }

    /// Opens the breaker because of `reason`.
    pub fn trip(&self, reason: &str) {
        if self.open_for.is_zero() {
            return;
        }
        let until = unix_now().saturating_add(self.open_for.as_millis() as u64);
        let reason: String = crate::ui::shown::redact(reason)
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect();
        let text = format!("{TAG} {until} {reason}\n");
        self.places.write_first(&self.name, text.as_bytes());
    }

    /// Closes the breaker (after the gateway answered).
    pub fn reset(&self) {
        self.places.remove_everywhere(&self.name);
    }
}

/// Milliseconds since the epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(dir: &std::path::Path, open_for: u64) -> Breaker {
        Breaker::new(
            Places::new(Some(dir)),
            "http://127.0.0.1:8080",
            Duration::from_secs(open_for),
        )
    }

    #[test]
    fn trips_and_resets() {
        let d = tempfile::tempdir().expect("tmp");
        let b = breaker(d.path(), 120);
        assert_eq!(b.state(), State::Closed);
        b.trip("cannot connect: Connection refused");
        match b.state() {
            State::Open { left, reason } => {
                assert!(left <= Duration::from_secs(120) && left > Duration::from_secs(100));
                assert_eq!(reason, "cannot connect: Connection refused");
            }
            State::Closed => panic!("not open"),
        }
        b.reset();
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn off_and_unwritable_mean_always_closed() {
        let d = tempfile::tempdir().expect("tmp");
        let off = breaker(d.path(), 0);
        off.trip("x");
        assert_eq!(off.state(), State::Closed);
        let blocked = d.path().join("file");
        std::fs::write(&blocked, b"").expect("write");
        let nowhere = breaker(&blocked.join("sub"), 120);
        nowhere.trip("x");
        assert_eq!(nowhere.state(), State::Closed);
    }

    #[test]
    fn foreign_or_far_future_state_is_ignored() {
        let d = tempfile::tempdir().expect("tmp");
        let b = breaker(d.path(), 120);
        let file = d.path().join(&b.name);
        std::fs::write(&file, "garbage").expect("write");
        assert_eq!(b.state(), State::Closed);
        let far = unix_now() + 86_400_000;
        std::fs::write(&file, format!("{TAG} {far} forever")).expect("write");
        assert_eq!(b.state(), State::Closed);
        // Another gateway URL has its own state.
        b.trip("down");
        let other = Breaker::new(
            Places::new(Some(d.path())),
            "http://10.0.0.2:8080",
            Duration::from_secs(120),
        );
        assert_eq!(other.state(), State::Closed);
    }
}
