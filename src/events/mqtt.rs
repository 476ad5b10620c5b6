//! The MQTT sender: outbox rows published in `seq` order with QoS 1 to
//! `storetrack/<site>/events/<kind>`, the sink's cursor advanced only past rows the broker has
//! acknowledged (PUBACK); a retained `storetrack/<site>/status` of `online`, with `offline` as
//! the last will (and published at a clean stop).
//!
//! Input: the `[events]` settings, the database path, a stop flag. Output: messages at the
//! broker; figures in [`SinkStats`]. One [`AsyncClient`] and its [`EventLoop`], polled on a
//! current-thread runtime on this sender's own thread; after an error it is polled again
//! (reconnecting) after a backoff. Redelivery is ours, not rumqttc's: on every (re)connection
//! the window of unacknowledged rows is dropped (`clean_session`, `pending` cleared) and the
//! rows after the cursor are published again, in order — so a receiver sees every event, in
//! order, duplicates (with the same `event_id`) only of rows that were not yet acknowledged in
//! order at the disconnect: in flight, or acknowledged behind one that was not.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, MqttState, Outgoing, Packet, QoS,
    TlsConfiguration, Transport,
};
use tracing::{info, warn};

use super::backoff;
use super::metrics::SinkStats;
use super::outbox::Outbox;
use super::{POLL, SenderError};
use crate::backoff::Backoff;
use crate::config::{EventsConfig, MqttConfig};

/// The sink's name (cursor key, metric label).
pub const SINK: &str = "mqtt";
/// Events published and not yet acknowledged, at most.
const WINDOW: usize = 64;
/// rumqttc's packet ids in flight (above [`WINDOW`] + the status message, so ids never collide
/// while the broker acknowledges in order).
const INFLIGHT: u16 = 100;
/// Keep-alive ping interval (also how fast a silent broker is noticed).
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Largest message (an event is a few hundred bytes).
const MAX_PACKET: usize = 256 * 1024;
/// The cursor is written at most this often while events flow (and at stop).
const SAVE_EVERY: Duration = Duration::from_millis(500);
/// A backlog figure above this many rows is counted again at most every [`SAVE_EVERY`]: counting
/// walks every row past the cursor, and counting at every event of the connection (two a
/// message) made draining a large backlog quadratic (100,000 rows left by an outage: 29,513
/// delivered in 240 s; counted this way, all of them in 70 s).
const RECOUNT_BELOW: i64 = WINDOW as i64;
/// Connected with messages unacknowledged and no PUBACK for this long: the connection is
/// dropped and made again (a broker that stopped acknowledging must not stall delivery).
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// At stop: longest wait for the `offline` status to be acknowledged.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How one poll of the event loop ended.
enum Polled {
    Event(Event),
    Error(rumqttc::ConnectionError),
    /// Connected, messages unacknowledged, no PUBACK for [`ACK_TIMEOUT`].
    Stalled,
    Stop,
}

/// One message published and not yet acknowledged.
#[derive(Debug)]
struct Inflight {
    /// Outbox seq (None: the status message).
    seq: Option<i64>,
    /// rumqttc's packet id, once it has sent the message.
    pkid: Option<u16>,
    acked: bool,
}

/// Topics of a site.
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Topics under `storetrack/<site>/`.
    pub fn new(site: &str) -> Self {
        Self {
            prefix: format!("storetrack/{site}"),
        }
    }

    /// Where events of `kind` go.
    pub fn event(&self, kind: &str) -> String {
        format!("{}/events/{kind}", self.prefix)
    }

    /// The retained `online` / `offline` status.
    pub fn status(&self) -> String {
        format!("{}/status", self.prefix)
    }
}

/// The running MQTT sender's state.
struct Sender {
    client: AsyncClient,
    topics: Topics,
    outbox: Outbox,
    stats: Arc<SinkStats>,
    window: VecDeque<Inflight>,
    /// Highest seq delivered (acknowledged, in order).
    cursor: i64,
    saved: i64,
    saved_at: Instant,
    /// The backlog figure at its last count, and when.
    backlog: (i64, Instant),
    connected: bool,
    /// Last PUBACK (or connection, or empty window).
    last_ack: Instant,
}

