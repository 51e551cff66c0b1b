//! What devstack's integration tests share: the emulator's SDK configuration and the
//! fixture stack's options (tests/fixture.yaml, the fixture binary as every function).

use std::collections::HashMap;
use std::path::PathBuf;

use devstack::serve::StackOptions;

/// The emulator at `AWS_ENDPOINT_URL` (default 127.0.0.1:4566), with dummy credentials.
pub fn emulator_config() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    aws_config::SdkConfig::builder()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("test", "test", None, None, "devstack-tests"),
        ))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

/// The fixture stack under a new name starting with `prefix`.
pub fn fixture_options(prefix: &str) -> StackOptions {
    StackOptions {
        template: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixture.yaml"),
        stack_name: format!("{prefix}{}", ulid::Ulid::generate().to_string().to_lowercase().split_off(16)),
        parameters: HashMap::new(),
        bin_dir: PathBuf::from(env!("CARGO_BIN_EXE_devstack-fixture")).parent().unwrap().to_owned(),
        max_instances: 2,
        web: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/web")),
    }
}
