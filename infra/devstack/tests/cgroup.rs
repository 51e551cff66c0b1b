//! A runtime made `in_cgroup` puts every function process inside that cgroup, before the
//! function's first instruction or once its init is done: how `make bench` gives a function
//! Lambda's CPU share of its memory size.
//!
//! It needs a writable cgroup v1 cpu hierarchy (root), as the CI machines have; where there is
//! none it says so and checks nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Bytes;
use devstack::functions::FunctionSpec;
use devstack::runtime::{Confinement, Runtime};
use serde_json::{Value, json};

fn fixture(name: &str) -> FunctionSpec {
    FunctionSpec {
        name: name.into(),
        binary: "devstack-fixture".into(),
        timeout: Duration::from_secs(5),
        memory_mb: 128,
        // What the Lambda runtime sets, as devstack's template reading does.
        environment: [
            ("AWS_LAMBDA_FUNCTION_NAME", name),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", name),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        routes: Vec::new(),
        queues: Vec::new(),
        schedules: Vec::new(),
    }
}

/// The process's cpu cgroup, from /proc/PID/cgroup (`N:cpu:/path`).
fn cpu_cgroup(pid: u64) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers.split(',').any(|c| c == "cpu").then(|| path.to_owned())
        })
        .unwrap_or_default()
}

/// Removes the test's cgroup, also when the test fails (once its processes are gone).
struct Cgroup(PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[tokio::test]
async fn every_process_of_a_confined_runtime_starts_in_its_cgroup() {
    let root = Path::new("/sys/fs/cgroup/cpu");
    let name = format!("devstack-test-{}", std::process::id());
    let dir = root.join(&name);
    if let Err(e) = std::fs::create_dir(&dir) {
        eprintln!("no writable cgroup v1 cpu hierarchy here ({}: {e}): nothing to check", dir.display());
        return;
    }
    let _cleanup = Cgroup(dir.clone());
    std::fs::write(dir.join("cpu.cfs_quota_us"), "50000").unwrap();
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_devstack-fixture")).parent().unwrap().to_owned();
    let confined = Runtime::new(vec![fixture("Confined")], bin_dir.clone(), "arn:aws:lambda:us-east-1:0:function:", 2)
        .in_cgroup(&dir, Confinement::FromStart);
    // Lambda's init runs with burst CPU: a runtime can move its processes in after init.
    let after_init = Runtime::new(vec![fixture("Later")], bin_dir.clone(), "arn:aws:lambda:us-east-1:0:function:", 1)
        .in_cgroup(&dir, Confinement::AfterInit);
    let free = Runtime::new(vec![fixture("Free")], bin_dir, "arn:aws:lambda:us-east-1:0:function:", 1);
    let pid_of = |answer: devstack::runtime::Invocation| {
        let answer: Value = serde_json::from_slice(&answer.payload).unwrap();
        answer["pid"].as_u64().unwrap()
    };
    let payload = || Bytes::from(json!({"rawPath": "/x/pid", "rawQueryString": "slow"}).to_string());

    // Two at once: two instances, each its own process, both inside.
    let (a, b) = tokio::join!(confined.invoke("Confined", payload()), confined.invoke("Confined", payload()));
    let (a, b) = (pid_of(a.unwrap()), pid_of(b.unwrap()));
    assert_ne!(a, b);
    for pid in [a, b] {
        assert_eq!(cpu_cgroup(pid), format!("/{name}"), "process {pid}");
    }
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(procs.split_whitespace().any(|p| p == a.to_string()), "{procs}");
    let later = pid_of(after_init.invoke("Later", payload()).await.unwrap());
    assert_eq!(cpu_cgroup(later), format!("/{name}"), "moved in after its init");
    // Another runtime's processes stay where the test is.
    let other = pid_of(free.invoke("Free", payload()).await.unwrap());
    assert_eq!(cpu_cgroup(other), cpu_cgroup(u64::from(std::process::id())));

    confined.stop().await;
    after_init.stop().await;
    free.stop().await;
    std::fs::remove_dir(&dir).expect("the cgroup is empty once the runtime has stopped");
}
