//! Commands in a container: the [`PodExec`] trait (kube's WebSocket exec in production, fakes in
//! tests) and [`ExecSession`], a running command's output, stdin and exit status.

use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

use super::errors::{self, Target};
use crate::engine::cluster::{ClusterError, ClusterResult};

/// How a command ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecExit {
    Success,
    /// The command failed (`exit_code`) or could not start (`message` says why, e.g. no shell).
    Failure {
        message: String,
        exit_code: Option<i32>,
    },
    /// The stream ended without an exit status (connection cut, stream closed).
    Lost(String),
}

/// Output of a running command.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(ExecExit),
}

/// A command running in a container. Dropping it cuts the stream (the command itself goes on in
/// the container, as with any exec: that is why the stressors end or clean up by themselves).
pub struct ExecSession {
    events: mpsc::Receiver<ExecEvent>,
    control: ExecControl,
    stdout: String,
    stderr: String,
    exit: Option<ExecExit>,
}

impl std::fmt::Debug for ExecSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSession").field("exit", &self.exit).finish_non_exhaustive()
    }
}

/// Text kept of a command's output (the stressors print one line).
const KEEP_BYTES: usize = 16 * 1024;

impl ExecSession {
    /// A session fed by `events`; `stdin_close` is signalled to close the command's stdin, `task`
    /// is aborted to cut the stream.
    pub fn new(
        events: mpsc::Receiver<ExecEvent>,
        stdin_close: Option<oneshot::Sender<()>>,
        task: Option<tokio::task::AbortHandle>,
    ) -> Self {
        let control = ExecControl { stdin_close, task };
        Self { events, control, stdout: String::new(), stderr: String::new(), exit: None }
    }

    /// Close the command's stdin (it reads EOF).
    pub fn close_stdin(&mut self) {
        self.control.close_stdin();
    }

    pub fn stdout(&self) -> &str {
        &self.stdout
    }

    pub fn stderr(&self) -> &str {
        &self.stderr
    }

    /// The exit, once seen.
    pub fn exit(&self) -> Option<&ExecExit> {
        self.exit.as_ref()
    }

    fn keep(buf: &mut String, bytes: &[u8]) {
        if buf.len() < KEEP_BYTES {
            buf.push_str(&String::from_utf8_lossy(bytes));
        }
    }

    /// Take the next event into the kept output; `false` when there are no more.
    async fn pump(&mut self) -> bool {
        match self.events.recv().await {
            Some(ExecEvent::Stdout(b)) => Self::keep(&mut self.stdout, &b),
            Some(ExecEvent::Stderr(b)) => Self::keep(&mut self.stderr, &b),
            Some(ExecEvent::Exit(x)) => self.exit = Some(x),
            None => {
                if self.exit.is_none() {
                    self.exit = Some(ExecExit::Lost("the stream ended".into()));
                }
                return false;
            }
        }
        true
    }

    /// Wait until stdout has a line equal to `marker`. `Err` with the exit when the command ended
    /// first, or `None` on timeout.
    pub async fn wait_for_line(&mut self, marker: &str, timeout: Duration) -> Result<(), Option<ExecExit>> {
        let seen = |s: &str| s.lines().any(|l| l.trim() == marker);
        let waiting = async {
            loop {
                if seen(&self.stdout) {
                    return Ok(());
                }
                if let Some(x) = &self.exit {
                    return Err(Some(x.clone()));
                }
                if !self.pump().await && !seen(&self.stdout) {
                    return Err(self.exit.clone());
                }
            }
        };
        tokio::time::timeout(timeout, waiting).await.unwrap_or(Err(None))
    }

    /// Run to the end (or `timeout`): the exit, `None` on timeout.
    pub async fn finish(&mut self, timeout: Duration) -> Option<ExecExit> {
        let waiting = async {
            while self.exit.is_none() {
                if !self.pump().await {
                    break;
                }
            }
            self.exit.clone()
        };
        tokio::time::timeout(timeout, waiting).await.ok().flatten()
    }

    /// Keep reading output in the background so the command never blocks on a full pipe; the
    /// returned control closes its stdin or cuts it.
    pub fn drain(mut self) -> ExecControl {
        let control = std::mem::take(&mut self.control);
        tokio::spawn(async move { while self.exit.is_none() && self.pump().await {} });
        control
    }
}

/// Control of a running command: close its stdin, cut its stream (also when dropped).
#[derive(Debug, Default)]
pub struct ExecControl {
    stdin_close: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::AbortHandle>,
}

impl ExecControl {
    /// Close the command's stdin (it reads EOF).
    pub fn close_stdin(&mut self) {
        if let Some(tx) = self.stdin_close.take() {
            let _ = tx.send(());
        }
    }

