//! Lambda functions as local processes under a Lambda Runtime API that devstack serves.
//!
//! Each instance (one process, like one Lambda sandbox) gets its own Runtime API on an
//! ephemeral port (`AWS_LAMBDA_RUNTIME_API`). An instance starts on first use (a cold start,
//! timed from process start to its first `GET /runtime/invocation/next`), is reused while it
//! is healthy, and is killed when an invocation outlives the function's timeout or when it
//! crashes; the next invocation starts a fresh one. Concurrent invocations start more
//! instances, up to `max_instances` per function, then wait for one to be free.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot, watch};

use crate::functions::FunctionSpec;

/// How long an instance may take to reach its first `/next` (Lambda's init limit).
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an invocation produced no response.
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeError {
    /// The handler returned an error (`/invocation/{id}/error`).
    Function { error_type: String, message: String },
    /// The invocation outlived the function's timeout; the instance was killed.
    Timeout(Duration),
    /// The process exited during init or the invocation.
    Crashed(String),
    /// Init failed (`/runtime/init/error`) or did not finish in time.
    Init(String),
    /// No such function, or its binary is missing.
    Unavailable(String),
}

/// A successful invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    /// Set when this invocation started the instance: process start to first `/next`.
    pub init: Option<Duration>,
    pub duration: Duration,
}

/// One job handed to an instance's `/next`.
struct Job {
    request_id: String,
    payload: Bytes,
    deadline_ms: u128,
    function_arn: String,
    trace_id: String,
}

type Outcome = Result<Bytes, InvokeError>;

/// The Runtime API state of one instance.
struct ApiState {
    jobs: Mutex<mpsc::Receiver<Job>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// Fires once, at the first `/next` (Ok) or at `/init/error` (Err).
    ready: Mutex<Option<oneshot::Sender<Result<(), String>>>>,
}

/// One running process.
struct Instance {
    jobs: mpsc::Sender<Job>,
    state: Arc<ApiState>,
    /// `Some(description)` once the process has exited.
    exited: watch::Receiver<Option<String>>,
    kill: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    /// The process id, while it runs (benchmarks read its memory from /proc).
    pid: Option<u32>,
}

impl Instance {
    fn is_alive(&self) -> bool {
        self.exited.borrow().is_none()
    }

    /// Kills the process and closes its runtime API.
    fn stop(self) {
        drop(self);
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        self.server.abort();
    }
}

/// The processes of a pool.
#[derive(Default)]
struct Processes {
    /// Set by `stop`: no process starts any more.
    closed: bool,
    /// Per running process: its kill switch and its exit, removed when it exits.
    live: HashMap<u64, Live>,
}

struct Live {
    kill: oneshot::Sender<()>,
    /// `Some` once the process has exited and been reaped.
    exited: watch::Receiver<Option<String>>,
}

struct Pool {
    spec: FunctionSpec,
    binary: PathBuf,
    function_arn: String,
    idle: std::sync::Mutex<Vec<Instance>>,
    slots: Semaphore,
    /// Every running process, and whether more may start: one lock for both, so that a
    /// process is either spawned (and registered) before `stop` closes the pool, and then
    /// killed and waited for by it, or not spawned at all.
    processes: Arc<std::sync::Mutex<Processes>>,
    /// Invocations so far (started, whatever their outcome).
    invocations: std::sync::atomic::AtomicU64,
    /// Read-held by the function's pollers during a batch, written by disabling them.
    polling: tokio::sync::RwLock<()>,
    /// Where its invocations and log lines are shown (`/__devstack/`).
    console: Arc<crate::console::Console>,
    /// The cgroup (its directory) each process is moved into: a benchmark's CPU share, as
    /// Lambda gives one by memory size.
    cgroup: Option<(PathBuf, Confinement)>,
}

