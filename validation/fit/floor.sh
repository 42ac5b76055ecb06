#!/usr/bin/env bash
# What does the fit's objective let a recording tell about the gains? An oracle that knows the
# expected FC exactly (which no fit has) and takes for the gains the values whose expected
# window FC lies nearest the recording's mean window FC, in the squared difference (the fit's
# term at mse_weight; the correlation term and the priors are left out). Its spread is what
# the recording's own noise makes of that objective's minimiser; it is a property of this
# estimator, not a bound over every statistic of the BOLD (weighting the pairs by their noise,
# or other features, could tell more).
#
# 1. The expected FC over windows of WINDOW_TR (100) TRs: one long recording (TRS_CURVE TRs,
#    default 8000 = 6000 s) at each G of GRID (which must hold 3.6, 4.0 and 4.4, written so) with
#    the other gains at the truth, and at 0.9 and 1.1 times each of g_EE, g_EI, g_IE; all from one
#    noise seed (common random numbers: the differences between runs carry little of the noise);
#    at the truth a longer one (TRS_TRUTH, default 16000), cut into windows. The oracles' centre,
#    the expected FC at the truth, is that run's mean window FC: known to about 1/sqrt(40) of a
#    300 s recording's spread (about 2 % in G), an error shared by every subject's estimate.
# 2. The sensitivity J = d E[window FC] / d ln(gain) at the truth (central differences between
#    0.9 and 1.1 times it) and two linearised oracles:
#      - G alone, the other gains known (checked by interpolation on the G grid);
#      - all four gains, as the fit has them: the least-squares estimate's components along the
#        right singular vectors of J ("directions"), each well or badly determined as its
#        singular value is large or small. The linearisation holds along direction 1 and 2 over
#        the grid (the check lines; only the G grid's 0.7, 0.8, 1.2, 1.3 are out of sample, the
#        0.9 and 1.1 runs made J); along 3 and 4 it does not, so their spreads say only that
#        they are not determined within the linear range.
#    Each is applied to recordings of 400, 1200 and 3200 TRs (300, 900, 2400 s) cut one after
#    another from the truth's long run (consecutive segments, their lag-1 correlation of the
#    estimates within +-0.15: close to independent recordings), and to the synthetic subjects'
#    recordings in SUBJECTS_DIR (recovery.sh's subject-i.npy) beside their fits' errors along the
#    same directions (fit-i.json, 48 steps; LONG_DIR's, 144 steps, where they exist) and their
#    starts'.
# Recordings already in $OUT are reused when their configuration and length match. Writes
# $OUT/floor.txt (COPY=1 copies it here as floor.txt). About 15 min on 2 cores (13 runs, 112000
# TRs in all, at about 6 s per 400 TRs on one core).
#   COPY=1 validation/fit/floor.sh
set -euo pipefail
nmm=${NMM:-target/release/nmm}
out=${OUT:-target/fit-floor}
subjects_dir=${SUBJECTS_DIR:-target/fit-recovery-pairs}
long_dir=${LONG_DIR:-target/fit-recovery-long}
conn=${CONNECTOME:-../shared/data/tvb/connectivity_66.zip}
trs_curve=${TRS_CURVE:-8000}
trs_truth=${TRS_TRUTH:-16000}
grid=${GRID:-"2.8 3.2 3.6 4.0 4.4 4.8 5.2"}
here=$(dirname "$0")
for g in 3.6 4.0 4.4; do
    case " $grid " in *" $g "*) ;; *) echo "floor.sh: GRID must hold $g (J and the truth's run are made from it)" >&2; exit 2 ;; esac
done
for g in $grid; do
    [ "$(printf '%.1f' "$g")" = "$g" ] || { echo "floor.sh: GRID values are written with one decimal (got $g)" >&2; exit 2; }
done
prev=
for g in $grid; do
    if [ -n "$prev" ] && ! awk -v a="$prev" -v b="$g" 'BEGIN { exit !(a < b) }'; then
        echo "floor.sh: GRID must be increasing (got $prev before $g)" >&2; exit 2
    fi
    prev=$g
