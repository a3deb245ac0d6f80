//! A TCP proxy in front of a server (moto) that a test switches, while a job runs, between
//! forwarding, refusing connections, freezing them and denying every request: a storage
//! outage on demand.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards them to the server.
    Forward,
    /// Refuses them: nothing listens on the port (connections in progress are reset).
    Refuse,
    /// Accepts them and never answers, even after the proxy forwards again (those already
    /// in progress are reset): only the client's request timeout gets it out.
    Freeze,
    /// Answers every request `403 Forbidden`, which clients do not retry.
    Deny,
}

/// The proxy; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    mode: Mutex<Mode>,
    /// Both ends of every forwarded connection, shut down when forwarding stops.
    live: Mutex<Vec<TcpStream>>,
    /// Connections accepted while frozen, held open and never answered.
    frozen: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

impl Proxy {
    /// A proxy on a free port of 127.0.0.1 forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("its address").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(Shared {
            upstream,
            mode: Mutex::new(Mode::Forward),
            live: Mutex::new(Vec::new()),
            frozen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept = {
            let shared = shared.clone();
            std::thread::spawn(move || accept(port, Some(listener), &shared))
        };
        Proxy {
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Switches to `mode`. Leaving `Forward` resets every connection being forwarded, so
    /// that a client's pooled connection does not slip past the outage.
    pub fn set(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
        if mode != Mode::Forward {
            for stream in lock(&self.shared.live).drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        self.set(Mode::Refuse);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts connections until stopped, listening on `port` except while refusing.
fn accept(port: u16, mut listener: Option<TcpListener>, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let mode = *lock(&shared.mode);
        if mode == Mode::Refuse {
            listener = None;
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let Some(open) = &listener else {
            // The port was ours a moment ago; SO_REUSEADDR (set by std) lets it be again.
            listener = TcpListener::bind(("127.0.0.1", port)).ok();
            if let Some(l) = &listener {
                l.set_nonblocking(true).expect("nonblocking");
            }
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        match open.accept() {
            Ok((client, _)) => {
                client.set_nonblocking(false).expect("blocking");
                match mode {
                    Mode::Forward => forward(client, shared),
                    Mode::Freeze => lock(&shared.frozen).push(client),
                    Mode::Deny => {
                        std::thread::spawn(move || deny(client));
                    }
                    Mode::Refuse => {}
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn forward(client: TcpStream, shared: &Arc<Shared>) {
    let Ok(server) = TcpStream::connect(shared.upstream) else {
        return;
    };
    let ends = [&client, &server].map(|s| s.try_clone().expect("clone a socket"));
    lock(&shared.live).extend(ends);
    let (client_in, server_out) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    std::thread::spawn(move || pipe(client_in, server_out));
    std::thread::spawn(move || pipe(server, client));
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

/// Reads one HTTP request (headers and a `Content-Length` body) and answers 403.
fn deny(mut client: TcpStream) {
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = request.len() - head_end;
    while body < length {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => body += n,
        }
    }
    let denied = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                  <Message>Access Denied</Message></Error>";
    let content = if head.starts_with("head ") {
        ""
    } else {
        denied
    };
    let answer = format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{content}",
        denied.len()
    );
    let _ = client.write_all(answer.as_bytes());
    let _ = client.shutdown(Shutdown::Write);
}
