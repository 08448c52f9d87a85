"""An exec policy that answers each tick with the replica count a file lists for it.

Usage: replay_policy.py DECISIONS.json  — a JSON object {tick: replicas}; a tick it does not list
keeps the current replicas (the environment's last tick does the same).
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from scaletui.policy import serve  # noqa: E402

with open(sys.argv[1]) as f:
    DECISIONS = {int(k): v for k, v in json.load(f).items()}


def decide(obs):
    return DECISIONS.get(obs["tick"], obs["current_replicas"])


serve(decide)
