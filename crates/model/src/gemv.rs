//! Decoding's one-position products over several cores. Decoding one token multiplies every weight
//! matrix by a single vector; libtorch runs such a product (MKL's `sgemv`) on one core, so one prompt
//! decodes at one core's share of the memory bandwidth (BENCHMARKS.md, sampling). With
//! [`set_decode_threads`]`(n)`, n > 1, a one-row product on the CPU is split by output rows into n
//! parts computed at once: the first on the calling thread, the others on n − 1 worker threads that
//! poll for their next part between products rather than sleep (`mv` on each part's rows; the outputs
//! agree with libtorch's single product to rounding, a few 1e-6).
//! Off (1) by default: training and evaluation never have one row.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tch::{Device, Tensor};

/// How long an idle worker polls for its next part before it blocks. Decoding hands out a product every
/// few tens of microseconds; a worker that blocked between them would pay a wake-up on each.
const SPIN: Duration = Duration::from_millis(2);

type Job = Box<dyn FnOnce() + Send>;

/// The parts − 1 threads that compute all parts of a split product but the first (the caller computes
/// that one). They end when this is dropped (their channels close).
struct Workers {
    queues: Vec<Sender<Job>>,
}

impl Workers {
    /// Returns once every worker runs libtorch on its own thread only: a new thread would otherwise
    /// start OpenMP's default team (one thread per core) for products libtorch parallelises (bf16's),
    /// whose threads then wait on the cores the split keeps busy.
    fn start(count: usize) -> Workers {
        let (ready, started) = mpsc::channel();
        let queues = (0..count)
            .map(|_| {
                let (queue, jobs) = mpsc::channel::<Job>();
                let ready = ready.clone();
                std::thread::spawn(move || {
                    tch::set_num_threads(1);
                    let _ = ready.send(());
                    work(jobs)
                });
                queue
            })
            .collect();
        for _ in 0..count {
            let _ = started.recv();
        }
        Workers { queues }
    }
}

fn work(jobs: Receiver<Job>) {
    let _no_grad = tch::no_grad_guard();
    while let Some(job) = next_job(&jobs) {
        job();
    }
}

/// The next job: polled for [`SPIN`], then waited for; `None` once the queue has closed.
fn next_job(jobs: &Receiver<Job>) -> Option<Job> {
    let idle_since = Instant::now();
    loop {
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if idle_since.elapsed() < SPIN => std::hint::spin_loop(),
            Err(TryRecvError::Empty) => return jobs.recv().ok(),
        }
    }
}

static WORKERS: Mutex<Option<Arc<Workers>>> = Mutex::new(None);

/// Splits one-row products on the CPU over `n` threads from now on (1: as libtorch runs them).
pub fn set_decode_threads(n: usize) {
    let workers = (n > 1).then(|| Arc::new(Workers::start(n - 1)));
    *WORKERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = workers;
}

fn workers() -> Option<Arc<Workers>> {
    WORKERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

/// Counts a part done when dropped, also when its product panics, so the caller never waits forever.
struct Done(Arc<AtomicUsize>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// x·Wᵀ + b for x (…, in), W (out, in); a single row on the CPU is split over the decode threads.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
    let (in_dim, out_dim) = (w.size()[1], w.size()[0]);
    // An x that requires grad is training's: its product must stay in the autograd graph.
    let workers = workers()
        .filter(|_| x.device() == Device::Cpu && x.numel() as i64 == in_dim && !x.requires_grad());
    let Some(workers) = workers else {
        return x.linear(w, b);
    };
    let row = x.reshape([in_dim]);
    let y = Tensor::empty([out_dim], (x.kind(), Device::Cpu));
    split_product(&workers, w, &row, &y);
    let y = match b {
        Some(b) => y + b,
        None => y,
    };
    let mut shape = x.size();
    *shape.last_mut().expect("x has a last dimension") = out_dim;
    y.reshape(shape)
}

/// y = W·row, W's rows in one part per worker and one for this thread, each written into its slice of
/// y in place.
fn split_product(workers: &Workers, w: &Tensor, row: &Tensor, y: &Tensor) {
    let out_dim = w.size()[0];
    let parts = workers.queues.len() as i64 + 1;
    let step = (out_dim + parts - 1) / parts;
    let part = |i: i64| {
        let first = (i * step).min(out_dim);
        let n = step.min(out_dim - first);
        (w.narrow(0, first, n), y.narrow(0, first, n))
    };
    let pending = Arc::new(AtomicUsize::new(0));
    for (i, queue) in (1..parts).zip(&workers.queues) {
        let (rows, out) = part(i);
        let (row, done) = (row.shallow_clone(), Done(pending.clone()));
        pending.fetch_add(1, Ordering::Relaxed);
        let job: Job = Box::new(move || {
            let _done = done;
            let _ = rows.mv_out(&out, &row);
        });
        // A worker that has ended (its product panicked) leaves its part to this thread.
        if let Err(mpsc::SendError(job)) = queue.send(job) {
            job();
        }
    }
    let (rows, out) = part(0);
    let _ = rows.mv_out(&out, row);
    while pending.load(Ordering::Acquire) > 0 {
        std::hint::spin_loop();
    }
}

/// While held: one-position products split over the cores libtorch was using, and libtorch itself on
/// one thread (its idle threads would spin against the split's). Dropping it restores both. For decoding
/// one sequence in f32 on the CPU: 33–36 tokens/s instead of 20 for SmolLM2-135M on 2 cores (BENCHMARKS.md).
pub struct DecodeThreads {
    torch_threads: i32,
}

impl DecodeThreads {
    pub fn spread() -> Self {
        let torch_threads = tch::get_num_threads();
        set_decode_threads(torch_threads.max(1) as usize);
        tch::set_num_threads(1);
        DecodeThreads { torch_threads }
    }
}

impl Drop for DecodeThreads {
    fn drop(&mut self) {
        set_decode_threads(1);
        tch::set_num_threads(self.torch_threads);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn a_split_product_agrees_with_libtorchs_to_rounding() {
        tch::manual_seed(3);
        let w = Tensor::randn([1001, 96], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([1001], (Kind::Float, Device::Cpu));
        let x = Tensor::randn([1, 1, 96], (Kind::Float, Device::Cpu));
        let plain = x.linear(&w, Some(&b));
        for parts in [2, 3] {
            set_decode_threads(parts);
            let split = linear(&x, &w, Some(&b));
            set_decode_threads(1);
            assert_eq!(split.size(), [1, 1, 1001]);
            let diff = (&split - &plain).abs().max().double_value(&[]);
            assert!(diff <= 1e-5, "{parts} parts: off by {diff}");
        }
    }
}
