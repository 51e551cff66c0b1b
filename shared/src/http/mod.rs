//! The HTTP edge every API function shares, one job per module: `edge` runs a handler
//! (correlation id, span, body size), `body` reads request bodies, `reply` and `problem` are
//! the two kinds of answer.

mod body;
mod edge;
mod objects_only;
mod problem;
mod reply;

pub use body::{json_body, not_null, trim_blank};
pub use edge::{correlation_id, handle, path_parameter, run, source_ip};
pub use problem::{MAX_BODY_BYTES, Problem};
pub use reply::Reply;

pub(crate) use body::integral;
