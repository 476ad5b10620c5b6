//! A real KServe v2 model server for the tests: `deploy/kserve/serve.py` (KServe's Python
//! ModelServer from PyPI, installed by scripts/setup.sh) serving the same OpenVINO IR as the local
//! engine, on free loopback ports. The server exits with the test process.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use storetrack::infer::kserve::proto::ServerReadyRequest;
use storetrack::infer::kserve::proto::grpc_inference_service_client::GrpcInferenceServiceClient;

pub use super::free_port;
use super::root;

/// Model name the test servers use.
pub const MODEL: &str = "ssdlite";
/// Longest wait for a server to load the model and listen (2 shared cores, cold imports).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// One model a server serves: its name, its IR and the output names its metadata reports.
#[derive(Debug, Clone)]
pub struct Served {
    /// Model name on the server.
    pub name: String,
    /// IR `.xml`.
    pub ir: std::path::PathBuf,
    /// Output names, comma-separated (empty: every output under its first name).
    pub outputs: String,
}

/// A running server; killed on drop.
pub struct Server {
    child: Option<Child>,
    grpc: u16,
    http: u16,
    models: Vec<Served>,
}

impl Server {
    /// Starts a server of the SSDLite IR on free ports and waits until it answers ServerReady.
    pub fn start() -> Server {
        Server::start_models(vec![Served {
            name: MODEL.into(),
            ir: root().join("models/ssdlite/ssdlite.xml"),
            outputs: "detection_boxes:0,detection_classes:0,detection_scores:0,num_detections:0"
                .into(),
        }])
    }

    /// Starts a server of these models on free ports and waits until it answers ServerReady.
    pub fn start_models(models: Vec<Served>) -> Server {
        let mut s = Server {
            child: None,
            grpc: free_port(),
            http: free_port(),
            models,
        };
        s.restart();
        s
    }

    /// `host:port` of its gRPC endpoint.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.grpc)
    }

    /// Kills the server (as a crash would: SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// (Re)starts the server on the same ports and waits until it is ready.
    pub fn restart(&mut self) {
        self.kill();
        let python = root().join(".venv/bin/python");
        assert!(
            python.is_file(),
            "{} missing: run scripts/setup.sh",
            python.display()
        );
        let mut cmd = Command::new(python);
        cmd.arg(root().join("deploy/kserve/serve.py"));
        for m in &self.models {
            cmd.args([
                "--ir",
                &path(&m.ir),
                "--name",
                &m.name,
                "--outputs",
                &m.outputs,
            ]);
        }
        let child = cmd
            .arg("--exit-with-parent")
            .args(["--grpc-port", &self.grpc.to_string()])
            .args(["--http-port", &self.http.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting deploy/kserve/serve.py");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = format!("http://{}", self.endpoint());
        let started = Instant::now();
        loop {
            let ready = rt.block_on(async {
                let Ok(mut c) = GrpcInferenceServiceClient::connect(url.clone()).await else {
                    return false;
                };
                c.server_ready(ServerReadyRequest {})
                    .await
                    .is_ok_and(|r| r.into_inner().ready)
            });
            if ready {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "KServe test server exited during start ({status}); run it by hand: python deploy/kserve/serve.py --help"
                );
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "KServe test server not ready after {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `[inference]` lines for the remote backend on these `host:port` endpoints.
pub fn inference_toml(endpoints: &[String], extra: &str) -> String {
    let list: Vec<String> = endpoints
        .iter()
        .map(|e| format!("\"grpc://{e}\""))
        .collect();
    format!(
        "[inference]\nbackend = \"kserve\"\nendpoints = [{}]\nmodel = \"{MODEL}\"\ntimeout_ms = 10000\n{extra}\n",
        list.join(", ")
    )
}