/// Every function of the stack, ready to be invoked.
#[derive(Clone)]
pub struct Runtime {
    pools: Arc<HashMap<String, Arc<Pool>>>,
    down: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Functions whose queue event sources are disabled (an event source mapping with
    /// `Enabled: false`): their messages wait in the queue.
    paused: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The functions' roles, where devstack enforces them (the gateway checks the
    /// execute-api:Invoke calls of the functions against them).
    iam: Option<Arc<crate::iam::Iam>>,
    console: Arc<crate::console::Console>,
}

impl Runtime {
    /// `bin_dir` holds the binaries cargo built; `arn_prefix` is `arn:aws:lambda:REGION:ACCOUNT:function:`.
    pub fn new(functions: Vec<FunctionSpec>, bin_dir: PathBuf, arn_prefix: &str, max_instances: usize) -> Self {
        let console = Arc::new(crate::console::Console::default());
        let pools = functions
            .into_iter()
            .map(|spec| {
                let pool = Pool {
                    binary: bin_dir.join(&spec.binary),
                    function_arn: format!("{arn_prefix}{}", spec.name),
                    spec,
                    idle: std::sync::Mutex::new(Vec::new()),
                    slots: Semaphore::new(max_instances.max(1)),
                    processes: Arc::default(),
                    invocations: Default::default(),
                    polling: tokio::sync::RwLock::new(()),
                    console: console.clone(),
                    cgroup: None,
                };
                (pool.spec.name.clone(), Arc::new(pool))
            })
            .collect();
        Self { pools: Arc::new(pools), down: Arc::default(), paused: Arc::default(), iam: None, console }
    }

    /// The same functions, each process in the cgroup `dir` (for example a CPU quota), from
    /// when `confinement` says. Called on a new runtime, before it is cloned or has run anything.
    pub fn in_cgroup(mut self, dir: &std::path::Path, confinement: Confinement) -> Self {
        let pools = Arc::get_mut(&mut self.pools).expect("in_cgroup is called on a new runtime");
        for pool in pools.values_mut() {
            Arc::get_mut(pool).expect("in_cgroup is called on a new runtime").cgroup =
                Some((dir.to_owned(), confinement));
        }
        self
    }

    /// What the functions did, for the console.
    pub fn console(&self) -> &Arc<crate::console::Console> {
        &self.console
    }

    /// The same functions, running under their roles.
    pub fn with_iam(mut self, iam: Arc<crate::iam::Iam>) -> Self {
        self.iam = Some(iam);
        self
    }

    pub fn iam(&self) -> Option<&crate::iam::Iam> {
        self.iam.as_deref()
    }

    pub fn functions(&self) -> impl Iterator<Item = &FunctionSpec> {
        self.pools.values().map(|p| &p.spec)
    }

    /// Invokes `function` with `payload` and waits for its response, in a new trace.
    pub async fn invoke(&self, function: &str, payload: Bytes) -> Result<Invocation, InvokeError> {
        self.invoke_traced(function, payload, None).await
    }

    /// Invokes `function` with `payload` in the X-Ray trace `trace_id` (a new one if none,
    /// as Lambda starts one when the event source passed none).
    pub async fn invoke_traced(
        &self,
        function: &str,
        payload: Bytes,
        trace_id: Option<String>,
    ) -> Result<Invocation, InvokeError> {
        self.invoke_for(function, payload, trace_id, Vec::new()).await
    }

    /// As [`Runtime::invoke_traced`], on behalf of the requests `correlation_ids` (a queue
    /// batch's messages'), as the console shows it.
    pub async fn invoke_for(
        &self,
        function: &str,
        payload: Bytes,
        trace_id: Option<String>,
        correlation_ids: Vec<String>,
    ) -> Result<Invocation, InvokeError> {
        let pool = self
            .pools
            .get(function)
            .ok_or_else(|| InvokeError::Unavailable(format!("no function {function}")))?
            .clone();
        if self.is_down(function) {
            return Err(InvokeError::Unavailable(format!("{function} is marked down")));
        }
        // On its own task: a caller that goes away (a client disconnecting) must not kill
        // the invocation halfway, as it would not on Lambda.
        let trace_id = trace_id.unwrap_or_else(crate::xray::new_trace_id);
        tokio::spawn(async move { pool.invoke(payload, trace_id, correlation_ids).await })
            .await
            .unwrap_or_else(|e| Err(InvokeError::Crashed(format!("devstack task failed: {e}"))))
    }

    /// Marks a function down (every invocation fails as unavailable) or up again: how tests
    /// take a service away.
    pub fn set_down(&self, function: &str, down: bool) -> bool {
        self.mark(&self.down, function, down)
    }

