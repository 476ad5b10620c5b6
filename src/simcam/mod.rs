//! Camera simulator: serves video files as live RTSP cameras on 127.0.0.1, one mount per
//! camera, paced in real time and looping forever, each as a kind of camera found in stores.
//!
//! Input: [`Mount`]s: a name, a file and a [`Variant`] (the file's H.264/H.265 stream as it is,
//! or re-encoded with another codec, frame rate, GOP, B-frames, open GOPs, a variable frame
//! rate or a resolution change; frames sent in bursts; an audio track; digest authentication; a
//! wrong, jumping or drifting RTCP clock). Output: an RTSP server (gst-rtsp-server) whose URLs the service and
//! the tests use, and the true capture time of every frame it sent ([`SimCam::capture_ms`],
//! [`SimCam::sent_ms`]), so tests can check the times the service stores. Each (file,
//! encoding) is loaded once into memory ([`clip`]); each mount's media feeds it with times
//! that keep increasing across loops ([`media`]), so clients see one endless stream. Cameras
//! sharing a clip start at different key frames, as real cameras are never in step.
//!
//! Threads: the server, its listening socket and every client connection are served by one
//! glib main loop on the simulator's own thread (the server's thread pool is told to make no
//! client threads), so a client is only ever read and closed on that thread (see [`SimCam`]'s
//! `Drop` for why). Each media's pipeline streams from its own threads, its bus watched from a
//! media thread of the server's pool.

pub mod clip;
mod encode;
pub mod media;
pub mod scene;
pub mod variant;

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use tracing::info;

pub use clip::Clip;
use media::{MediaSpec, MountState};
pub use variant::{ClockFault, Codec, Credentials, Encoding, Variant};

/// Where the simulator listens.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1";
/// Its default port.
pub const DEFAULT_PORT: u16 = 8554;
/// RTP timestamp of capture time zero on the first mount; the next mounts' differ by this.
const TS_OFFSET_STEP: u32 = 0x1000_0000;
/// Role of clients that gave valid credentials.
const ROLE_USER: &str = "user";
/// Connections the kernel holds until the simulator's thread accepts them. That thread also
/// answers every client's requests, so a fleet connecting at once (96-100 cameras a simulator
/// in scripts/bench_storeday.sh) waits here; gst-rtsp-server's default of 5 dropped their
/// connection attempts, clients retried after 1, 2, 4 and 8 s and some timed out.
const LISTEN_BACKLOG: i32 = 1024;

/// One simulated camera.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Path of its URL.
    pub name: String,
    /// The video file.
    pub file: PathBuf,
    /// What kind of camera it is.
    pub variant: Variant,
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// GStreamer failed to initialise.
    #[error("GStreamer initialisation failed: {0}")]
    Init(#[from] glib::Error),
    /// A video file could not be loaded.
    #[error("{}: cannot load video: {message}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The server could not listen.
    #[error("cannot start RTSP server on {address}:{port}: {message}")]
    Listen {
        /// Address.
        address: String,
        /// Port.
        port: u16,
        /// What went wrong.
        message: String,
    },
}

/// A running simulator.
pub struct SimCam {
    server: rtsp::RTSPServer,
    port: u16,
    /// The context the server, its listening socket and its clients are attached to.
    ctx: glib::MainContext,
    /// The listening socket's source in `ctx`.
    listener: Option<glib::SourceId>,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
    mounts: Vec<(Mount, Arc<MountState>)>,
    /// Credentials every client must give, if any mount asks for some.
    credentials: Option<Credentials>,
}

/// Clips loaded so far, by file and encoding.
type Clips = Vec<((PathBuf, Option<Encoding>), Arc<Clip>)>;

impl SimCam {
    /// Serves each `(mount, file)` as it is at `rtsp://address:port/mount`. Port 0 picks a free
    /// port.
    pub fn start(
        address: &str,
        port: u16,
        mounts: &[(String, PathBuf)],
    ) -> Result<SimCam, SimError> {
        let mounts: Vec<Mount> = mounts
            .iter()
            .map(|(name, file)| Mount {
                name: name.clone(),
                file: file.clone(),
                variant: Variant::default(),
            })
            .collect();
        Self::serve(address, port, &mounts)
    }

