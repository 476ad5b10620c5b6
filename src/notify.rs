//! The systemd notify protocol (`sd_notify`): `READY=1` once the service runs, `WATCHDOG=1`
//! pings while its stages are alive, a one-line `STATUS=` and `STOPPING=1`.
//!
//! Input: `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket) and `$WATCHDOG_USEC` /
//! `$WATCHDOG_PID` as systemd sets them for `Type=notify` units with `WatchdogSec=`. Output:
//! datagrams on that socket. Without `$NOTIFY_SOCKET` nothing is sent. Sends never block (a
//! manager that does not read must not stall the supervising loop); failures are logged once and
//! otherwise ignored: the service never stops because its manager is not listening.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::warn;

/// Where to send notifications, and how often the manager expects a watchdog ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    /// Socket path, or `@name` for a Linux abstract socket.
    pub socket: String,
    /// The manager's watchdog timeout (`WatchdogSec=`), if it has one for this process.
    pub watchdog: Option<Duration>,
}

impl NotifyTarget {
    /// From the variables systemd sets; None outside a `Type=notify` unit.
    pub fn from_env() -> Option<NotifyTarget> {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty())?;
        let pid_matches = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && pid_matches)
            .map(Duration::from_micros);
        Some(NotifyTarget { socket, watchdog })
    }

    /// How often to ping: half the manager's timeout, as sd_watchdog_enabled(3) advises.
    pub fn ping_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }
}

/// A connection to the service manager's notify socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    warned: AtomicBool,
}

impl Notifier {
    /// Prepares to send to `target.socket`.
    pub fn new(target: &NotifyTarget) -> io::Result<Notifier> {
        let addr = match target.socket.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())?
            }
            None => SocketAddr::from_pathname(&target.socket)?,
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Notifier {
            socket,
            addr,
            warned: AtomicBool::new(false),
        })
    }

    /// Sends one notification (newline-separated `KEY=value` lines).
    pub fn send(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.addr)
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            warn!(error = %e, "Cannot notify the service manager.");
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// `WATCHDOG=1`: the stages are alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// `STATUS=` one line shown by `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// `STOPPING=1` as shutdown begins.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }
}

/// How often the status line is refreshed when nothing changes.
pub const STATUS_EVERY: Duration = Duration::from_secs(5);

/// The notifications of one service run: `READY=1` once, `WATCHDOG=1` every half watchdog
/// period while the caller says the stages are alive, `STATUS=` every [`STATUS_EVERY`] and at
/// once when the number of cameras up changes, `STOPPING=1` at the end. Does nothing without a
/// target.
#[derive(Debug)]
pub struct Heartbeat {
    notifier: Option<Notifier>,
    ping_every: Option<Duration>,
    next_ping: Instant,
    next_status: Instant,
    last_up: Option<usize>,
}

impl Heartbeat {
    /// Heartbeat to `target` (None: silent).
    pub fn new(target: Option<&NotifyTarget>) -> Heartbeat {
        let notifier = target.and_then(|t| {
            Notifier::new(t)
                .map_err(|e| warn!(socket = %t.socket, error = %e, "Cannot use the notify socket."))
                .ok()
        });
        let now = Instant::now();
        Heartbeat {
            notifier,
            ping_every: target.and_then(NotifyTarget::ping_interval),
            next_ping: now,
            next_status: now + STATUS_EVERY,
            last_up: None,
        }
    }

    /// `READY=1` with the first status line.
    pub fn ready(&self, status: &str) {
        if let Some(n) = &self.notifier {
            n.ready(status);
        }
    }

    /// Called by the supervising loop: pings if `alive` and due, refreshes the status if due or
    /// if `cameras_up` changed (`status` is only built when it is sent).
    pub fn tick(
        &mut self,
        now: Instant,
        alive: bool,
        cameras_up: usize,
        status: impl FnOnce() -> String,
    ) {
        let Some(n) = &self.notifier else {
            return;
        };
        if let Some(every) = self.ping_every
            && alive
            && now >= self.next_ping
        {
            n.watchdog();
            self.next_ping = now + every;
        }
        if now >= self.next_status || self.last_up != Some(cameras_up) {
            n.status(&status());
            self.next_status = now + STATUS_EVERY;
            self.last_up = Some(cameras_up);
        }
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) {
        if let Some(n) = &self.notifier {
            n.stopping();
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 1024];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let target = NotifyTarget {
            socket: path.display().to_string(),
            watchdog: Some(Duration::from_secs(30)),
        };
        assert_eq!(target.ping_interval(), Some(Duration::from_secs(15)));
        let n = Notifier::new(&target).unwrap();
        n.ready("cameras 2/2\nup");
        n.watchdog();
        n.status("a  b");
        n.stopping();
        assert_eq!(recv(&server), "READY=1\nSTATUS=cameras 2/2 up");
        assert_eq!(recv(&server), "WATCHDOG=1");
        assert_eq!(recv(&server), "STATUS=a b");
        assert_eq!(recv(&server), "STOPPING=1\nSTATUS=stopping");
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("storetrack-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::new(&NotifyTarget {
            socket: format!("@{name}"),
            watchdog: None,
        })
        .unwrap();
        n.watchdog();
        assert_eq!(recv(&server), "WATCHDOG=1");
    }

    #[test]
    fn a_manager_that_does_not_read_never_blocks_the_sender() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.sock");
        let _server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(&NotifyTarget {
            socket: path.display().to_string(),
            watchdog: None,
        })
        .unwrap();
        // Far more than a datagram socket queues (net.unix.max_dgram_qlen, 10 by default).
        for _ in 0..1000 {
            n.watchdog();
        }
    }

    #[test]
    fn heartbeat_pings_only_while_alive_and_reports_changes_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hb.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        server.set_nonblocking(true).unwrap();
        let target = NotifyTarget {
            socket: path.display().to_string(),
            watchdog: Some(Duration::from_secs(2)),
        };
        let mut hb = Heartbeat::new(Some(&target));
        let t0 = Instant::now();
        hb.ready("starting");
        hb.tick(t0, true, 0, || "up 0".into());
        hb.tick(t0 + Duration::from_millis(500), true, 0, || "unused".into());
        hb.tick(t0 + Duration::from_millis(1100), false, 1, || "up 1".into());
        hb.tick(t0 + Duration::from_millis(1200), true, 1, || {
            "unused".into()
        });
        hb.stopping();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = server.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        // Ping at 0 s; none at 0.5 s (not due), none at 1.1 s (a stage is dead), one at 1.2 s.
        assert_eq!(
            got,
            [
                "READY=1\nSTATUS=starting",
                "WATCHDOG=1",
                "STATUS=up 0",
                "STATUS=up 1",
                "WATCHDOG=1",
                "STOPPING=1\nSTATUS=stopping"
            ]
        );
    }

    #[test]
    fn a_missing_listener_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let n = Notifier::new(&NotifyTarget {
            socket: dir.path().join("nobody").display().to_string(),
            watchdog: None,
        })
        .unwrap();
        n.watchdog();
        n.watchdog();
    }
}
