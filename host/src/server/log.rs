//! The server's log lines (tracing): for people, `skyhost serve: MESSAGE
//! key=value ...` on standard error (warnings say so); with `--log-format
//! json`, one JSON object per line for a log pipeline. Lines are written by
//! a thread of their own (tracing-appender): a reader that stops reading
//! costs log lines (dropped, not queued without end), never a request.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

use super::LogFormat;

struct Text;

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write!(writer, "skyhost serve: ")?;
        match *event.metadata().level() {
            Level::WARN => write!(writer, "warning: ")?,
            Level::ERROR => write!(writer, "error: ")?,
            _ => {}
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Sends the server's log lines to standard error in `format`, until the
/// returned guard is dropped (which writes what is still queued).
/// `SKYHOST_LOG=debug` shows more (connection errors, TLS handshakes).
pub fn init(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let level = match std::env::var("SKYHOST_LOG").as_deref() {
        Ok("debug") => Level::DEBUG,
        Ok("warn") => Level::WARN,
        _ => Level::INFO,
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(16_384)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt().with_writer(writer).with_max_level(level).with_ansi(false);
    let result = match format {
        LogFormat::Text => builder.event_format(Text).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Err(e) = result {
        eprintln!("skyhost serve: cannot set up logging: {e}");
    }
    guard
}
