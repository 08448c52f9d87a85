#!/usr/bin/env python3
"""An example policy for ``scaletui --driver exec:python3 python/examples/example_policy.py``.

The HPA algorithm's answer (``baseline``), one replica more while the arrival rate is rising by
more than 10 % over two ticks, never more than two replicas down per tick.
"""

import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from scaletui.policy import serve  # noqa: E402


def decide(obs):
    cur = obs["current_replicas"] or obs["min_replicas"]
    want = obs["baseline"] or cur
    hist = [h["rps"] for h in obs["history"] if h.get("rps") is not None]
    rising = obs.get("rps") is not None and len(hist) >= 2 and obs["rps"] > 1.1 * hist[-2]
    if rising:
        want += 1
    want = max(want, cur - 2)
    want = min(max(want, obs["min_replicas"]), obs["max_replicas"])
    why = f"HPA says {obs['baseline']}, rate {'rising' if rising else 'steady'}"
    if obs.get("latency_p95_ms") is not None:
        why += f", p95 {obs['latency_p95_ms']:.0f} ms"
    return {"replicas": int(math.floor(want)), "reasoning": why}


if __name__ == "__main__":
    serve(decide)
