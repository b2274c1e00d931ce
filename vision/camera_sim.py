"""Simulated line camera: synthetic labelled parcels, rendered ahead so timed runs do not pay for it.

Rendering one frame costs tens of milliseconds, more than reading it. A background thread keeps a
pool of random parcels ready (`grab`), and parcels the simulator chooses itself can be queued
ahead by key (`render_ahead(key, truth)` then `shot(key, timeout_s)`). Every frame is a pure
function of (seed, sequence number), so a run can be replayed.
"""
from __future__ import annotations

import collections
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from vision.camera import Camera, CameraError, Frame
from vision.synth import LabelTruth, random_truth, render_label
from vision.synth.degrade import tier_name


@dataclass
class SimShot:
    truth: LabelTruth
    image: np.ndarray
    tier: str


class SimCamera(Camera):
    name = "sim"

    def __init__(self, seed: int = 0, tier: str = "clean", pool_size: int = 32, routing_codes=None,
                 couriers=None, background: bool = True):
        self.seed = int(seed)
        self.tier = tier_name(tier)
        self.routing_codes = list(routing_codes) if routing_codes else None
        self.couriers = list(couriers) if couriers else None
        if pool_size < 1:
            raise CameraError(f"pool_size must be at least 1, got {pool_size}")
        self._pool: queue.Queue[SimShot] = queue.Queue(maxsize=pool_size)
        self._wanted: collections.OrderedDict = collections.OrderedDict()
        self._ready: dict = {}
        self._cond = threading.Condition()
        self._seq = 0
        self._closed = False
        self._thread = None
        if background:
            self._thread = threading.Thread(target=self._run, name="sim-camera", daemon=True)
            self._thread.start()

    def _next_rng(self):
        with self._cond:
            seq = self._seq
            self._seq += 1
        return np.random.default_rng([self.seed, seq]), seq

    def render(self, truth: LabelTruth | None = None, tier: str | None = None) -> SimShot:
        """Render one shot now, in the caller's thread."""
        rng, _ = self._next_rng()
        if truth is None:
            truth = random_truth(rng, routing_codes=self.routing_codes, couriers=self.couriers)
        tier = tier_name(tier) if tier else self.tier
        return SimShot(truth, render_label(truth, rng, tier), tier)

    def render_ahead(self, key, truth: LabelTruth, tier: str | None = None) -> None:
        """Queue `truth` for rendering; fetch it later with shot(key)."""
        with self._cond:
            self._wanted[key] = (truth, tier)
            self._cond.notify_all()
        if self._thread is None:
            self._render_wanted()

    def shot(self, key, timeout_s: float) -> SimShot | None:
        end = time.monotonic() + timeout_s
        with self._cond:
            while key not in self._ready:
                left = end - time.monotonic()
                if left <= 0 or self._closed:
                    return None
                self._cond.wait(left)
            return self._ready.pop(key)

    def take(self, timeout_s: float) -> SimShot | None:
        if self._closed:
            raise CameraError("simulated camera is closed")
        if self._thread is None and self._pool.empty():
            return self.render()
        try:
            return self._pool.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def grab(self, timeout_s: float) -> Frame | None:
        shot = self.take(timeout_s)
        if shot is None:
            return None
        return Frame(shot.image, f"sim:{shot.truth.waybill}", time.monotonic(),
                     {"truth": shot.truth, "tier": shot.tier})

    def _render_wanted(self) -> bool:
        with self._cond:
            if not self._wanted:
                return False
            key, (truth, tier) = self._wanted.popitem(last=False)
        shot = self.render(truth, tier)
        with self._cond:
            self._ready[key] = shot
            self._cond.notify_all()
        return True

    def _run(self) -> None:
        while not self._closed:
            if self._render_wanted():
                continue
            if self._pool.full():
                with self._cond:
                    self._cond.wait(0.05)
                continue
            shot = self.render()
            while not self._closed:
                try:
                    self._pool.put(shot, timeout=0.05)
                    break
                except queue.Full:
                    if self._render_wanted():
                        continue

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
