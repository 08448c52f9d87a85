"""VectorEnv: n environments stepped in Rust."""

import numpy as np

import scaletui

SHORT = {"experiment.duration": 3}


def test_vector_env_steps_resets_and_matches_single_envs():
    n = 3
    vec = scaletui.VectorEnv(n, "step", config=SHORT)
    obs, info = vec.reset(seed=100)
    assert obs.shape == (n, 4) and obs.dtype == np.float32
    actions = np.array([0, 1, 2])
    seen = [obs]
    ended = None
    for k in range(7):
        obs, rew, term, trunc, info = vec.step(actions)
        seen.append(obs)
        assert rew.shape == (n,) and trunc.dtype == np.bool_
        if trunc.any():
            ended = k
            assert trunc.all()  # the same length for all
            break
    assert ended == 4, ended  # three minutes of 30 s ticks: 6 observations
    # Next-step autoreset: the next step starts a new episode (reward 0, not ended).
    obs, rew, term, trunc, info = vec.step(actions)
    assert not trunc.any() and (rew == 0).all()
    # Environment i is the single environment seeded 100 + i with the same actions.
    for i in range(n):
        env = scaletui.AutoscaleEnv("step", config=SHORT)
        o, _ = env.reset(seed=100 + i)
        single = [o]
        for _ in range(5):
            o, *_ = env.step(int(actions[i]))
            single.append(o)
        assert np.array_equal(np.stack(single), np.stack([s[i] for s in seen])), i
        env.close()
    vec.close()
