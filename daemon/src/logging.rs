//! The log: `tracing` events written as text lines (the default, for people) or as one JSON
//! object per line (`log_format = "json"`, for log shippers). The request line carries its
//! fields separately in JSON (`server.rs`); in text it stays the one readable line.

use registry_core::config::LogFormat;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The subscriber `registry serve` installs, writing to `writer` (stderr there; a buffer in
/// tests). `ansi` colours text lines (on a terminal only).
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.with_target(false).with_ansi(ansi).finish()),
        // Flattened: an event's fields sit beside `timestamp`, `level` and `message`, as log
        // shippers index them, instead of in a nested `fields` object.
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .finish(),
        ),
    }
}
