"""Train the line recogniser on synthetic labels and export it as one ONNX file.

The committed model is run 4 of MODEL.md, continued from run 2's exported file (runs 1 and 2
trained from random weights). Run 4's command, with run 2's file in vision/textmodel/:
    nice -n 10 .venv/bin/python -m vision.textmodel.train --seed 5 --labels 8000 --val-labels 600 \
        --minutes 50 --threads 2 --lr 1e-3 --init-onnx vision/textmodel/textline.onnx --lookalikes 0.5 \
        --routing-repeat 2 --waybill-repeat 2 --cache /tmp/tm5/cache --checkpoint /tmp/tm5/run/run5.pt \
        --out /tmp/tm5/run/textline.onnx

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


# The floor fusion puts on a routing code read from text (vision/fusion.py); a wrong line read above
# it is a wrong read on the line, so validation counts those apart.
CONFIDENT = 0.97


def _confidences(logprobs: np.ndarray, texts: list[str]) -> list[float]:
    """Each line's confidence as the reader computes it: the text's probability over all its
    alignments for texts of 4 characters or more, the best path's otherwise."""
    from vision.textmodel.charset import CHARSET
    from vision.textmodel.runtime import text_probabilities
    confs = np.exp(logprobs.max(axis=2).sum(axis=1))
    long = [i for i, t in enumerate(texts) if len(t) >= 4]
    if long:
        rows = np.ascontiguousarray(logprobs[long], np.float32)
        confs[long] = text_probabilities(rows, [[CHARSET.index(c) + 1 for c in texts[i]] for i in long])
    return confs.tolist()


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


