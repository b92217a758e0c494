//! [`Proxy`]: a TCP proxy of a test's own between a client under test and
//! a server, which the test can cut (the server seems gone: open
//! connections are dropped, new ones closed at once) and restore, without
//! stopping the server and losing what it holds (moto keeps its data in
//! memory only).

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP proxy on 127.0.0.1 to one upstream address (see the module doc).
/// Needs a tokio runtime; its tasks end when it is dropped.
pub struct Proxy {
    addr: SocketAddr,
    cut: Arc<watch::Sender<bool>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection
    /// to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let cut = Arc::new(watch::channel(false).0);
        let accept = tokio::spawn(accept_loop(listener, upstream, cut.clone()));
        Proxy { addr, cut, accept }
    }

    /// Where clients connect instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` of the proxy.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now until [`restore`](Self::restore), the upstream seems
    /// gone: open connections are dropped (each by its task, at once) and
    /// new ones closed as soon as they are accepted.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }

    /// Whether the proxy is cut.
    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Open connections end with the cut signal's sender.
        self.cut.send_replace(true);
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, cut: Arc<watch::Sender<bool>>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if *cut.borrow() {
            drop(client);
            continue;
        }
        let mut cut_rx = cut.subscribe();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            let mut client = client;
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = cut_rx.wait_for(|cut| *cut) => {}
            }
        });
    }
}