    pub fn is_down(&self, function: &str) -> bool {
        self.down.lock().unwrap_or_else(|e| e.into_inner()).contains(function)
    }

    /// Starts one instance of `function` without invoking it, as provisioned concurrency
    /// does, and keeps it idle for the next invocation; how long its init took.
    pub async fn initialize(&self, function: &str) -> Result<Duration, InvokeError> {
        let pool =
            self.pools.get(function).ok_or_else(|| InvokeError::Unavailable(format!("no function {function}")))?;
        let _slot = pool.slots.acquire().await.map_err(|_| InvokeError::Unavailable("shutting down".into()))?;
        let (instance, init) = pool.start().await?;
        pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(instance);
        Ok(init)
    }

    /// Disables (or enables again) the queue event sources of `function`; false if no such
    /// function. Disabling returns once no batch of its is in flight (received, not yet handed
    /// back), as a mapping on AWS is `Disabled` only once its last batch is done: a caller can
    /// count on nothing reaching the function after it.
    pub async fn set_event_sources_enabled(&self, function: &str, enabled: bool) -> bool {
        if !self.mark(&self.paused, function, !enabled) {
            return false;
        }
        if !enabled && let Some(pool) = self.pools.get(function) {
            drop(pool.polling.write().await);
        }
        true
    }

    /// Held by a poller of `function` while it receives a batch and hands it on (see
    /// [`Runtime::set_event_sources_enabled`]); `None` if no such function.
    pub async fn polling(&self, function: &str) -> Option<tokio::sync::RwLockReadGuard<'_, ()>> {
        Some(self.pools.get(function)?.polling.read().await)
    }

    pub fn event_sources_enabled(&self, function: &str) -> bool {
        !self.paused.lock().unwrap_or_else(|e| e.into_inner()).contains(function)
    }

    fn mark(&self, set: &std::sync::Mutex<std::collections::HashSet<String>>, function: &str, on: bool) -> bool {
        if !self.pools.contains_key(function) {
            return false;
        }
        let mut set = set.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            set.insert(function.to_owned());
        } else {
            set.remove(function);
        }
        true
    }

    /// Invocations per function so far: how many Lambda calls a request fanned out into.
    pub fn invocation_counts(&self) -> HashMap<String, u64> {
        self.pools
            .iter()
            .map(|(name, pool)| (name.clone(), pool.invocations.load(std::sync::atomic::Ordering::Relaxed)))
            .collect()
    }

    /// The process ids of the function's idle instances.
    pub fn idle_pids(&self, function: &str) -> Vec<u32> {
        let Some(pool) = self.pools.get(function) else { return Vec::new() };
        pool.idle.lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(|i| i.pid).collect()
    }

    /// Stops the function's idle instances, so that its next invocation is a cold start.
    pub fn stop_idle(&self, function: &str) {
        if let Some(pool) = self.pools.get(function) {
            for instance in pool.idle.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                instance.stop();
            }
        }
    }
}

impl Pool {
    async fn invoke(
        self: Arc<Self>,
        payload: Bytes,
        trace_id: String,
        correlation_ids: Vec<String>,
    ) -> Result<Invocation, InvokeError> {
        self.invocations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _slot = self.slots.acquire().await.map_err(|_| InvokeError::Unavailable("shutting down".into()))?;
        // From here: the wait for a free instance is not the function's time.
        let start_ms = crate::console::now_ms();
        let result = self.invoke_in_slot(payload, &trace_id).await;
        let outcome = match &result {
            Ok(_) => Ok(()),
            Err(error) => Err(error.to_string()),
        };
        let init = result.as_ref().ok().and_then(|i| i.init);
        self.console.invoked(&self.spec.name, (&trace_id, correlation_ids), start_ms, init, outcome);
        result
    }

