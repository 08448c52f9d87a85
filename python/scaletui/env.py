"""The Gymnasium environment over scaletui's Rust core (``scaletui._core``).

An episode is one headless run of a scenario on the simulated cluster in virtual time, with
the environment driving ``ai_scaler``: every ``interval`` seconds of simulated time the run asks
for a decision, exactly as ``scaletui --headless --driver exec:CMD`` asks a process. The same
scenario, seed and decisions give the same rows as that headless run.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from . import _core

FIGURES = list(_core.FIGURES)


def _settings(config: Optional[dict], reward: Optional[str]) -> dict:
    """The overrides an environment is made with: `config`, and `reward` as `reward.preset`."""
    out = dict(config or {})
    if reward is not None:
        out["reward.preset"] = reward
    return out


def _spaces(core, actions: str):
    low = np.array([b[0] for b in core.bounds], dtype=np.float32)
    high = np.array([b[1] for b in core.bounds], dtype=np.float32)
    return spaces.Box(low=low, high=high, dtype=np.float32), spaces.Discrete(core.n_actions)


class AutoscaleEnv(gym.Env):
    """scaletui's simulated cluster as a ``gymnasium.Env``.

    Args:
        scenario: a scenario file, or a name in ``scenarios/`` (``"step"``, ``"classic"``, …).
        config: settings over the configuration, as dotted keys or nested dicts
            (``{"scaling.max_replicas": 13, "sim": {"service": {"mean_ms": 20}}}``); an
            ``experiment.duration`` (minutes) sets the episode's length (default: the scenario
            plus ten minutes).
        actions: ``"delta"`` — ``Discrete(3)``, one replica fewer / keep / one more (seed 003's);
            ``"count"`` — ``Discrete(max_replicas + 1)``, the replica count (below the minimum
            means the minimum).
        observation: ``None`` for seed 003's four features (CPU utilisation, arrival rate / max,
            replicas / max, rate trend), or a list of figure names (``scaletui.FIGURES``, the
            CSV's column names).
        reward: ``"seed003"`` or ``"slo_cost"`` (the ``[reward]`` presets; or set
            ``config={"reward.preset": ...}`` and the other ``reward.*`` keys).
        max_rps: the rate seed 003's rate feature divides by (default: the scenario's peak).
        record_dir: keep each episode's CSV (and events) there; default: nothing is kept.
        render_mode: ``"ansi"`` for a one-line status per step.
    """

    # render_fps: how often a viewer would draw the status line (the episode runs in virtual time).
    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        scenario: Union[str, os.PathLike] = "step",
        config: Optional[dict] = None,
        actions: str = "delta",
        observation: Optional[Sequence[str]] = None,
        reward: Optional[str] = None,
        max_rps: Optional[float] = None,
        record_dir: Optional[Union[str, os.PathLike]] = None,
        render_mode: Optional[str] = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r}: only 'ansi'")
        config = _settings(config, reward)
        self._core = _core.RustEnv(
            str(scenario),
            config,
            actions,
            list(observation) if observation is not None else None,
            max_rps,
            os.fspath(record_dir) if record_dir is not None else None,
        )
        self.observation_space, self.action_space = _spaces(self._core, actions)
        self.render_mode = render_mode
        self.features = list(self._core.features)
        self._last_info: dict = {}
        self._last_reward = 0.0

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        if seed is None:
            # Seeded from the environment's generator (itself seeded by the first seed).
            seed = int(self.np_random.integers(0, 2**63 - 1))
        obs, info = self._core.reset(int(seed) % (2**64))
        self._last_info, self._last_reward = info, 0.0
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self._core.step(int(action))
        self._last_info, self._last_reward = info, reward
        return obs, float(reward), bool(terminated), bool(truncated), info

    def render(self) -> Optional[str]:
        if self.render_mode != "ansi":
            return None
        i = self._last_info
        if not i:
            return "scaletui: not started"

        def f(key, fmt="{:.0f}"):
            v = i.get(key)
            return "-" if v is None else fmt.format(v)

        return (
            f"[{f('elapsed_s')}s] replicas {f('ready_replicas')}/{f('current_replicas')} "
            f"cpu {f('cpu_utilization')}% rps {f('rps', '{:.1f}')} p95 {f('latency_p95_ms')}ms "
            f"failed/s {f('errors_per_s', '{:.1f}')} hpa {f('hpa_sim_desired')} reward {self._last_reward:.3f}"
        )

    @property
    def last_csv(self) -> Optional[str]:
        """The CSV of the last finished episode (with ``record_dir``)."""
        p = self._core.last_csv
        return None if p is None else os.fspath(p)

    def close(self):
        self._core.close()
        super().close()


class VectorEnv(gym.vector.VectorEnv):
    """``n`` environments stepped together in Rust, on several threads, with the GIL released.

    Autoreset is Gymnasium's next-step mode: the step after an episode ended resets that
    environment (reward 0, not ended). ``reset(seed=s)`` seeds environment ``i`` with ``s + i``;
    each later episode of environment ``i`` takes the seed of its last plus ``n``.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        n: int,
        scenario: Union[str, os.PathLike] = "step",
        config: Optional[dict] = None,
        actions: str = "delta",
        observation: Optional[Sequence[str]] = None,
        reward: Optional[str] = None,
        max_rps: Optional[float] = None,
    ):
        config = _settings(config, reward)
        self._core = _core.RustVecEnv(
            int(n), str(scenario), config, actions, list(observation) if observation is not None else None, max_rps
        )
        self.num_envs = int(n)
        self.single_observation_space, self.single_action_space = _spaces(self._core, actions)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._seed = 0

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        if seed is not None:
            self._seed = int(seed)
        obs, infos = self._core.reset(self._seed % (2**64))
        return obs, self._merge(infos)

    def step(self, actions):
        acts = [int(a) for a in np.asarray(actions).reshape(self.num_envs)]
        obs, rew, term, trunc, infos = self._core.step(acts)
        return (
            obs,
            np.asarray(rew, dtype=np.float64),
            np.asarray(term, dtype=np.bool_),
            np.asarray(trunc, dtype=np.bool_),
            self._merge(infos),
        )

    def _merge(self, infos: list) -> dict[str, Any]:
        """Gymnasium's vector info: each key an array over the environments."""
        out: dict[str, Any] = {}
        for k in infos[0] if infos else []:
            vals = [i.get(k) for i in infos]
            if all(isinstance(v, (int, float, bool)) and v is not None for v in vals):
                out[k] = np.asarray(vals)
            else:
                out[k] = np.asarray(vals, dtype=object)
        return out

    def close_extras(self, **kwargs):
        self._core.close()
