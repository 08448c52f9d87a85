//! The stressors as commands in the target container (POSIX `sh`, works with busybox and dash):
//!
//! - CPU: `workers` busy loops in one exec. Each loop checks the clock every ~20,000 iterations
//!   and ends at its deadline by itself — also when the exec stream dies or scaletui is killed.
//!   A marker file in /dev/shm lets [`stop`] end them early: removing it ends the loops.
//! - Memory: `dd` writes N MiB to a file in /dev/shm (memory-backed, counted against the
//!   container), after [`shm_free_mib`] checked the free space with `df`. The file is removed by
//!   three independent paths: the holder reads stdin and removes the file on EOF (stop, or the
//!   connection cut), a shell trap removes it on exit or signals, and [`stop`] runs an explicit
//!   `rm -f` in a second exec.

use std::time::Duration;

use super::exec::{self, ExecControl, ExecExit, PodExec};
use crate::engine::cluster::{ClusterError, ClusterResult};
use crate::engine::types::StressKind;

/// Where the stressors keep their files.
pub const SHM: &str = "/dev/shm";
/// Printed by the CPU stressor once its loops run.
pub const CPU_STARTED: &str = "scaletui-cpu-started";
/// Printed by the memory stressor once the file is written.
pub const MEM_ALLOCATED: &str = "scaletui-mem-allocated";
/// Printed when `dd` could not write the whole file.
pub const MEM_NO_SPACE: &str = "scaletui-mem-no-space";
/// Inner loop iterations between clock checks (tens of milliseconds of shell work).
const SPIN: u32 = 20_000;

/// The file of a stressor (`tag` is unique per scaletui process and stressor).
pub fn file_for(kind: StressKind, tag: &str) -> String {
    format!("{SHM}/scaletui-{}-{tag}", kind.as_str())
}

/// The CPU stressor: `workers` self-terminating busy loops for `duration_s` seconds.
pub fn cpu_script(file: &str, workers: u32, duration_s: u64) -> String {
    format!(
        r#"f='{file}'
end=$(( $(date +%s) + {duration_s} ))
: > "$f" 2>/dev/null || f=''
spin() {{
  while [ "$(date +%s)" -lt "$end" ]; do
    i=0
    while [ "$i" -lt {SPIN} ]; do i=$((i+1)); done
    if [ -n "$f" ] && [ ! -e "$f" ]; then return 0; fi
  done
}}
n=0
while [ "$n" -lt {workers} ]; do spin & n=$((n+1)); done
echo {CPU_STARTED}
wait
if [ -n "$f" ]; then rm -f "$f"; fi
"#
    )
}

/// The memory stressor: write `mib` MiB to `file` and hold it until stdin closes.
pub fn memory_script(file: &str, mib: u64) -> String {
    format!(
        r#"f='{file}'
trap 'rm -f "$f"' EXIT
trap 'exit 143' INT TERM HUP
if ! dd if=/dev/zero of="$f" bs=1048576 count={mib} 2>/dev/null; then echo {MEM_NO_SPACE}; exit 1; fi
echo {MEM_ALLOCATED}
while read -r line; do :; done
"#
    )
}

fn sh(script: String) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script]
}

/// Free KiB of the file system in `df -k -P` (or plain `df -k`) output, as MiB. Long device
/// names may wrap a line; the fields are counted across lines.
pub fn parse_df_free_mib(out: &str) -> Option<f64> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next()?;
    if !header.to_ascii_lowercase().contains("avail") {
        return None;
    }
    let fields: Vec<&str> = lines.flat_map(str::split_whitespace).collect();
    // Filesystem, 1K-blocks, Used, Available, Capacity, Mounted on.
    let avail: f64 = fields.get(3)?.parse().ok()?;
    Some(avail / 1024.0)
}

/// Free MiB in the container's /dev/shm.
pub async fn shm_free_mib(exec: &dyn PodExec, pod: &str, container: &str) -> ClusterResult<f64> {
    let cmd = vec!["df".into(), "-k".into(), "-P".into(), SHM.into()];
    let out = match exec::run(exec, pod, container, cmd, "df").await {
        Ok(o) => o,
        // Some df builds have no -P.
        Err(ClusterError::Other(_)) => {
            exec::run(exec, pod, container, vec!["df".into(), "-k".into(), SHM.into()], "df").await?
        }
        Err(e) => return Err(e),
    };
    parse_df_free_mib(&out).ok_or_else(|| {
        ClusterError::Other(format!(
            "cannot read the free space of {SHM} in pod {pod} from df: {}",
            exec::first_words(&out)
        ))
    })
}

/// A stressor running in a pod.
#[derive(Debug)]
pub struct Running {
    pub pod: String,
    pub kind: StressKind,
    pub file: String,
    control: ExecControl,
}

/// How long a stressor may take to report that it runs.
const START_TIMEOUT: Duration = Duration::from_secs(20);

