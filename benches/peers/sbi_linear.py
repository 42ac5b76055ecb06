"""sbi's NPE on the linear-Gaussian problem of tests/tests/npe.rs (the same distribution, not
the same draws): the best validation loss, and the posterior mean and covariance at two of
the test's observations, for comparison with nmm's (the test prints both).

    python sbi_linear.py maf|nsf SEED

Prior N((0, 1), diag(1, 2^2)); x = A theta + N(0, 0.5^2 I); 20,000 pairs; sbi's defaults; one
thread. The exact posterior covariance is [[0.1545, -0.0664], [-0.0664, 0.1566]] at every x
and the exact expected validation loss (the posterior's entropy) 0.876 nats. Measured with
sbi 0.27.0 (2026-12-02): MAF best validation loss 0.882 and 0.842 (seeds 1 and 2), NSF 0.894
and 0.860; NSF (seed 1) covariance at the second observation [[0.160, -0.078], [-0.078,
0.219]].
"""

import sys
import time

import numpy as np
import torch
from sbi.inference import NPE

torch.set_num_threads(1)
A = np.array([[1.0, 0.5], [0.3, -1.0], [0.8, 0.8]])
SIGMA = 0.5
est, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
n = 20000
th = np.stack([rng.normal(0, 1, n), rng.normal(1, 2, n)], 1)
x = th @ A.T + SIGMA * rng.normal(size=(n, 3))
torch.manual_seed(seed)
prior = torch.distributions.Independent(
    torch.distributions.Normal(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0])), 1
)
inf = NPE(prior=prior, density_estimator=est, show_progress_bars=False)
inf.append_simulations(
    torch.tensor(th, dtype=torch.float32), torch.tensor(x, dtype=torch.float32)
)
t = time.time()
de = inf.train()
s = inf._summary
print(
    est,
    seed,
    "epochs",
    s["epochs_trained"],
    "best validation loss",
    s["best_validation_loss"],
    "time %.1f s" % (time.time() - t),
)
post = inf.build_posterior(de)
for xo in (
    [1.778809855902324, -3.1014154151010156, 3.3159319460504935],
    [-2.0034507398872248, 0.03703658593730771, -1.883094234160032],
):
    d = post.sample((20000,), x=torch.tensor(xo), show_progress_bars=False).numpy()
    print(est, seed, "x_o", xo, "mean", d.mean(0), "cov", np.cov(d.T).ravel())
