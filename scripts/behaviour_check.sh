#!/usr/bin/env bash
# Records the outputs of a fixed set of nmm commands into DIR, or compares two such records.
# Used to show that a refactoring left behaviour unchanged (issue 16):
#
#   scripts/behaviour_check.sh record BINARY DIR    # run every command with BINARY into DIR
#   scripts/behaviour_check.sh compare DIR_A DIR_B  # arrays and tables byte for byte
#
# Compared: every array inside every .npz (member bytes, i.e. dtype, shape and data), every
# .npy, .csv and .nmmw weight block, and the printed summaries with timings removed. Left out:
# the `meta` member of .npz files and the metadata of .nmmw files (they hold the command line,
# the wall time and the output paths, which differ between two records).
set -euo pipefail
mode=${1:?record or compare}

if [ "$mode" = compare ]; then
  exec python3 - "$2" "$3" <<'PY'
import sys, os, zipfile, re
a, b = sys.argv[1], sys.argv[2]
bad = 0
checked = 0
def files(root):
    out = []
    for d, _, fs in os.walk(root):
        for f in fs:
            out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)
fa, fb = files(a), files(b)
if fa != fb:
    print("different file sets:", sorted(set(fa) ^ set(fb)))
    bad += 1
def clean(text):
    # wall times and paths in printed summaries
    text = re.sub(r"[0-9.]+ ?(s|ms)\b", "<time>", text)
    text = re.sub(r"[0-9.e+-]+ region-steps/s", "<speed>", text)
    return text.replace(a, "<dir>").replace(b, "<dir>")
for f in sorted(set(fa) & set(fb)):
    pa, pb = os.path.join(a, f), os.path.join(b, f)
    if f.endswith(".npz"):
        za, zb = zipfile.ZipFile(pa), zipfile.ZipFile(pb)
        na = sorted(n for n in za.namelist() if n != "meta.npy")
        nb = sorted(n for n in zb.namelist() if n != "meta.npy")
        if na != nb:
            print(f, "members differ", na, nb); bad += 1; continue
        for n in na:
            checked += 1
            if za.read(n) != zb.read(n):
                print(f, n, "differs"); bad += 1
    elif f.endswith(".nmmw"):
        # weights first, then a JSON metadata block: compare up to the metadata's start
        da, db = open(pa, "rb").read(), open(pb, "rb").read()
        # the 4 bytes before the JSON are its length
        ia, ib = da.find(b'{"') - 4, db.find(b'{"') - 4
        checked += 1
        if da[:ia] != db[:ib]:
            print(f, "weights differ"); bad += 1
    elif f.endswith("manifest.csv"):
        # issue 16 added the columns status and error: the first seven must be unchanged
        ra = [l.split(",")[:7] for l in open(pa).read().splitlines()]
        rb = [l.split(",")[:7] for l in open(pb).read().splitlines()]
        checked += 1
        if ra != rb:
            print(f, "differs in its first seven columns"); bad += 1
    elif os.path.basename(f).startswith("features") and f.endswith(".csv"):
        # issue 21 added a last column, diverged (0/1): the others must be unchanged
        def cols(path):
            rows = [l.split(",") for l in open(path).read().splitlines()]
            if rows and rows[0][-1] == "diverged":
                rows = [r[:-1] for r in rows]
            return rows
        checked += 1
        if cols(pa) != cols(pb):
            print(f, "differs (diverged column left out)"); bad += 1
    elif f.endswith(".svg") or f.endswith(".log"):
        continue  # figures checked by eye; logs hold timings
    elif f.endswith(".out"):
        checked += 1
        if clean(open(pa).read()) != clean(open(pb).read()):
            print(f, "printed output differs"); bad += 1
    else:
        checked += 1
        if open(pa, "rb").read() != open(pb, "rb").read():
            print(f, "differs"); bad += 1
print(f"{checked} arrays/tables/outputs compared, {bad} differ")
sys.exit(1 if bad else 0)
PY
fi

[ "$mode" = record ] || { echo "usage: $0 record BINARY DIR | compare A B" >&2; exit 2; }
bin=$(realpath "$2")
shared=$(realpath "$(dirname "$0")/../../shared")
dir=$3
mkdir -p "$dir"
dir=$(realpath "$dir")
cd "$dir"
run() { # NAME ARGS...: stdout to NAME.out, stderr to NAME.log
  local name=$1; shift
  "$bin" "$@" > "$name.out" 2> "$name.log" || { echo "failed: $name" >&2; cat "$name.log" >&2; exit 1; }
}
run mf_mpr mf mpr --eta -5 --J 15 --t-end 40 --out mf_mpr.npz --plot mf_mpr.svg
run mf_cc mf cc --eta 0.12 --t-end 100 --out mf_cc.npz
run mf_rww mf rww --sigma 0.01 --seed 1 --t-end 2000 --out mf_rww.npz
run mf_noise mf mpr --stim noise:1:1.1 --seed 3 --t-end 20 --integrator heun --out mf_noise.npz
# a drive for bold from a mean-field trace: z.npy is written by `mf` as r; use a brain run's bold
run fp_mpr fixed-points mpr --eta -5 --J 15 --out fp_mpr.csv
run fp_cc fixed-points cc --eta 0.12
run bif_mpr bifurcation mpr --param eta --range -10,0 --codim2 J --range2 0,20 --out bif_mpr.csv --out-codim2 folds.csv --plot bif.svg
run bif_cc bifurcation cc --param eta --range 0,0.3 --out bif_cc.csv
run spk_qif spiking qif --N 2000 --dt 1e-3 --t-end 10 --out qif.npz --plot qif.svg
run spk_sparse spiking qif --N 2000 --p 0.6 --synapse pulse --stim noise:1:1.1 --dt 1e-3 --t-end 5 --out sparse.npz
run spk_izh spiking izh --N 1000 --eta 0.12 --t-end 60 --bin 1 --out izh.npz
cat > grid.toml <<'G'
network = "qif"
N = 300
dt = 1e-3
t_end = 4.0
stim = "noise:1:1.1"
[params]
delta = 1.0
[grid]
J = [10.0, 15.0]
eta = [-5.0]
p = [0.8, 1.0]
G
run sweep spiking sweep --grid grid.toml --out sweep --jobs 2
run train train --data sweep --out m.nmmw --epochs 3 --rollout 5 --batch 16 --seed 2 --jobs 2
run train16 train --data sweep --out m16.nmmw --epochs 2 --rollout 5 --batch 16 --seed 2 --hidden 16 --substeps 2
run mf_mlp mf mlp --model m.nmmw --p 1 --t-end 10 --out mf_mlp.npz
run brain brain --duration 60000 --out brain.npz --plot brain.svg
run brain_tvb brain --connectome "$shared/data/tvb/connectivity_76.zip" --duration 50000 --seed 2 --out brain_tvb.npz
run brain_rww brain --model rww --duration 50000 --G 0.5 --out brain_rww.npz
run brain_f32 brain --duration 50000 --precision f32 --out brain_f32.npz
printf 'G,eta\n0.0,-5\n0.3,-4.8\n0.6,-4.6\n' > rows.csv
run batch brain batch --connectome builtin:6 --duration 20000 --tr 200 --rows rows.csv --out batch --jobs 2
# BOLD from a stored series: the MPR node's r (4001 samples) read as a 10 ms series
python3 - <<'PY'
import zipfile
z = zipfile.ZipFile("mf_mpr.npz"); open("drive.npy", "wb").write(z.read("r.npy"))
PY
run bold bold --input drive.npy --dt-ms 10 --tr-ms 2000 --out bold.npz
echo "recorded into $dir"
