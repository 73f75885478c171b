//! The HTTP server: `app(state)` (routes + layers) and `run` with graceful shutdown. Tests
//! call `app` through a real listener started by the binary.
//!
//! Lifecycle: `run` binds, answers `/health` at once and `/ready` with 503 until the engine
//! is loaded and warmed up (a blocking task), then 200. SIGTERM/SIGINT set `shutting_down`
//! (`/ready` turns 503), axum stops accepting and drains the connections in flight, then
//! both batching queues finish their accepted entries and the process exits 0.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use siglip::checkpoint::LoadOptions;
use siglip::Checkpoint;
use siglip_kernels::blocking::BlockingRequest;

use crate::config::ServeConfig;
use crate::connections;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::metrics::{BlockingLabels, Metrics};
use crate::middleware::{
    authenticate, body_budget, close_if_body_unread, header_limits, openai_errors, record_metrics,
    request_id,
};
use crate::openapi;
use crate::routes;
use crate::state::AppState;

/// All routes and layers. The API keys guard `/v1/` and `POST /`; the operations routes, the
/// document and its page stay open.
pub fn app(state: Arc<AppState>) -> Router {
    let v1 = Router::new()
        .route("/v1/classify", post(routes::classify::classify))
        .route("/v1/embeddings", post(routes::embeddings::embeddings))
        .route("/v1/models", get(routes::models::list))
        .route("/v1/models/{*id}", get(routes::models::one))
        .route(
            "/",
            post(routes::hf_inference::zero_shot_image_classification),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    // Serialized once: the document depends only on the configuration.
    let document = Bytes::from(
        openapi::document(&state)
            .to_json()
            .expect("the OpenAPI document serializes"),
    );
    let ops = Router::new()
        .route("/health", get(routes::health::health))
        .route("/ready", get(routes::health::ready))
        .route("/metrics", get(routes::health::metrics))
        .route(
            "/openapi.json",
            get(move || routes::docs::openapi_json(document.clone())),
        )
        .route("/docs", get(routes::docs::page))
        .route("/docs/", get(routes::docs::page))
        .route("/docs/{file}", get(routes::docs::asset));
    Router::new()
        .merge(v1)
        .merge(ops)
        .fallback(|| async { ApiError::not_found_route() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(state.config.limits.max_body_bytes))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_millis(state.config.limits.body_idle_timeout_ms),
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .layer(middleware::from_fn(openai_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), body_budget))
        .layer(middleware::from_fn_with_state(state.clone(), header_limits))
        .layer(middleware::from_fn_with_state(state.clone(), request_id))
        .layer(middleware::from_fn(close_if_body_unread))
        .with_state(state)
}

/// Resolves when SIGTERM or SIGINT arrives, after marking the server as shutting down.
pub async fn shutdown_signal(state: Arc<AppState>) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal: finishing the requests in flight");
    state.shutting_down.store(true, Ordering::SeqCst);
}

/// Sets the CPU products' cache blocking as `request` says (a calibration on `checkpoint`'s
/// image-tower products where it calls for one), logs it and shows it in `metrics`.
fn choose_blocking(
    request: BlockingRequest,
    checkpoint: &Checkpoint,
    dtype: siglip_kernels::Dtype,
    metrics: &Metrics,
) {
    if let Some(calibration) = checkpoint.choose_cpu_blocking(request, dtype) {
        tracing::info!(
            candidates = calibration.trials.len(),
            seconds = format!("{:.2}", calibration.seconds),
            "CPU blocking calibrated on the first model's MLP products"
        );
    }
    let (sizes, source) = siglip_kernels::blocking::active_with_source();
    tracing::info!(%sizes, source = source.as_str(), requested = %request, "CPU blocking");
    metrics
        .cpu_blocking
        .get_or_create(&BlockingLabels {
            kc_f32: sizes.kc_f32 as u64,
            kc_bf16: sizes.kc_bf16 as u64,
            nc_panels: sizes.nc_panels as u64,
            row_strips: sizes.row_strips as u64,
            source: source.as_str(),
        })
        .set(1);
}

