//! `nmm bifurcation <model> --param P --range A,B [--codim2 Q --range2 C,D]`: arguments, the
//! printed summary, CSV tables and figures over [`nmm::bifurcation`].

use crate::args::get_f64;
use crate::models::{model_from_args, model_subcommands, set_mlp_flags};
use crate::say;
use anyhow::{Result, anyhow, bail};
use clap::{Arg, ArgMatches, Command, value_parser};
use nmm::bifurcation::{BranchPoint, Plane, branches, cusp_path, fold_curves};
use nmm::fixed_points::DefaultBox;
use nmm::io::{atomic_write, write_csv};
use nmm::{with_mlp, with_model};
use nmm_core::Model;
use nmm_core::continuation::{Label, Settings};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::io::Write;
use std::path::PathBuf;

fn range_arg(id: &'static str, help: &'static str) -> Arg {
    Arg::new(id)
        .long(id)
        .value_name("LO,HI")
        .allow_hyphen_values(true)
        .help(help)
}

fn common(c: Command) -> Command {
    c.arg(
        Arg::new("param")
            .long("param")
            .value_name("NAME")
            .required(true)
            .help("Parameter to continue in (a model parameter name, e.g. eta)"),
    )
    .arg(range_arg("range", "Interval of --param; the run starts from the equilibria at LO").required(true))
    .arg(Arg::new("codim2").long("codim2").value_name("NAME").help(
        "Second parameter: continue every fold in (param, NAME) and locate cusps",
    ))
    .arg(range_arg("range2", "Interval of the --codim2 parameter"))
    .arg(
        Arg::new("vary")
            .long("vary")
            .value_name("NAME=LO:HI:NUM")
            .help("With --codim2: repeat the cusp search for NUM values of a third parameter (e.g. p=0.6:1:9), the cusp's path"),
    )
    .arg(
        Arg::new("out-cusps")
            .long("out-cusps")
            .value_name("FILE")
            .value_parser(value_parser!(PathBuf))
            .help("CSV of the cusp path from --vary (and SVG beside it)"),
    )
    .arg(crate::args::float_arg("input", "Constant input I (default 0)".into()))
    .arg(crate::args::float_arg("ds-max", "Largest arclength step (state and parameter units) (default 0.02)".into()))
    .arg(
        Arg::new("max-steps")
            .long("max-steps")
            .value_parser(value_parser!(usize))
            .help("Most steps per branch (default 20000)"),
    )
    .arg(crate::args::out_arg("CSV of the equilibrium branches (every point, special points labelled)"))
    .arg(
        Arg::new("out-codim2")
            .long("out-codim2")
            .value_name("FILE")
            .value_parser(value_parser!(PathBuf))
            .help("CSV of the fold curves in the two-parameter plane"),
    )
    .arg(
        Arg::new("plot")
            .long("plot")
            .value_name("FILE.svg")
            .value_parser(value_parser!(PathBuf))
            .help("Figure: the branches (stable solid, unstable dashed) and, with --codim2, the fold curves"),
    )
}

/// The `bifurcation` command.
pub fn command() -> Command {
    let mut subs = model_subcommands(common);
    subs.push(common(crate::models::mlp_args(Command::new("mlp").about(
        "The trained MLP mean field (a .nmmw file from nmm train)",
    ))));
    subs.push(common(crate::models::corrected_args(
        Command::new("corrected").about(
            "An exact mean field plus a discovered correction (a model file from nmm discover)",
        ),
    )));
    Command::new("bifurcation")
        .about("Continuation of equilibria: folds and Hopf points in one parameter, cusps in two")
        .subcommand_required(true)
        .subcommands(subs)
}

/// Runs `bifurcation`.
pub fn run(m: &ArgMatches) -> Result<()> {
    let (name, sub) = m.subcommand().expect("clap requires a model");
    if name == "mlp" {
        let path = sub.get_one::<PathBuf>("model").expect("required");
        return with_mlp!(f64, path, |model| {
            let mut model = model;
            set_mlp_flags(&mut model, sub)?;
            run_model::<_, 2>(model, sub)
        });
    }
    if name == "corrected" {
        let path = sub.get_one::<PathBuf>("model").expect("required");
        return crate::models::with_corrected!(path, sub, |model, N| run_model::<_, N>(model, sub));
    }
    with_model!(name, |M, N| run_model::<M, N>(
        model_from_args::<M, N>(sub)?,
        sub
    ))
}

