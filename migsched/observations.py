"""How a version shows the state to its network (MIG_MODEL.md section 7).

The features are always the same: the partition, for each type slot its five levels and its
count, then the seven remaining times (and, online, whether the last action reconfigured).
`FloatObservation` scales each into [0, 1]; `IntegerObservation` keeps them as integers in a
`MultiDiscrete` space, which Stable-Baselines3 one-hot encodes for the network.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces

from migsched.a100 import NUM_PARTITIONS, NUM_SLICES
from migsched.state import SchedState


class FloatObservation:
    """`Box(0, 1)` of length 1 + 6N + 7 (+1 with `reconfig_flag`)."""

    def __init__(self, n_slots: int, levels: int, reconfig_flag: bool = False) -> None:
        self.reconfig_flag = reconfig_flag
        self._slots_end = 1 + 6 * n_slots
        length = self._slots_end + NUM_SLICES + int(reconfig_flag)
        self.space = spaces.Box(0.0, 1.0, shape=(length,), dtype=np.float32)
        self._slot_scale = np.tile([1.0 / levels] * 5 + [1.0 / n_slots], (n_slots, 1))
        self._scaled = np.zeros((n_slots, 6))
        self._levels = levels
        self._inv_levels = 1.0 / levels
        self._slots_version = -1
        self._buffer = np.zeros(length, dtype=np.float32)

    def encode(self, state: SchedState) -> np.ndarray:
        buf, inv, levels = self._buffer, self._inv_levels, self._levels
        buf[0] = (state.partition - 1) / (NUM_PARTITIONS - 1)
        if state.slots_version != self._slots_version:
            np.multiply(state.slot_features, self._slot_scale, out=self._scaled)
            buf[1 : self._slots_end] = self._scaled.ravel()
            self._slots_version = state.slots_version
        buf[self._slots_end : self._slots_end + NUM_SLICES] = [r * inv if r < levels else 1.0 for r in state.rem]
        if self.reconfig_flag:
            buf[-1] = state.prev_reconfig
        return buf.copy()


class IntegerObservation:
    """`MultiDiscrete`: partition 0..15, levels 0..M, counts 0..N, remaining times rounded up and capped at M."""

    def __init__(self, n_slots: int, levels: int) -> None:
        self._slots_end = 1 + 6 * n_slots
        self._levels = levels
        nvec = [NUM_PARTITIONS] + ([levels + 1] * 5 + [n_slots + 1]) * n_slots + [levels + 1] * NUM_SLICES
        self.space = spaces.MultiDiscrete(nvec)
        self._buffer = np.zeros(len(nvec), dtype=np.int64)

    def encode(self, state: SchedState) -> np.ndarray:
        buf, cap = self._buffer, self._levels
        buf[0] = state.partition - 1
        buf[1 : self._slots_end] = state.slot_features.ravel()
        buf[self._slots_end :] = [min(math.ceil(r), cap) for r in state.rem]
        return buf.copy()