def load_onnx_weights(model, onnx_path: str, calibration: np.ndarray) -> None:
    """Continue from an exported model: its folded conv weights, with every batch norm made neutral.

    The export folds each batch norm into the convolution before it, so the file holds one weight and
    one bias per convolution. The weight goes back into the convolution, the bias into the batch
    norm's beta. The batch norm is then set to pass its input through unchanged in eval mode, with
    running statistics measured on `calibration` lines (gamma = their standard deviation, beta = bias +
    their mean): in training mode it normalises by the batch's statistics, which then match the
    running ones, so training starts from the exported model's outputs instead of a rescaled net.
    """
    import onnx
    import torch
    from onnx import numpy_helper
    from torch import nn

    graph = onnx.load(onnx_path).graph
    inits = {t.name: numpy_helper.to_array(t).copy() for t in graph.initializer}
    file_convs = [(inits[n.input[1]], inits[n.input[2]]) for n in graph.node if n.op_type == "Conv"]
    mods = list(model.modules())
    convs = [m for m in mods if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    if len(convs) != len(file_convs):
        raise ValueError(f"{onnx_path} has {len(file_convs)} convolutions, the network {len(convs)}")
    pairs = []   # (conv, batch norm after it or None)
    for conv in convs:
        at = mods.index(conv) + 1
        nxt = mods[at] if at < len(mods) else None
        pairs.append((conv, nxt if isinstance(nxt, (nn.BatchNorm1d, nn.BatchNorm2d)) else None))
    with torch.no_grad():
        for (conv, bn), (weight, bias) in zip(pairs, file_convs):
            if tuple(conv.weight.shape) != weight.shape:
                raise ValueError(f"{onnx_path}: weight {weight.shape} where the network has {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(weight))
            if bn is None:
                conv.bias.copy_(torch.from_numpy(bias))
                continue
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(bias))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        # With the neutral settings the eval-mode net is the exported one; measure what each batch
        # norm sees and move its statistics there without changing the eval-mode output.
        sums = {}
        def hook(module, inputs, output):
            x = inputs[0].transpose(0, 1).reshape(inputs[0].shape[1], -1).double()
            s = sums.setdefault(module, [0, 0.0, 0.0])
            s[0] += x.shape[1]
            s[1] = s[1] + x.sum(1)
            s[2] = s[2] + (x * x).sum(1)
        handles = [bn.register_forward_hook(hook) for _, bn in pairs if bn is not None]
        model.eval()
        for i in range(0, len(calibration), 256):
            model(torch.from_numpy(calibration[i:i + 256].astype(np.float32) / 255.0)[:, None])
        for h in handles:
            h.remove()
        for bn, (n, s1, s2) in sums.items():
            mean = s1 / n
            var = (s2 / n - mean * mean).clamp_min(1e-6)
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.add_(mean.float())
    model.train()


def onnx_difference(model, onnx_path: str, pics: np.ndarray) -> float:
    """Largest |torch - onnxruntime| log-probability over `pics`, the torch model in eval mode."""
    import onnxruntime as ort
    import torch
    x = pics.astype(np.float32)[:, None] / 255.0
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    ref = session.run(None, {"image": x})[0]
    model.eval()
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    model.train()
    return float(np.abs(got - ref).max())


def evaluate(model, pics, targets, kinds) -> dict:
    import torch
    model.eval()
    preds, confs = [], []
    with torch.no_grad():
        for i in range(0, len(pics), 256):
            x = torch.from_numpy(pics[i:i + 256].astype(np.float32) / 255.0)[:, None]
            logp = model(x).numpy()
            texts = _greedy(logp)
            preds += texts
            confs += _confidences(logp, texts)
    model.train()
    result = {}
    for name, kind in (("routing", 0), ("waybill", 1), ("other", 2)):
        idx = np.flatnonzero(kinds == kind)
        if idx.size:
            result[name] = round(float(np.mean([preds[i] == targets[i] for i in idx])), 4)
            if kind != 2:
                result[f"{name}_wrong_confident"] = sum(
                    preds[i] != targets[i] and confs[i] >= CONFIDENT for i in idx)
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
    parser.add_argument("--init-onnx", help="exported model (.onnx) whose weights to start from")
    parser.add_argument("--waybill-repeat", type=int, default=1,
                        help="times each printed waybill line is drawn per epoch (the weakest kind)")
    parser.add_argument("--routing-repeat", type=int, default=1,
                        help="times each routing code line is drawn per epoch")
    parser.add_argument("--lookalikes", type=float, default=0.0,
                        help="share of training labels whose routing code letter is one a digit resembles "
                             "(O, S, I, B, Z, G, D, Q); validation labels are drawn the same way")
    parser.add_argument("--checkpoint", help="where to save the state_dict (.pt) at the end")
    args = parser.parse_args(argv)

    import torch
    from torch import nn

    from vision.textmodel.charset import CHARSET, encode
    from vision.textmodel.data import KIND_ROUTING, KIND_WAYBILL, make_set
    from vision.textmodel.model import LineRecognizer

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    started = time.time()
    def cut(seed, n, progress=None):
        name = f"lines-{seed}-{n}" + (f"-lookalikes{args.lookalikes:g}" if args.lookalikes else "")
        path = args.cache and os.path.join(args.cache, name + ".npz")
        if path and os.path.exists(path):
            data = np.load(path)
            return data["pics"], [str(t) for t in data["targets"]], data["kinds"]
        made = make_set(seed, n, progress, args.lookalikes)
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
    before = None
    if args.init_onnx:
        calib = pics[rng.permutation(len(pics))[:2048]]
        load_onnx_weights(model, args.init_onnx, calib)
        diff = onnx_difference(model, args.init_onnx, val[0][:64])
        _log(f"starting from {args.init_onnx}: max |torch - onnxruntime| log-probability {diff:.2e}")
        if diff > 1e-3:
            raise SystemExit(f"weights from {args.init_onnx} do not reproduce its outputs (difference {diff:.3g})")
        before = evaluate(model, *val)
        _log(f"validation of {args.init_onnx} before training: {before}")
    pool = np.concatenate([np.arange(len(pics))]
                          + [np.flatnonzero(kinds == KIND_WAYBILL)] * (args.waybill_repeat - 1)
                          + [np.flatnonzero(kinds == KIND_ROUTING)] * (args.routing_repeat - 1))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    deadline = started + args.minutes * 60
    # The learning rate follows the wall clock: the run ends on time whatever the machine's load.
    train_start = time.time()
    step = 0
    history = []
    while time.time() < deadline:
        order = rng.permutation(pool)
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
        "steps": step, "batch": args.batch, "minutes": args.minutes, "resumed_from": args.resume or args.init_onnx,
        "validation_before": before,
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
