"""Actions for the lanes of a `BatchEnv`, drawn from a policy's masked logits in one compiled loop.

The search (`migsched.search`) imports this module when it runs, so that importing the search
(and the command-line tools that use it) does not import numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def sample_lanes(logits: np.ndarray, masks: np.ndarray, running: np.ndarray, temperature: float, uniforms: np.ndarray, actions: np.ndarray) -> None:
    """Set `actions[lane]` for every lane: for the k-th of `running`, a draw from softmax(masked
    `logits[k]` / `temperature`) by inverse transform of `uniforms[k]`; for the others, their
    first valid action (lanes whose result no longer matters are kept stepping validly)."""
    n_actions = masks.shape[1]
    for lane in range(masks.shape[0]):
        a = 0
        while a < n_actions - 1 and not masks[lane, a]:
            a += 1
        actions[lane] = a
    weights = np.empty(n_actions)
    for k in range(running.shape[0]):
        lane = running[k]
        top = -np.inf
        for a in range(n_actions):
            if masks[lane, a] and logits[k, a] > top:
                top = logits[k, a]
        total = 0.0
        for a in range(n_actions):
            weights[a] = np.exp((float(logits[k, a]) - top) / temperature) if masks[lane, a] else 0.0
            total += weights[a]
        target = uniforms[k] * total
        chosen, cumulative = -1, 0.0
        for a in range(n_actions):
            if weights[a] > 0.0:
                chosen = a  # the last valid action with weight, should rounding leave the target unreached
                cumulative += weights[a]
                if cumulative > target:
                    break
        actions[lane] = chosen
