//! `--cpu-isa` (`SIGLIP_CPU_ISA`, config `cpu_isa`): the server runs at every level this CPU
//! has with transformers' logits, names the level in `/metrics`, and refuses a level it does
//! not know, or bf16 below the AVX-512 level, before it listens.

mod common;

use common::server::{refused_start, Server};
use siglip_kernels::{isa, CpuIsa};

#[tokio::test]
async fn every_level_this_cpu_has_serves_transformers_logits_and_says_which() {
    for level in CpuIsa::ALL.into_iter().filter(|l| *l <= isa::detected()) {
        let server = Server::start("tiny-p16", &["--cpu-isa", level.as_str()], None);
        common::classifies_as_transformers(&server, level.as_str()).await;
        let metrics = server.metrics().await;
        let gauge = format!("siglip_cpu_isa_info{{isa=\"{level}\"}} 1");
        assert!(metrics.contains(&gauge), "{gauge} missing:\n{metrics}");
    }
}

#[test]
fn an_unknown_level_stops_the_start_with_the_choices() {
    let stderr = refused_start("tiny-p16", &[], &[("SIGLIP_CPU_ISA", "sse9")]);
    assert!(
        stderr.contains("expected auto, avx512, avx2 or generic"),
        "{stderr}"
    );
}

#[test]
fn bf16_below_the_avx512_level_stops_the_start_and_says_why() {
    if isa::detected() < CpuIsa::Avx2 {
        return;
    }
    let stderr = refused_start("tiny-p16", &["--cpu-isa", "avx2", "--dtype", "bf16"], &[]);
    assert!(
        stderr.contains("kernels run at cpu_isa avx2; use f32"),
        "{stderr}"
    );
}