fn parse_range(m: &ArgMatches, id: &str) -> Result<Option<[f64; 2]>> {
    let Some(s) = m.get_one::<String>(id) else {
        return Ok(None);
    };
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| anyhow!("--{id}: expected LO,HI, got {s:?}"))?;
    let (a, b): (f64, f64) = (
        a.trim()
            .parse()
            .map_err(|_| anyhow!("--{id}: {a:?} is not a number"))?,
        b.trim()
            .parse()
            .map_err(|_| anyhow!("--{id}: {b:?} is not a number"))?,
    );
    if !(a.is_finite() && b.is_finite() && a < b) {
        bail!("--{id}: need finite LO < HI, got {a},{b}");
    }
    Ok(Some([a, b]))
}

fn run_model<M, const N: usize>(model: M, m: &ArgMatches) -> Result<()>
where
    M: Model<f64, N> + Clone + DefaultBox<N> + crate::models::RunDefaults,
{
    let param = m.get_one::<String>("param").expect("required").as_str();
    let range = parse_range(m, "range")?.expect("required");
    let input = get_f64(m, "input").unwrap_or(0.0);
    let settings = Settings {
        ds: 1e-3,
        ds_max: get_f64(m, "ds-max").unwrap_or(0.02),
        max_steps: m.get_one::<usize>("max-steps").copied().unwrap_or(20_000),
        ..Settings::default()
    };
    // Every output path and the second parameter before any continuation.
    let outs: Vec<PathBuf> = ["out", "out-codim2", "out-cusps", "plot"]
        .iter()
        .filter_map(|id| m.get_one::<PathBuf>(id).cloned())
        .collect();
    let mut all = outs.clone();
    if let Some(p) = m.get_one::<PathBuf>("out-cusps") {
        all.push(p.with_extension("svg"));
    }
    nmm::io::check_outputs(&all.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    let codim2 = match m.get_one::<String>("codim2") {
        Some(p2) => Some((
            p2.as_str(),
            parse_range(m, "range2")?.ok_or_else(|| anyhow!("--codim2 needs --range2 LO,HI"))?,
        )),
        None => None,
    };
    if m.get_one::<String>("vary").is_some() && codim2.is_none() {
        bail!("--vary needs --codim2 NAME --range2 LO,HI");
    }
    let b = branches(&model, param, range, input, &settings)?;
    for (br, why) in &b.stopped {
        crate::note!("branch {br}: continuation stopped: {why}");
    }
    let rows = &b.points;
    say!(
        "{}: {} branch{} from {param} = {}, {} points",
        M::NAME,
        b.starts,
        if b.starts == 1 { "" } else { "es" },
        range[0],
        rows.len()
    );
    for r in rows.iter().filter(|r| r.label.is_special()) {
        let state: Vec<String> = M::STATE
            .iter()
            .zip(r.x)
            .map(|(n, v)| format!("{n} = {v:.6}"))
            .collect();
        say!(
            "  {} ({}) at {param} = {:.9}: {}",
            r.label.name(),
            r.label.code(),
            r.lambda,
            state.join(", ")
        );
    }
    if let Some(out) = m.get_one::<PathBuf>("out") {
        write_branches::<M, N>(out, param, rows)?;
    }

    // Two parameters: every fold, continued both ways.
    let (p2name, curves) = match codim2 {
        Some((p2, range2)) => (
            p2.to_string(),
            two_parameters(
                &model,
                &b,
                m,
                Plane {
                    param,
                    range,
                    p2,
                    range2,
                },
                input,
                &settings,
            )?,
        ),
        None => (String::new(), Vec::new()),
    };
    if let Some(path) = m.get_one::<PathBuf>("plot") {
        let labels = Labels {
            param: crate::models::param_label::<M, N>(param),
            var: crate::models::state_label::<M, N>(0),
            p2: crate::models::param_label::<M, N>(&p2name),
        };
        figure::<N>(path, M::NAME, param, &labels, rows, &p2name, &curves)?;
        say!("wrote {}", path.display());
    }
    Ok(())
}

/// The branches as CSV: branch, label, the parameter, the state, stability, leading eigenvalue.
fn write_branches<M: Model<f64, N>, const N: usize>(
    out: &std::path::Path,
    param: &str,
    rows: &[BranchPoint<N>],
) -> Result<()> {
    let mut header = vec!["branch".to_string(), "label".into(), param.to_string()];
    header.extend(M::STATE.iter().map(|s| s.to_string()));
    header.extend(["stable".into(), "eig0_re".into(), "eig0_im".into()]);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut v = vec![
                r.branch.to_string(),
                r.label.code().into(),
                format!("{:.12e}", r.lambda),
            ];
            v.extend(r.x.iter().map(|x| format!("{x:.12e}")));
            v.extend([
                r.stable.to_string(),
                format!("{:.6e}", r.eig.0),
                format!("{:.6e}", r.eig.1),
            ]);
            v
        })
        .collect();
    write_csv(out, &header, &table)?;
    say!("wrote {}", out.display());
    Ok(())
}

