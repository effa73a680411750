//! What ties the loop to the machine, below the model: the device (CPU or a CUDA GPU reached by loading
//! libtorch's CUDA library at run time), bf16 autocast, libtorch's fused AdamW kernel, data parallelism
//! over c10d (Gloo on CPU, NCCL on CUDA) and the host allocator's tuning. Each C++ shim (csrc/) has one
//! module here that wraps it in a safe function.

pub mod autocast;
pub mod cuda;
pub mod dist;
pub mod fused_adamw;
pub mod host_memory;

use crate::error::{TrainError, TrainResult};
use tch::Device;

/// `--device`: `cpu`, `cuda`, `cuda:N`, or none (CUDA if a GPU and a CUDA libtorch are there, else CPU).
pub fn parse_device(device: Option<&str>) -> TrainResult<Device> {
    let device = match device {
        None => {
            return Ok(match cuda::check_device(0) {
                Ok(()) => Device::Cuda(0),
                Err(_) => Device::Cpu,
            })
        }
        Some("cpu") => Device::Cpu,
        Some("cuda") => Device::Cuda(0),
        Some(d) => match d.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => Device::Cuda(n),
            None => {
                return Err(TrainError::Config(format!(
                    "--device {d}: expected cpu, cuda or cuda:N"
                )))
            }
        },
    };
    if let Device::Cuda(i) = device {
        if let Err(why) = cuda::check_device(i) {
            return Err(TrainError::Config(format!(
                "--device {}: {why}\nHINT: on a GPU machine, set LD_LIBRARY_PATH to the lib folder of a CUDA build of PyTorch 2.11 (python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), \"lib\"))'); or use --device cpu",
                device_name(device)
            )));
        }
    }
    Ok(device)
}

/// `cpu` or `cuda:N`, as `--device` spells it.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_bad_names_say_what_is_expected() {
        assert_eq!(parse_device(Some("cpu")).unwrap(), Device::Cpu);
        let e = parse_device(Some("gpu")).unwrap_err().to_string();
        assert!(e.contains("--device gpu") && e.contains("cuda:N"), "{e}");
        assert_eq!(device_name(Device::Cuda(3)), "cuda:3");
    }
}