done
ls "$subjects_dir"/subject-*.npy > /dev/null 2>&1 || {
    echo "floor.sh: no subject-i.npy in SUBJECTS_DIR=$subjects_dir (recovery.sh writes them)" >&2; exit 2
}
mkdir -p "$out"
one() { # one() TAG G g_EE g_EI g_IE TRS: a recording $out/TAG.npy
    set -euo pipefail
    local tag=$1 trs=$6
    local cfg
    cfg=$(printf 'transient_ms = 20000.0\n[connectome]\npath = "%s"\ndelays = false\nnormalise = ["griffiths2022"]\n[params]\nG = %s\ng_EE = %s\ng_EI = %s\ng_IE = %s\n' \
        "$conn" "$2" "$3" "$4" "$5")
    if [ -s "$out/$tag.npy" ]; then # reuse a finished recording of the same configuration
        [ "$(cat "$out/$tag.toml")" = "$cfg" ] && return 0
        echo "floor.sh: $out/$tag.npy was made with another configuration ($out/$tag.toml); delete it to remake it" >&2
        return 1
    fi
    printf '%s\n' "$cfg" > "$out/$tag.toml"
    "$nmm" fit --config "$out/$tag.toml" --bold "$out/$tag.tmp.npy" --synthetic "$trs" --seed 7000 > /dev/null
    mv "$out/$tag.tmp.json" "$out/$tag.json"
    mv "$out/$tag.tmp.npy" "$out/$tag.npy"
}
export -f one
export nmm out conn
{
    for g in $grid; do
        if [ "$g" = 4.0 ]; then trs=$trs_truth; else trs=$trs_curve; fi
        echo "g-$g $g 0.21 0.15 1.0 $trs"
    done
    echo "g_EE-0.9 4.0 0.189 0.15 1.0 $trs_curve"
    echo "g_EE-1.1 4.0 0.231 0.15 1.0 $trs_curve"
    echo "g_EI-0.9 4.0 0.21 0.135 1.0 $trs_curve"
    echo "g_EI-1.1 4.0 0.21 0.165 1.0 $trs_curve"
    echo "g_IE-0.9 4.0 0.21 0.15 0.9 $trs_curve"
    echo "g_IE-1.1 4.0 0.21 0.15 1.1 $trs_curve"
} | xargs -P "${JOBS:-2}" -L1 bash -c 'one "$@"' _
python3 - "$out" "$subjects_dir" "$long_dir" "${WINDOW_TR:-100}" "$grid" "$trs_curve" "$trs_truth" > "$out/floor.txt" <<'PY'
import json, math, os, sys
import numpy as np
out, subj, long_dir = sys.argv[1:4]
w, grid, trs_curve, trs_truth = int(sys.argv[4]), [float(g) for g in sys.argv[5].split()], int(sys.argv[6]), int(sys.argv[7])
truth = {"G": 4.0, "g_EE": 0.21, "g_EI": 0.15, "g_IE": 1.0}
names = list(truth)
low = np.tril_indices(66, -1)
def window_fc(b):  # mean lower-triangle Pearson FC over the whole windows of w TRs (the fit's target)
    return np.mean([np.corrcoef(b[i * w:(i + 1) * w].T)[low] for i in range(len(b) // w)], axis=0)
def rec(tag):  # a recording, checked against the length asked for (a stale one is refused)
    b = np.load(f"{out}/{tag}.npy")
    want = trs_truth if tag == "g-4.0" else trs_curve
    assert b.shape == (want, 66), f"{out}/{tag}.npy is {b.shape}, not ({want}, 66): delete it to remake it"
    return b
tag = lambda k, f: f"g-{truth['G'] * f:.1f}" if k == "G" else f"{k}-{f}"
tb = rec("g-4.0")
m = window_fc(tb)  # the expected window FC at the truth (all TRS_TRUTH TRs)
# d E[window FC] / d ln(gain) by central differences, 0.9 and 1.1 times the truth.
J = np.stack([(window_fc(rec(tag(k, 1.1))) - window_fc(rec(tag(k, 0.9)))) / math.log(1.1 / 0.9) for k in names], axis=1)
print(f"expected FC over windows of {w} TRs, one noise seed (7000) for every run; mean FC at the truth {m.mean():.4f}")
print("d(mean window FC)/d ln(gain) at the truth: " + ", ".join(f"{k} {J[:, j].mean():+.4f}" for j, k in enumerate(names)))
# J = U S V^T: a step along V's column i in the log-gains moves the expected FC by S_i in the
# squared-difference norm; the least-squares estimate's component along it is U_i.(t - m) / S_i.
U, S, Vt = np.linalg.svd(J, full_matrices=False)
sg = np.sign(Vt[np.arange(4), np.abs(Vt).argmax(axis=1)])  # each direction's largest component positive
U, Vt = U * sg, Vt * sg[:, None]
print(f"directions in ln(G, g_EE, g_EI, g_IE) by how strongly they move the expected window FC (condition {S[0] / S[-1]:.0f}):")
print(f"  (change of the expected window FC per unit step: its norm over the {J.shape[0]} pairs, and its rms per pair)")
for i in range(4):
    print(f"  {i + 1}: norm {S[i]:.3f}, rms {S[i] / math.sqrt(J.shape[0]):.4f}; direction " + ", ".join(f"{x:+.2f}" for x in Vt[i]))
def oracle_g(t):  # G alone, the others known: linearised
    d = J[:, 0]
    return math.exp(float(d @ (t - m) / (d @ d))) - 1
comp = lambda t: U.T @ (t - m) / S  # the least-squares estimate's components along the directions
# The G grid (first trs_curve TRs of the truth's run beside the other grid runs: the same noise)
# for a check of the linearisation: the minimiser of the squared distance from the
# piecewise-linear curve.
c0 = window_fc(tb[:trs_curve])
cs = np.array([c0 if g == truth["G"] else window_fc(rec(f"g-{g:.1f}")) for g in grid])
lg = np.log(grid)
def grid_g(t):
    best = None
    for f in np.linspace(lg[0], lg[-1], 481):
        i = min(int(np.searchsorted(lg, f, side="right")) - 1, len(lg) - 2)
        a = (f - lg[i]) / (lg[i + 1] - lg[i])
        s = float(np.sum(((1 - a) * cs[i] + a * cs[i + 1] - t) ** 2))
        if best is None or s < best[0]:
            best = (s, f)
    return math.exp(best[1]) / truth["G"] - 1, best[1] in (lg[0], lg[-1])
print("mean window FC on the G grid, others at the truth: " + ", ".join(f"{g:g}: {c.mean():.4f}" for g, c in zip(grid, cs)))
# The linearisation checked on recordings of known values (the grid's and the differences' own
# runs, the noise the same as the truth's first trs_curve TRs, which are taken as the centre
# here): the G-alone oracle's G and the least-squares components, against the true ones. Only
# the G grid's points other than 0.9 and 1.1 times the truth are out of sample.
print("check on runs of known values (centred on the truth's first TRS_CURVE TRs, the same noise;")
print("only G x 0.70, 0.80, 1.20, 1.30 are out of sample: the 0.90 and 1.10 runs made J):")
print("  run: G-alone oracle's G; components 1-4 of the least-squares estimate (true components)")
for k, f in [("G", g / truth["G"]) for g in grid if g != truth["G"]] + [(k, f) for k in names[1:] for f in (0.9, 1.1)]:
    t = window_fc(rec(tag(k, f))) - c0 + m
    x = np.zeros(4)
    x[names.index(k)] = math.log(f)
    print(f"  {k} x {f:.2f}: G {oracle_g(t):+6.1%}; " + ", ".join(f"{a:+.3f} ({b:+.3f})" for a, b in zip(comp(t), Vt @ x)))
def spread(v):
    a = np.sort(np.abs(v))
    return f"{np.median(a):>6.1%} {a[min(len(a) - 1, int(round(0.9 * (len(a) - 1))))]:>6.1%} {np.std(v, ddof=1):>6.1%}"
print()
print("the oracles on consecutive recordings cut from the truth's long run: the G-alone oracle's")
print("relative error of G (median |.|, 90th percentile |.|, sd; number within 1 %; - with fewer than")
print("10 recordings), and the sd of")
print("the least-squares estimate's components along the directions 1-4 (in ln units)")
for L in (400, 1200, 3200):
    segs = [window_fc(tb[i * L:(i + 1) * L]) for i in range(len(tb) // L)]
    eg = np.array([oracle_g(t) for t in segs])
    c = np.array([comp(t) for t in segs])
    few = len(segs) < 10  # a 90th percentile or a count of 5 says little
    g = f"G {np.median(np.abs(eg)):>6.1%} {'-':>6} {np.std(eg, ddof=1):>6.1%}    -" if few else f"G {spread(eg)} {int(np.sum(np.abs(eg) <= 0.01)):>2}/{len(eg)}"
    print(f"  {L:>5} TRs ({L * 0.75:>4.0f} s), {len(segs):>2} recordings: {g};  components " + ", ".join(f"{x:.3f}" for x in c.std(axis=0, ddof=1)))
print()
def fit(d, i):  # a fit's final values and start, or None
    if not os.path.exists(f"{d}/fit-{i}.json"):
        return None
    with open(f"{d}/fit-{i}.json") as f:
        r = json.load(f)
    return r["final"], dict(zip(r["fitted"], r["start"]))
along = lambda v: Vt @ np.log([v[k] / truth[k] for k in names])  # ln-errors along the directions
ids = sorted(int(f[8:-4]) for f in os.listdir(subj) if f.startswith("subject-") and f.endswith(".npy"))
print(f"the synthetic subjects ({subj}): the G-alone oracle's G error (linearised, and on the grid,")
print("* at its edge); along direction 1 (ln units) the four-gain oracle's error and the fits'")
print(f"(48 steps: {subj}; 144 steps: {long_dir}); along 2, 3, 4 the starts' and the fits' errors")
print(f"{'subject':>7} {'G alone':>8} {'grid':>7}  {'1: oracle':>9} {'fit':>7} {'long':>7}  {'start along 2, 3, 4':>24}  {'fit along 2, 3, 4':>24}  {'long along 2, 3, 4':>24}")
rows = []
for i in ids:
    t = window_fc(np.load(f"{subj}/subject-{i}.npy"))
    og, (gg, edge), o = oracle_g(t), grid_g(t), comp(t)
    f48, f144 = fit(subj, i), fit(long_dir, i)
    c48 = along(f48[0]) if f48 else None
    c144 = along(f144[0]) if f144 else None
    cstart = along(f48[1]) if f48 else None
    first = lambda v: f"{v[0]:>+7.3f}" if v is not None else f"{'-':>7}"
    rest = lambda v: ", ".join(f"{x:+.3f}" for x in v[1:]) if v is not None else "-"
    print(f"{i:>7} {og:>+8.1%} {gg:>+6.1%}{'*' if edge else ' '}  {o[0]:>+9.3f} {first(c48)} {first(c144)}  {rest(cstart):>24}  {rest(c48):>24}  {rest(c144):>24}")
    rows.append((i, og, o[0], cstart, c48, c144))
print()
e = np.abs([r[1] for r in rows])
print(f"G-alone oracle over {len(rows)} subjects: median |G error| {np.median(e):.1%}, {int(np.sum(e <= 0.01))}/{len(rows)} within 1 %")
def track(sel, j, tag_):  # the fits' error along 1 against the oracle's, on the subjects sel
    o1 = np.array([r[2] for r in sel])
    f1 = np.array([r[j][0] for r in sel])
    far = [r[0] for r, d in zip(sel, np.abs(f1 - o1)) if d > 0.1]
    print(f"  {tag_}: correlation {np.corrcoef(o1, f1)[0, 1]:+.2f}, median |fit - oracle| {np.median(np.abs(f1 - o1)):.3f}, more than 0.1 apart: {far or 'none'}")
both = [r for r in rows if r[4] is not None and r[5] is not None]
print("along direction 1, the fits against the four-gain oracle (ln units):")
track([r for r in rows if r[4] is not None], 4, f"48 steps, {sum(r[4] is not None for r in rows)} subjects")
if len(both) > 2:
    ids_both = f"{both[0][0]}-{both[-1][0]}" if [r[0] for r in both] == list(range(both[0][0], both[-1][0] + 1)) else str([r[0] for r in both])
    track(both, 4, f"48 steps, subjects {ids_both}")
    track(both, 5, f"144 steps, subjects {ids_both}")
print("along directions 2, 3, 4: rms of the errors (ln units), and the correlation of the fits' with their starts'")
for j, tag_ in ((3, "starts"), (4, "48 steps"), (5, "144 steps")):
    sel = [r for r in rows if r[j] is not None and r[3] is not None]
    if len(sel) > 2:
        v = np.array([r[j] for r in sel])
        s0 = np.array([r[3] for r in sel])
        cor = "" if j == 3 else "; correlation with the start " + ", ".join(f"{np.corrcoef(s0[:, d], v[:, d])[0, 1]:+.2f}" for d in (1, 2, 3))
        print(f"  {tag_} ({len(sel)}): rms " + ", ".join(f"{x:.3f}" for x in np.sqrt(np.mean(v[:, 1:] ** 2, axis=0))) + cor)
PY
cat "$out/floor.txt"
if [ "${COPY:-0}" = 1 ]; then cp "$out/floor.txt" "$here/floor.txt"; fi
