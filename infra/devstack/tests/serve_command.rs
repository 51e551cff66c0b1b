//! `devstack serve` as a program: asked for port 0 it listens on a port the kernel gives it and
//! says which in its `--output` file, so a caller never has to pick a free port itself (a port
//! freed by the caller can be taken by anyone's outgoing connection before devstack binds it).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[tokio::test]
async fn serve_on_port_0_writes_the_url_it_listens_on_and_answers_there() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fixture_dir = PathBuf::from(env!("CARGO_BIN_EXE_devstack-fixture")).parent().unwrap().to_owned();
    let stack_name = format!("p{}", ulid::Ulid::generate().to_string().to_lowercase().split_off(16));
    let output = std::env::temp_dir().join(format!("devstack-{stack_name}.json"));
    let mut process = Stopped(
        Command::new(env!("CARGO_BIN_EXE_devstack"))
            .env(
                "AWS_ENDPOINT_URL",
                std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into()),
            )
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .arg("--template")
            .arg(manifest.join("tests/fixture.yaml"))
            .arg("--bin-dir")
            .arg(&fixture_dir)
            .args(["--stack-name", &stack_name, "serve", "--listen", "127.0.0.1:0", "--output"])
            .arg(&output)
            .stdout(Stdio::null())
            .spawn()
            .expect("devstack starts"),
    );

    // The file appears whole (written aside, then renamed) once the stack is ready.
    let deadline = Instant::now() + Duration::from_secs(60);
    let stack: Value = loop {
        if let Ok(text) = std::fs::read_to_string(&output) {
            break serde_json::from_str(&text).expect("the output is whole JSON");
        }
        assert!(process.0.try_wait().unwrap().is_none(), "devstack exited before it was ready");
        assert!(Instant::now() < deadline, "devstack wrote no output");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let url = stack["api_url"].as_str().expect("the output names the API's URL").to_owned();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0, "{url}");
    assert!(stack["resources"]["FixtureQueue"]["Ref"].is_string(), "the resources are still there: {stack}");

    let answer = reqwest::get(format!("{url}/echo/1")).await.expect("devstack answers at its URL");
    assert_eq!(answer.status(), 200);
    let _ = Command::new("kill").arg("-TERM").arg(process.0.id().to_string()).status();
    assert!(process.0.wait().unwrap().success(), "devstack stops cleanly on SIGTERM");
    let _ = std::fs::remove_file(output);
}

/// Killed when dropped, so a failed assertion leaves no devstack behind.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
