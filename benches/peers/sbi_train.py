"""The peer of benches/benches/npe.rs: sbi (PyTorch) neural posterior estimation on the same
files, with the same settings (MAF, or NSF with --estimator nsf; 5 transforms, 50 hidden;
batch 200, Adam lr 5e-4, 10 % validation, stop after 20 epochs without improvement, gradient
norm clipped at 5), on one thread.

    pip install sbi    # from PyPI; measured with sbi 0.27.0, torch 2.15.0
    python3 benches/peers/sbi_train.py --dir target/npe-bench [--seed 0] [--threads 1]
        [--estimator maf|nsf]

Reads theta.npy, x.npy, xo.npy and prior.toml (uniform marginals) from --dir; writes
sbi_curve.csv (epoch, seconds since the start of training, validation loss) there and prints
the seconds per epoch, the best validation loss and the time of 10^4 posterior draws.
"""

import argparse
import time
import tomllib

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--estimator", default="maf", choices=["maf", "nsf"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    from sbi.inference import NPE
    from sbi.neural_nets import posterior_nn
    from sbi.utils import BoxUniform

    with open(f"{a.dir}/prior.toml", "rb") as f:
        params = tomllib.load(f)["param"]
    low = torch.tensor([p["uniform"][0] for p in params], dtype=torch.float32)
    high = torch.tensor([p["uniform"][1] for p in params], dtype=torch.float32)
    prior = BoxUniform(low, high)
    theta = torch.tensor(np.load(f"{a.dir}/theta.npy"), dtype=torch.float32)
    x = torch.tensor(np.load(f"{a.dir}/x.npy"), dtype=torch.float32)
    xo = torch.tensor(np.load(f"{a.dir}/xo.npy"), dtype=torch.float32).reshape(1, -1)
    net = posterior_nn(model=a.estimator, hidden_features=50, num_transforms=5)
    inf = NPE(prior=prior, density_estimator=net, show_progress_bars=False)
    inf.append_simulations(theta, x)
    t0 = time.perf_counter()
    de = inf.train(
        training_batch_size=200,
        learning_rate=5e-4,
        validation_fraction=0.1,
        stop_after_epochs=20,
        clip_max_norm=5.0,
    )
    wall = time.perf_counter() - t0
    s = inf._summary
    val = s["validation_loss"]
    dur = s["epoch_durations_sec"]
    cum = np.cumsum(dur)
    with open(f"{a.dir}/sbi_curve.csv", "w") as f:
        f.write("epoch,seconds,val_loss\n")
        for e, (t, v) in enumerate(zip(cum, val)):
            f.write(f"{e + 1},{t},{v}\n")
    best = int(np.argmin(val))
    print(
        f"sbi {__import__('sbi').__version__} NPE, {theta.shape[0]} pairs x {x.shape[1]} features, "
        f"{theta.shape[1]} parameters, {a.estimator.upper()} 5 x 50, {a.threads} thread(s): {len(val)} epochs in "
        f"{wall:.2f} s ({cum[-1] / len(val):.4f} s/epoch by its epoch timer); best validation "
        f"loss {val[best]:.4f} at epoch {best + 1} ({cum[best]:.2f} s)"
    )
    posterior = inf.build_posterior(de)
    times = []
    for k in range(7):
        t0 = time.perf_counter()
        smp = posterior.sample((10_000,), x=xo, show_progress_bars=False)
        times.append(time.perf_counter() - t0)
        assert smp.shape[0] == 10_000
    times.sort()
    print(
        f"10^4 posterior draws: median {1e3 * times[3]:.1f} ms "
        f"(min {1e3 * times[0]:.1f}, max {1e3 * times[-1]:.1f}) over 7"
    )


if __name__ == "__main__":
    main()
