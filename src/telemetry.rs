//! Logging: `RUST_LOG` filter (default `info`), text or JSON lines (`LOG_FORMAT=json`).
//!
//! Log lines carry attacker-chosen text (payload errors, user agents), so a text line
//! escapes every control character of every field: a `\n` in a payload cannot forge a
//! line. JSON escapes by itself; there no event may carry a field named `message`, which
//! would repeat the key of the event's own text. socketioxide and engineioxide log whole
//! CONNECT payloads (tokens) at debug, so they stay at `info` unless `RUST_LOG` names them.
//!
//! With an OTLP endpoint configured, the trace export layer ([`crate::traces`]) sits beside
//! the log formatter, and the filter always lets its spans through.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{DefaultFields, Format, FormatFields, Writer, debug_fn};
use tracing_subscriber::fmt::{self, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::registry::Registry;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;
use crate::traces::{self, TraceExport, Traces};

/// Targets that log Socket.IO payloads, tokens included, below `info`.
const PAYLOAD_LOGGING_TARGETS: [&str; 2] = ["socketioxide", "engineioxide"];

/// Installs logging, and trace export when `traces` is set (inside the Tokio runtime);
/// the returned handle sends the last spans at shutdown.
pub fn init(format: LogFormat, traces: Option<&TraceExport>) -> anyhow::Result<Option<Traces>> {
    let mut filter = filter(std::env::var("RUST_LOG").ok().as_deref());
    if traces.is_some() {
        filter = filter.add_directive(
            format!("{}=info", traces::TARGET)
                .parse()
                .expect("a valid directive"),
        );
    }
    match format {
        LogFormat::Json => install(json(filter, std::io::stdout), traces),
        LogFormat::Text => install(text(filter, std::io::stdout), traces),
    }
}

fn install<S>(logs: S, traces: Option<&TraceExport>) -> anyhow::Result<Option<Traces>>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static,
{
    let (result, handle) = match traces {
        None => (logs.try_init(), None),
        Some(settings) => {
            let (layer, handle) = traces::export::install(settings)?;
            (logs.with(layer).try_init(), Some(handle))
        }
    };
    if result.is_err() {
        tracing::debug!("a tracing subscriber was already installed");
    }
    if let Some(settings) = traces {
        tracing::info!(endpoint = %settings.shown(), "exporting traces (OTLP/HTTP)");
    }
    Ok(handle)
}

/// The filter for `RUST_LOG` (default `info`), with the payload-logging targets held at
/// `info` unless the directives name them.
pub fn filter(rust_log: Option<&str>) -> EnvFilter {
    let mut directives = rust_log
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("info")
        .to_owned();
    for target in PAYLOAD_LOGGING_TARGETS {
        if !directives.contains(target) {
            directives.push_str(&format!(",{target}=info"));
        }
    }
    EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("RUST_LOG: {e}; logging at info");
        EnvFilter::new("info")
    })
}

/// What both formats share: the filter for every layer (a layer of the registry, so that
/// the trace layer can have a filter of its own), no target in lines.
fn base<W>(writer: W) -> fmt::Layer<Registry, DefaultFields, Format, W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fmt::layer().with_target(false).with_writer(writer)
}

/// JSON lines, the event's fields flattened beside `message`.
pub fn json<W>(
    filter: EnvFilter,
    writer: W,
) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    Registry::default()
        .with(base(writer).json().flatten_event(true))
        .with(filter)
}

/// Human-readable lines whose field values cannot break a line.
pub fn text<W>(
    filter: EnvFilter,
    writer: W,
) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    Registry::default()
        .with(base(writer).fmt_fields(escaped_fields()))
        .with(filter)
}

/// Fields as `name=value` (the message bare), control characters escaped.
fn escaped_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    debug_fn(
        |w: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
            let raw = format!("{value:?}");
            let text = escape_controls(&raw);
            if field.name() == "message" {
                write!(w, "{text}")
            } else {
                write!(w, "{}={text}", field.name())
            }
        },
    )
    .delimited(" ")
}

/// `\n` → `\\n`, and every other control character as a Rust escape.
fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer that keeps what was logged.
    #[derive(Clone, Default)]
    pub struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        pub fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Self;
        fn make_writer(&'w self) -> Self {
            self.clone()
        }
    }

    #[test]
    fn a_newline_in_a_field_or_message_cannot_forge_a_text_line() {
        let out = Captured::default();
        let subscriber = text(filter(None), out.clone());
        tracing::subscriber::with_default(subscriber, || {
            let forged = "x\n2026-01-01T00:00:00Z  INFO forged line user=admin";
            tracing::info!(detail = %forged, user_agent = forged, "payload refused: {forged}");
        });
        let logged = out.text();
        assert_eq!(logged.lines().count(), 1, "{logged}");
        assert!(logged.contains("x\\n2026"), "{logged}");
    }

    #[test]
    fn other_control_characters_are_escaped_too() {
        assert_eq!(escape_controls("a\r\u{1b}[31mb\t"), "a\\r\\u{1b}[31mb\\t");
        assert_eq!(escape_controls("plain"), "plain");
    }

    #[test]
    fn socket_io_targets_stay_at_info_under_a_debug_filter_unless_named() {
        let enabled = |rust_log: &str| {
            tracing::subscriber::with_default(text(filter(Some(rust_log)), std::io::sink), || {
                (
                    tracing::enabled!(target: "socketioxide::socket", tracing::Level::DEBUG),
                    tracing::enabled!(target: "engineioxide::engine", tracing::Level::DEBUG),
                    tracing::enabled!(target: "lms_realtime::app", tracing::Level::DEBUG),
                )
            })
        };
        assert_eq!(enabled("debug"), (false, false, true));
        assert_eq!(enabled("debug,socketioxide=debug"), (true, false, true));
    }
}