/// Every fold continued both ways in (`param`, `p2`): printed cusps, the fold-curve CSV
/// (`--out-codim2`) and the cusp path (`--vary`); the curves for the figure.
fn two_parameters<M, const N: usize>(
    model: &M,
    b: &nmm::bifurcation::Branches<N>,
    m: &ArgMatches,
    plane: Plane<'_>,
    input: f64,
    settings: &Settings<f64>,
) -> Result<Vec<Vec<(f64, f64, Label)>>>
where
    M: Model<f64, N> + Clone + DefaultBox<N>,
{
    let Plane { param, p2, .. } = plane;
    let rows = &b.points;
    let mut curves: Vec<Vec<(f64, f64, Label)>> = Vec::new();
    let c = fold_curves(model, b, plane, input, settings)?;
    if !rows.iter().any(|r| r.label == Label::Fold) {
        say!("no folds in one parameter: nothing to continue in two");
    }
    for (a, b2) in &c.cusps {
        say!("  cusp (CP) at {param} = {a:.9}, {p2} = {b2:.9}");
    }
    for (k, d, why) in &c.stopped {
        crate::note!("fold {k} ({d:?}): continuation stopped: {why}");
    }
    let mut codim_rows = Vec::new();
    let mut last = None;
    for p in &c.points {
        if last != Some((p.fold, p.direction)) {
            curves.push(Vec::new());
            last = Some((p.fold, p.direction));
        }
        if let Some(cur) = curves.last_mut() {
            cur.push((p.lambda[0], p.lambda[1], p.label));
        }
        let mut row = vec![
            p.fold.to_string(),
            format!("{:?}", p.direction).to_lowercase(),
            p.label.code().to_string(),
            format!("{:.12e}", p.lambda[0]),
            format!("{:.12e}", p.lambda[1]),
        ];
        row.extend(p.x.iter().map(|x| format!("{x:.12e}")));
        row.push(format!("{:.6e}", p.normal_form));
        codim_rows.push(row);
    }
    if let Some(out) = m.get_one::<PathBuf>("out-codim2") {
        let mut header = vec![
            "fold".to_string(),
            "direction".into(),
            "label".into(),
            param.to_string(),
            p2.to_string(),
        ];
        header.extend(M::STATE.iter().map(|s| s.to_string()));
        header.push("normal_form_a".into());
        write_csv(out, &header, &codim_rows)?;
        say!("wrote {}", out.display());
    }
    if let Some(spec) = m.get_one::<String>("vary") {
        vary::<M, N>(
            model,
            spec,
            plane,
            input,
            settings,
            m.get_one::<PathBuf>("out-cusps"),
        )?;
    }
    Ok(curves)
}