    /// Cut the stream.
    pub fn abort(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for ExecControl {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Runs commands in containers.
#[async_trait]
pub trait PodExec: Send + Sync {
    /// Start `command` in `container` of `pod`. With `stdin`, the command's stdin stays open until
    /// [`ExecSession::close_stdin`] or the stream is cut.
    async fn exec(&self, pod: &str, container: &str, command: Vec<String>, stdin: bool) -> ClusterResult<ExecSession>;
}

/// The exit a `Status` on the exec error channel describes.
pub fn exit_of(status: &Status) -> ExecExit {
    if status.status.as_deref() == Some("Success") {
        return ExecExit::Success;
    }
    let exit_code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.trim().parse().ok());
    ExecExit::Failure { message: status.message.clone().unwrap_or_default(), exit_code }
}

/// kube's WebSocket exec.
pub struct KubeExec {
    pub api: Api<Pod>,
    pub target: Target,
}

#[async_trait]
impl PodExec for KubeExec {
    async fn exec(&self, pod: &str, container: &str, command: Vec<String>, stdin: bool) -> ClusterResult<ExecSession> {
        let ap = AttachParams {
            container: Some(container.to_string()),
            stdin,
            stdout: true,
            stderr: true,
            tty: false,
            ..AttachParams::default()
        };
        let attached = tokio::time::timeout(Duration::from_secs(15), self.api.exec(pod, command, &ap))
            .await
            .map_err(|_| errors::timed_out(errors::exec_op(), &self.target.server, 15.0))?;
        let mut attached = attached.map_err(|e| match e {
            kube::Error::Api(s) if s.code == 400 && s.message.contains("container") => ClusterError::Unsupported(
                format!("cannot exec into pod {pod}: {} (set cluster.container to a container of the pod)", s.message),
            ),
            e => errors::map(e, errors::exec_op(), pod, &self.target),
        })?;
        let (tx, rx) = mpsc::channel(64);
        let (close_tx, mut close_rx) = oneshot::channel::<()>();
        let mut stdout = attached.stdout();
        let mut stderr = attached.stderr();
        let mut stdin_w = attached.stdin();
        let status = attached.take_status();
        let task = tokio::spawn(async move {
            let mut out_buf = vec![0u8; 4096];
            let mut err_buf = vec![0u8; 4096];
            let mut close_pending = stdin_w.is_some();
            loop {
                tokio::select! {
                    _ = &mut close_rx, if close_pending => {
                        close_pending = false;
                        stdin_w = None;
                    }
                    n = async { match stdout.as_mut() { Some(r) => r.read(&mut out_buf).await, None => Ok(0) } },
                        if stdout.is_some() => match n {
                        Ok(n) if n > 0 => { let _ = tx.send(ExecEvent::Stdout(out_buf[..n].to_vec())).await; }
                        _ => stdout = None,
                    },
                    n = async { match stderr.as_mut() { Some(r) => r.read(&mut err_buf).await, None => Ok(0) } },
                        if stderr.is_some() => match n {
                        Ok(n) if n > 0 => { let _ = tx.send(ExecEvent::Stderr(err_buf[..n].to_vec())).await; }
                        _ => stderr = None,
                    },
                    else => break,
                }
                if stdout.is_none() && stderr.is_none() {
                    break;
                }
            }
            drop(stdin_w);
            let exit = match status {
                Some(s) => match s.await {
                    Some(st) => exit_of(&st),
                    None => ExecExit::Lost("the stream ended without an exit status".into()),
                },
                None => ExecExit::Lost("no exit status".into()),
            };
            let _ = tx.send(ExecEvent::Exit(exit)).await;
            drop(attached);
        });
        Ok(ExecSession::new(rx, Some(close_tx), Some(task.abort_handle())))
    }
}

/// The executable a failed exec could not find (`sh`, `df`, `dd`), from the runtime's message
/// (`exec: "sh": executable file not found in $PATH`) or the shell's (`sh: dd: not found`).
pub fn missing_command(x: &ExecExit, stderr: &str) -> Option<String> {
    if let ExecExit::Failure { message, .. } = x
        && (message.contains("executable file not found") || message.contains("no such file or directory"))
        && let Some(rest) = message.split("exec: \"").nth(1)
    {
        return rest.split('"').next().filter(|n| !n.is_empty()).map(String::from);
    }
    stderr.lines().find_map(|l| {
        let l = l.trim().strip_suffix(": not found")?;
        l.rsplit(": ").next().filter(|n| !n.is_empty() && !n.contains(' ')).map(String::from)
    })
}

/// The stressors need `sh` (and `df`, `dd`) in the container.
pub fn refused_missing(pod: &str, container: &str, command: &str) -> ClusterError {
    let what = if command == "sh" { "no shell (sh)".to_string() } else { format!("no `{command}`") };
    ClusterError::Unsupported(format!(
        "exec refused in pod {pod}: container {container} has {what}; the stressors need sh, df and dd — use an \
         image that has them (e.g. nginx:1.27-alpine) or set cluster.container to a container that does"
    ))
}

/// Run a short command to its end and return stdout; a failure becomes an error naming `what`.
pub async fn run(
    exec: &dyn PodExec,
    pod: &str,
    container: &str,
    command: Vec<String>,
    what: &str,
) -> ClusterResult<String> {
    let mut s = exec.exec(pod, container, command, false).await?;
    match s.finish(Duration::from_secs(20)).await {
        Some(ExecExit::Success) => Ok(s.stdout().to_string()),
        Some(x) if missing_command(&x, s.stderr()).is_some() => {
            Err(refused_missing(pod, container, &missing_command(&x, s.stderr()).unwrap_or_default()))
        }
        Some(ExecExit::Failure { message, exit_code }) => Err(ClusterError::Other(format!(
            "{what} in pod {pod} failed{}: {}",
            exit_code.map(|c| format!(" (exit {c})")).unwrap_or_default(),
            first_words(if s.stderr().trim().is_empty() { &message } else { s.stderr() })
        ))),
        Some(ExecExit::Lost(why)) => Err(ClusterError::Other(format!("{what} in pod {pod}: {why}"))),
        None => Err(ClusterError::Other(format!("{what} in pod {pod}: no answer within 20 s"))),
    }
}

/// The first line or so of a message.
pub fn first_words(s: &str) -> String {
    let line = s.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() > 200 { line.chars().take(200).chain("…".chars()).collect() } else { line.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: serde_json::Value) -> Status {
        serde_json::from_value(json).expect("status")
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(exit_of(&status(serde_json::json!({"metadata": {}, "status": "Success"}))), ExecExit::Success);
        let x = exit_of(&status(serde_json::json!({
            "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}
        })));
        assert!(matches!(x, ExecExit::Failure { exit_code: Some(3), .. }), "{x:?}");
        let x = exit_of(&status(serde_json::json!({
            "metadata": {}, "status": "Failure", "reason": "InternalError",
            "message": "Internal error occurred: error executing command in container: failed to exec in container: failed to start exec \"abc\": OCI runtime exec failed: exec failed: unable to start container process: exec: \"sh\": executable file not found in $PATH: unknown"
        })));
        assert_eq!(missing_command(&x, "").as_deref(), Some("sh"), "{x:?}");
        let failed = ExecExit::Failure { message: "exit 127".into(), exit_code: Some(127) };
        assert_eq!(missing_command(&failed, "sh: dd: not found\n").as_deref(), Some("dd"), "busybox");
        assert_eq!(missing_command(&failed, "sh: 1: df: not found\n").as_deref(), Some("df"), "dash");
        assert_eq!(missing_command(&failed, "dd: error writing: No space left on device\n"), None);
        assert!(refused_missing("p", "nginx", "sh").to_string().contains("no shell (sh)"));
    }

    #[tokio::test]
    async fn session_waits_for_a_marker_and_reports_early_exits() {
        let (tx, rx) = mpsc::channel(8);
        let mut s = ExecSession::new(rx, None, None);
        tx.send(ExecEvent::Stdout(b"hel".to_vec())).await.expect("send");
        tx.send(ExecEvent::Stdout(b"lo\nready\n".to_vec())).await.expect("send");
        assert_eq!(s.wait_for_line("ready", Duration::from_secs(1)).await, Ok(()));
        let (tx, rx) = mpsc::channel(8);
        let mut s = ExecSession::new(rx, None, None);
        tx.send(ExecEvent::Stderr(b"dd: No space left on device\n".to_vec())).await.expect("send");
        tx.send(ExecEvent::Exit(ExecExit::Failure { message: "x".into(), exit_code: Some(1) })).await.expect("send");
        let r = s.wait_for_line("ready", Duration::from_secs(1)).await;
        assert!(matches!(r, Err(Some(ExecExit::Failure { exit_code: Some(1), .. }))), "{r:?}");
        assert!(s.stderr().contains("No space"));
        let (_tx, rx) = mpsc::channel(8);
        let mut s = ExecSession::new(rx, None, None);
        assert_eq!(s.wait_for_line("ready", Duration::from_millis(20)).await, Err(None), "timeout");
    }
}