/// Binds, serves, loads the models in the background (one after another), and shuts down
/// gracefully. Every model's files are resolved before binding, so a missing one fails at once.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    // Before any weights are packed: they keep the microkernels of the level they were packed at.
    let cpu_isa = siglip_kernels::isa::request(config.cpu_isa).map_err(anyhow::Error::msg)?;
    tracing::info!(
        %cpu_isa,
        requested = %config.cpu_isa,
        bf16_products = siglip_kernels::cpu_supports(siglip_kernels::Dtype::Bf16),
        "CPU kernels"
    );
    let models = config.served_models();
    let mut files = Vec::with_capacity(models.len());
    for model in &models {
        files.push(
            siglip::files::resolve(&model.model, model.revision.as_deref())
                .with_context(|| format!("model {}", model.served_model_name))?,
        );
    }
    let device = siglip::checkpoint::parse_device(&config.device)?;
    for model in &models {
        siglip::model::check_dtype(model.dtype, &device)
            .with_context(|| format!("model {}", model.served_model_name))?;
    }
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}:{}: {e}", config.host, config.port))?;
    let loopback = config.host == "localhost"
        || config
            .host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if config.api_keys.is_empty() && !loopback {
        tracing::warn!(
            host = %config.host,
            "no API keys: /v1/ is open to every client that reaches {}; set --api-key, \
             SIGLIP_API_KEYS or SIGLIP_API_KEYS_FILE",
            config.host
        );
    }
    // The one line scripts and tests wait for.
    println!("listening on http://{}", listener.local_addr()?);
    let names = models.iter().map(|m| m.served_model_name.clone()).collect();
    let state = Arc::new(AppState::new(config, names));

    let loader = {
        let state = state.clone();
        tokio::spawn(async move {
            let loads = models.into_iter().zip(files).zip(&state.models);
            for (index, ((model, files), served)) in loads.enumerate() {
                let name = model.served_model_name.clone();
                let device = device.clone();
                // Chosen once, on the first model, before any engine runs: the products of
                // every model share one blocking.
                let blocking = (index == 0 && device.is_cpu())
                    .then(|| (state.config.cpu_blocking, state.metrics.clone()));
                let options = LoadOptions {
                    dtype: model.dtype,
                    text_lowercase: model.text_lowercase,
                    max_num_patches: model.max_num_patches,
                };
                let checkpoint = tokio::task::spawn_blocking(move || {
                    let (start, before) = (Instant::now(), resident_bytes());
                    let checkpoint = Checkpoint::from_files_with(&files, &device, options)?;
                    if let Some((request, metrics)) = blocking {
                        choose_blocking(request, &checkpoint, options.dtype, &metrics);
                    }
                    warm_up(&checkpoint)?;
                    siglip_kernels::memory::keep_freed_memory();
                    let held = resident_bytes().saturating_sub(before);
                    tracing::info!(
                        model = %name,
                        kind = %checkpoint.summary(),
                        seconds = format!("{:.1}", start.elapsed().as_secs_f64()),
                        memory_mib = held >> 20,
                        "loaded and warmed up"
                    );
                    Ok::<_, siglip::Error>(checkpoint)
                })
                .await?
                .with_context(|| format!("loading model {}", model.served_model_name))?;
                let engine = Engine::start(
                    checkpoint,
                    &state.config.engine(&model),
                    state.metrics.clone(),
                );
                let _ = served.engine.set(engine);
            }
            tracing::info!("ready");
            anyhow::Ok(())
        })
    };
    let mut server = {
        let state = state.clone();
        tokio::spawn(async move {
            let config = state.config.connections.clone();
            connections::serve(
                listener,
                app(state.clone()),
                &config,
                shutdown_signal(state),
            )
            .await;
        })
    };
    tokio::select! {
        // A model that fails to load ends the process with its error.
        loaded = loader => loaded??,
        // A shutdown signal before the models were ready.
        served = &mut server => return Ok(served?),
    }
    server.await?;
    for model in &state.models {
        if let Some(engine) = model.engine.get() {
            engine.shutdown().await;
        }
    }
    Ok(())
}

/// This process's resident memory, bytes (0 where /proc is not there).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib << 10)
}

/// One image and one prompt through both towers before `/ready` says yes.
fn warm_up(checkpoint: &Checkpoint) -> siglip::Result<()> {
    // The fixed size of a fixed-resolution tower; for NaFlex, an image as large.
    let (h, w) = checkpoint.model.image_size();
    let image = image::RgbImage::new(w as u32, h as u32);
    checkpoint.classify(&[image], &["warm-up".to_string()], "{}", None)?;
    Ok(())
}
