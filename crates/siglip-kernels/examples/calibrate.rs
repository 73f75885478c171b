//! Benchmark: how stable the start-up calibration of the cache blocking is. Runs it `--repeat`
//! times on one model's MLP products (batch 1) and prints each run's choice, its wall time, and
//! the candidates' times of the first run.
//! Run: `cargo run --release -p siglip-kernels --example calibrate -- [--dtype f32|bf16]
//! [--repeat 10] [--tokens 576] [--hidden 768] [--intermediate 3072] [--threads 2]`.

use std::collections::BTreeMap;

use siglip_kernels::calibrate::{calibrate, Shape};
use siglip_kernels::Dtype;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let number = |name: &str, default: &str| -> usize {
        flag(name, default)
            .parse()
            .unwrap_or_else(|_| panic!("{name}: expected a whole number"))
    };
    let dtype: Dtype = flag("--dtype", "f32").parse().unwrap();
    let (repeat, threads) = (number("--repeat", "10"), number("--threads", "2"));
    let (m, hidden, intermediate) = (
        number("--tokens", "576"),
        number("--hidden", "768"),
        number("--intermediate", "3072"),
    );
    let shapes = [
        Shape {
            m,
            k: hidden,
            n: intermediate,
        },
        Shape {
            m,
            k: intermediate,
            n: hidden,
        },
    ];
    println!(
        "cpu_isa={} dtype={dtype} threads={threads} shapes: {m}×{hidden}→{intermediate}, \
         {m}×{intermediate}→{hidden}",
        siglip_kernels::isa::active()
    );
    let mut chosen = BTreeMap::<String, usize>::new();
    for run in 0..repeat {
        let Some(calibration) = calibrate(dtype, &shapes, threads) else {
            println!("the {dtype} kernels do not run here");
            return;
        };
        if run == 0 {
            println!("first run's candidates (fastest of 3 rounds, both products):");
            for trial in &calibration.trials {
                println!("  {}  {:.2} ms", trial.sizes, trial.seconds * 1e3);
            }
        }
        println!(
            "run {run}: chose {} in {:.2} s",
            calibration.chosen, calibration.seconds
        );
        *chosen.entry(calibration.chosen.to_string()).or_default() += 1;
    }
    println!("choices over {repeat} runs:");
    for (sizes, count) in chosen {
        println!("  {count:>3} × {sizes}");
    }
}
