//! README.md's walk-through, run as a newcomer runs it: the shell blocks marked
//! `<!-- walkthrough ... -->` go to bash as written (`set -euo pipefail`, so an error answer
//! of `curl -f` fails the run) against a stack started the way `make dev` starts it, seeded
//! with the demo catalogue and with its output in `dev.log`. The README cannot rot unnoticed.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use system_tests::{devstack_command, unique_stack_name};

/// What precedes each walk-through block in README.md.
const MARKER: &str = "<!-- walkthrough";

/// The ```sh blocks right after the markers, in order.
fn walkthrough_blocks(readme: &str) -> Vec<&str> {
    readme
        .split(MARKER)
        .skip(1)
        .map(|after| {
            let (_, rest) = after.split_once("-->\n").expect("the marker comment ends its line");
            let body = rest.strip_prefix("```sh\n").expect("a ```sh block right after the marker");
            body.split_once("\n```").expect("the block is closed").0
        })
        .collect()
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<_> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `devstack serve` as infra/scripts/dev.sh runs it (seeded from infra/seed/demo.json), on a
/// free port under a stack name of its own; standard output and error (the function logs)
/// go to `dev.log`, as with `make dev 2>&1 | tee dev.log`. Stopped like Ctrl-C when dropped.
struct DevStack {
    process: Child,
    url: String,
    log: PathBuf,
}

impl DevStack {
    fn start(dir: &Path) -> Self {
        let log = dir.join("dev.log");
        let output = File::create(&log).expect("dev.log can be written");
        // Port 0: devstack takes a free port itself and names it in stack.json (a port picked
        // here and freed could be taken by another connection before devstack binds it).
        let process = devstack_command()
            .args(["--stack-name", &unique_stack_name(), "serve", "--listen", "127.0.0.1:0"])
            .args(["--seed", "infra/seed/demo.json", "--output"])
            .arg(dir.join("stack.json"))
            .stdout(output.try_clone().expect("dev.log, twice"))
            .stderr(output)
            .spawn()
            .expect("devstack starts");
        let mut stack = Self { process, url: String::new(), log };
        stack.wait_for_demo_data(&dir.join("stack.json"));
        stack
    }

    /// Waits for the line the README tells people to wait for: the demo catalogue is in.
    fn wait_for_demo_data(&mut self, state: &Path) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let log = self.log();
            if log.contains("Demo data:") {
                let state: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(state).expect("stack.json before the demo data"))
                        .expect("stack.json");
                self.url = state["api_url"].as_str().expect("stack.json names the API's URL").to_owned();
                return;
            }
            let exited = self.process.try_wait().ok().flatten();
            if log.contains("seeding failed") || exited.is_some() || Instant::now() > deadline {
                panic!("the stack did not come up with its demo data (exit: {exited:?}):\n{}", tail(&log, 40));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for DevStack {
    fn drop(&mut self) {
        // SIGTERM, as Ctrl-C: devstack stops its function processes before it exits.
        let _ = Command::new("kill").arg("-TERM").arg(self.process.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.process.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Runs `script` with bash in `dir`, `API` pointing at the stack; after `limit` it is killed
/// with its whole process group (a hung curl included) and the status is `None`.
fn run_bash(script: &str, dir: &Path, api: &str, limit: Duration) -> (Option<ExitStatus>, String, String) {
    let (out_path, err_path) = (dir.join("walkthrough.out"), dir.join("walkthrough.err"));
    let mut bash = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("API", api)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = bash.try_wait().expect("bash can be waited for") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", bash.id())]).status();
            let _ = bash.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    (status, read(&out_path), read(&err_path))
}

#[test]
fn the_readme_walkthrough_runs_as_written_and_the_order_gets_paid_and_shipped() {
    let readme = std::fs::read_to_string(devstack::repo_root().join("README.md")).expect("README.md");
    let blocks = walkthrough_blocks(&readme);
    assert!(blocks.len() >= 2, "README.md marks the curl session and the log grep, found {} blocks", blocks.len());
    let script = format!("set -euo pipefail\n{}\n", blocks.join("\n"));

    let dir = std::env::temp_dir().join(format!("readme-walkthrough-{}", ulid::Ulid::generate()));
    std::fs::create_dir_all(&dir).unwrap();
    let stack = DevStack::start(&dir);
    let (status, out, err) = run_bash(&script, &dir, &stack.url, Duration::from_secs(120));
    // On failure the directory stays, with the whole dev.log.
    let context =
        format!("stdout:\n{out}\nstderr:\n{err}\n{}, last lines:\n{}", stack.log.display(), tail(&stack.log(), 30));
    assert!(status.is_some_and(|s| s.success()), "the walk-through failed ({status:?}, None = timed out)\n{context}");
    let lines: Vec<&str> = out.lines().collect();
    let printed = |prefix: &str| lines.iter().any(|line| line.starts_with(prefix));

    // Step 5 gives up after 20 s and prints the status it last saw.
    assert!(
        lines.iter().any(|line| line.starts_with("order ord_") && line.ends_with(": paid")),
        "the order did not get paid\n{context}"
    );
    // Step 6: the three notifications of a new customer's first paid order.
    for template in ["welcome", "order_confirmation", "payment_receipt"] {
        assert!(printed(&format!("{template}  ")), "no {template} notification listed\n{context}");
    }
    // Steps 7 and 8: the seller ships it; the customer sees `shipped` and the notification.
    assert!(printed(r#"{"status":"shipped","carrier":"UPS","tracking_number":"1Z999AA10123456784"}"#), "{context}");
    assert!(
        lines.iter().any(|line| line.starts_with("order ord_") && line.ends_with(": shipped")),
        "the order did not become shipped\n{context}"
    );
    assert!(
        lines.iter().any(|line| line.starts_with("order_shipped  ") && line.contains("1Z999AA10123456784")),
        "no order_shipped notification with the tracking number\n{context}"
    );
    // Step 9: the admin lists the demo seller, approved when the stack was seeded.
    assert!(printed("seller demo.seller@example.com: approved"), "the admin does not see the demo seller\n{context}");
    // Step 10: a refresh, then logout ends the login.
    assert!(printed("logout: 204") && printed("refresh after logout: 401"), "sessions\n{context}");
    // The grep: the checkout's lines in the functions of the synchronous chain and in the
    // consumers that settled it (all done once the order is paid and the receipt stored).
    for function in [
        "CheckoutFunction",
        "AuthorizePaymentFunction",
        "ReserveStockFunction",
        "CreateOrderFunction",
        "SettlePaymentsFunction",
        "ApplyPaymentsFunction",
        "NotifyFunction",
    ] {
        assert!(printed(&format!("{function}  ")), "the grep found no line of {function}\n{context}");
    }
    drop(stack);
    let _ = std::fs::remove_dir_all(&dir);
}
