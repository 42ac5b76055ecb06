#!/usr/bin/env python3
"""Time the issue-3 QIF workload in Brian2 (C++ standalone, one thread) and in nmm, and print
the wall-time ratio. Runs only when brian2 is installed (`pip install brian2`); otherwise it
says so and exits 0.

Workload: N = 10^4 QIF neurons, tau = 10 ms, deterministic Lorentzian quantiles (eta_bar = -5,
Delta = 1), I = 3, Erdos-Renyi p = 0.1 with weight J/(pN), J = 15, each spike added to the
non-refractory targets tau/V_peak after the crossing, V_peak = -V_reset = 100, refractory
2 tau/V_peak, Euler, 1 s at dt = 0.01 ms.

Usage: python3 benches/peers/brian2_qif.py [path/to/nmm]   (default: target/release/nmm)
"""
import os
import subprocess
import sys
import tempfile
import time

N, TAU_MS, ETA, DELTA, J, P, VP, I_EXT, DT_MS, T_MS = 10_000, 10.0, -5.0, 1.0, 15.0, 0.1, 100.0, 3.0, 0.01, 1000.0


def time_nmm(binary):
    args = [binary, "spiking", "qif", "--N", str(N), "--tau", str(TAU_MS), "--eta", str(ETA),
            "--delta", str(DELTA), "--J", str(J), "--p", str(P), "--normalise", "--stim", f"const:{I_EXT}",
            "--dt", str(DT_MS), "--t-end", str(T_MS), "--bin", "1", "--v-peak", str(VP), "--threads", "1"]
    t0 = time.perf_counter()
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t0, out.strip().splitlines()[0]


def time_brian2():
    import numpy as np
    from brian2 import (NeuronGroup, Synapses, SpikeMonitor, ms, run, set_device, device, defaultclock, prefs)
    workdir = tempfile.mkdtemp(prefix="nmm-brian2-")
    set_device("cpp_standalone", directory=workdir, build_on_run=False)
    prefs.devices.cpp_standalone.openmp_threads = 0  # one thread
    defaultclock.dt = DT_MS * ms
    tau = TAU_MS * ms
    eqs = """dv/dt = (v**2 + eta + I_ext) / tau : 1 (unless refractory)
             eta : 1 (constant)"""
    g = NeuronGroup(N, eqs, threshold="v >= vpeak", reset="v = -vpeak", refractory=2 * tau / VP,
                    method="euler", namespace={"vpeak": VP, "I_ext": I_EXT, "tau": tau})
    j = np.arange(1, N + 1)
    g.eta = ETA + DELTA * np.tan(np.pi / 2 * (2 * j - N - 1) / (N + 1))
    g.v = -2.0
    s = Synapses(g, g, on_pre="v_post += w * int(not_refractory_post)", delay=tau / VP,
                 namespace={"w": J / (P * N)})
    s.connect(p=P)
    spikes = SpikeMonitor(g, record=False)
    run(T_MS * ms)
    device.build(directory=workdir, compile=True, run=False)
    t0 = time.perf_counter()
    device.run(directory=workdir)
    elapsed = time.perf_counter() - t0
    return elapsed, spikes.num_spikes


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join("target", "release", "nmm")
    try:
        import brian2  # noqa: F401
    except ImportError:
        print("brian2 is not installed (pip install brian2); skipping the peer comparison")
        return 0
    tb, nb = time_brian2()
    tn, summary = time_nmm(binary)
    print(f"Brian2 C++ standalone, 1 thread: {tb:.2f} s ({nb} spikes, run only, compile excluded)")
    print(f"nmm, 1 thread: {tn:.2f} s (whole process, connectivity included): {summary}")
    print(f"ratio Brian2 / nmm: {tb / tn:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
