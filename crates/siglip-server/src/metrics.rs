//! Prometheus metrics: requests by route and status, latency histograms (queue, inference,
//! total), batch sizes, queue depth and label-cache hits, and the CPU kernels' instruction
//! set and cache blocking, rendered for `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// `route` and `status` of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Matched route, e.g. `/v1/classify`.
    pub route: String,
    /// HTTP status code.
    pub status: u16,
}

/// Which model's tower a queue feeds.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TowerLabels {
    /// The served model name.
    pub model: String,
    /// `image` or `text`.
    pub tower: &'static str,
}

/// Which model.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// The served model name.
    pub model: String,
}

/// The CPU products' cache blocking in use, and where it came from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BlockingLabels {
    /// k block depth of f32 products.
    pub kc_f32: u64,
    /// k block depth of bf16 products.
    pub kc_bf16: u64,
    /// Panels of 32 columns per column block.
    pub nc_panels: u64,
    /// Strips per row block.
    pub row_strips: u64,
    /// `measured`, `calibrated` or `setting`.
    pub source: &'static str,
}

/// All metrics of one server.
pub struct Metrics {
    registry: Registry,
    /// Requests by route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Whole-request latency by route, seconds.
    pub request_seconds: Family<RequestLabels, Histogram>,
    /// How long a batch's oldest entry waited in the queue, seconds.
    pub queue_seconds: Family<TowerLabels, Histogram>,
    /// Model time per batch, seconds.
    pub inference_seconds: Family<TowerLabels, Histogram>,
    /// Entries per batch.
    pub batch_size: Family<TowerLabels, Histogram>,
    /// Entries waiting now.
    pub queue_depth: Family<TowerLabels, Gauge>,
    /// Label-cache hits.
    pub label_cache_hits: Family<ModelLabels, Counter>,
    /// Label-cache misses.
    pub label_cache_misses: Family<ModelLabels, Counter>,
    /// 1 for the cache blocking in use, once the first model is loaded.
    pub cpu_blocking: Family<BlockingLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let seconds = || Histogram::new(exponential_buckets(0.000_5, 2.0, 18));
        let sizes = || Histogram::new(exponential_buckets(1.0, 2.0, 9));
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = Family::<RequestLabels, Histogram>::new_with_constructor(seconds);
        let queue_seconds = Family::<TowerLabels, Histogram>::new_with_constructor(seconds);
        let inference_seconds = Family::<TowerLabels, Histogram>::new_with_constructor(seconds);
        let batch_size = Family::<TowerLabels, Histogram>::new_with_constructor(sizes);
        let queue_depth = Family::<TowerLabels, Gauge>::default();
        let label_cache_hits = Family::<ModelLabels, Counter>::default();
        let label_cache_misses = Family::<ModelLabels, Counter>::default();
        let mut registry = Registry::with_prefix("siglip");
        registry.register(
            "requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Whole-request latency",
            request_seconds.clone(),
        );
        registry.register(
            "queue_wait_seconds",
            "Wait of a batch's oldest entry in the queue",
            queue_seconds.clone(),
        );
        registry.register(
            "inference_seconds",
            "Model time per batch",
            inference_seconds.clone(),
        );
        registry.register("batch_size", "Entries per model batch", batch_size.clone());
        registry.register(
            "queue_depth",
            "Entries waiting in the queue",
            queue_depth.clone(),
        );
        registry.register(
            "label_cache_hits",
            "Prompts found in the label cache",
            label_cache_hits.clone(),
        );
        registry.register(
            "label_cache_misses",
            "Prompts not in the label cache",
            label_cache_misses.clone(),
        );
        // Read when the server starts, after `cpu_isa` was applied.
        registry.register(
            "cpu_isa",
            "Instruction set of the CPU kernels in use (auto picks the best the CPU has)",
            Info::new(vec![(
                "isa".to_string(),
                siglip_kernels::isa::active().to_string(),
            )]),
        );
        let cpu_blocking = Family::<BlockingLabels, Gauge>::default();
        registry.register(
            "cpu_blocking_info",
            "Cache blocking of the CPU products in use (set when the first model has loaded)",
            cpu_blocking.clone(),
        );
        Self {
            registry,
            requests,
            request_seconds,
            queue_seconds,
            inference_seconds,
            batch_size,
            queue_depth,
            label_cache_hits,
            label_cache_misses,
            cpu_blocking,
        }
    }
}

impl Metrics {
    /// Sets one model's queue-depth gauges: entries waiting in its image and text queues.
    pub fn set_queue_depths(&self, model: &str, images: usize, texts: usize) {
        for (tower, depth) in [("image", images), ("text", texts)] {
            let labels = TowerLabels {
                model: model.to_string(),
                tower,
            };
            self.queue_depth.get_or_create(&labels).set(depth as i64);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
