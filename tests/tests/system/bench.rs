//! `make bench` end to end at a tiny scale (debug binaries, a few runs each): every function
//! of the template and the baseline are measured, the report has the shape issue 7 fixed, and
//! a checkout costs as many AWS calls at 25 cart lines as at one. The figures themselves come
//! from `make bench`, with release builds.

use serde_json::Value;
use system_tests::{devstack_command, template};

#[test]
fn the_benchmark_measures_every_function_and_checkout() {
    let debug = std::env::current_exe().unwrap().parent().and_then(|deps| deps.parent()).unwrap().to_owned();
    let out = std::env::temp_dir().join(format!("bench-{}", ulid::Ulid::generate()));
    // devstack's settings (emulator endpoint, credentials), the bench binary instead.
    let settings = devstack_command();
    let run = std::process::Command::new(debug.join("bench"))
        .current_dir(devstack::repo_root())
        .envs(settings.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))))
        .env_remove("AWS_PROFILE")
        .args(["--bin-dir", debug.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--cold-runs", "2", "--warm", "3", "--checkouts", "2", "--paid-runs", "1"])
        .output()
        .expect("bench runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
    assert!(run.status.success(), "bench failed: {}\n{}", String::from_utf8_lossy(&run.stdout), tail.join("\n"));

    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert!(report["baseline"]["init_ms_p50"].as_f64().unwrap() > 0.0);
    let functions: Vec<String> = template()
        .resources
        .iter()
        .filter(|(_, r)| r.kind == "AWS::Serverless::Function")
        .map(|(id, _)| id.clone())
        .collect();
    for name in &functions {
        let figures = &report["functions"][name];
        for field in ["init_ms_p50", "init_ratio", "first_ms_p50", "warm_ms_p50", "rss_kb_peak"] {
            assert!(figures[field].as_f64().is_some_and(|v| v > 0.0), "{name}.{field}: {figures}");
        }
        let answers = figures["outcomes"].as_object().unwrap();
        assert!(
            !answers.keys().any(|k| k.starts_with("5") || k.contains("error") || k.contains("crash")),
            "{name}: {answers:?}"
        );
    }
    let calls = |lines: u32| report["checkout"][format!("lines_{lines}")]["aws_calls"].as_u64().unwrap();
    assert!(calls(1) > 0);
    assert_eq!(calls(25), calls(1), "a checkout's AWS calls must not grow with its lines: {}", report["checkout"]);
    assert!(report["paid_after_ms_p50"].as_f64().unwrap() > 0.0);
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("| CheckoutFunction |"));
    let _ = std::fs::remove_dir_all(out);
}
