//! The web app in a real browser (web/tests/shop.spec.ts, Playwright driving Debian's
//! Chromium, headless) against a fresh local stack that serves it: sellers approved by the
//! admin list products, a customer buys from both, they ship and deliver, the customer sees it
//! all and a declined card. SCREENSHOTS=dir keeps the main pages' pictures (docs/screenshots
//! are made so: README, Web app).

use system_tests::LocalApi;

#[tokio::test]
async fn the_shop_works_in_a_browser() {
    let web = devstack::repo_root().join("web");
    assert!(web.join("dist/index.html").is_file(), "the web app is not built: make web");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(std::path::Path::new(&chromium).is_file(), "no Chromium at {chromium}: apt-get install chromium");
    let api = LocalApi::start().await;
    let results = tempfile_dir();
    let status = tokio::process::Command::new("npx")
        .args(["--no-install", "playwright", "test"])
        .current_dir(&web)
        .env("BASE_URL", &api.url)
        .env("CHROMIUM", &chromium)
        .env("PLAYWRIGHT_OUTPUT", &results)
        .status()
        .await
        .expect("npx runs (make web installs web/node_modules)");
    assert!(
        status.success(),
        "the browser tests failed: their traces are in {}; devstack's log is {}",
        results.display(),
        api.log.display()
    );
}

/// Where Playwright keeps traces of a failure: a directory of this run's own.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("playwright-{}", ulid::Ulid::generate()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}
