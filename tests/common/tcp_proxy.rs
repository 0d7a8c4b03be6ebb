//! A TCP proxy between costcast and a real peer, to break the network on demand: `stall`
//! stops forwarding (bytes are held, connections stay open, as behind a dead route), `cut`
//! closes every connection it carries, and `cut_on` does so the moment a client sends a given
//! statement, then stops listening for a while (connections are refused), as a server
//! restarting right then would.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The bytes that set a fault off, and how long the peer then stays down.
type Trigger = (Vec<u8>, Duration);

/// A running proxy.
#[derive(Clone)]
pub struct Proxy {
    /// The local port to connect to instead of the peer's.
    pub port: u16,
    stalled: Arc<AtomicBool>,
    cut: Arc<std::sync::Mutex<CancellationToken>>,
    /// An armed trigger: the bytes that set it off and how long the peer then stays down.
    trigger: Arc<std::sync::Mutex<Option<Trigger>>>,
    /// Wakes the listener to go down for the given time.
    down: Arc<tokio::sync::Notify>,
    down_for: Arc<std::sync::Mutex<Duration>>,
    /// How many times a trigger went off.
    pub fired: Arc<std::sync::atomic::AtomicU32>,
}

impl Proxy {
    /// Forwards a local port to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            stalled: Arc::default(),
            cut: Arc::default(),
            trigger: Arc::default(),
            down: Arc::default(),
            down_for: Arc::default(),
            fired: Arc::default(),
        };
        let upstream = upstream.to_string();
        let p = proxy.clone();
        tokio::spawn(async move {
            let mut listener = listener;
            loop {
                let client = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => return,
                    },
                    () = p.down.notified() => {
                        // Not listening: connecting clients are refused until it is back.
                        drop(listener);
                        let down_for = *p.down_for.lock().unwrap();
                        tokio::time::sleep(down_for).await;
                        listener = TcpListener::bind(("127.0.0.1", p.port)).await.unwrap();
                        continue;
                    }
                };
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let cut = p.cut.lock().unwrap().clone();
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, p.clone(), true, cut.clone()));
                tokio::spawn(pipe(sr, cw, p.clone(), false, cut));
            }
        });
        proxy
    }

    /// Holds every byte from now on, in both directions, without closing anything.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// The next time a client sends `bytes`, closes every connection before forwarding them
    /// and stops listening for `down_for`.
    pub fn cut_on(&self, bytes: &str, down_for: Duration) {
        *self.trigger.lock().unwrap() = Some((bytes.as_bytes().to_vec(), down_for));
    }

    /// Closes every connection open now; new ones are forwarded normally.
    pub fn cut(&self) {
        let mut cut = self.cut.lock().unwrap();
        cut.cancel();
        *cut = CancellationToken::new();
        self.stalled.store(false, Ordering::SeqCst);
    }
}

/// Whether `chunk` sets off the armed trigger; disarms it and marks the peer down if so.
fn sets_off(proxy: &Proxy, chunk: &[u8]) -> bool {
    let mut trigger = proxy.trigger.lock().unwrap();
    let Some((bytes, down_for)) = trigger.as_ref() else {
        return false;
    };
    if !chunk.windows(bytes.len()).any(|w| w == bytes.as_slice()) {
        return false;
    }
    *proxy.down_for.lock().unwrap() = *down_for;
    proxy.down.notify_one();
    *trigger = None;
    proxy.fired.fetch_add(1, Ordering::SeqCst);
    true
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    proxy: Proxy,
    from_client: bool,
    cut: CancellationToken,
) {
    let stalled = proxy.stalled.clone();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            () = cut.cancelled() => return,
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        if from_client && sets_off(&proxy, &buf[..n]) {
            proxy.cut();
            return;
        }
        while stalled.load(Ordering::SeqCst) {
            tokio::select! {
                () = cut.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
