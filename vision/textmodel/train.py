"""Train the line recogniser on synthetic labels and export it as one ONNX file.

Exact command that produced the committed model (CPU, about 33 minutes on 2 cores):
    nice -n 10 .venv/bin/python -m vision.textmodel.train --seed 1 --labels 6000 --minutes 32

Needs torch (training only, never at run time): .venv/bin/pip install torch==2.13.0 onnx
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_PATH = os.path.join(HERE, "textline.onnx")
META_PATH = os.path.join(HERE, "textline.json")
VALIDATION_SEED_OFFSET = 100_000


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _greedy(logprobs: np.ndarray) -> list[str]:
    from vision.textmodel.charset import CHARSET
    out = []
    for row in logprobs.argmax(axis=2):
        chars, prev = [], 0
        for idx in row:
            if idx != prev and idx != 0:
                chars.append(CHARSET[idx - 1])
            prev = idx
        out.append("".join(chars))
    return out


def _augment(batch, rng):
    """Shift and contrast jitter so the model does not learn the exact cut position."""
    import torch
    n = batch.shape[0]
    shift = int(rng.integers(-4, 5))
    if shift:
        batch = torch.roll(batch, shifts=shift, dims=3)
    gain = torch.from_numpy(rng.uniform(0.75, 1.0, size=(n, 1, 1, 1)).astype(np.float32))
    offset = torch.from_numpy(rng.uniform(0.0, 0.2, size=(n, 1, 1, 1)).astype(np.float32))
    return (batch * gain + offset * (1 - gain)).clamp(0, 1)


def evaluate(model, pics, targets, kinds) -> dict:
    import torch
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(pics), 256):
            x = torch.from_numpy(pics[i:i + 256].astype(np.float32) / 255.0)[:, None]
            preds += _greedy(model(x).numpy())
    model.train()
    result = {}
    for name, kind in (("routing", 0), ("waybill", 1), ("other", 2)):
        idx = np.flatnonzero(kinds == kind)
        if idx.size:
            result[name] = round(float(np.mean([preds[i] == targets[i] for i in idx])), 4)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--labels", type=int, default=6000, help="synthetic labels to cut lines from")
    parser.add_argument("--val-labels", type=int, default=400)
    parser.add_argument("--minutes", type=float, default=32.0, help="wall-time limit, line cutting included")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=MODEL_PATH)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--cache", help="folder to keep the cut lines in, so a rerun skips cutting")
    parser.add_argument("--resume", help="state_dict (.pt) to start from instead of random weights")
    parser.add_argument("--checkpoint", help="where to save the state_dict (.pt) at the end")
    args = parser.parse_args(argv)

    import torch
    from torch import nn

    from vision.textmodel.charset import CHARSET, encode
    from vision.textmodel.data import make_set
    from vision.textmodel.model import LineRecognizer

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    started = time.time()
    def cut(seed, n, progress=None):
        path = args.cache and os.path.join(args.cache, f"lines-{seed}-{n}.npz")
        if path and os.path.exists(path):
            data = np.load(path)
            return data["pics"], [str(t) for t in data["targets"]], data["kinds"]
        made = make_set(seed, n, progress)
        if path:
            os.makedirs(args.cache, exist_ok=True)
            np.savez(path, pics=made[0], targets=np.array(made[1]), kinds=made[2])
        return made

    _log(f"cutting lines from {args.labels} training labels (seed {args.seed})")
    pics, targets, kinds = cut(args.seed, args.labels, lambda n, k: _log(f"  {n} labels, {k} lines"))
    val = cut(args.seed + VALIDATION_SEED_OFFSET, args.val_labels)
    _log(f"{len(pics)} training lines, {len(val[0])} validation lines, "
         f"kinds {np.bincount(kinds).tolist()}")

    encoded = [encode(t) for t in targets]
    model = LineRecognizer()
    if args.resume:
        model.load_state_dict(torch.load(args.resume))
        _log(f"starting from {args.resume}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    deadline = started + args.minutes * 60
    # The learning rate follows the wall clock: the run ends on time whatever the machine's load.
    train_start = time.time()
    step = 0
    history = []
    while time.time() < deadline:
        order = rng.permutation(len(pics))
        for i in range(0, len(order) - args.batch + 1, args.batch):
            frac = (time.time() - train_start) / max(1.0, deadline - train_start)
            if frac >= 1.0:
                break
            for group in opt.param_groups:
                # Warm up, hold the peak for the first half, then a cosine to zero by the deadline.
                decay = 1.0 if frac < 0.5 else 0.5 * (1 + np.cos(np.pi * (frac - 0.5) / 0.5))
                group["lr"] = args.lr * min(1.0, step / 100 + 0.05) * decay
            idx = order[i:i + args.batch]
            x = _augment(torch.from_numpy(pics[idx].astype(np.float32) / 255.0)[:, None], rng)
            tgt = [encoded[j] for j in idx]
            flat = torch.tensor([c for t in tgt for c in t], dtype=torch.long)
            lengths = torch.tensor([len(t) for t in tgt], dtype=torch.long)
            logp = model(x)
            loss = ctc(logp.permute(1, 0, 2), flat, torch.full((len(idx),), logp.shape[1], dtype=torch.long),
                       lengths)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 200 == 0:
                scores = evaluate(model, *val)
                history.append({"step": step, "loss": round(loss.item(), 4), **scores})
                _log(f"step {step} loss {loss.item():.4f} lr {opt.param_groups[0]['lr']:.2e} val {scores}")

    final = evaluate(model, *val)
    _log(f"final validation {final} after {step} steps")
    if args.checkpoint:
        torch.save(model.state_dict(), args.checkpoint)
    model.eval()
    dummy = torch.zeros(1, 1, 32, 256)
    torch.onnx.export(model, dummy, args.out, input_names=["image"], output_names=["logprobs"],
                      dynamic_axes={"image": {0: "n"}, "logprobs": {0: "n"}}, opset_version=17,
                      dynamo=False)
    meta = {
        "charset": CHARSET, "blank": 0, "input": [1, 32, 256], "seed": args.seed, "labels": args.labels,
        "steps": step, "batch": args.batch, "minutes": args.minutes, "resumed_from": args.resume,
        "validation": final, "history": history[-10:],
        "command": "python -m vision.textmodel.train " + " ".join(argv if argv is not None else sys.argv[1:]),
        "torch": torch.__version__,
    }
    with open(os.path.splitext(args.out)[0] + ".json", "w") as fh:
        json.dump(meta, fh, indent=1)
    _log(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
