//! GFLOP/s of the matrix products (f32) at the dense layer's shapes and at squares, for each
//! instruction set this CPU has and 1 and 2 threads, taking turns in rounds.
//!
//! cargo run -p saddlepoint-kernels --release --example gemm_study -- [rounds] [filter]
//!
//! The study behind matmul.rs (faer against the `gemm` crate, BLIS and NumPy's OpenBLAS) was a
//! throwaway crate, so that its candidates never entered the dependencies; this keeps the part
//! that measures what the library ships.
use faer::MatRef;
use saddlepoint_kernels::matmul::{matmul_with, simd, Simd};
use saddlepoint_kernels::parallel::set_num_threads;
use std::time::Instant;

/// A product of the dense layer: `name`, output `m × n`, depth `k`, operands stored transposed.
struct Product {
    name: String,
    m: usize,
    n: usize,
    k: usize,
    lhs_transposed: bool,
    rhs_transposed: bool,
}

fn products() -> Vec<Product> {
    let mut all = Vec::new();
    let mut add = |name: String, m, n, k, lhs_transposed, rhs_transposed| {
        all.push(Product { name, m, n, k, lhs_transposed, rhs_transposed })
    };
    for (n_in, n_out) in [(784, 512), (512, 256), (256, 10), (1024, 1024)] {
        for batch in [32, 128, 512, 1024] {
            let layer = format!("{batch}x{n_in}->{n_out}");
            add(format!("forward {layer}"), batch, n_out, n_in, false, true);
            add(format!("weight-grad {layer}"), n_out, n_in, batch, true, false);
            add(format!("input-grad {layer}"), batch, n_in, n_out, false, false);
        }
    }
    for side in [1024, 2048] {
        add(format!("square {side}"), side, side, side, false, false);
    }
    all
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).map_or(Ok(5), |r| r.parse())?;
    let filter = args.get(2).cloned().unwrap_or_default();
    let mut levels = vec![("avx2", Some(Simd::Avx2))];
    match simd()? {
        Some(Simd::Avx512) => levels.push(("avx512", Some(Simd::Avx512))),
        Some(Simd::Avx2) => {}
        None => levels = vec![("faer", None)],
    }
    println!("product\tthreads\tsimd\tbest GFLOP/s\tmedian GFLOP/s");
    for p in products().into_iter().filter(|p| p.name.contains(&filter)) {
        let a: Vec<f32> = (0..p.m * p.k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1).collect();
        let b: Vec<f32> = (0..p.k * p.n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.1).collect();
        let mut out = vec![0.0f32; p.m * p.n];
        let lhs = if p.lhs_transposed {
            MatRef::from_row_major_slice(&a, p.k, p.m).transpose()
        } else {
            MatRef::from_row_major_slice(&a, p.m, p.k)
        };
        let rhs = if p.rhs_transposed {
            MatRef::from_row_major_slice(&b, p.n, p.k).transpose()
        } else {
            MatRef::from_row_major_slice(&b, p.k, p.n)
        };
        let flops = 2.0 * (p.m * p.n * p.k) as f64;
        for threads in [1, 2] {
            set_num_threads(threads)?;
            let start = Instant::now();
            matmul_with(lhs, rhs, &mut out, false, levels[0].1)?;
            let reps = ((0.02 / start.elapsed().as_secs_f64().max(1e-7)) as usize).clamp(1, 20_000);
            let mut seconds = vec![Vec::new(); levels.len()];
            for round in 0..=rounds {
                for (level, &(_, simd)) in levels.iter().enumerate() {
                    let start = Instant::now();
                    for _ in 0..reps {
                        matmul_with(lhs, rhs, &mut out, false, simd)?;
                    }
                    if round > 0 {
                        seconds[level].push(start.elapsed().as_secs_f64() / reps as f64);
                    }
                }
            }
            for ((name, _), mut s) in levels.iter().zip(seconds) {
                s.sort_by(f64::total_cmp);
                let (best, median) = (flops / s[0] / 1e9, flops / s[s.len() / 2] / 1e9);
                println!("{}\t{threads}\t{name}\t{best:.0}\t{median:.0}", p.name);
            }
        }
    }
    Ok(())
}