    /// One invocation, on an idle instance or a new one (a cold start).
    async fn invoke_in_slot(&self, payload: Bytes, trace_id: &str) -> Result<Invocation, InvokeError> {
        let pool = self;
        let function = pool.spec.name.clone();
        let reused = {
            let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            let mut found = None;
            while let Some(instance) = idle.pop() {
                if instance.is_alive() {
                    found = Some(instance);
                    break;
                }
                instance.stop();
            }
            found
        };
        let (instance, init) = match reused {
            Some(instance) => (instance, None),
            None => {
                let (instance, init) = pool.start().await?;
                (instance, Some(init))
            }
        };
        let started = Instant::now();
        let request_id = ulid::Ulid::generate().to_string().to_lowercase();
        let result = pool.run(&instance, request_id.clone(), payload, trace_id).await;
        let duration = started.elapsed();
        match &result {
            Ok(_) | Err(InvokeError::Function { .. }) if !pool.is_closed() => {
                pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(instance)
            }
            Ok(_) | Err(InvokeError::Function { .. }) => instance.stop(),
            Err(error) => {
                eprintln!("[{function}] instance discarded ({error}); the next invocation starts a new one");
                instance.stop();
            }
        }
        result.map(|payload| Invocation { request_id, payload, init, duration })
    }
}

impl Runtime {
    /// Stops every function, as a barrier: once it returns, no function process runs (each
    /// one was killed and reaped) and none can start (invocations fail as unavailable).
    pub async fn stop(&self) {
        for mut exited in self.close() {
            let _ = exited.wait_for(Option::is_some).await;
        }
    }

    /// Closes every pool (no process starts any more) and kills every process; their exits.
    fn close(&self) -> Vec<watch::Receiver<Option<String>>> {
        let mut exits = Vec::new();
        for pool in self.pools.values() {
            pool.slots.close();
            let mut processes = pool.processes.lock().unwrap_or_else(|e| e.into_inner());
            processes.closed = true;
            for (_, live) in processes.live.drain() {
                let _ = live.kill.send(());
                exits.push(live.exited);
            }
            drop(processes);
            for instance in pool.idle.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                instance.stop();
            }
        }
        exits
    }
}

impl Pool {
    fn is_closed(&self) -> bool {
        self.processes.lock().unwrap_or_else(|e| e.into_inner()).closed
    }

    /// Starts a process and waits for its first `/next`.
    async fn start(&self) -> Result<(Instance, Duration), InvokeError> {
        let name = &self.spec.name;
        if !self.binary.is_file() {
            return Err(InvokeError::Unavailable(format!(
                "{name}: binary {} not found (run `cargo build --workspace`)",
                self.binary.display()
            )));
        }
        let (jobs_tx, jobs_rx) = mpsc::channel(1);
        let (ready_tx, ready_rx) = oneshot::channel();
        let state = Arc::new(ApiState {
            jobs: Mutex::new(jobs_rx),
            pending: Mutex::new(HashMap::new()),
            ready: Mutex::new(Some(ready_tx)),
        });
        let (address, server) =
            serve_runtime_api(state.clone()).await.map_err(|e| InvokeError::Unavailable(e.to_string()))?;

        let started = Instant::now();
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .env_clear()
            .envs(&self.spec.environment)
            .env("AWS_LAMBDA_RUNTIME_API", address)
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some((dir, Confinement::FromStart)) = &self.cgroup {
            confine(&mut command, dir).map_err(|e| InvokeError::Unavailable(format!("{name}: {e:#}")))?;
        }
        let (exited_tx, exited_rx) = watch::channel(None);
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let (kill_all_tx, kill_all_rx) = oneshot::channel::<()>();
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Spawned and registered under the lock `stop` closes the pool with: a cold start
        // racing the stop either is seen (and killed, and waited for) by it, or starts nothing.
        let spawned = {
            let mut processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
            if processes.closed {
                Err(InvokeError::Unavailable("shutting down".into()))
            } else {
                let spawned =
                    command.spawn().map_err(|e| InvokeError::Unavailable(format!("{name}: cannot start: {e}")));
                if spawned.is_ok() {
                    processes.live.insert(id, Live { kill: kill_all_tx, exited: exited_rx.clone() });
                }
                spawned
            }
        };
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => {
                server.abort();
                return Err(error);
            }
        };
        let pid = child.id();
        for stream in [child.stdout.take().map(Pipe::Out), child.stderr.take().map(Pipe::Err)].into_iter().flatten() {
            tokio::spawn(forward_logs(name.clone(), stream, self.console.clone()));
        }
        let processes = self.processes.clone();
        tokio::spawn(async move {
            // `kill` is SIGKILL and then wait: the exit below is sent once the process is reaped.
            let status = tokio::select! {
                status = child.wait() => status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                _ = kill_rx => { let _ = child.kill().await; "killed".to_owned() }
                _ = kill_all_rx => { let _ = child.kill().await; "killed".to_owned() }
            };
            processes.lock().unwrap_or_else(|e| e.into_inner()).live.remove(&id);
            let _ = exited_tx.send(Some(status));
        });
        let instance = Instance { jobs: jobs_tx, state, exited: exited_rx, kill: Some(kill_tx), server, pid };

