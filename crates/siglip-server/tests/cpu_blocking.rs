//! `--cpu-blocking` (`SIGLIP_CPU_BLOCKING`, config `cpu_blocking`): pinned sizes and a start-up
//! calibration both serve transformers' logits and show in `/metrics` with where they came
//! from; sizes the kernels cannot use stop the start, with the reason, before it listens.

mod common;

use common::server::{refused_start, Server};

/// Starts the server with `args`, checks one classification against transformers' logits, and
/// returns the `/metrics` line of the blocking.
async fn serves_transformers_logits(args: &[&str]) -> String {
    let server = Server::start("tiny-p16", args, None);
    common::classifies_as_transformers(&server, &format!("{args:?}")).await;
    let metrics = server.metrics().await;
    let lines: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("siglip_cpu_blocking_info{"))
        .collect();
    assert_eq!(lines.len(), 1, "{metrics}");
    lines[0].to_string()
}

#[tokio::test]
async fn pinned_sizes_serve_transformers_logits_and_show_in_the_metrics() {
    // Small blocks: many k blocks, partial column blocks, one strip per row block.
    let line = serves_transformers_logits(&[
        "--cpu-blocking",
        "kc_f32=8,kc_bf16=6,nc_panels=1,row_strips=1",
    ])
    .await;
    assert_eq!(
        line,
        "siglip_cpu_blocking_info{kc_f32=\"8\",kc_bf16=\"6\",nc_panels=\"1\",row_strips=\"1\",\
         source=\"setting\"} 1"
    );
}

#[tokio::test]
async fn a_calibration_at_start_up_serves_transformers_logits() {
    let line = serves_transformers_logits(&["--cpu-blocking", "calibrate"]).await;
    // Where the kernels do not run (generic) there is nothing to time.
    let source = if siglip_kernels::cpu_supports(siglip_kernels::Dtype::F32) {
        "calibrated"
    } else {
        "measured"
    };
    assert!(line.contains(&format!("source=\"{source}\"")), "{line}");
}

#[test]
fn sizes_the_kernels_cannot_use_stop_the_start_with_the_reason() {
    for (setting, reason) in [
        ("kc_bf16=7", "kc_bf16 = 7: expected an even number"),
        ("kc_f32=0", "kc_f32 = 0: expected 1 to 65536"),
        ("mc=4", "unknown key \"mc\""),
        ("fast", "expected auto, calibrate or key=value pairs"),
    ] {
        let stderr = refused_start("tiny-p16", &[], &[("SIGLIP_CPU_BLOCKING", setting)]);
        assert!(stderr.contains(reason), "{setting}: {stderr}");
    }
}