    /// Serves each mount at `rtsp://address:port/name`. Port 0 picks a free port. When a mount
    /// asks for credentials, every mount does (digest authentication; any mount's credentials
    /// are valid on all): gst-rtsp-server answers a client without credentials 404, not 401,
    /// on a mount that anonymous clients may not play, so no client would ever send them.
    pub fn serve(address: &str, port: u16, mounts: &[Mount]) -> Result<SimCam, SimError> {
        gst::init()?;
        let listen_err = |message: String| SimError::Listen {
            address: address.into(),
            port,
            message,
        };
        let server = rtsp::RTSPServer::new();
        // No client threads: each client's connection is then attached to the context of the
        // source that accepted it, the simulator's own (see `Drop`). The default pool served
        // every client from one thread too, so no fewer threads serve them now.
        if let Some(pool) = server.thread_pool() {
            pool.set_max_threads(0);
        }
        server.set_backlog(LISTEN_BACKLOG);
        server.set_address(address);
        server.set_service(&port.to_string());
        let points = server
            .mount_points()
            .ok_or_else(|| listen_err("no mount points".into()))?;
        let mut clips = Clips::new();
        let mut served = Vec::new();
        let auth = digest_auth(mounts);
        for (k, mount) in mounts.iter().enumerate() {
            let spec = media_spec(mounts, k, &mut clips)?;
            let state = Arc::clone(&spec.state);
            let factory = media::factory(spec);
            if auth.is_some() {
                factory.add_role_from_structure(&access_for(ROLE_USER));
            }
            points.add_factory(&format!("/{}", mount.name.trim_start_matches('/')), factory);
            served.push((mount.clone(), state));
        }
        if let Some((auth, _)) = &auth {
            server.set_auth(Some(auth));
        }
        let ctx = glib::MainContext::new();
        let listener = server
            .attach(Some(&ctx))
            .map_err(|e| listen_err(e.to_string()))?;
        let bound =
            u16::try_from(server.bound_port()).map_err(|_| listen_err("not bound".into()))?;
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        // Dispatched only once the loop runs: from then on the thread owns `ctx`, so `Drop`'s
        // work is queued to it, and its `quit` cannot come before `run` and be lost.
        let (running_tx, running_rx) = mpsc::channel();
        ctx.spawn(async move {
            let _ = running_tx.send(());
        });
        let (thread_ctx, ml) = (ctx.clone(), main_loop.clone());
        let thread = std::thread::Builder::new()
            .name("simcam".into())
            .spawn(move || {
                thread_ctx.with_thread_default(|| ml.run()).ok();
            })
            .map_err(|e| listen_err(e.to_string()))?;
        running_rx
            .recv()
            .map_err(|_| listen_err("the simulator's main loop did not start".into()))?;
        let names: Vec<&str> = served.iter().map(|(m, _)| m.name.as_str()).collect();
        info!(port = bound, mounts = %names.join(","), "Simulator serving.");
        Ok(SimCam {
            server,
            port: bound,
            ctx,
            listener: Some(listener),
            main_loop,
            thread: Some(thread),
            mounts: served,
            credentials: auth.map(|(_, c)| c),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of mount `name` (with credentials, if the simulator asks for some).
    pub fn url(&self, name: &str) -> String {
        let name = name.trim_start_matches('/');
        let user = self
            .credentials
            .as_ref()
            .map_or(String::new(), |c| format!("{}:{}@", c.user, c.password));
        format!("rtsp://{user}{DEFAULT_ADDRESS}:{}/{name}", self.port)
    }

    /// Mount names.
    pub fn mounts(&self) -> Vec<String> {
        self.mounts.iter().map(|(m, _)| m.name.clone()).collect()
    }

    /// True capture time (Unix ms) of the frame mount `name` sent with RTP timestamp `rtp`
    /// (None before its media plays).
    pub fn capture_ms(&self, name: &str, rtp: u32) -> Option<f64> {
        let (_, state) = self.mount(name)?;
        state.capture_ns(rtp).map(|ns| ns as f64 / 1e6)
    }

    /// True capture times (Unix ms) of every frame mount `name` sent, in decode order.
    pub fn sent_ms(&self, name: &str) -> Vec<f64> {
        self.mount(name)
            .map(|(_, s)| s.sent_ns().into_iter().map(|ns| ns as f64 / 1e6).collect())
            .unwrap_or_default()
    }

    fn mount(&self, name: &str) -> Option<&(Mount, Arc<MountState>)> {
        self.mounts
            .iter()
            .find(|(m, _)| m.name.trim_start_matches('/') == name)
    }
}

/// The clips, start point and options of mount `k`.
fn media_spec(mounts: &[Mount], k: usize, clips: &mut Clips) -> Result<MediaSpec, SimError> {
    let mount = &mounts[k];
    let v = &mount.variant;
    let mut list = vec![clip_for(&mount.file, v.first_encoding(), clips)?];
    if let Some(resized) = v.resized_encoding() {
        list.push(clip_for(&mount.file, Some(resized), clips)?);
    }
    // Mounts serving the same clip start at different key frames.
    let same = |m: &Mount| m.file == mount.file && m.variant.first_encoding() == v.first_encoding();
    let sharing = mounts.iter().filter(|m| same(m)).count();
    let nth = mounts[..k].iter().filter(|m| same(m)).count();
    Ok(MediaSpec {
        start: list[0].start_index(nth, sharing),
        clips: list,
        switch_at_ns: v.resize_after.map(|(s, _)| (s * 1e9) as u64),
        burst: v.burst,
        audio: v.audio,
        clock: v.clock,
        state: Arc::new(MountState::new(
            TS_OFFSET_STEP
                .wrapping_mul(k as u32 + 1)
                .wrapping_add(12_345),
        )),
    })
}

/// The clip of `file` encoded as `encoding` (as it is when None), loaded once.
fn clip_for(
    file: &Path,
    encoding: Option<Encoding>,
    clips: &mut Clips,
) -> Result<Arc<Clip>, SimError> {
    let key = (file.to_path_buf(), encoding);
    if let Some((_, c)) = clips.iter().find(|(k, _)| *k == key) {
        return Ok(Arc::clone(c));
    }
    let clip = Arc::new(match &key.1 {
        Some(e) => Clip::encode(file, e)?,
        None => Clip::load(file)?,
    });
    info!(file = %file.display(), codec = %clip.codec(), frames = clip.frames(),
          reordered = clip.reordered(), "Simulator loaded video.");
    clips.push((key, Arc::clone(&clip)));
    Ok(clip)
}

/// Permission to open and play a mount's media, for clients of `role`.
fn access_for(role: &str) -> gst::Structure {
    gst::Structure::builder(role)
        .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS.as_str(), true)
        .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT.as_str(), true)
        .build()
}

/// Digest authentication when a mount asks for it (None when none does), and the credentials
/// of the first such mount. It applies to every mount of the simulator, each mount's
/// credentials valid on all: gst-rtsp-server answers a client without credentials 404, not 401,
/// on a mount anonymous clients may not play, so a client would never send its credentials.
fn digest_auth(mounts: &[Mount]) -> Option<(rtsp::RTSPAuth, Credentials)> {
    let creds: Vec<&Credentials> = mounts
        .iter()
        .filter_map(|m| m.variant.auth.as_ref())
        .collect();
    let first = (*creds.first()?).clone();
    let auth = rtsp::RTSPAuth::new();
    auth.set_supported_methods(rtsp::gst_rtsp::RTSPAuthMethod::Digest);
    let token = |role: &str| {
        rtsp::RTSPToken::builder()
            .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE.as_str(), role)
            .build()
    };
    for c in creds {
        auth.add_digest(&c.user, &c.password, &token(ROLE_USER));
    }
    Some((auth, first))
}

