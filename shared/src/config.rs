//! Configuration from environment variables (set per function in template.yaml) and the
//! AWS SDK configuration.

/// A missing or unusable environment variable; a function fails its init with it.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct ConfigError {
    pub name: String,
    pub problem: String,
}

/// The value of a variable that must be set and not empty.
pub fn required(name: &str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        Ok(_) => Err(ConfigError { name: name.into(), problem: "is empty".into() }),
        Err(_) => Err(ConfigError { name: name.into(), problem: "is not set".into() }),
    }
}

/// The value of an optional variable, or `default`.
pub fn optional(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

/// A variable parsed into `T` (numbers, durations in seconds, ...), or `default` if unset.
pub fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError { name: name.into(), problem: format!("{value:?} is not valid: {e}") }),
        _ => Ok(default),
    }
}

/// The SDK configuration: region, credentials and `AWS_ENDPOINT_URL` from the environment,
/// which is how the same binary talks to AWS or to the local emulator. Calls are bounded
/// well inside a function's timeout, so a hung dependency becomes an error we handle.
pub async fn aws() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(1))
        .operation_attempt_timeout(std::time::Duration::from_secs(2))
        .operation_timeout(std::time::Duration::from_secs(5))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts).load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_names_the_variable_when_missing() {
        let err = required("SHARED_TEST_SURELY_UNSET").unwrap_err();
        assert_eq!(err.to_string(), "environment variable SHARED_TEST_SURELY_UNSET: is not set");
    }

    #[test]
    fn parsed_falls_back_to_the_default() {
        assert_eq!(parsed("SHARED_TEST_SURELY_UNSET", 7u32).unwrap(), 7);
        assert_eq!(optional("SHARED_TEST_SURELY_UNSET", "x"), "x");
    }
}
