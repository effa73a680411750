//! Data parallelism: one process per device, gradients summed over processes each step.
//!
//! Processes find each other the way torch.distributed's do: `RANK`, `WORLD_SIZE`, `MASTER_ADDR`,
//! `MASTER_PORT` (and `LOCAL_RANK` for the device), which `rewarm launch` sets. The rendezvous is
//! c10d's TCPStore served by rank 0; CPU tensors are summed by c10d's Gloo process group (both through
//! csrc/dist.cpp, since tch has no c10d bindings). CUDA tensors are summed by NCCL, called directly: its
//! library comes with the GPU machine's PyTorch and is opened at run time, and its unique id travels
//! through the same store, so the default build needs no CUDA toolkit.

use crate::error::{TrainError, TrainResult};
use std::ffi::{c_char, c_int, c_long, c_void, CStr, CString};
use std::time::Duration;
use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

extern "C" {
    fn rewarm_dist_init(
        host: *const c_char,
        port: c_int,
        rank: c_int,
        world: c_int,
        timeout_ms: c_long,
        out: *mut *mut c_void,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn rewarm_dist_free(group: *mut c_void);
    fn rewarm_dist_allreduce_sum(
        group: *mut c_void,
        tensor: *const C_tensor,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn rewarm_dist_store_set(
        group: *mut c_void,
        key: *const c_char,
        value: *const u8,
        len: usize,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn rewarm_dist_store_get(
        group: *mut c_void,
        key: *const c_char,
        value: *mut u8,
        len: usize,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
}

/// Where this process stands among the others, from the environment `rewarm launch` (or torchrun, or a
/// cluster scheduler's wrapper) sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct World {
    pub rank: usize,
    pub size: usize,
    /// Rank on this machine: the CUDA device this process uses.
    pub local_rank: usize,
    /// Processes on this machine (CPU threads are shared among them).
    pub local_size: usize,
    pub master_addr: String,
    pub master_port: u16,
}

impl World {
    /// `Ok(None)` when `WORLD_SIZE` is unset (a single process); an error naming the variable when one is
    /// malformed or missing.
    pub fn from_env() -> TrainResult<Option<World>> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> TrainResult<Option<World>> {
        let Some(size) = var("WORLD_SIZE") else {
            return Ok(None);
        };
        let number = |name: &str, value: Option<String>| -> TrainResult<usize> {
            let value = value.ok_or_else(|| {
                TrainError::Config(format!("WORLD_SIZE is set but {name} is not\nHINT: set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT together, or start the processes with `rewarm launch --nproc N -- train …`"))
            })?;
            value.trim().parse().map_err(|_| {
                TrainError::Config(format!(
                    "{name}={value:?} is not a non-negative integer\nHINT: e.g. {name}=0"
                ))
            })
        };
        let size = number("WORLD_SIZE", Some(size))?;
        let rank = number("RANK", var("RANK"))?;
        let local_rank = var("LOCAL_RANK").map_or(Ok(rank), |v| number("LOCAL_RANK", Some(v)))?;
        let local_size =
            var("LOCAL_WORLD_SIZE").map_or(Ok(size), |v| number("LOCAL_WORLD_SIZE", Some(v)))?;
        let master_port = number("MASTER_PORT", var("MASTER_PORT"))?;
        if size == 0 || rank >= size || master_port == 0 || master_port > u16::MAX as usize {
            return Err(TrainError::Config(format!(
                "RANK={rank}, WORLD_SIZE={size}, MASTER_PORT={master_port}: need 0 ≤ RANK < WORLD_SIZE and a port in 1..=65535"
            )));
        }
        Ok(Some(World {
            rank,
            size,
            local_rank,
            local_size: local_size.max(1),
            master_addr: var("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into()),
            master_port: master_port as u16,
        }))
    }

    /// Rows `first..first + rows` of a global batch of `batch` sequences that this rank trains on: the
    /// ranks' slices are disjoint, in rank order, and cover the batch.
    pub fn slice(&self, batch: usize) -> TrainResult<(usize, usize)> {
        if batch % self.size != 0 {
            return Err(TrainError::Config(format!(
                "a step's global batch of {batch} sequences does not split over {} processes\nHINT: choose train.batch_tokens (and batch_doubling_tokens) so that every step's batch in sequences is a multiple of the process count, or launch a process count that divides it",
                self.size
            )));
        }
        let rows = batch / self.size;
        Ok((self.rank * rows, rows))
    }
}

/// The variable that sets how long, in seconds, the rendezvous or one collective may wait for the other
/// processes before this one fails (default [`DEFAULT_TIMEOUT`]).
pub const TIMEOUT_VAR: &str = "REWARM_DIST_TIMEOUT";

/// 30 minutes, as torch.distributed's default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The collective timeout `REWARM_DIST_TIMEOUT` sets, or the default; an error naming the variable when
/// it is not a positive number of seconds.
pub fn timeout_from_env() -> TrainResult<Duration> {
    let Ok(value) = std::env::var(TIMEOUT_VAR) else {
        return Ok(DEFAULT_TIMEOUT);
    };
    match value.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() => Ok(Duration::from_secs_f64(s)),
        _ => Err(TrainError::Config(format!(
            "{TIMEOUT_VAR}={value:?} is not a positive number of seconds\nHINT: e.g. {TIMEOUT_VAR}=600, or unset it for 30 minutes"
        ))),
    }
}

/// A joined group of processes.
pub struct ProcessGroup {
    pub world: World,
    /// How long one collective may wait for the other processes.
    pub timeout: Duration,
    handle: *mut c_void,
    nccl: Option<nccl::Comm>,
}

// The handle is owned by this value and c10d's objects are thread-safe; tensors cross only by pointer.
unsafe impl Send for ProcessGroup {}

fn call(what: &str, f: impl FnOnce(*mut c_char, usize) -> c_int) -> TrainResult<()> {
    let mut error = [0 as c_char; 2048];
    if f(error.as_mut_ptr(), error.len()) == 0 {
        return Ok(());
    }
    // SAFETY: the shim wrote a NUL-terminated message into `error`.
    let message = unsafe { CStr::from_ptr(error.as_ptr()) }.to_string_lossy();
    Err(TrainError::Distributed(format!("{what}: {message}")))
}

impl ProcessGroup {
    /// Joins the group (blocks until every rank has); `device` decides how tensors are summed. The
    /// rendezvous and every collective fail after the timeout `REWARM_DIST_TIMEOUT` sets.
    pub fn join(world: &World, device: Device) -> TrainResult<ProcessGroup> {
        Self::join_with_timeout(world, device, timeout_from_env()?)
    }

    /// [`join`](Self::join) with the collective timeout given.
    pub fn join_with_timeout(
        world: &World,
        device: Device,
        timeout: Duration,
    ) -> TrainResult<ProcessGroup> {
        let host = CString::new(world.master_addr.clone())
            .map_err(|_| TrainError::Config("MASTER_ADDR contains a NUL byte".into()))?;
        let mut handle = std::ptr::null_mut();
        call(
            &format!(
                "joining {} processes at {}:{} as rank {}",
                world.size, world.master_addr, world.master_port, world.rank
            ),
            |error, len| unsafe {
                // SAFETY: `host` is a C string and `handle` a valid out pointer, both live for the call.
                rewarm_dist_init(
                    host.as_ptr(),
                    world.master_port as c_int,
                    world.rank as c_int,
                    world.size as c_int,
                    timeout.as_millis().min(c_long::MAX as u128) as c_long,
                    &mut handle,
                    error,
                    len,
                )
            },
        )?;
        let mut group = ProcessGroup {
            world: world.clone(),
            timeout,
            handle,
            nccl: None,
        };
        if let Device::Cuda(index) = device {
            group.nccl = Some(nccl::Comm::join(&group, index)?);
        }
        Ok(group)
    }

    /// Sums `tensor` over all processes in place; every process ends with the same bits. CPU tensors go
    /// through Gloo, CUDA tensors through NCCL (f32, f64 and bf16).
    pub fn all_reduce_sum(&self, tensor: &Tensor) -> TrainResult<()> {
        assert!(
            tensor.is_contiguous(),
            "all_reduce_sum needs a contiguous tensor"
        );
        let summed = match (&self.nccl, tensor.device()) {
            (Some(comm), Device::Cuda(_)) => comm.all_reduce_sum(tensor, self.timeout),
            (_, Device::Cpu) => call("Gloo", |error, len| unsafe {
                // SAFETY: the handle is live and the tensor outlives the (blocking) call.
                rewarm_dist_allreduce_sum(self.handle, tensor.as_ptr(), error, len)
            }),
            (None, device) => Err(TrainError::Distributed(format!(
                "all-reduce of a tensor on {device:?}: this group was joined for the CPU"
            ))),
            (Some(_), device) => Err(TrainError::Distributed(format!(
                "all-reduce of a tensor on {device:?}: not supported"
            ))),
        };
        summed.map_err(|e| self.collective_error(e))
    }

    /// A failed collective's error, naming this rank and what to look at.
    fn collective_error(&self, e: TrainError) -> TrainError {
        let cause = match e {
            TrainError::Distributed(message) => message,
            other => other.to_string(),
        };
        TrainError::Distributed(format!(
            "all-reduce on rank {} of {} failed (timeout {:.0} s): {}\nHINT: another process stopped, crashed or hung (its log says which and why); if a step can take longer than the timeout, raise {TIMEOUT_VAR} (seconds)",
            self.world.rank,
            self.world.size,
            self.timeout.as_secs_f64(),
            cause
        ))
    }

    /// Waits until every process has reached this point.
    pub fn barrier(&self) -> TrainResult<()> {
        self.all_reduce_sum(&Tensor::zeros([1], (Kind::Float, Device::Cpu)))
    }

    fn store_set(&self, key: &str, value: &[u8]) -> TrainResult<()> {
        let key = CString::new(key).expect("store keys have no NUL");
        call("store set", |error, len| unsafe {
            // SAFETY: key and value are live for the call; value has value.len() bytes.
            rewarm_dist_store_set(
                self.handle,
                key.as_ptr(),
                value.as_ptr(),
                value.len(),
                error,
                len,
            )
        })
    }

    fn store_get(&self, key: &str, value: &mut [u8]) -> TrainResult<()> {
        let key = CString::new(key).expect("store keys have no NUL");
        call("store get", |error, len| unsafe {
            // SAFETY: key is live; value has value.len() writable bytes.
            rewarm_dist_store_get(
                self.handle,
                key.as_ptr(),
                value.as_mut_ptr(),
                value.len(),
                error,
                len,
            )
        })
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.nccl.take();
        // SAFETY: the handle came from rewarm_dist_init and is freed once.
        unsafe { rewarm_dist_free(self.handle) }
    }
}

/// The few NCCL calls data parallelism needs, from `libnccl.so.2` opened at run time (PyTorch's CUDA
/// wheels ship it). Collectives run on the CUDA default stream, the one libtorch's kernels use, so they
/// are ordered after the backward pass that produced the gradients without any host synchronization.
mod nccl {
    use super::{ProcessGroup, TrainError, TrainResult};
    use std::ffi::{c_char, c_int, c_void, CStr};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    use tch::{Kind, Tensor};

    const NCCL_SUM: c_int = 0;

    /// `ncclUniqueId`: a C struct of 128 bytes, passed by value to ncclCommInitRank.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct UniqueId {
        internal: [u8; 128],
    }

    type GetUniqueId = unsafe extern "C" fn(*mut UniqueId) -> c_int;
    type CommInitRank = unsafe extern "C" fn(*mut *mut c_void, c_int, UniqueId, c_int) -> c_int;
    type AllReduce = unsafe extern "C" fn(
        *const c_void,
        *mut c_void,
        usize,
        c_int,
        c_int,
        *mut c_void,
        *mut c_void,
    ) -> c_int;
    type CommDestroy = unsafe extern "C" fn(*mut c_void) -> c_int;
    type CommGetAsyncError = unsafe extern "C" fn(*mut c_void, *mut c_int) -> c_int;
    type GetErrorString = unsafe extern "C" fn(c_int) -> *const c_char;

    /// `ncclInProgress`: an operation not finished yet (not an error).
    const NCCL_IN_PROGRESS: c_int = 7;

    pub struct Comm {
        comm: *mut c_void,
        all_reduce: AllReduce,
        destroy: CommDestroy,
        /// `ncclCommAbort`, which frees the communicator after a timeout or an asynchronous error.
        abort: CommDestroy,
        async_error: CommGetAsyncError,
        error_string: GetErrorString,
        aborted: AtomicBool,
    }

    fn open() -> TrainResult<*mut c_void> {
        crate::backend::cuda::open_library(&["libnccl.so.2", "libnccl.so"]).map_err(|e| {
            TrainError::Distributed(format!("{e}: NCCL is needed to sum gradients across GPUs\nHINT: run against a CUDA PyTorch's libtorch (LD_LIBRARY_PATH = its torch/lib; its nvidia-nccl wheel provides the library), or add NCCL's lib folder to LD_LIBRARY_PATH"))
        })
    }

    fn symbol<T: Copy>(lib: *mut c_void, name: &str) -> TrainResult<T> {
        // SAFETY: each caller names the NCCL function's C signature as T.
        unsafe { crate::backend::cuda::symbol(lib, name) }.map_err(TrainError::Distributed)
    }

    impl Comm {
        pub fn join(group: &ProcessGroup, device: usize) -> TrainResult<Comm> {
            let lib = open()?;
            let get_unique_id: GetUniqueId = symbol(lib, "ncclGetUniqueId")?;
            let init_rank: CommInitRank = symbol(lib, "ncclCommInitRank")?;
            let error_string: GetErrorString = symbol(lib, "ncclGetErrorString")?;
            let check = |what: &str, rc: c_int| -> TrainResult<()> {
                if rc == 0 {
                    return Ok(());
                }
                // SAFETY: ncclGetErrorString returns a static C string.
                let message = unsafe { CStr::from_ptr(error_string(rc)) }.to_string_lossy();
                Err(TrainError::Distributed(format!(
                    "{what}: NCCL error {rc}: {message}"
                )))
            };
            // NCCL binds its communicator to the current device.
            crate::backend::cuda::set_device(device).map_err(TrainError::Distributed)?;
            let mut id = UniqueId { internal: [0; 128] };
            if group.world.rank == 0 {
                // SAFETY: id is an ncclUniqueId to fill.
                check("ncclGetUniqueId", unsafe { get_unique_id(&mut id) })?;
                group.store_set("rewarm/nccl_unique_id", &id.internal)?;
            } else {
                group.store_get("rewarm/nccl_unique_id", &mut id.internal)?;
            }
            let mut comm = std::ptr::null_mut();
            check("ncclCommInitRank", unsafe {
                // SAFETY: comm is a valid out pointer; id is passed by value as NCCL's struct.
                init_rank(
                    &mut comm,
                    group.world.size as c_int,
                    id,
                    group.world.rank as c_int,
                )
            })?;
            Ok(Comm {
                comm,
                all_reduce: symbol(lib, "ncclAllReduce")?,
                destroy: symbol(lib, "ncclCommDestroy")?,
                abort: symbol(lib, "ncclCommAbort")?,
                async_error: symbol(lib, "ncclCommGetAsyncError")?,
                error_string,
                aborted: AtomicBool::new(false),
            })
        }

        /// Sums `tensor` over the ranks and waits until it is done, at most `timeout`.
        pub fn all_reduce_sum(&self, tensor: &Tensor, timeout: Duration) -> TrainResult<()> {
            if self.aborted.load(Ordering::SeqCst) {
                return Err(TrainError::Distributed(
                    "NCCL: the communicator was aborted after an earlier failure".into(),
                ));
            }
            let dtype = match tensor.kind() {
                Kind::Float => 7,
                Kind::Double => 8,
                Kind::BFloat16 => 9,
                kind => {
                    return Err(TrainError::Distributed(format!(
                        "NCCL all-reduce of {kind:?} tensors is not supported"
                    )))
                }
            };
            let ptr = tensor.data_ptr();
            // SAFETY: in-place all-reduce over the tensor's numel elements of its dtype, on the default
            // stream (null), which orders it with libtorch's kernels.
            let rc = unsafe {
                (self.all_reduce)(
                    ptr,
                    ptr,
                    tensor.numel(),
                    dtype,
                    NCCL_SUM,
                    self.comm,
                    std::ptr::null_mut(),
                )
            };
            if rc != 0 {
                return Err(self.error("ncclAllReduce", rc));
            }
            self.wait(timeout)
        }

        /// Waits until the default stream (the all-reduce and the kernels before it) is done, polling
        /// NCCL for an asynchronous error (a peer gone); after `timeout`, or on such an error, aborts
        /// the communicator so that no call blocks forever, and returns the error.
        fn wait(&self, timeout: Duration) -> TrainResult<()> {
            let started = Instant::now();
            loop {
                if crate::backend::cuda::default_stream_done().map_err(TrainError::Distributed)? {
                    return Ok(());
                }
                let mut state = 0;
                // SAFETY: the communicator is live (not aborted); state is a valid out pointer.
                let rc = unsafe { (self.async_error)(self.comm, &mut state) };
                if rc != 0 || (state != 0 && state != NCCL_IN_PROGRESS) {
                    self.abort();
                    return Err(self.error("NCCL", if rc != 0 { rc } else { state }));
                }
                if started.elapsed() > timeout {
                    self.abort();
                    return Err(TrainError::Distributed(format!(
                        "NCCL all-reduce did not finish within {:.0} s",
                        timeout.as_secs_f64()
                    )));
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        }

        fn abort(&self) {
            if !self.aborted.swap(true, Ordering::SeqCst) {
                // SAFETY: the communicator is aborted (and so freed) once, and never used after.
                unsafe { (self.abort)(self.comm) };
            }
        }

        fn error(&self, what: &str, rc: c_int) -> TrainError {
            // SAFETY: ncclGetErrorString returns a static C string.
            let message = unsafe { CStr::from_ptr((self.error_string)(rc)) }.to_string_lossy();
            TrainError::Distributed(format!("{what}: NCCL error {rc}: {message}"))
        }
    }

    impl Drop for Comm {
        fn drop(&mut self) {
            if !self.aborted.load(Ordering::SeqCst) {
                // SAFETY: the communicator is destroyed once, unless an abort freed it already.
                unsafe { (self.destroy)(self.comm) };
            }
        }
    }
}

/// Sums `tensors` over the group in one collective: they are flattened into one buffer, summed, and
/// copied back. Every process must pass the same shapes in the same order (the same model's gradients).
pub fn all_reduce_flat(group: &ProcessGroup, tensors: &[Tensor]) -> TrainResult<()> {
    if tensors.is_empty() {
        return Ok(());
    }
    let flat = Tensor::cat(
        &tensors.iter().map(|t| t.reshape([-1])).collect::<Vec<_>>(),
        0,
    );
    group.all_reduce_sum(&flat)?;
    let sizes: Vec<i64> = tensors.iter().map(|t| t.numel() as i64).collect();
    tch::no_grad(|| {
        for (t, part) in tensors.iter().zip(flat.split_with_sizes(&sizes, 0)) {
            t.shallow_clone().copy_(&part.view(t.size().as_slice()));
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn world_comes_from_the_torchrun_variables() {
        assert_eq!(World::from_vars(vars(&[])).unwrap(), None);
        let w = World::from_vars(vars(&[
            ("WORLD_SIZE", "4"),
            ("RANK", "3"),
            ("LOCAL_RANK", "1"),
            ("LOCAL_WORLD_SIZE", "2"),
            ("MASTER_ADDR", "node0"),
            ("MASTER_PORT", "29500"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((w.rank, w.size, w.local_rank, w.local_size), (3, 4, 1, 2));
        assert_eq!((w.master_addr.as_str(), w.master_port), ("node0", 29500));
        let e = World::from_vars(vars(&[("WORLD_SIZE", "2"), ("MASTER_PORT", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("RANK is not"), "{e}");
        let e = World::from_vars(vars(&[
            ("WORLD_SIZE", "2"),
            ("RANK", "2"),
            ("MASTER_PORT", "1"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("0 ≤ RANK < WORLD_SIZE"), "{e}");
    }

    /// Rank `rank` of `size` processes on this machine, the store on 127.0.0.1:`port`.
    fn local(rank: usize, size: usize, port: u16) -> World {
        World {
            rank,
            size,
            local_rank: rank,
            local_size: size,
            master_addr: "127.0.0.1".into(),
            master_port: port,
        }
    }

    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    /// Two ranks in two threads of this process (c10d allows it): Gloo sums their tensors, both get the
    /// same result, and the flat helper puts each part back in its tensor.
    #[test]
    fn gloo_sums_tensors_over_two_ranks() {
        let port = free_port();
        let ranks: Vec<_> = (0..2)
            .map(|rank| {
                std::thread::spawn(move || {
                    let group = ProcessGroup::join(&local(rank, 2, port), Device::Cpu).unwrap();
                    let k = (rank + 1) as f32;
                    let a = Tensor::from_slice(&[k, 2.0 * k]);
                    let b = Tensor::from_slice(&[10.0 * k]).reshape([1, 1]);
                    all_reduce_flat(&group, &[a.shallow_clone(), b.shallow_clone()]).unwrap();
                    group.barrier().unwrap();
                    (Vec::<f32>::try_from(&a).unwrap(), b.double_value(&[0, 0]))
                })
            })
            .collect();
        for r in ranks {
            let (a, b) = r.join().unwrap();
            assert_eq!(a, [3.0, 6.0]);
            assert_eq!(b, 30.0);
        }
    }

    /// A rank whose peer never joins the collective fails after the timeout, naming itself and the
    /// variable to raise, instead of waiting forever.
    #[test]
    fn a_collective_a_peer_never_joins_times_out_naming_the_rank() {
        let port = free_port();
        let world = move |rank| local(rank, 2, port);
        let timeout = Duration::from_secs(2);
        let (done, wait) = std::sync::mpsc::channel::<()>();
        // Rank 1 joins, then stays alive without calling the all-reduce until rank 0 has given up.
        let idle = std::thread::spawn(move || {
            let group = ProcessGroup::join_with_timeout(&world(1), Device::Cpu, timeout).unwrap();
            wait.recv().unwrap();
            drop(group);
        });
        let group = ProcessGroup::join_with_timeout(&world(0), Device::Cpu, timeout).unwrap();
        let started = std::time::Instant::now();
        let e = group
            .all_reduce_sum(&Tensor::ones([4], (Kind::Float, Device::Cpu)))
            .unwrap_err()
            .to_string();
        let waited = started.elapsed();
        done.send(()).unwrap();
        idle.join().unwrap();
        assert!(
            e.contains("all-reduce on rank 0 of 2 failed (timeout 2 s)")
                && e.contains("REWARM_DIST_TIMEOUT"),
            "{e}"
        );
        assert!(
            waited >= timeout,
            "failed after {waited:?}, before the timeout: {e}"
        );
    }

    #[test]
    fn ranks_take_disjoint_slices_that_cover_the_batch() {
        let world = |rank| local(rank, 4, 1);
        let slices: Vec<(usize, usize)> = (0..4).map(|r| world(r).slice(16).unwrap()).collect();
        assert_eq!(slices, [(0, 4), (4, 4), (8, 4), (12, 4)]);
        let e = world(0).slice(10).unwrap_err().to_string();
        assert!(e.contains("does not split over 4 processes"), "{e}");
    }
}
