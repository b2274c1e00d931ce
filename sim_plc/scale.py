"""A simulated scale and dimensioner (DWS) beside the simulated PLC, speaking the line config's [scale] format.

It weighs and measures every parcel the PLC tracks as it passes the scan point and sends one line
a few milliseconds later: the PLC's tracking number, the weight and the three sides, in the order
and units [scale] fields, separator and weight_unit say. It serves when the controller connects
([scale] mode = "client") and connects when the controller listens ("server"), as the simulated
code reader does (whose connection it shares).

Weights are drawn from a seeded random source: most parcels are small (0.1 to 8 kg, sides 100 to
600 mm); a share is heavy (`heavy_share`, 35 to 60 kg) and a share is long (`long_share`, a side
of 1300 to 1800 mm). Faults for tests: every `negative_every`-th line a negative weight (a scale
whose zero drifted), every `absurd_every`-th a weight of 9999 kg.
"""
from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from edge.code_reader_format import frame_bytes

from .code_reader import SimCodeReader

log = logging.getLogger("sortline.sim")


@dataclass(frozen=True)
class ScaleSpec:
    heavy_share: float = 0.03
    long_share: float = 0.03
    delay_ms: tuple[float, float] = (2.0, 8.0)     # after the scan: the scale sits just before the scan point
    negative_every: int = 0
    absurd_every: int = 0
    seed: int = 1


class SimScale(SimCodeReader):
    """The code reader's connection and photo-eye, with weighings instead of codes."""

    def __init__(self, model, scale: dict, spec: ScaleSpec = ScaleSpec(), host: str | None = None,
                 port: int | None = None):
        if scale["mode"] == "off":
            raise ValueError('the line config has [scale] mode = "off": set "client" or "server" to simulate a scale')
        self._device(model, scale, host, port)
        self.fields = [f.strip() for f in scale["fields"].split(",")]
        self.separator = scale["separator"] if scale["separator"].strip() else " "
        self.grams = scale["weight_unit"] == "g"
        self.scale_spec = spec
        self._rng = random.Random(spec.seed * 7919 + 1)
        self.counts = {"triggers": 0, "sent": 0, "unsent": 0, "heavy": 0, "long": 0, "negative": 0, "absurd": 0}
        self.weighed: dict[int, tuple[float, tuple[float, float, float]]] = {}   # tracking -> what it sent

    def _triggered(self, parcel) -> None:
        spec, rng = self.scale_spec, self._rng
        self.counts["triggers"] += 1
        n = self.counts["triggers"]
        sides = (rng.uniform(150, 600), rng.uniform(100, 400), rng.uniform(50, 300))
        weight_kg = rng.uniform(0.1, 8.0)
        if spec.negative_every and n % spec.negative_every == 0:
            weight_kg = -rng.uniform(0.1, 2.0)
            self.counts["negative"] += 1
        elif spec.absurd_every and n % spec.absurd_every == 0:
            weight_kg = 9999.0
            self.counts["absurd"] += 1
        elif rng.random() < spec.heavy_share:
            weight_kg = rng.uniform(35.0, 60.0)
            self.counts["heavy"] += 1
        elif rng.random() < spec.long_share:
            sides = (rng.uniform(1300, 1800), sides[1], sides[2])
            self.counts["long"] += 1
        lo, hi = spec.delay_ms
        loop = asyncio.get_running_loop()
        loop.call_at(parcel.scan_time_s + rng.uniform(lo, hi) / 1000, self._weigh, parcel.tracking, weight_kg, sides)

    def line_text(self, tracking: int, weight_kg: float, sides: tuple[float, float, float]) -> str:
        values = {"id": str(tracking), "weight": f"{weight_kg * 1000:.0f}" if self.grams else f"{weight_kg:.3f}",
                  "length": f"{sides[0]:.0f}", "width": f"{sides[1]:.0f}", "height": f"{sides[2]:.0f}", "skip": "0"}
        return self.separator.join(values[f] for f in self.fields)

    def _weigh(self, tracking: int, weight_kg: float, sides: tuple[float, float, float]) -> None:
        if not self._writers:
            self.counts["unsent"] += 1
            return
        text = self.line_text(tracking, weight_kg, sides)
        frame = frame_bytes(text, self.framing)
        for writer in list(self._writers):
            writer.write(frame)
        self.counts["sent"] += 1
        self.weighed[tracking] = (weight_kg, sides)


# -- `sortline sim --scale` ---------------------------------------------------------------------------
def add_arguments(p) -> None:
    p.add_argument("--scale", action="store_true",
                   help="simulate the line config's [scale] too: it serves when the controller connects "
                        "(mode \"client\") and connects when the controller listens (\"server\")")
    p.add_argument("--scale-port", type=int, default=None, help="override [scale] port")
    p.add_argument("--scale-heavy-share", type=float, default=0.03, help="share of parcels of 35 to 60 kg")
    p.add_argument("--scale-long-share", type=float, default=0.03, help="share of parcels with a side of 1.3-1.8 m")
    p.add_argument("--scale-negative-every", type=int, default=0, metavar="N",
                   help="every N-th weighing is negative (a drifted zero)")
    p.add_argument("--scale-absurd-every", type=int, default=0, metavar="N",
                   help="every N-th weighing is 9999 kg (a wrong unit or calibration)")


def spec_from_args(args, parser, config) -> ScaleSpec | None:
    if not args.scale:
        return None
    if config["scale"]["mode"] == "off":
        parser.error(f'--scale simulates the line config\'s [scale], and {config.path} has none (mode = "off"): '
                     f'set [scale] mode = "client" or "server"')
    for name in ("scale_heavy_share", "scale_long_share"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            parser.error(f"--{name.replace('_', '-')} must be a share from 0 to 1, got {getattr(args, name):g}")
    return ScaleSpec(heavy_share=args.scale_heavy_share, long_share=args.scale_long_share,
                     negative_every=max(0, args.scale_negative_every), absurd_every=max(0, args.scale_absurd_every),
                     seed=args.seed)


async def started(config, model, spec: ScaleSpec, port: int | None = None) -> SimScale:
    scale = SimScale(model, config["scale"], spec, port=port)
    await scale.start()
    return scale
