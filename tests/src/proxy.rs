//! Proxies on 127.0.0.1, as corporate networks and SSH tunnels put in front
//! of clusters: an HTTP `CONNECT` proxy and a SOCKS5 proxy. Each records
//! every target it is asked for and tunnels it to one fixed address (so a
//! cluster named `kube.skyhost.invalid:443` can be the API double).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The protocol a [`Proxy`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// HTTP `CONNECT` (`http://` proxy URLs).
    HttpConnect,
    /// SOCKS5 without authentication (`socks5://`).
    Socks5,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// Its address.
    pub addr: SocketAddr,
    kind: Kind,
    targets: Arc<Mutex<Vec<String>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Reads an HTTP `CONNECT` request; the target, or `None` after refusing it.
async fn http_connect(client: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        client.read_exact(&mut byte).await.ok()?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    match head.strip_prefix("CONNECT ").and_then(|r| r.split_whitespace().next()) {
        Some(target) => Some(target.to_string()),
        None => {
            let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n").await;
            None
        }
    }
}

/// Reads a SOCKS5 greeting and `CONNECT` command; the target.
async fn socks5_connect(client: &mut TcpStream) -> Option<String> {
    let mut hello = [0u8; 2];
    client.read_exact(&mut hello).await.ok()?;
    let mut methods = vec![0u8; usize::from(hello[1])];
    client.read_exact(&mut methods).await.ok()?;
    if hello[0] != 5 || !methods.contains(&0) {
        let _ = client.write_all(&[5, 0xff]).await;
        return None;
    }
    client.write_all(&[5, 0]).await.ok()?;
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await.ok()?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await.ok()?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await.ok()?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await.ok()?;
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await.ok()?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
        _ => return None,
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await.ok()?;
    (request[1] == 1).then(|| format!("{host}:{}", u16::from_be_bytes(port)))
}

impl Proxy {
    /// Tunnels every request to `upstream`.
    pub fn start(kind: Kind, upstream: SocketAddr) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let targets = Arc::new(Mutex::new(Vec::new()));
        let seen = targets.clone();
        runtime.spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let target = match kind {
                        Kind::HttpConnect => http_connect(&mut client).await,
                        Kind::Socks5 => socks5_connect(&mut client).await,
                    };
                    let Some(target) = target else { return };
                    seen.lock().expect("lock").push(target);
                    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                    let established: &[u8] = match kind {
                        Kind::HttpConnect => b"HTTP/1.1 200 Connection established\r\n\r\n",
                        Kind::Socks5 => &[5, 0, 0, 1, 127, 0, 0, 1, 0, 0],
                    };
                    if client.write_all(established).await.is_ok() {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { addr, kind, targets, runtime: Some(runtime) }
    }

    /// `http://127.0.0.1:PORT` or `socks5://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match self.kind {
            Kind::HttpConnect => format!("http://{}", self.addr),
            Kind::Socks5 => format!("socks5://{}", self.addr),
        }
    }

    /// The `host:port` targets asked for so far.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().expect("lock").clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