/// Starts the sender on its own thread; it runs until `stop` is set.
pub fn spawn(
    events: &EventsConfig,
    mqtt: &MqttConfig,
    db: PathBuf,
    stats: Arc<SinkStats>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, SenderError> {
    let options = options(events, mqtt)?;
    let (client, mut eventloop) = AsyncClient::new(options, WINDOW + 8);
    eventloop
        .network_options
        .set_connection_timeout(events.timeout_ms.div_ceil(1000).max(1));
    let outbox = Outbox::open(&db)?;
    let cursor = outbox.cursor(SINK)?;
    stats.cursor.store(cursor, Ordering::Relaxed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SenderError::Thread)?;
    let mut sender = Sender {
        client,
        topics: Topics::new(&events.site),
        outbox,
        stats,
        window: VecDeque::new(),
        cursor,
        saved: cursor,
        saved_at: Instant::now(),
        backlog: (0, Instant::now()),
        connected: false,
        last_ack: Instant::now(),
    };
    let backoff = backoff::new(
        events.retry_initial_ms,
        events.retry_max_ms,
        &backoff::seed(SINK),
    );
    let url = mqtt.url.to_string();
    info!(broker = %url, cursor, "MQTT sender starting.");
    std::thread::Builder::new()
        .name("events-mqtt".into())
        .spawn(move || {
            runtime.block_on(sender.run(&mut eventloop, backoff, &stop));
        })
        .map_err(SenderError::Thread)
}

/// Connection options: client id, keep-alive, the last will, credentials, TLS.
fn options(events: &EventsConfig, mqtt: &MqttConfig) -> Result<MqttOptions, SenderError> {
    let host = crate::host::name().unwrap_or_default();
    let id = format!("storetrack-{}-{host}", events.site);
    let mut o = MqttOptions::new(id, mqtt.host.clone(), mqtt.port);
    let topics = Topics::new(&events.site);
    o.set_keep_alive(KEEP_ALIVE)
        .set_clean_session(true)
        .set_inflight(INFLIGHT)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_last_will(LastWill::new(
            topics.status(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(user) = &mqtt.user {
        o.set_credentials(user.clone(), mqtt.password.clone().unwrap_or_default());
    }
    if mqtt.tls {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls_config(mqtt)?,
        )));
    }
    Ok(o)
}

/// rustls with the ring provider, the Mozilla roots and `mqtt_ca`'s certificates.
fn tls_config(mqtt: &MqttConfig) -> Result<Arc<rustls::ClientConfig>, SenderError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = &mqtt.ca {
        let bad = |e: String| SenderError::Tls(format!("events.mqtt_ca {}: {e}", ca.display()));
        let certs = CertificateDer::pem_file_iter(ca).map_err(|e| bad(e.to_string()))?;
        for c in certs {
            roots
                .add(c.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
        }
    }
    // As in api/tls.rs: ring, deprecated only for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SenderError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Sender {
    async fn run(&mut self, eventloop: &mut EventLoop, mut backoff: Backoff, stop: &AtomicBool) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::Relaxed) {
            match self.poll_once(eventloop, &mut tick, stop).await {
                Polled::Event(ev) => {
                    if self.on_event(ev) {
                        backoff.reset(); // connected: the next outage starts from the initial wait
                    }
                    if self.connected && self.window.len() <= WINDOW / 2 {
                        self.fill();
                    }
                    self.advance(false);
                }
                Polled::Error(e) => {
                    self.on_error(eventloop, &e);
                    let wait = backoff.next_wait();
                    let until = tokio::time::Instant::now() + wait;
                    while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < until {
                        tokio::time::sleep(POLL.min(wait)).await;
                    }
                }
                Polled::Stalled => {
                    warn!(
                        unacked = self.window.len(),
                        "MQTT broker stopped acknowledging; reconnecting."
                    );
                    SinkStats::add(&self.stats.failures, 1);
                    eventloop.clean();
                    self.reset(eventloop);
                }
                Polled::Stop => break,
            }
        }
        self.stop(eventloop).await;
    }

    /// Polls the event loop once to its end — never dropping a poll half-way (that could drop
    /// a connection attempt or a packet being written) but to stop or after [`ACK_TIMEOUT`] —
    /// while publishing new outbox rows every [`POLL`].
    async fn poll_once(
        &mut self,
        eventloop: &mut EventLoop,
        tick: &mut tokio::time::Interval,
        stop: &AtomicBool,
    ) -> Polled {
        let poll = eventloop.poll();
        tokio::pin!(poll);
        loop {
            tokio::select! {
                ev = &mut poll => return match ev {
                    Ok(ev) => Polled::Event(ev),
                    Err(e) => Polled::Error(e),
                },
                _ = tick.tick() => {
                    if stop.load(Ordering::Relaxed) {
                        return Polled::Stop;
                    }
                    if self.connected {
                        self.fill();
                        if self.window.is_empty() {
                            self.last_ack = Instant::now();
                        } else if self.last_ack.elapsed() > ACK_TIMEOUT {
                            return Polled::Stalled;
                        }
                    }
                    self.advance(false);
                }
            }
        }
    }

    /// One event of the connection; true when it is the broker's ConnAck (connected).
    fn on_event(&mut self, ev: Event) -> bool {
        let connected = matches!(ev, Event::Incoming(Packet::ConnAck(_)));
        match ev {
            Event::Incoming(Packet::ConnAck(_)) => {
                info!(cursor = self.cursor, "MQTT broker connected.");
                self.connected = true;
                self.stats.connected.store(1, Ordering::Relaxed);
                self.window.clear();
                self.last_ack = Instant::now();
                self.publish_status("online");
            }
            Event::Outgoing(Outgoing::Publish(pkid) | Outgoing::AwaitAck(pkid)) => {
                if let Some(m) = self.window.iter_mut().find(|m| m.pkid.is_none()) {
                    m.pkid = Some(pkid);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(m) = self
                    .window
                    .iter_mut()
                    .find(|m| m.pkid == Some(ack.pkid) && !m.acked)
                {
                    m.acked = true;
                    self.last_ack = Instant::now();
                }
            }
            _ => {}
        }
        connected
    }

    /// A lost or refused connection: everything unacknowledged is published again after the
    /// next connection, from the cursor on.
    fn on_error(&mut self, eventloop: &mut EventLoop, e: &rumqttc::ConnectionError) {
        if self.connected {
            warn!(error = %e, unacked = self.window.len(), "MQTT broker connection lost; reconnecting.");
        } else {
            warn!(error = %e, "MQTT broker unreachable; retrying.");
        }
        SinkStats::add(&self.stats.failures, 1);
        self.reset(eventloop);
    }

    /// Forgets the connection: the window, rumqttc's pending requests and session state.
    fn reset(&mut self, eventloop: &mut EventLoop) {
        self.connected = false;
        self.stats.connected.store(0, Ordering::Relaxed);
        // A fresh session state too: rumqttc keeps packet ids, buffered events and a held-back
        // publish across errors, which would no longer match our window.
        eventloop.pending.clear();
        eventloop.state = MqttState::new(INFLIGHT, false);
        self.advance(true);
        self.window.clear();
    }

    fn publish_status(&mut self, status: &'static str) {
        let topic = self.topics.status();
        if self
            .client
            .try_publish(topic, QoS::AtLeastOnce, true, status)
            .is_ok()
        {
            self.window.push_back(Inflight {
                seq: None,
                pkid: None,
                acked: false,
            });
        }
    }

    /// Publishes rows after the last one in flight, up to [`WINDOW`].
    fn fill(&mut self) {
        let room = WINDOW.saturating_sub(self.window.len());
        if room == 0 {
            return;
        }
        let last = self
            .window
            .iter()
            .rev()
            .find_map(|m| m.seq)
            .unwrap_or(self.cursor);
        let batch = match self.outbox.after(last, room) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "MQTT sender cannot read the outbox.");
                return;
            }
        };
        if batch.missed > 0 && last == self.cursor && self.window.is_empty() {
            warn!(
                missed = batch.missed,
                cursor = self.cursor,
                "Events deleted by retention before the MQTT broker got them."
            );
            SinkStats::add(&self.stats.skipped, batch.missed);
            self.cursor += batch.missed as i64;
        }
        for row in batch.rows {
            let topic = self.topics.event(&row.kind);
            if self
                .client
                .try_publish(topic, QoS::AtLeastOnce, false, row.json)
                .is_err()
            {
                break;
            }
            self.window.push_back(Inflight {
                seq: Some(row.seq),
                pkid: None,
                acked: false,
            });
        }
    }

    /// Moves the cursor past the acknowledged head of the window; saves it now and then (or
    /// `now`), and refreshes the backlog figure ([`Self::count_backlog`]).
    fn advance(&mut self, now: bool) {
        let mut delivered = 0;
        while self.window.front().is_some_and(|m| m.acked) {
            if let Some(seq) = self.window.pop_front().and_then(|m| m.seq) {
                self.cursor = seq;
                delivered += 1;
            }
        }
        SinkStats::add(&self.stats.delivered, delivered);
        self.stats.cursor.store(self.cursor, Ordering::Relaxed);
        if self.cursor != self.saved && (now || self.saved_at.elapsed() >= SAVE_EVERY) {
            match self.outbox.save(SINK, self.cursor) {
                Ok(()) => self.saved = self.cursor,
                Err(e) => warn!(error = %e, "MQTT sender cannot save its cursor."),
            }
            self.saved_at = Instant::now();
        }
        self.count_backlog(now);
    }

    /// Counts the backlog again when the last count was small, [`SAVE_EVERY`] has passed, or
    /// `now`; between counts a large figure stands.
    fn count_backlog(&mut self, now: bool) {
        let (last, at) = self.backlog;
        if !(now || last <= RECOUNT_BELOW || at.elapsed() >= SAVE_EVERY) {
            return;
        }
        if let Ok(n) = self.outbox.backlog(self.cursor) {
            self.stats.backlog.store(n, Ordering::Relaxed);
            self.backlog = (n, Instant::now());
        }
    }

    /// A clean stop: the acknowledged cursor saved, `offline` published (retained) and
    /// acknowledged, then a disconnect (so the broker does not send the will as well).
    async fn stop(&mut self, eventloop: &mut EventLoop) {
        if self.connected {
            self.publish_status("offline");
            let deadline = tokio::time::Instant::now() + STOP_GRACE;
            while self.window.iter().any(|m| m.seq.is_none() && !m.acked) {
                match tokio::time::timeout_at(deadline, eventloop.poll()).await {
                    Ok(Ok(ev)) => {
                        self.on_event(ev);
                    }
                    _ => break,
                }
            }
            let _ = self.client.try_disconnect();
            let _ = tokio::time::timeout_at(deadline, eventloop.poll()).await;
        }
        // Only the acknowledged head counts; the rest is published again next time.
        self.advance(true);
        self.stats.connected.store(0, Ordering::Relaxed);
        info!(cursor = self.cursor, "MQTT sender stopped.");
    }
}