impl Drop for SimCam {
    /// Stops like a camera that is switched off: the server stops listening, every client
    /// connection is closed (streaming media would otherwise go on from its own threads), then
    /// the loop ends and its thread is joined.
    ///
    /// All of it runs on the simulator's thread, the one that reads the clients' connections:
    /// gst-rtsp-server closes a client's connection without excluding its read watch (its
    /// code: "work around the lack of thread safety of gst_rtsp_connection_close"). Closed
    /// from another thread while the watch was reading, the connection's streams went away
    /// under the read and that thread spun on `g_pollable_input_stream_read_nonblocking`
    /// criticals until the process ended (5.3 million lines in 52 s in CI, after `reconnect`;
    /// test `simcam_drop`). That is why the server's pool makes no client threads: a pool
    /// thread would be another thread reading the connections.
    fn drop(&mut self) {
        let (server, ctx, main_loop) = (
            self.server.clone(),
            self.ctx.clone(),
            self.main_loop.clone(),
        );
        let listener = self.listener.take();
        // Runs on the loop's thread (inline only if that thread has already ended); the loop
        // quits last, so joining the thread waits for it.
        self.ctx
            .invoke_with_priority(glib::Priority::HIGH, move || {
                // `SourceId::remove` looks in the default context, not this one.
                if let Some(source) = listener.and_then(|id| ctx.find_source_by_id(&id)) {
                    source.destroy();
                }
                server.client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
                main_loop.quit();
            });
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
