//! Helpers the benchmarks under `benches/` share (they include this support folder by path).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The environment variable `name` as a number, else `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The `n`th address of 10.0.0.0/8.
pub fn ip_of(n: u32) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/// The `p` quantile (0..=1) of `sorted`, nearest rank; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Samples a process's RSS every 20 ms (for at most 300 s) and keeps the peak.
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling process `pid`.
    pub fn start(pid: u32) -> RssSampler {
        let peak = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let status_path = format!("/proc/{pid}/status");
        let thread = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(300);
                while !done.load(Ordering::Acquire) && Instant::now() < deadline {
                    let kib = std::fs::read_to_string(&status_path)
                        .ok()
                        .and_then(|s| {
                            s.lines()
                                .find_map(|l| l.strip_prefix("VmRSS:"))
                                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                        })
                        .unwrap_or(0);
                    peak.fetch_max(kib, Ordering::AcqRel);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        RssSampler { peak, done, thread }
    }

    /// Stops sampling; the peak in KiB.
    pub fn stop(self) -> u64 {
        self.done.store(true, Ordering::Release);
        let _ = self.thread.join();
        self.peak.load(Ordering::Acquire)
    }
}
