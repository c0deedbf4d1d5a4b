//! The admin socket: a Unix stream socket the control thread polls without blocking. Each connection
//! carries one request line and gets one answer; a client that sends nothing within a short time, or a
//! line that is too long, gets an error instead of holding the control thread.
//!
//! The [`request`] function is the client side, used by `tandem show`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::admin::{Request, Snapshot, render};

/// Longest request line accepted.
const MAX_REQUEST: u64 = 256;
/// How long a connected client has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

/// The listening admin socket; removes its file when dropped.
#[derive(Debug)]
pub struct AdminServer {
    listener: UnixListener,
    path: PathBuf,
}

impl AdminServer {
    /// Listens on `path`, replacing a stale socket file left by a previous run (but never a live one).
    pub fn bind(path: &Path) -> std::io::Result<AdminServer> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running tandem", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(AdminServer {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Answers every connection waiting now, taking the data from `snapshot` (called once per request,
    /// with the request, so that only what is asked for is gathered). Returns how many were answered.
    pub fn serve_pending(&mut self, mut snapshot: impl FnMut(&Request) -> Snapshot) -> usize {
        let mut served = 0;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let _ = answer(stream, &mut snapshot);
                    served += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return served,
                Err(_) => return served,
            }
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn answer(
    stream: UnixStream,
    snapshot: &mut impl FnMut(&Request) -> Snapshot,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line)?;
    let mut stream = stream;
    match Request::parse(line.trim()) {
        Ok(request) => {
            let text = render(&request, &snapshot(&request));
            stream.write_all(text.as_bytes())
        }
        Err(error) => stream.write_all(format!("error: {error}\n").as_bytes()),
    }
}

/// Sends `request` to the admin socket at `path` and returns the answer.
pub fn request(path: &Path, request: &Request) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request.line().as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{Format, StateRow, Topic};

    fn socket_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("tandem-test-{}-{name}.sock", std::process::id()))
    }

    #[test]
    fn a_request_gets_its_answer_and_a_bad_one_an_error() {
        let path = socket_path("answer");
        let mut server = AdminServer::bind(&path).expect("bind");
        let client = {
            let path = path.clone();
            std::thread::spawn(move || {
                let good = request(
                    &path,
                    &Request {
                        topic: Topic::States,
                        format: Format::Json,
                    },
                );
                let mut raw = UnixStream::connect(&path).expect("connect");
                raw.write_all(b"flush everything\n").expect("write");
                let mut bad = String::new();
                raw.read_to_string(&mut bad).expect("read");
                (good, bad)
            })
        };
        let mut served = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while served < 2 && std::time::Instant::now() < deadline {
            served += server.serve_pending(|_| Snapshot {
                states: vec![StateRow {
                    proto: "udp".into(),
                    ..StateRow::default()
                }],
                ..Snapshot::default()
            });
            std::thread::sleep(Duration::from_millis(5));
        }
        let (good, bad) = client.join().expect("client thread");
        let rows: Vec<StateRow> = serde_json::from_str(&good.expect("answered")).expect("JSON");
        assert_eq!(rows[0].proto, "udp");
        assert!(
            bad.starts_with("error: expected `show <topic> [json]`"),
            "{bad}"
        );
    }

    #[test]
    fn a_stale_socket_file_is_replaced_but_a_live_one_is_not() {
        let path = socket_path("stale");
        // A crashed process leaves its socket file behind with nobody listening.
        drop(UnixListener::bind(&path).expect("bind"));
        assert!(path.exists());
        let server = AdminServer::bind(&path).expect("a dead socket is replaced");
        assert_eq!(
            AdminServer::bind(&path).map(|_| ()).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::AddrInUse)
        );
        drop(server);
        assert!(!path.exists(), "the file is removed on drop");
    }
}
