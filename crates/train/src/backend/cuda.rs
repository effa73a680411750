//! Reaching CUDA from a binary built against a CPU libtorch.
//!
//! libtorch's CUDA half (`libtorch_cuda.so`) registers its kernels and its `at::cuda` hooks when the
//! library is loaded. The default build links the CPU libraries only (CI and this project's build machine
//! have no CUDA toolkit), so rewarm opens `libtorch_cuda.so` at run time when CUDA is asked for: on a GPU
//! machine whose PyTorch provides it (`LD_LIBRARY_PATH` = that PyTorch's `torch/lib`), the same binary
//! then runs on the GPU. A binary linked against a CUDA libtorch already has it loaded; opening it again
//! is a no-op.
//!
//! The library must be loaded before anything asks libtorch about CUDA: libtorch looks its CUDA hooks up
//! once per process (seeding, pinning memory, counting devices and the first backward pass all ask), and
//! an answer of "no CUDA" sticks. The CLI resolves `--device` (which calls [`load`]) before anything else.

use std::ffi::{c_int, c_void, CStr, CString};
use std::sync::OnceLock;

/// Opens the first of `names` that the dynamic loader finds (already-loaded libraries included).
pub(crate) fn open_library(names: &[&str]) -> Result<*mut c_void, String> {
    let mut reasons = Vec::new();
    for name in names {
        let c = CString::new(*name).expect("no NUL");
        // SAFETY: dlopen with a valid C string; RTLD_GLOBAL so its symbols serve later-loaded code.
        let lib = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if !lib.is_null() {
            return Ok(lib);
        }
        // SAFETY: dlerror returns a C string describing the last failure (or null).
        let e = unsafe { libc::dlerror() };
        reasons.push(if e.is_null() {
            format!("{name}: not found")
        } else {
            unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
        });
    }
    Err(format!("could not load {}", reasons.join("; ")))
}

/// The function `name` of `lib` as `T`.
///
/// # Safety
/// `T` must be the C function pointer type of the symbol's true signature.
pub(crate) unsafe fn symbol<T: Copy>(lib: *mut c_void, name: &str) -> Result<T, String> {
    let c = CString::new(name).expect("no NUL");
    let p = unsafe { libc::dlsym(lib, c.as_ptr()) };
    if p.is_null() {
        return Err(format!("{name} not found"));
    }
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
    Ok(unsafe { std::mem::transmute_copy(&p) })
}

/// A function of the CUDA runtime libtorch itself loaded (as a dependency of libtorch_cuda, opened
/// globally by [`load`]), found by name in the process's global scope so that no second runtime (another
/// version, or a wheel's hash-named copy) is ever loaded.
///
/// # Safety
/// `T` must be the C function pointer type of the symbol's true signature.
unsafe fn cuda_runtime<T: Copy>(name: &str) -> Result<T, String> {
    load()?;
    unsafe { symbol(libc::RTLD_DEFAULT, name) }
        .map_err(|e| format!("{e} in the loaded CUDA runtime"))
}

/// Makes `index` the calling thread's current CUDA device (NCCL and cudaMemGetInfo act on it).
pub(crate) fn set_device(index: usize) -> Result<(), String> {
    type SetDevice = unsafe extern "C" fn(c_int) -> c_int;
    // SAFETY: cudaSetDevice's signature.
    let set: SetDevice = unsafe { cuda_runtime("cudaSetDevice")? };
    match unsafe { set(index as c_int) } {
        0 => Ok(()),
        rc => Err(format!(
            "cudaSetDevice({index}) failed with CUDA error {rc}"
        )),
    }
}

/// Whether all work queued on the legacy default stream (the one libtorch's kernels and rewarm's NCCL
/// calls use) has finished (`cudaStreamQuery(0)`); it does not block.
pub(crate) fn default_stream_done() -> Result<bool, String> {
    type StreamQuery = unsafe extern "C" fn(*mut c_void) -> c_int;
    const NOT_READY: c_int = 600;
    // SAFETY: cudaStreamQuery's signature; the null stream is the legacy default stream.
    let query: StreamQuery = unsafe { cuda_runtime("cudaStreamQuery")? };
    match unsafe { query(std::ptr::null_mut()) } {
        0 => Ok(true),
        NOT_READY => Ok(false),
        rc => Err(format!("cudaStreamQuery failed with CUDA error {rc}")),
    }
}

extern "C" {
    fn rewarm_pin_memory(tensor: *const torch_sys::C_tensor) -> *mut torch_sys::C_tensor;
}

/// A page-locked copy of the CPU tensor `t` (csrc/autocast.cpp: tch's `pin_memory` passes the device
/// argument libtorch 2.11 deprecates, which logs two warnings per call).
pub fn pinned(t: &tch::Tensor) -> tch::Tensor {
    // SAFETY: the shim returns a new tensor handle (owned by the returned Tensor) or null on error.
    let p = unsafe { rewarm_pin_memory(t.as_ptr()) };
    assert!(!p.is_null(), "pinning host memory failed");
    unsafe { tch::Tensor::from_ptr(p) }
}

/// Bytes in use on device `index` (total − free, cudaMemGetInfo): every process's allocations on it,
/// libtorch's cached blocks and the CUDA context included.
pub fn device_memory_in_use(index: usize) -> Result<u64, String> {
    device_memory(index).map(|(free, total)| total - free)
}

/// Free and total bytes of device `index` (cudaMemGetInfo).
pub fn device_memory(index: usize) -> Result<(u64, u64), String> {
    type MemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> c_int;
    set_device(index)?;
    // SAFETY: cudaMemGetInfo's signature; both out pointers are valid.
    let get: MemGetInfo = unsafe { cuda_runtime("cudaMemGetInfo")? };
    let (mut free, mut total) = (0usize, 0usize);
    match unsafe { get(&mut free, &mut total) } {
        0 => Ok((free as u64, total as u64)),
        rc => Err(format!("cudaMemGetInfo failed with CUDA error {rc}")),
    }
}

/// Loads libtorch's CUDA library once per process. `Err` says why CUDA cannot be used.
pub fn load() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            open_library(&["libtorch_cuda.so"])?;
            Ok(())
        })
        .clone()
}

/// Whether CUDA device `index` can be used, loading libtorch's CUDA library first; `Err` explains why not.
pub fn check_device(index: usize) -> Result<(), String> {
    load()?;
    let count = tch::Cuda::device_count() as usize;
    if index >= count {
        return Err(format!(
            "CUDA device {index} is not available ({count} device(s) visible)"
        ));
    }
    Ok(())
}
