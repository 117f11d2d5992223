//! OpenTelemetry traces over OTLP/HTTP (protobuf), when an endpoint is configured (`--otlp-endpoint`, or the
//! standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`).
//!
//! The engines open `tracing` spans — `poll` (one poll of one instance's resource), its children `sage.request`
//! (one per try of a request to Sage) and `commit`, and `delivery` (one attempt of one notification) — and this
//! module turns them into OpenTelemetry spans, batched and exported off the async runtime. The trace crosses the
//! outbox: a poll's `traceparent` (W3C Trace Context) is stored with its events ([`trace_parent`]), and each
//! delivery attempt of them becomes a child of the poll's span ([`continue_trace`]), on whichever node it runs:
//! poll → Sage requests → commit → delivery attempts are one trace.
//!
//! Without an endpoint nothing of this runs: no layer is installed, the spans are disabled at their call sites,
//! and [`trace_parent`] answers `None` without looking.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Registry;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::Layer;

/// Whether a tracer is installed: [`trace_parent`] and [`continue_trace`] do nothing otherwise.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// How long one export may take before it is given up (the batch is dropped, the next one tried).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The crates whose spans (and the events inside them) are exported.
const TRACED_CRATES: &[&str] = &["oc_poller", "oc_sageone", "oc_notify", "oc_store", "oc_tasks", "oc_bin"];

/// Where and how traces go.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The URL spans are POSTed to (`…/v1/traces`).
    pub endpoint: String,
    /// The share of polls traced, 0 to 1 (a delivery follows its poll's decision).
    pub sample_ratio: f64,
    /// `service.instance.id`: the node's name.
    pub node: String,
}

impl TraceSettings {
    /// The settings of `ocpoll serve`: `endpoint` (the flag), else `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as
    /// it is), else `OTEL_EXPORTER_OTLP_ENDPOINT`; `None` when none is set. A base URL (no path, or `/`) gets
    /// `/v1/traces`, as OTLP/HTTP prescribes.
    pub fn from_flag_or_env(endpoint: Option<&str>, sample_ratio: f64, node: &str) -> Result<Option<TraceSettings>> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let endpoint = match endpoint {
            Some(e) => Some(traces_url(e)?),
            None => match env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
                Some(e) => Some(checked_url(&e, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")?.to_string()),
                None => env("OTEL_EXPORTER_OTLP_ENDPOINT").map(|e| traces_url(&e)).transpose()?,
            },
        };
        Ok(endpoint.map(|endpoint| TraceSettings { endpoint, sample_ratio, node: node.to_string() }))
    }
}

fn checked_url(text: &str, what: &str) -> Result<url::Url> {
    let url = url::Url::parse(text.trim()).with_context(|| format!("{what} {text:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("{what} {text:?} must be an http:// or https:// URL (OTLP over HTTP)");
    }
    Ok(url)
}

/// The traces URL of an OTLP endpoint: a base URL gets `/v1/traces`; a URL with a path is kept.
pub fn traces_url(endpoint: &str) -> Result<String> {
    let mut url = checked_url(endpoint, "the OTLP endpoint")?;
    if url.path().is_empty() || url.path() == "/" {
        url.set_path("/v1/traces");
    }
    Ok(url.to_string())
}

/// The `tracing` layer that feeds the exporter, for the registry of the subscriber.
pub type TracesLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The exporter of a running service; [`Traces::shutdown`] sends what is still buffered.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Builds the exporter and the `tracing` layer that feeds it.
    pub fn start(settings: &TraceSettings) -> Result<(Traces, TracesLayer)> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(settings.endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .with_context(|| format!("cannot set up the OTLP exporter to {}", settings.endpoint))?;
        let resource = Resource::builder()
            .with_service_name("ocpoll")
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("service.instance.id", settings.node.clone()),
            ])
            .build();
        let ratio = settings.sample_ratio.clamp(0.0, 1.0);
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio))))
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("ocpoll");
        let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(traced_filter()).boxed();
        EXPORTING.store(true, Ordering::Relaxed);
        Ok((Traces { provider }, layer))
    }

    /// Exports the spans still buffered and stops the exporter (waits at most the export timeout).
    pub async fn shutdown(self) {
        EXPORTING.store(false, Ordering::Relaxed);
        let provider = self.provider;
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "exporting the last traces failed"),
            Err(e) => tracing::warn!(error = %e, "exporting the last traces failed"),
        }
    }
}

/// The spans and events exported: those of ocpoll's crates, from `info` up.
fn traced_filter() -> Targets {
    TRACED_CRATES
        .iter()
        .fold(Targets::new().with_default(LevelFilter::OFF), |t, c| t.with_target(*c, LevelFilter::INFO))
}

/// The W3C `traceparent` of `span` (`00-<32 hex>-<16 hex>-<2 hex>`), when traces are exported and `span` is
/// recorded.
pub fn trace_parent(span: &tracing::Span) -> Option<String> {
    if !EXPORTING.load(Ordering::Relaxed) || span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_ref = context.span();
    let sc = span_ref.span_context();
    sc.is_valid().then(|| format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()))
}

/// Makes `span` (not yet entered) a child of the span `trace_parent` names; ignores a malformed value.
pub fn continue_trace(span: &tracing::Span, trace_parent: &str) {
    if !EXPORTING.load(Ordering::Relaxed) || span.is_disabled() {
        return;
    }
    let Some(parent) = parse_trace_parent(trace_parent) else {
        tracing::debug!(trace_parent, "not a W3C traceparent: the delivery starts a trace of its own");
        return;
    };
    if let Err(e) = span.set_parent(Context::new().with_remote_span_context(parent)) {
        tracing::debug!(error = %e, "the delivery's span could not join the poll's trace");
    }
}

/// A `traceparent` of version `00` as a remote span context.
fn parse_trace_parent(text: &str) -> Option<SpanContext> {
    let mut parts = text.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || version != "00" || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let context = SpanContext::new(trace_id, span_id, TraceFlags::new(flags & 1), true, TraceState::default());
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_gets_the_traces_path_and_a_full_one_is_kept() {
        assert_eq!(traces_url("http://127.0.0.1:4318").unwrap(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(traces_url("http://collector:4318/").unwrap(), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("https://otel.example/custom/traces").unwrap(), "https://otel.example/custom/traces");
        let e = traces_url("collector:4317").unwrap_err().to_string();
        assert!(e.contains("http:// or https://"), "{e}");
        let e = traces_url("not a url").unwrap_err().to_string();
        assert!(e.contains("is not a URL"), "{e}");
    }

    #[test]
    fn traceparents_are_parsed_strictly() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let sc = parse_trace_parent(good).expect("valid");
        assert_eq!(sc.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled() && sc.is_remote());
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-xyz92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse_trace_parent(bad).is_none(), "{bad:?} accepted");
        }
    }

    #[test]
    fn without_an_exporter_nothing_is_looked_up() {
        let span = tracing::info_span!("poll");
        assert_eq!(trace_parent(&span), None);
        continue_trace(&span, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    }
}