        let mut exited = instance.exited.clone();
        let outcome = tokio::select! {
            ready = ready_rx => match ready {
                Ok(Ok(())) => Ok(started.elapsed()),
                Ok(Err(message)) => Err(InvokeError::Init(message)),
                Err(_) => Err(InvokeError::Init("runtime API closed".into())),
            },
            status = exit_status(&mut exited) => Err(InvokeError::Crashed(format!("exited during init: {status}"))),
            _ = tokio::time::sleep(INIT_TIMEOUT) => Err(InvokeError::Init(format!("no /next within {INIT_TIMEOUT:?}"))),
        };
        match outcome {
            Ok(init) => {
                eprintln!("[{name}] cold start: init {:.1} ms", init.as_secs_f64() * 1000.0);
                if let (Some((dir, Confinement::AfterInit)), Some(pid)) = (&self.cgroup, instance.pid) {
                    // Every thread of the process moves with it (`cgroup.procs`).
                    let path = dir.join("cgroup.procs");
                    if let Err(e) = std::fs::write(&path, pid.to_string()) {
                        instance.stop();
                        return Err(InvokeError::Unavailable(format!("{name}: writing {}: {e}", path.display())));
                    }
                }
                Ok((instance, init))
            }
            Err(error) => {
                instance.stop();
                Err(error)
            }
        }
    }

    /// One invocation on `instance`, bounded by the function's timeout.
    async fn run(&self, instance: &Instance, request_id: String, payload: Bytes, trace_id: &str) -> Outcome {
        let timeout = self.spec.timeout;
        let deadline_ms = (chrono::Utc::now() + timeout).timestamp_millis() as u128;
        let (respond, outcome) = oneshot::channel();
        instance.state.pending.lock().await.insert(request_id.clone(), respond);
        let job = Job {
            request_id: request_id.clone(),
            payload,
            deadline_ms,
            function_arn: self.function_arn.clone(),
            trace_id: crate::xray::invocation_header(trace_id),
        };
        if instance.jobs.send(job).await.is_err() {
            return Err(InvokeError::Crashed("the runtime API is gone".into()));
        }
        let mut exited = instance.exited.clone();
        tokio::select! {
            outcome = outcome => outcome.unwrap_or_else(|_| Err(InvokeError::Crashed("no response".into()))),
            status = exit_status(&mut exited) => Err(InvokeError::Crashed(format!("Runtime exited: {status}"))),
            _ = tokio::time::sleep(timeout) => Err(InvokeError::Timeout(timeout)),
        }
    }
}

/// When a process of a runtime made [`Runtime::in_cgroup`] joins the cgroup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Confinement {
    /// Before its first instruction: its init is limited too.
    FromStart,
    /// Once its init is done (its first `/next`): init runs unlimited, as Lambda's init runs
    /// with burst CPU.
    AfterInit,
}

