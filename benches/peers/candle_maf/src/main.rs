//! sbi's MAF (5 transforms, MADE 50 wide with two tanh blocks, random permutations) trained
//! with candle's autograd and AdamW (weight decay 0, i.e. Adam) on batches of 200: median
//! seconds per epoch over 5 epochs, to compare with nmm's hand-written gradient
//! (`nmm_curve.csv` of the same data: its seconds per epoch). Gradient clipping and the
//! validation pass are left out here, which favours candle.

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use std::time::Instant;

const H: usize = 50;
const T: usize = 5;

fn degrees_hidden(d: usize) -> Vec<usize> {
    let max = (d - 1).max(1);
    let min = (d - 1).min(1);
    (0..H).map(|k| k % max + min).collect()
}

struct Layer {
    w0: Var,
    wc: Var,
    b0: Var,
    w1: Var,
    b1: Var,
    w2: Var,
    b2: Var,
    wf: Var,
    bf: Var,
    m0: Tensor,
    m1: Tensor,
    mf: Tensor,
    perm: Tensor,
    a_idx: Tensor,
    s_idx: Tensor,
}

fn uniform(shape: (usize, usize), fan_in: usize, dev: &Device, dt: DType) -> Result<Var> {
    let b = 1.0 / (fan_in as f64).sqrt();
    Var::from_tensor(&Tensor::rand(-b, b, shape, dev)?.to_dtype(dt)?)
}

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "target/npe-bench".into());
    // f64 as nmm trains; `f32` as the second argument for candle's single precision.
    let dt = match std::env::args().nth(2).as_deref() {
        Some("f32") => DType::F32,
        _ => DType::F64,
    };
    let dev = Device::Cpu;
    let theta = Tensor::read_npy(format!("{dir}/theta.npy"))?.to_dtype(dt)?;
    let x = Tensor::read_npy(format!("{dir}/x.npy"))?.to_dtype(dt)?;
    let z = |a: &Tensor| -> Result<Tensor> {
        let m = a.mean_keepdim(0)?;
        let s = a.broadcast_sub(&m)?.sqr()?.mean_keepdim(0)?.sqrt()?;
        a.broadcast_sub(&m)?.broadcast_div(&s)
    };
    let (theta, x) = (z(&theta)?, z(&x)?);
    let (n, d) = theta.dims2()?;
    let c = x.dims2()?.1;
    let dh = degrees_hidden(d);
    let mut layers = Vec::new();
    let mut vars = Vec::new();
    for t in 0..T {
        let m0: Vec<f64> = (0..H * d).map(|k| f64::from(u8::from(dh[k / d] > k % d))).collect();
        let m1: Vec<f64> = (0..H * H).map(|k| f64::from(u8::from(dh[k / H] >= dh[k % H]))).collect();
        let mf: Vec<f64> = (0..2 * d * H).map(|k| f64::from(u8::from(dh[k % H] <= (k / H) / 2))).collect();
        let perm: Vec<u32> = (0..d as u32).map(|j| (j + t as u32 + 1) % d as u32).collect();
        let l = Layer {
            w0: uniform((H, d), d, &dev, dt)?,
            wc: uniform((H, c), c, &dev, dt)?,
            b0: uniform((1, H), d, &dev, dt)?,
            w1: uniform((H, H), H, &dev, dt)?,
            b1: uniform((1, H), H, &dev, dt)?,
            w2: uniform((H, H), H, &dev, dt)?,
            b2: uniform((1, H), H, &dev, dt)?,
            wf: uniform((2 * d, H), H, &dev, dt)?,
            bf: uniform((1, 2 * d), H, &dev, dt)?,
            m0: Tensor::from_vec(m0, (H, d), &dev)?.to_dtype(dt)?,
            m1: Tensor::from_vec(m1, (H, H), &dev)?.to_dtype(dt)?,
            mf: Tensor::from_vec(mf, (2 * d, H), &dev)?.to_dtype(dt)?,
            perm: Tensor::from_vec(perm, d, &dev)?,
            a_idx: Tensor::from_vec((0..d as u32).map(|i| 2 * i).collect::<Vec<_>>(), d, &dev)?,
            s_idx: Tensor::from_vec((0..d as u32).map(|i| 2 * i + 1).collect::<Vec<_>>(), d, &dev)?,
        };
        for v in [&l.w0, &l.wc, &l.b0, &l.w1, &l.b1, &l.w2, &l.b2, &l.wf, &l.bf] {
            vars.push(v.clone());
        }
        layers.push(l);
    }
    let mut opt = AdamW::new(
        vars,
        ParamsAdamW {
            lr: 5e-4,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let loss = |tb: &Tensor, xb: &Tensor| -> Result<Tensor> {
        let mut cur = tb.clone();
        let mut logdet = Tensor::zeros(tb.dims2()?.0, dt, &dev)?;
        for l in &layers {
            let h0 = cur
                .matmul(&(l.w0.as_tensor() * &l.m0)?.t()?)?
                .add(&xb.matmul(&l.wc.as_tensor().t()?)?)?
                .broadcast_add(l.b0.as_tensor())?;
            let h1 = h0.matmul(&(l.w1.as_tensor() * &l.m1)?.t()?)?.broadcast_add(l.b1.as_tensor())?.tanh()?;
            let h2 = h1.matmul(&(l.w2.as_tensor() * &l.m1)?.t()?)?.broadcast_add(l.b2.as_tensor())?.tanh()?;
            let out = h2.matmul(&(l.wf.as_tensor() * &l.mf)?.t()?)?.broadcast_add(l.bf.as_tensor())?;
            let a = out.index_select(&l.a_idx, 1)?;
            let m = out.index_select(&l.s_idx, 1)?;
            let scale = ((a.exp()? + 1.0)?.log()? + 1e-3)?;
            logdet = (logdet + scale.log()?.sum(1)?)?;
            cur = (scale * cur)?.add(&m)?.index_select(&l.perm, 1)?;
        }
        let nll = ((cur.sqr()?.sum(1)? * 0.5)? - logdet)?;
        nll.mean_all()
    };
    let batch = 200;
    let mut times = Vec::new();
    for _epoch in 0..5 {
        let t0 = Instant::now();
        let mut s = 0;
        while s < n * 9 / 10 {
            let e = (s + batch).min(n * 9 / 10);
            let tb = theta.narrow(0, s, e - s)?;
            let xb = x.narrow(0, s, e - s)?;
            let l = loss(&tb, &xb)?;
            opt.backward_step(&l)?;
            s = e;
        }
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "candle {} MAF, {} training pairs x {c} features, {d} parameters, {dt:?}: median {:.4} s/epoch (min {:.4}, max {:.4}) over 5, threads {}",
        "0.9",
        n * 9 / 10,
        times[2],
        times[0],
        times[4],
        candle_core::utils::get_num_threads()
    );
    Ok(())
}
