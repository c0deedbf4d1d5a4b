//! Support for whole-binary tests: a scratch directory removed on drop, pcap files, and a running
//! `tandem` process that is stopped with SIGTERM (and killed if it does not stop) when the test ends,
//! also on failure.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tandem_dataplane::pcap::{PcapReader, PcapWriter};

/// A directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("tandem-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let file = std::fs::File::create(path).expect("create pcap");
    let mut w = PcapWriter::new(std::io::BufWriter::new(file)).expect("pcap header");
    for (i, f) in frames.iter().enumerate() {
        w.write_frame(Duration::from_micros(i as u64), f)
            .expect("write frame");
    }
    w.flush().expect("flush pcap");
}

pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = PcapReader::new(std::io::BufReader::new(file)).expect("pcap header");
    let mut frames = Vec::new();
    while let Some(rec) = r.next_record().expect("pcap record") {
        frames.push(rec.data.to_vec());
    }
    frames
}

/// The EAL arguments every test process uses: no hugepages, no PCI, no shared config, little memory.
pub const EAL: &str = r#"[--no-huge, --no-pci, --no-shconf, -m, "256", --log-level=lib.eal:error]"#;

/// A running appliance.
pub struct Tandem {
    child: Option<Child>,
    stderr: mpsc::Receiver<String>,
    lines: Vec<String>,
    pub profile: PathBuf,
}

impl Tandem {
    /// Starts `tandem run` on `profile` and waits (up to 30 s) until it says it is running.
    pub fn start(profile: &Path, extra: &[&str]) -> Tandem {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .arg("run")
            .arg("--profile")
            .arg(profile)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tandem");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut t = Tandem {
            child: Some(child),
            stderr: rx,
            lines: Vec::new(),
            profile: profile.to_path_buf(),
        };
        t.wait_for_line(|l| l.contains(" running on DPDK"), Duration::from_secs(30))
            .unwrap_or_else(|| panic!("tandem did not start:\n{}", t.lines.join("\n")));
        t
    }

    /// Waits for a stderr line matching `pred`, returning it.
    pub fn wait_for_line(
        &mut self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.lines.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
        None
    }

    /// Runs `tandem show <topic> --json` against this appliance.
    pub fn show_json(&self, topic: &str) -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["show", topic, "--json", "--profile"])
            .arg(&self.profile)
            .output()
            .expect("tandem show");
        assert!(
            out.status.success(),
            "tandem show {topic}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// The value of worker counter `name`, summed over workers.
    pub fn counter(&self, name: &str) -> u64 {
        let workers = self.show_json("counters");
        workers
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|w| w["counters"].as_array().cloned().unwrap_or_default())
            .filter(|c| c["name"] == name)
            .map(|c| c["value"].as_u64().unwrap_or(0))
            .sum()
    }

    /// Polls `cond` every 50 ms until it holds or `timeout` passes.
    pub fn eventually(&self, timeout: Duration, mut cond: impl FnMut(&Tandem) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it with SIGTERM and returns (exit success, stdout, stderr lines).
    pub fn stop(mut self) -> (bool, String, Vec<String>) {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(200)) {
            self.lines.push(line);
        }
        (
            status.is_some_and(|s| s.success()),
            stdout,
            std::mem::take(&mut self.lines),
        )
    }
}

impl Drop for Tandem {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An empty pcap (net_pcap needs an RX file for every port).
pub fn empty_pcap(path: &Path) {
    write_pcap(path, &[]);
}
