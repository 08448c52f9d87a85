"""scaletui from Python.

- ``scaletui.AutoscaleEnv``: the simulated cluster as a ``gymnasium.Env`` (registered as
  ``scaletui/Autoscale-v0``); ``scaletui.VectorEnv``: many of them stepped in Rust.
- ``scaletui.policy``: the policy side of ``scaletui --driver exec:CMD`` / ``http:URL``
  (standard library only, so a policy needs nothing else installed).
"""

from . import policy

__all__ = ["AutoscaleEnv", "VectorEnv", "policy", "FIGURES"]


def __getattr__(name):
    # The environment needs the compiled core, gymnasium and numpy; a policy script does not.
    if name in ("AutoscaleEnv", "VectorEnv", "FIGURES"):
        from . import env

        return getattr(env, name)
    raise AttributeError(f"module 'scaletui' has no attribute {name!r}")


try:
    import gymnasium as _gym

    if "scaletui/Autoscale-v0" not in _gym.registry:
        _gym.register(id="scaletui/Autoscale-v0", entry_point="scaletui.env:AutoscaleEnv")
except ImportError:  # a policy-only install
    pass
