//! The fit's objective along one parameter at a time (issue 18's recovery study): the FC of a
//! synthetic subject (noise seed 1000) against the FCs simulated with other noise seeds
//! (0, 1, ..), for a grid of values of one parameter, the others at the subject's values.
//!
//! Usage (validation/fit/landscape.sh runs it):
//! `cargo run --release -p nmm --example fit_landscape -- CONNECTOME TRS PARAM V1,V2,.. SEEDS
//! [NAME=VALUE ..]` with the subject's values (`NAME=VALUE`, default the fit's defaults).
use nmm::fit::{FitConfig, Setup, fc_of_bold, simulate_bold};
use std::error::Error;

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn main() -> Result<(), Box<dyn Error>> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 6 {
        return Err(
            "usage: fit_landscape CONNECTOME TRS PARAM V1,V2,.. SEEDS [NAME=VALUE ..]".into(),
        );
    }
    let mut cfg = FitConfig::default();
    cfg.connectome.path = a[1].clone();
    let trs: usize = a[2].parse()?;
    let param = a[3].clone();
    let grid = a[4]
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<f64>, _>>()?;
    let seeds: u64 = a[5].parse()?;
    cfg.seed = 1000;
    for kv in &a[6..] {
        let (k, v) = kv
            .split_once('=')
            .ok_or(format!("{kv}: expected NAME=VALUE"))?;
        cfg.params.insert(k.into(), v.parse()?);
    }
    let s = Setup::new(cfg.clone())?;
    let truth = s.values.clone();
    let emp = fc_of_bold(&simulate_bold(&s, &truth, trs)?)?;
    println!(
        "subject: {param} = {}, {trs} TRs, mean FC {:.4}",
        truth[&param],
        mean(&emp)
    );
    println!(
        "{param:>8} {:>8} {:>8} {:>8} {:>9}",
        "r", "r sd", "mean FC", "sq. diff"
    );
    for &x in &grid {
        let (mut rs, mut ms, mut sq) = (vec![], vec![], vec![]);
        for seed in 0..seeds {
            let mut c = cfg.clone();
            c.seed = seed;
            let s = Setup::new(c)?;
            let mut v = truth.clone();
            v.insert(param.clone(), x);
            let fc = fc_of_bold(&simulate_bold(&s, &v, trs)?)?;
            rs.push(nmm::stats::pearson(&fc, &emp));
            ms.push(mean(&fc));
            let d: Vec<f64> = fc
                .iter()
                .zip(&emp)
                .map(|(a, b)| (a - b) * (a - b))
                .collect();
            sq.push(mean(&d));
        }
        let m = mean(&rs);
        let var = rs.iter().map(|r| (r - m) * (r - m)).sum::<f64>();
        let sd = (var / (rs.len() as f64 - 1.0).max(1.0)).sqrt();
        println!(
            "{x:8.4} {m:8.4} {sd:8.4} {:8.4} {:9.5}",
            mean(&ms),
            mean(&sq)
        );
    }
    Ok(())
}
