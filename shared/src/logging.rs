//! JSON logs: one object per line, with the fields of the enclosing spans (function name,
//! request id, correlation id) flattened into it so that one `grep` follows a request.

use tracing_subscriber::filter::LevelFilter;

/// Installs the JSON subscriber. The level comes from `AWS_LAMBDA_LOG_LEVEL` (set by the
/// template's `LoggingConfig`) or `RUST_LOG`, default INFO. Call once, first thing in `main`.
pub fn init() {
    let level = ["AWS_LAMBDA_LOG_LEVEL", "RUST_LOG"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    // Lambda stamps every line itself; locally devstack does. No ANSI, no timestamps here.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .with_target(false)
        .without_time()
        .try_init();
}

/// The span every handler runs in: its fields land in every log line below it.
pub fn request_span(request_id: &str, correlation_id: &str) -> tracing::Span {
    tracing::info_span!(
        "request",
        function = %function_name(),
        request_id = %request_id,
        correlation_id = %correlation_id,
    )
}

/// The Lambda function's name (set by the runtime; devstack sets it too).
pub fn function_name() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into())
}