fn start_failure(
    what: &str,
    pod: &str,
    container: &str,
    x: Option<ExecExit>,
    stdout: &str,
    stderr: &str,
) -> ClusterError {
    match x {
        Some(x) if exec::missing_command(&x, stderr).is_some() => {
            exec::refused_missing(pod, container, &exec::missing_command(&x, stderr).unwrap_or_default())
        }
        Some(ExecExit::Failure { message, .. }) => ClusterError::Other(format!(
            "the {what} stressor in pod {pod} ended at once: {}",
            exec::first_words(if stderr.trim().is_empty() { &message } else { stderr })
        )),
        Some(ExecExit::Success) => ClusterError::Other(format!(
            "the {what} stressor in pod {pod} ended at once: {}",
            exec::first_words(if stdout.trim().is_empty() { stderr } else { stdout })
        )),
        Some(ExecExit::Lost(why)) => ClusterError::Other(format!("the {what} stressor in pod {pod}: {why}")),
        None => ClusterError::Other(format!("the {what} stressor in pod {pod} did not start within 20 s")),
    }
}

/// Start the CPU stressor.
pub async fn start_cpu(
    exec: &dyn PodExec,
    pod: &str,
    container: &str,
    tag: &str,
    workers: u32,
    duration_s: f64,
) -> ClusterResult<Running> {
    let file = file_for(StressKind::Cpu, tag);
    let secs = duration_s.ceil().max(1.0) as u64;
    let mut s = exec.exec(pod, container, sh(cpu_script(&file, workers, secs)), false).await?;
    if let Err(x) = s.wait_for_line(CPU_STARTED, START_TIMEOUT).await {
        // The loops may run even when the stream broke: end them.
        let _ = remove(exec, pod, container, &file).await;
        return Err(start_failure("CPU", pod, container, x, s.stdout(), s.stderr()));
    }
    Ok(Running { pod: pod.into(), kind: StressKind::Cpu, file, control: s.drain() })
}

/// Start the memory stressor (the caller checked the free space first).
pub async fn start_memory(
    exec: &dyn PodExec,
    pod: &str,
    container: &str,
    tag: &str,
    mib: u64,
) -> ClusterResult<Running> {
    let file = file_for(StressKind::Memory, tag);
    let mut s = exec.exec(pod, container, sh(memory_script(&file, mib)), true).await?;
    if let Err(x) = s.wait_for_line(MEM_ALLOCATED, START_TIMEOUT).await {
        s.close_stdin();
        let _ = remove(exec, pod, container, &file).await;
        if s.stdout().contains(MEM_NO_SPACE) {
            return Err(ClusterError::Unsupported(format!(
                "{SHM} in pod {pod} is too small for {mib} MiB (the memory stressor writes there); ask for less \
                 (the free space is checked with df) or give the pod a larger /dev/shm (an emptyDir with \
                 medium: Memory mounted at /dev/shm)"
            )));
        }
        return Err(start_failure("memory", pod, container, x, s.stdout(), s.stderr()));
    }
    Ok(Running { pod: pod.into(), kind: StressKind::Memory, file, control: s.drain() })
}

async fn remove(exec: &dyn PodExec, pod: &str, container: &str, file: &str) -> ClusterResult<()> {
    exec::run(exec, pod, container, vec!["rm".into(), "-f".into(), file.into()], "rm").await.map(|_| ())
}

/// Stop a stressor and clean up: close its stdin (the memory holder removes its file), remove
/// the file explicitly (ends the CPU loops; removes the memory file even when the stream was
/// cut), then cut the stream. A pod that is gone took its /dev/shm with it: nothing to clean.
pub async fn stop(exec: &dyn PodExec, mut r: Running, container: &str) -> ClusterResult<()> {
    r.control.close_stdin();
    let result = remove(exec, &r.pod, container, &r.file).await;
    r.control.abort();
    match result {
        Ok(()) | Err(ClusterError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_output_forms() {
        let busybox = "Filesystem           1024-blocks    Used Available Capacity Mounted on\n\
                       shm                      65536     10240     55296  16% /dev/shm\n";
        assert_eq!(parse_df_free_mib(busybox), Some(54.0));
        let wrapped = "Filesystem     1K-blocks  Used Available Use% Mounted on\n\
                       /dev/mapper/a-very-long-volume-group-name\n\
                       \t65536 0 65536 0% /dev/shm\n";
        assert_eq!(parse_df_free_mib(wrapped), Some(64.0));
        assert_eq!(parse_df_free_mib("df: /dev/shm: No such file or directory\n"), None);
        assert_eq!(parse_df_free_mib(""), None);
    }

    #[test]
    fn scripts_are_single_quoted_and_self_terminating() {
        let f = file_for(StressKind::Cpu, "12-3");
        assert_eq!(f, "/dev/shm/scaletui-cpu-12-3");
        let s = cpu_script(&f, 4, 300);
        assert!(s.contains("end=$(( $(date +%s) + 300 ))"), "{s}");
        assert!(s.contains("[ \"$n\" -lt 4 ]"));
        assert!(s.contains("echo scaletui-cpu-started"));
        let m = memory_script(&file_for(StressKind::Memory, "1"), 50);
        assert!(m.contains("count=50") && m.contains("trap 'rm -f \"$f\"' EXIT") && m.contains("read -r line"), "{m}");
    }
}
