//! The OTLP/HTTP pipeline: protobuf spans posted in batches to a collector.
//!
//! The SDK's batch processor exports from its own thread, outside any Tokio runtime, and
//! the OTLP crate's own reqwest client would be a second reqwest (and TLS stack) in the
//! binary. So spans are posted by the gateway's reqwest client, each request handed to
//! the Tokio runtime that installed the pipeline ([`OnRuntime`]).

use std::time::Duration;

use anyhow::Context;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;

/// The service name every span's resource carries.
pub const SERVICE_NAME: &str = "lms-realtime";
/// Longest wait for the collector to take one batch.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the last spans at shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and as whom spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceExport {
    /// The full URL spans are posted to (`…/v1/traces`).
    pub endpoint: String,
    /// This node's id: the `service.instance.id` resource attribute.
    pub node: String,
}

impl TraceExport {
    /// From the standard variables: the traces endpoint as is, else the base endpoint with
    /// `/v1/traces` appended; `None` when neither is set or export is turned off.
    pub fn from_settings(
        base: Option<&str>,
        traces: Option<&str>,
        enabled: bool,
        node: String,
    ) -> anyhow::Result<Option<Self>> {
        let endpoint = match (traces.map(str::trim), base.map(str::trim)) {
            _ if !enabled => return Ok(None),
            (Some(t), _) if !t.is_empty() => t.to_owned(),
            (_, Some(b)) if !b.is_empty() => format!("{}/v1/traces", b.trim_end_matches('/')),
            _ => return Ok(None),
        };
        let url = reqwest::Url::parse(&endpoint)
            .with_context(|| format!("the OTLP traces endpoint {endpoint:?} is not a URL"))?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "the OTLP traces endpoint must be http:// or https:// (OTLP over HTTP), not {}://",
            url.scheme()
        );
        Ok(Some(Self { endpoint, node }))
    }

    /// The endpoint without credentials or query, for the start-up log line.
    pub fn shown(&self) -> String {
        reqwest::Url::parse(&self.endpoint).map_or_else(
            |_| "<unparseable>".into(),
            |u| format!("{}{}", u.origin().ascii_serialization(), u.path()),
        )
    }
}

/// The running pipeline; [`Traces::shutdown`] sends what is still queued.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Exports the spans still queued and stops the exporter. Blocks, so it runs on a
    /// blocking thread (the export itself needs the runtime's workers free).
    pub async fn shutdown(self) {
        let provider = self.provider;
        let done =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT))
                .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "traces: the last spans were not exported"),
            Err(e) => tracing::warn!(error = %e, "traces: shutdown did not finish"),
        }
    }
}

/// Builds the exporter and the layer that feeds it: only spans of [`super::TARGET`].
/// Must run inside a Tokio runtime (exports are sent on it).
pub fn install<S>(
    settings: &TraceExport,
) -> anyhow::Result<(impl Layer<S> + Send + Sync + 'static, Traces)>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let client = OnRuntime {
        client: reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .context("cannot build the HTTP client for trace export")?,
        runtime: tokio::runtime::Handle::try_current()
            .context("traces must be installed inside the Tokio runtime")?,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.endpoint.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .context("cannot build the OTLP trace exporter")?;
    let resource = Resource::builder()
        .with_service_name(SERVICE_NAME)
        .with_attribute(KeyValue::new("service.instance.id", settings.node.clone()))
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SERVICE_NAME))
        .with_location(false)
        .with_threads(false)
        .with_filter(filter_fn(|meta| {
            meta.is_span() && meta.target() == super::TARGET
        }));
    super::set_enabled();
    Ok((layer, Traces { provider }))
}

/// The gateway's reqwest client, driven by the Tokio runtime whichever thread asks.
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let (status, headers, body) = self
            .runtime
            .spawn(async move {
                let response = client.execute(request).await?;
                let (status, headers) = (response.status(), response.headers().clone());
                Ok::<_, reqwest::Error>((status, headers, response.bytes().await?))
            })
            .await??;
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(base: Option<&str>, traces: Option<&str>, on: bool) -> Option<String> {
        TraceExport::from_settings(base, traces, on, "n1".into())
            .unwrap()
            .map(|e| e.endpoint)
    }

    #[test]
    fn traces_are_off_without_an_endpoint_or_when_turned_off() {
        assert_eq!(export(None, None, true), None);
        assert_eq!(export(Some(" "), None, true), None);
        assert_eq!(export(Some("http://c:4318"), None, false), None);
    }

    #[test]
    fn the_base_endpoint_gets_the_traces_path_and_the_traces_endpoint_is_used_as_is() {
        assert_eq!(
            export(Some("http://c:4318/"), None, true).as_deref(),
            Some("http://c:4318/v1/traces")
        );
        assert_eq!(
            export(Some("http://c:4318"), Some("https://t/custom"), true).as_deref(),
            Some("https://t/custom")
        );
    }

    #[test]
    fn an_endpoint_that_is_not_an_http_url_is_refused_clearly() {
        let e = TraceExport::from_settings(Some("c:4317"), None, true, "n".into()).unwrap_err();
        assert!(format!("{e:#}").contains("http://"), "{e:#}");
        assert!(TraceExport::from_settings(None, Some("not a url"), true, "n".into()).is_err());
    }

    #[test]
    fn the_logged_endpoint_has_no_credentials_or_query() {
        let e = TraceExport {
            endpoint: "https://user:pw@c:4318/v1/traces?key=s".into(),
            node: "n".into(),
        };
        assert_eq!(e.shown(), "https://c:4318/v1/traces");
    }
}
