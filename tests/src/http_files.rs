//! A small HTTP file server on 127.0.0.1 for catalog downloads, with faults
//! the tests can switch on: an error status, a body cut off mid-way, or a
//! redirect.
//! Written on raw sockets so that a broken response is really broken.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What to do with requests for one path.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and no body.
    Status(u16),
    /// Announce the whole file but send only this many bytes, then close.
    CutAfter(usize),
    /// Answer 302 with this `Location`.
    Redirect(String),
    /// Answer normally once [`HttpFiles::release`] is called.
    Hold,
}

#[derive(Default)]
struct State {
    faults: HashMap<String, Fault>,
    requests: Vec<String>,
}

/// Lets held answers go.
fn released() -> &'static tokio::sync::Notify {
    static RELEASED: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
    RELEASED.get_or_init(tokio::sync::Notify::new)
}

/// A running file server; stops when dropped.
pub struct HttpFiles {
    /// Its address.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl HttpFiles {
    /// Serves files under `root` (GET `/x/y` reads `root/x/y`).
    pub fn start(root: PathBuf) -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let state: Arc<Mutex<State>> = Arc::default();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let st = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { continue };
                let (root, st) = (root.clone(), st.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut got = 0;
                    while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") && got < buf.len() {
                        match sock.read(&mut buf[got..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got += n,
                        }
                    }
                    let head = String::from_utf8_lossy(&buf[..got]).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_string();
                    let fault = {
                        let mut s = st.lock().expect("state");
                        s.requests.push(path.clone());
                        s.faults.get(&path).cloned()
                    };
                    let fault = match fault {
                        Some(Fault::Hold) => {
                            released().notified().await;
                            None
                        }
                        other => other,
                    };
                    let file = std::fs::read(root.join(path.trim_start_matches('/')));
                    let reply = |status: u16, len: usize| {
                        format!("HTTP/1.1 {status} X\r\ncontent-length: {len}\r\ncontent-type: text/csv\r\nconnection: close\r\n\r\n")
                    };
                    let _ = match (fault, file) {
                        (Some(Fault::Status(s)), _) => sock.write_all(reply(s, 0).as_bytes()).await,
                        (Some(Fault::Redirect(to)), _) => {
                            let head = reply(302, 0).replacen("\r\n", &format!("\r\nlocation: {to}\r\n"), 1);
                            sock.write_all(head.as_bytes()).await
                        }
                        (_, Err(_)) => sock.write_all(reply(404, 0).as_bytes()).await,
                        (Some(Fault::Hold), Ok(_)) => unreachable!("released above"),
                        (Some(Fault::CutAfter(n)), Ok(body)) => {
                            let _ = sock.write_all(reply(200, body.len()).as_bytes()).await;
                            sock.write_all(&body[..n.min(body.len())]).await
                        }
                        (None, Ok(body)) => {
                            let _ = sock.write_all(reply(200, body.len()).as_bytes()).await;
                            sock.write_all(&body).await
                        }
                    };
                    let _ = sock.shutdown().await;
                });
            }
        });
        Self { addr, state, runtime: Some(runtime) }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Applies `fault` to requests for `path`.
    pub fn fault(&self, path: &str, fault: Fault) {
        self.state.lock().expect("state").faults.insert(path.to_string(), fault);
    }

    /// Lets every held answer go.
    pub fn release(&self) {
        released().notify_waiters();
    }

    /// Removes every fault.
    pub fn heal(&self) {
        self.state.lock().expect("state").faults.clear();
    }

    /// Paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("state").requests.clone()
    }
}

impl Drop for HttpFiles {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