/// `--vary NAME=LO:HI:NUM`: the cusp for each value; CSV and a two-panel figure.
fn vary<M, const N: usize>(
    model: &M,
    spec: &str,
    plane: Plane<'_>,
    input: f64,
    settings: &Settings<f64>,
    out: Option<&PathBuf>,
) -> Result<()>
where
    M: Model<f64, N> + Clone + DefaultBox<N>,
{
    let Plane { param, p2, .. } = plane;
    let parsed = spec.split_once('=').and_then(|(n, r)| {
        let v: Vec<&str> = r.split(':').collect();
        (v.len() == 3).then(|| {
            (
                n.trim(),
                v[0].parse::<f64>(),
                v[1].parse::<f64>(),
                v[2].parse::<usize>(),
            )
        })
    });
    let Some((name, Ok(lo), Ok(hi), Ok(num))) = parsed else {
        bail!("--vary: expected NAME=LO:HI:NUM, got {spec:?}");
    };
    if num < 1 || !lo.is_finite() || !hi.is_finite() || lo > hi {
        bail!("--vary: need LO <= HI and NUM >= 1");
    }
    let values: Vec<f64> = (0..num)
        .map(|k| {
            if num == 1 {
                lo
            } else {
                lo + (hi - lo) * k as f64 / (num - 1) as f64
            }
        })
        .collect();
    let nmm::bifurcation::CuspPath { path: pts, stopped } =
        cusp_path(model, (name, &values), plane, input, settings)?;
    for why in &stopped {
        crate::note!("continuation stopped: {why}");
    }
    let mut table = Vec::new();
    for &v in &values {
        let here: Vec<_> = pts.iter().filter(|p| p.0 == v).collect();
        if here.is_empty() {
            say!("  {name} = {v:.4}: no cusp in the ranges");
        }
        for &&(_, a, b) in &here {
            say!("  {name} = {v:.4}: cusp at {param} = {a:.6}, {p2} = {b:.6}");
            table.push(vec![format!("{v}"), format!("{a:.9e}"), format!("{b:.9e}")]);
        }
    }
    if let Some(out) = out {
        write_csv(
            out,
            &[name.to_string(), param.to_string(), p2.to_string()],
            &table,
        )?;
        say!("wrote {}", out.display());
        let svg_path = out.with_extension("svg");
        let mut svg = String::new();
        {
            let e = |e: &dyn std::fmt::Debug| anyhow!("plot: {e:?}");
            let root = SVGBackend::with_string(&mut svg, (1000, 420)).into_drawing_area();
            root.fill(&WHITE).map_err(|x| e(&x))?;
            let areas = root.split_evenly((1, 2));
            for (area, (label, pick)) in areas.iter().zip([(param, 1usize), (p2, 2usize)]) {
                let ys: Vec<f64> = pts
                    .iter()
                    .map(|p| if pick == 1 { p.1 } else { p.2 })
                    .collect();
                let (y0, y1) = ys.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |b, y| {
                    (b.0.min(*y), b.1.max(*y))
                });
                let (y0, y1) = if y1 > y0 {
                    (y0 - 0.05 * (y1 - y0), y1 + 0.05 * (y1 - y0))
                } else {
                    (y0 - 1.0, y1 + 1.0)
                };
                let x1 = if hi > lo { hi } else { lo + 1.0 };
                let mut chart = panel(
                    area,
                    format!("cusp {label} vs {name}"),
                    (&crate::models::param_label::<M, N>(name), (lo, x1)),
                    (&crate::models::param_label::<M, N>(label), (y0, y1)),
                )?;
                chart
                    .draw_series(LineSeries::new(
                        pts.iter().zip(&ys).map(|(p, y)| (p.0, *y)),
                        BLUE.stroke_width(2),
                    ))
                    .map_err(|x| e(&x))?;
                chart
                    .draw_series(
                        pts.iter()
                            .zip(&ys)
                            .map(|(p, y)| Circle::new((p.0, *y), 4, BLUE.filled())),
                    )
                    .map_err(|x| e(&x))?;
            }
            root.present().map_err(|x| e(&x))?;
        }
        atomic_write(&svg_path, |f| Ok(f.write_all(svg.as_bytes())?))?;
        say!("wrote {}", svg_path.display());
    }
    Ok(())
}

/// A captioned panel with labelled axes over `x` and `y` (the layout every figure here uses).
fn panel<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    caption: String,
    (xdesc, x): (&str, (f64, f64)),
    (ydesc, y): (&str, (f64, f64)),
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(|e| anyhow!("plot: {e:?}"))?;
    chart
        .configure_mesh()
        .x_desc(xdesc)
        .y_desc(ydesc)
        .draw()
        .map_err(|e| anyhow!("plot: {e:?}"))?;
    Ok(chart)
}

/// Axis labels with units.
struct Labels {
    param: String,
    var: String,
    p2: String,
}