/// Makes the process join the cgroup `dir` between fork and exec: writing 0 to `cgroup.procs`
/// moves the writer (cgroup v1 and v2 alike). The file is opened here, in the parent; the
/// child only writes two bytes to it, which is safe after a fork.
fn confine(command: &mut tokio::process::Command, dir: &std::path::Path) -> Result<()> {
    use std::io::Write;
    let path = dir.join("cgroup.procs");
    let procs =
        std::fs::OpenOptions::new().write(true).open(&path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: the closure neither allocates nor locks; it writes to an open descriptor.
    unsafe {
        command.pre_exec(move || (&procs).write_all(b"0"));
    }
    Ok(())
}

/// Waits for the process to exit and describes how it did.
async fn exit_status(exited: &mut watch::Receiver<Option<String>>) -> String {
    match exited.wait_for(Option::is_some).await {
        Ok(status) => status.clone().unwrap_or_default(),
        Err(_) => "gone".to_owned(),
    }
}

enum Pipe {
    Out(tokio::process::ChildStdout),
    Err(tokio::process::ChildStderr),
}

/// Prints each line a function writes, prefixed with its name (as CloudWatch keeps them).
async fn forward_logs(name: String, pipe: Pipe, console: Arc<crate::console::Console>) {
    let mut lines: Box<dyn tokio::io::AsyncBufRead + Unpin + Send> = match pipe {
        Pipe::Out(out) => Box::new(BufReader::new(out)),
        Pipe::Err(err) => Box::new(BufReader::new(err)),
    };
    let mut line = String::new();
    while lines.read_line(&mut line).await.is_ok_and(|n| n > 0) {
        // On stderr: stdout is for what devstack itself answers (e.g. `invoke`'s response).
        eprintln!("[{name}] {}", line.trim_end());
        console.log(&name, line.trim_end());
        line.clear();
    }
}

async fn serve_runtime_api(state: Arc<ApiState>) -> Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding a runtime API port")?;
    let address = listener.local_addr()?.to_string();
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(state);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((address, server))
}

async fn next(State(state): State<Arc<ApiState>>) -> Response {
    if let Some(ready) = state.ready.lock().await.take() {
        let _ = ready.send(Ok(()));
    }
    let Some(job) = state.jobs.lock().await.recv().await else {
        return (StatusCode::GONE, "shutting down").into_response();
    };
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", &job.request_id);
    set("lambda-runtime-deadline-ms", &job.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &job.function_arn);
    set("lambda-runtime-trace-id", &job.trace_id);
    set("content-type", "application/json");
    (StatusCode::OK, headers, job.payload).into_response()
}

async fn response(State(state): State<Arc<ApiState>>, Path(id): Path<String>, body: Bytes) -> Response {
    complete(&state, &id, Ok(body)).await
}

async fn error(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let error_type = parsed["errorType"]
        .as_str()
        .or_else(|| headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()))
        .unwrap_or("Unhandled")
        .to_owned();
    let message = parsed["errorMessage"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    complete(&state, &id, Err(InvokeError::Function { error_type, message })).await
}

async fn init_error(State(state): State<Arc<ApiState>>, body: Bytes) -> Response {
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let message = parsed["errorMessage"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    if let Some(ready) = state.ready.lock().await.take() {
        let _ = ready.send(Err(message));
    }
    (StatusCode::ACCEPTED, axum::Json(serde_json::json!({"status": "OK"}))).into_response()
}

async fn complete(state: &ApiState, id: &str, outcome: Outcome) -> Response {
    match state.pending.lock().await.remove(id) {
        Some(respond) => {
            let _ = respond.send(outcome);
            (StatusCode::ACCEPTED, axum::Json(serde_json::json!({"status": "OK"}))).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"errorMessage": format!("unknown or finished request id {id}"), "errorType": "InvalidRequestID"})),
        )
            .into_response(),
    }
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Function { error_type, message } => write!(f, "function error {error_type}: {message}"),
            InvokeError::Timeout(limit) => {
                write!(f, "Task timed out after {:.2} seconds", limit.as_secs_f64())
            }
            InvokeError::Crashed(status) => write!(f, "crashed: {status}"),
            InvokeError::Init(message) => write!(f, "init failed: {message}"),
            InvokeError::Unavailable(message) => write!(f, "unavailable: {message}"),
        }
    }
}

impl std::error::Error for InvokeError {}

/// The directory cargo puts binaries in: `$CARGO_TARGET_DIR/debug` or `target/debug`.
pub fn default_bin_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| crate::repo_root().join("target"));
    target.join("debug")
}

/// Fails with a clear message when a binary is missing, before anything starts.
pub fn check_binaries(runtime: &Runtime, bin_dir: &std::path::Path) -> Result<()> {
    let missing: Vec<_> = runtime.functions().map(|f| bin_dir.join(&f.binary)).filter(|p| !p.is_file()).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("missing function binaries (run `cargo build --workspace`): {missing:?}"))
    }
}
