#!/usr/bin/env python3
"""Environment throughput (a bench, not a test): steps per second of one ``AutoscaleEnv`` and of
``VectorEnv(8)``, and the Python overhead per step over the Rust step alone.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install ./python && /tmp/v/bin/python python/benches/env_steps.py

Run it from the repository root (its config.toml and scenarios/). Each figure is the median of
``--repeats`` runs; resets are not timed (an episode is 30 s ticks of the scenario).
"""

import argparse
import statistics
import time

import numpy as np

import scaletui
from scaletui import _core


def single(steps, scenario, cfg):
    env = scaletui.AutoscaleEnv(scenario, config=cfg)
    env.reset(seed=0)
    spent, seed = 0.0, 0
    for _ in range(steps):
        t = time.perf_counter()
        _, _, term, trunc, _ = env.step(1)
        spent += time.perf_counter() - t
        if term or trunc:
            seed += 1
            env.reset(seed=seed)
    env.close()
    return spent


def vector(n, steps, scenario, cfg):
    vec = scaletui.VectorEnv(n, scenario, config=cfg)
    vec.reset(seed=0)
    acts = np.ones(n, dtype=np.int64)
    t = time.perf_counter()
    for _ in range(steps):
        vec.step(acts)
    spent = time.perf_counter() - t
    vec.close()
    return spent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="step")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=8)
    a = ap.parse_args()
    cfg = {}
    med = lambda f: statistics.median(f() for _ in range(a.repeats))  # noqa: E731
    py = med(lambda: single(a.steps, a.scenario, cfg))
    rust = med(lambda: _core.rust_step_seconds(a.steps, a.scenario, cfg, 1))
    vec_steps = max(1, a.steps // a.n)
    vec = med(lambda: vector(a.n, vec_steps, a.scenario, cfg))
    print(f"scenario {a.scenario}, 30 s ticks, {a.steps} steps, median of {a.repeats}")
    print(f"AutoscaleEnv      {a.steps / py:10.0f} steps/s   {py / a.steps * 1e6:8.1f} µs/step")
    print(f"Rust step alone   {a.steps / rust:10.0f} steps/s   {rust / a.steps * 1e6:8.1f} µs/step")
    print(f"Python overhead   {(py - rust) / a.steps * 1e6:8.1f} µs/step ({(py - rust) / py * 100:.0f} % of a step)")
    print(f"VectorEnv({a.n})      {vec_steps * a.n / vec:10.0f} env steps/s ({vec_steps / vec:.0f} vector steps/s)")


if __name__ == "__main__":
    main()
