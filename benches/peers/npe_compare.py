"""Compares two training curves (epoch, seconds, val_loss CSVs from benches/benches/npe.rs and
benches/peers/sbi_train.py): the target is the worse of the two best validation losses; prints
the time each run took to first reach it, their ratio, and the ratio of seconds per epoch.
Plain Python (no numpy).

    python3 benches/peers/npe_compare.py NMM_CURVE.csv SBI_CURVE.csv
"""

import csv
import sys


def load(path):
    with open(path) as f:
        return [(int(r["epoch"]), float(r["seconds"]), float(r["val_loss"])) for r in csv.DictReader(f)]


a, b = load(sys.argv[1]), load(sys.argv[2])
best_a, best_b = min(v for _, _, v in a), min(v for _, _, v in b)
target = max(best_a, best_b)
ta = next(t for _, t, v in a if v <= target)
tb = next(t for _, t, v in b if v <= target)
pa, pb = a[-1][1] / len(a), b[-1][1] / len(b)
print(
    f"best validation loss nmm {best_a:.4f}, sbi {best_b:.4f}; to reach {target:.4f}: nmm {ta:.2f} s, "
    f"sbi {tb:.2f} s, sbi/nmm {tb / ta:.2f}; s/epoch nmm {pa:.4f}, sbi {pb:.4f}, sbi/nmm {pb / pa:.2f}"
)
