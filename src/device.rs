//! Choosing where the models run.
//!
//! The choice is made once per process from `--device` and never changed behind the user's back: `auto`
//! takes CUDA only when this build has it and a GPU answers; an explicit `cuda` that cannot be honoured is
//! an error, not a quiet fall-back to the CPU. On the CPU, [`init_cpu_threads`] sets up the thread pool
//! the products run on.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use crate::error::{Error, Result};

/// Sets up the process's thread pool for the CPU products, with `threads` threads (default:
/// `RAYON_NUM_THREADS`, else one per core), the calling thread one of them. Call it once, before
/// any model runs; a pool that already exists is kept. A decoding step runs a few hundred parallel
/// products, and each one handed to the pool from a thread outside it put that thread to sleep and
/// woke a worker: on 2 Zen 3 cores a step took 41.7-43.0 ms that way and 37.6-38.6 ms from inside
/// (`examples/decode_bench`, context 300). A thread of the pool that waits for another thread must
/// keep running the pool's work meanwhile (`rayon::yield_now`), or work handed in by that thread
/// can wait on it.
pub fn init_cpu_threads(threads: Option<usize>) {
    if let Some(n) = threads {
        // candle's CPU kernels size their work from RAYON_NUM_THREADS; set it before any pool starts.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    // As rayon itself would: `RAYON_NUM_THREADS`, else one per core.
    let n = threads
        .or_else(|| {
            std::env::var("RAYON_NUM_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
        })
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
    let pool = rayon::ThreadPoolBuilder::new().num_threads(n);
    // With one thread there is nothing to hand over, and the calling thread would have to be
    // given every piece of work by hand.
    let _ = match n {
        1 => pool.build_global(),
        _ => pool.use_current_thread().build_global(),
    };
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(Self::Cuda)
                    .map_err(|_| format!("`{s}`: the GPU ordinal after `cuda:` must be a number")),
                None => Err(format!("`{s}`: expected auto, cpu, cuda or cuda:N")),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Whether this binary was compiled with the CUDA backend.
pub const fn cuda_compiled() -> bool {
    cfg!(feature = "cuda")
}

/// Turns the request into a candle device, or explains why it cannot be had.
pub fn select(spec: DeviceSpec) -> Result<Device> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(n) => {
            if !cuda_compiled() {
                return Err(Error::Device(format!(
                    "--device cuda:{n} was asked for, but this sift was built without CUDA; \
                     rebuild with `cargo build --release --features cuda`, or use --device cpu"
                )));
            }
            Device::new_cuda(n).map_err(|e| {
                Error::Device(format!(
                    "--device cuda:{n} was asked for, but no CUDA GPU {n} answered ({e}); \
                     check `nvidia-smi`, or use --device cpu"
                ))
            })
        }
        DeviceSpec::Auto => {
            if cuda_compiled() {
                if let Ok(d) = Device::new_cuda(0) {
                    return Ok(d);
                }
            }
            Ok(Device::Cpu)
        }
    }
}

/// One line for the stderr banner, e.g. `cpu (2 threads)` or `cuda:0`.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => format!("cpu ({} threads)", candle_core::utils::get_num_threads()),
        Device::Cuda(_) => match device.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            _ => "cuda".to_string(),
        },
        Device::Metal(_) => "metal".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_specs() {
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        assert_eq!("CPU".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert!("tpu".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn explicit_cuda_without_cuda_build_is_an_error() {
        if cuda_compiled() {
            return;
        }
        let err = select(DeviceSpec::Cuda(0)).unwrap_err().to_string();
        assert!(err.contains("built without CUDA"), "{err}");
        assert!(matches!(select(DeviceSpec::Auto).unwrap(), Device::Cpu));
    }
}
