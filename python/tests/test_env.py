"""The Gymnasium environment over the Rust core."""

import csv
import glob
import json
import os
import pathlib
import subprocess

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import scaletui

HERE = pathlib.Path(__file__).resolve().parent
SHORT = {"experiment.duration": 6}


def run_episode(env, seed, policy):
    obs, info = env.reset(seed=seed)
    steps = [(obs, 0.0, False, False, info)]
    while True:
        obs, r, term, trunc, info = env.step(policy(obs, info))
        steps.append((obs, r, term, trunc, info))
        if term or trunc:
            return steps


def wobble(obs, info):
    """A policy with some of everything: up when hot, down when cold, else keep."""
    return 2 if obs[0] > 0.5 else (0 if obs[0] < 0.15 else 1)


@pytest.mark.parametrize("actions", ["delta", "count"])
def test_gymnasium_checker_passes(actions):
    env = gym.make("scaletui/Autoscale-v0", scenario="step", config=SHORT, actions=actions, render_mode="ansi")
    assert isinstance(env.unwrapped, scaletui.AutoscaleEnv)
    # Through make, so the checker has a spec to try the render modes with.
    check_env(env.unwrapped, skip_render_check=False)
    assert env.action_space == gym.spaces.Discrete(3 if actions == "delta" else 11)
    assert env.observation_space.shape == (4,)
    assert env.observation_space.dtype == np.float32
    env.close()


def test_registered_and_made_by_name():
    env = gym.make("scaletui/Autoscale-v0", scenario="step", config=SHORT, actions="count")
    obs, info = env.reset(seed=3)
    assert obs.dtype == np.float32
    assert info["current_replicas"] >= 1
    env.close()


def test_the_same_seed_gives_the_same_trajectory_and_another_seed_another():
    env = scaletui.AutoscaleEnv("step", config=SHORT)
    a = run_episode(env, 11, wobble)
    b = run_episode(env, 11, wobble)
    c = run_episode(env, 12, wobble)
    assert len(a) == len(b) == 12  # six minutes of 30 s ticks

    def strip(steps):
        return [(o.tolist(), r, te, tr, i) for o, r, te, tr, i in steps]

    assert strip(a) == strip(b)
    assert [s[4]["arrived"] for s in a] != [s[4]["arrived"] for s in c]
    env.close()


def test_info_has_the_ticks_figures_and_render_draws_them():
    env = scaletui.AutoscaleEnv("step", config=SHORT, render_mode="ansi")
    obs, info = env.reset(seed=2)
    obs, r, term, trunc, info = env.step(2)
    for key in [
        "current_replicas",
        "ready_replicas",
        "cpu_utilization",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "served",
        "rejected",
        "timed_out",
        "failed",
        "hpa_sim_desired",
        "requested_replicas",
    ]:
        assert key in info, key
    assert info["requested_replicas"] == 4  # three replicas at the start, +1
    assert info["served"] > 0
    # Seed 003's features: replicas / max.
    assert obs[2] == pytest.approx(info["current_replicas"] / 10)
    line = env.render()
    assert line.startswith("[30s] replicas ") and "reward" in line, line
    env.close()


def test_listed_figures_are_the_observation():
    env = scaletui.AutoscaleEnv("step", config=SHORT, observation=["current_replicas", "rps", "latency_p95_ms"])
    obs, info = env.reset(seed=5)
    obs, *_ , info = env.step(1)
    assert obs.tolist() == pytest.approx([info["current_replicas"], info["rps"], info["latency_p95_ms"]])
    with pytest.raises(ValueError, match="unknown observation figure"):
        scaletui.AutoscaleEnv("step", observation=["nope"])
    env.close()


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="scenario"):
        scaletui.AutoscaleEnv("no-such-scenario")
    with pytest.raises(ValueError, match="max_replicas"):
        scaletui.AutoscaleEnv("step", config={"scaling.max_replicas": -3})
    with pytest.raises(ValueError, match="action space"):
        scaletui.AutoscaleEnv("step", actions="sideways")
    env = scaletui.AutoscaleEnv("step", config=SHORT)
    env.reset(seed=1)
    with pytest.raises(RuntimeError, match="outside"):
        env.step(7)
    env.close()


def test_an_episode_is_the_headless_run_of_the_same_scenario_seed_and_decisions(tmp_path, binary):
    """The environment's rows are the ones `scaletui --headless --driver exec:` writes when the
    same decisions come from a process."""
    rec = tmp_path / "env"
    env = scaletui.AutoscaleEnv("step", config=SHORT, record_dir=rec)
    steps = run_episode(env, 21, wobble)
    env.close()
    env_csv = [p for p in glob.glob(str(rec / "*.csv")) if not p.endswith("_events.csv")]
    assert len(env_csv) == 1
    decisions = {s[4]["tick"] - 1: s[4]["requested_replicas"] for s in steps[1:]}
    (tmp_path / "decisions.json").write_text(json.dumps(decisions))
    out = tmp_path / "headless"
    driver = f"exec:python3 {HERE / 'replay_policy.py'} {tmp_path / 'decisions.json'}"
    subprocess.run(
        [binary, "--headless", "--speed", "max", "--scenario", "step", "--duration", "6", "--seed", "21",
         "--mode", "ai_scaler", "--driver", driver, "--output-dir", str(out)],
        check=True, capture_output=True, timeout=300,
    )
    head_csv = [p for p in glob.glob(str(out / "*.csv")) if not p.endswith("_events.csv")]
    assert len(head_csv) == 1

    def rows(path):
        with open(path) as f:
            return list(csv.DictReader(f))

    a, b = rows(env_csv[0]), rows(head_csv[0])
    assert len(a) == len(b) == len(steps)
    same = ["elapsed_s", "current_replicas", "ready_replicas", "cpu_millicores", "memory_mebibytes", "rps",
            "served_rps", "errors_per_s", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
            "hpa_sim_desired", "applied_replicas", "policy_replicas", "served", "rejected", "timed_out", "failed"]
    for i, (x, y) in enumerate(zip(a, b)):
        for k in same:
            assert x[k] == y[k], f"row {i} {k}: env {x[k]} vs headless {y[k]}"
    # And the environment's figures are the rows'.
    for s, row in zip(steps, a):
        assert str(s[4]["current_replicas"]) == row["current_replicas"]
        assert s[4]["served"] == (int(row["served"]) if row["served"] else None)


def test_rewards_follow_the_preset():
    seed003 = run_episode(scaletui.AutoscaleEnv("step", config=SHORT), 4, lambda o, i: 2)
    slo = run_episode(scaletui.AutoscaleEnv("step", config=SHORT, reward="slo_cost"), 4, lambda o, i: 2)
    # The same run (same seed, same actions), scored two ways.
    assert [s[4]["served"] for s in seed003] == [s[4]["served"] for s in slo]
    assert [s[1] for s in seed003] != [s[1] for s in slo]
    # Seed 003's reward: −(performance + resources) + alignment, its terms in the info.
    for _, r, _, _, i in seed003[1:]:
        parts = -(i["reward_performance"] + i["reward_resources"]) + i["reward_alignment"]
        assert r == pytest.approx(parts)