fn figure<const N: usize>(
    path: &std::path::Path,
    model: &str,
    param: &str,
    labels: &Labels,
    rows: &[BranchPoint<N>],
    p2: &str,
    curves: &[Vec<(f64, f64, Label)>],
) -> Result<()> {
    let e = |e: &dyn std::fmt::Debug| anyhow!("plot: {e:?}");
    let panels = if curves.is_empty() { 1 } else { 2 };
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (600 * panels as u32, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let areas = root.split_evenly((1, panels));
        let bounds = |it: &mut dyn Iterator<Item = (f64, f64)>| {
            it.fold(
                (
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                ),
                |b, (x, y)| (b.0.min(x), b.1.max(x), b.2.min(y), b.3.max(y)),
            )
        };
        let (x0, x1, y0, y1) = bounds(&mut rows.iter().map(|r| (r.lambda, r.x[0])));
        let pad = |a: f64, b: f64| {
            let d = if b > a { 0.05 * (b - a) } else { 0.5 };
            (a - d, b + d)
        };
        let ((x0, x1), (y0, y1)) = (pad(x0, x1), pad(y0, y1));
        let mut chart = panel(
            &areas[0],
            format!("{model}: equilibria in {param}"),
            (&labels.param, (x0, x1)),
            (&labels.var, (y0, y1)),
        )?;
        // Consecutive points of a branch with the same stability form one segment.
        for w in rows.windows(2) {
            if w[0].branch != w[1].branch {
                continue;
            }
            let pts = vec![(w[0].lambda, w[0].x[0]), (w[1].lambda, w[1].x[0])];
            if w[0].stable && w[1].stable {
                chart
                    .draw_series(LineSeries::new(pts, BLUE.stroke_width(2)))
                    .map_err(|x| e(&x))?;
            } else {
                chart
                    .draw_series(DashedLineSeries::new(pts, 4, 4, RED.stroke_width(1)))
                    .map_err(|x| e(&x))?;
            }
        }
        for r in rows.iter().filter(|r| r.label.is_special()) {
            let c = if r.label == Label::Hopf { GREEN } else { BLACK };
            chart
                .draw_series([Circle::new((r.lambda, r.x[0]), 4, c.filled())])
                .map_err(|x| e(&x))?;
            chart
                .draw_series([Text::new(
                    r.label.code().to_string(),
                    (r.lambda, r.x[0]),
                    ("sans-serif", 14),
                )])
                .map_err(|x| e(&x))?;
        }
        // The legend last, over the markers.
        // Legend entries: empty series with a label and a swatch each.
        let none = || std::iter::empty::<PathElement<(f64, f64)>>();
        chart
            .draw_series(none())
            .map_err(|x| e(&x))?
            .label("stable")
            .legend(|(a, b)| PathElement::new(vec![(a, b), (a + 20, b)], BLUE.stroke_width(2)));
        chart
            .draw_series(none())
            .map_err(|x| e(&x))?
            .label("unstable (dashed)")
            .legend(|(a, b)| PathElement::new(vec![(a, b), (a + 20, b)], RED.stroke_width(1)));
        if rows.iter().any(|r| r.label == Label::Fold) {
            chart
                .draw_series(none())
                .map_err(|x| e(&x))?
                .label("LP fold")
                .legend(|(a, b)| Circle::new((a + 10, b), 4, BLACK.filled()));
        }
        if rows.iter().any(|r| r.label == Label::Hopf) {
            chart
                .draw_series(none())
                .map_err(|x| e(&x))?
                .label("H Hopf")
                .legend(|(a, b)| Circle::new((a + 10, b), 4, GREEN.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|x| e(&x))?;
        if panels == 2 {
            let (a0, a1, b0, b1) = bounds(&mut curves.iter().flatten().map(|p| (p.0, p.1)));
            let ((a0, a1), (b0, b1)) = (pad(a0, a1), pad(b0, b1));
            let mut chart = panel(
                &areas[1],
                format!("{model}: folds in ({param}, {p2})"),
                (&labels.param, (a0, a1)),
                (&labels.p2, (b0, b1)),
            )?;
            for c in curves {
                chart
                    .draw_series(LineSeries::new(
                        c.iter().map(|p| (p.0, p.1)),
                        BLACK.stroke_width(2),
                    ))
                    .map_err(|x| e(&x))?;
                for p in c.iter().filter(|p| p.2 == Label::Cusp) {
                    chart
                        .draw_series([Circle::new((p.0, p.1), 5, RED.filled())])
                        .map_err(|x| e(&x))?;
                    chart
                        .draw_series([Text::new("CP".to_string(), (p.0, p.1), ("sans-serif", 14))])
                        .map_err(|x| e(&x))?;
                }
            }
        }
        root.present().map_err(|x| e(&x))?;
    }
    Ok(atomic_write(path, |f| Ok(f.write_all(svg.as_bytes())?))?)
}
