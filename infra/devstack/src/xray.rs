//! X-Ray trace headers, as AWS writes and passes them: a trace id is `1-{epoch seconds, 8 hex}-
//! {96 random bits, 24 hex}`; API Gateway hands the function's event an `x-amzn-trace-id`
//! header (keeping a valid one the client sent), Lambda gives each invocation
//! `Root={trace id};Parent={16 hex};Sampled=1` (the runtime exports it as `_X_AMZN_TRACE_ID`,
//! and the AWS SDK sends it on with every call), and an SQS-triggered invocation continues the
//! trace of its first message's `AWSTraceHeader` system attribute.

/// A new trace id.
pub fn new_trace_id() -> String {
    let random: u128 = rand::random::<u128>() >> 32;
    format!("1-{:08x}-{random:024x}", chrono::Utc::now().timestamp() as u32)
}

/// The trace id of a trace header (`Root=1-…;Parent=…`), if it carries a valid one.
pub fn trace_id_of(header: &str) -> Option<&str> {
    let root = header.split(';').find_map(|part| part.trim().strip_prefix("Root="))?;
    let mut fields = root.split('-');
    let valid = fields.next() == Some("1")
        && fields.next().is_some_and(|time| is_hex(time, 8))
        && fields.next().is_some_and(|id| is_hex(id, 24))
        && fields.next().is_none();
    valid.then_some(root)
}

/// The header of one invocation in the trace `trace_id`: a segment of its own (`Parent`).
pub fn invocation_header(trace_id: &str) -> String {
    format!("Root={trace_id};Parent={:016x};Sampled=1", rand::random::<u64>())
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_trace_ids_have_the_x_ray_form_and_differ() {
        let (a, b) = (new_trace_id(), new_trace_id());
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(trace_id_of(&format!("Root={id}")), Some(id.as_str()), "{id}");
        }
        let header = invocation_header(&a);
        assert_eq!(trace_id_of(&header), Some(a.as_str()));
        let parent = header.split(';').find_map(|p| p.strip_prefix("Parent=")).unwrap();
        assert!(is_hex(parent, 16), "{header}");
        assert!(header.ends_with(";Sampled=1"));
    }

    #[test]
    fn a_trace_header_is_read_only_when_its_root_is_valid() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        assert_eq!(trace_id_of(header), Some("1-5759e988-bd862e3fe1be46a994272793"));
        assert_eq!(
            trace_id_of("Self=1-67891234-12456789abcdef012345678;Root=1-5759e988-bd862e3fe1be46a994272793"),
            Some("1-5759e988-bd862e3fe1be46a994272793")
        );
        for bad in [
            "",
            "Root=",
            "Root=1-5759e988",
            "Root=2-5759e988-bd862e3fe1be46a994272793",
            "Root=1-5759E988-bd862e3fe1be46a994272793",
            "Root=1-5759e988-01jd4t0a00000000000000hl",
            "Root=1-5759e988-bd862e3fe1be46a994272793-x",
        ] {
            assert_eq!(trace_id_of(bad), None, "{bad}");
        }
    }
}
