"""Video networks side by side, VideoClassifier vs a hand-written loop, and clip decoding.

1. Speed of every architecture on the same clips (``--frames`` x ``--size``\u00b2, batch
   ``--batch-size``), TSN (a 2-D ResNet18 over the frames, averaged) being the floor: training
   steps (forward, backward, Adam) and inference clips per second, and each one's step time
   relative to TSN's.
2. Epoch time of ``VideoClassifier`` (TSM) vs a hand-written PyTorch loop on the same module
   and the same prepared clips: the extra wall time of a fit of ``1 + k`` epochs over a fit of
   one epoch, divided by ``k``, against the median of ``k`` hand-written epochs.
3. Decoding: the time ``fit`` spends preparing clips from MP4 files the first time and the
   second time (clips cached in memory by content), and the data time of an epoch over the
   prepared tensor.

Usage::

    python benchmarks/bench_video.py                 # CPU: 16 x 112 px clips, batch 4
    python benchmarks/bench_video.py --device cuda --size 224 --amp
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, TensorDataset

from sklearn_alnm.inputs import VideoInput
from sklearn_alnm.inputs import _video as video_input
from sklearn_alnm.io import write_video
from sklearn_alnm.models import VideoClassifier
from sklearn_alnm.nn import build_video_net

ARCHS = ("tsn", "tsm", "tin", "r3d_18", "mc3_18", "r2plus1d_18")


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def arch_speed(args, device):
    clips = torch.rand(args.batch_size, 3, args.frames, args.size, args.size, device=device)
    labels = torch.randint(0, 2, (args.batch_size,), device=device)
    rows = []
    for arch in ARCHS:
        net = build_video_net(
            arch, "resnet18", n_frames=args.frames, in_chans=3, num_classes=2, seed=0
        )
        net = net.to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp)

        def train_step(net=net, optimizer=optimizer, autocast=autocast):
            optimizer.zero_grad()
            with autocast:
                loss = torch.nn.functional.cross_entropy(net(clips), labels)
            loss.backward()
            optimizer.step()

        def infer_step(net=net, autocast=autocast):
            with torch.inference_mode(), autocast:
                net(clips)

        timings = {}
        for name, step, mode in (("train", train_step, True), ("infer", infer_step, False)):
            net.train(mode)
            step()  # warm-up
            times = []
            for _ in range(args.repeats):
                sync(device)
                start = time.perf_counter()
                step()
                sync(device)
                times.append(time.perf_counter() - start)
            timings[name] = statistics.median(times)
        rows.append((arch, timings["train"], timings["infer"]))
    floor = rows[0][1]
    print(
        f"\n1. architectures: {args.batch_size} clips of 3 x {args.frames} x {args.size}^2 "
        f"on {device}"
    )
    print(f"{'arch':<12} {'train clips/s':>14} {'infer clips/s':>14} {'train step / TSN':>17}")
    for arch, train, infer in rows:
        print(
            f"{arch:<12} {args.batch_size / train:14.2f} {args.batch_size / infer:14.2f} "
            f"{train / floor:17.2f}"
        )


def make_files(folder, n, frames, size, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(n):
        clip = rng.integers(0, 256, (frames * 2, size + 16, size + 16), dtype=np.uint8)
        path = Path(folder) / f"clip{k}.mp4"
        write_video(path, clip)
        paths.append(str(path))
    return pd.DataFrame({"video": paths}), rng.integers(0, 2, n)


def classifier_vs_loop(args, device, X, y):
    settings = dict(
        arch="tsm",
        backbone="resnet18",
        n_frames=args.frames,
        frame_size=args.size,
        resize=None,
        augment=None,
        batch_size=args.batch_size,
        lr=1e-4,
        device=str(device),
        random_state=0,
    )

    def fit(epochs):
        start = time.perf_counter()
        clf = VideoClassifier(max_epochs=epochs, **settings).fit(X, y)
        return time.perf_counter() - start, clf

    fit(1)  # warm caches (decoding is timed in part 3)
    one, _ = fit(1)
    many, clf = fit(1 + args.epochs)
    ours = (many - one) / args.epochs
    clips = clf.input_.prepare(X)[0]
    net = build_video_net(
        "tsm", "resnet18", n_frames=args.frames, in_chans=clips.shape[1], num_classes=2, seed=0
    ).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    loader = DataLoader(
        TensorDataset(clips, torch.as_tensor(y)), batch_size=args.batch_size, shuffle=True
    )
    times = []
    for _ in range(args.epochs + 1):
        sync(device)
        start = time.perf_counter()
        net.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(xb), yb).backward()
            optimizer.step()
        sync(device)
        times.append(time.perf_counter() - start)
    hand = statistics.median(times[1:])
    print(
        f"\n2. epoch of {len(X)} clips (TSM, ResNet18): VideoClassifier {ours:.2f} s, "
        f"hand-written loop {hand:.2f} s, ratio {ours / hand:.3f}"
    )


def decoding(args, X):
    video_input._MEMORY.clear()

    def make():
        return VideoInput(
            "video", n_frames=args.frames, frame_size=args.size, resize=None, cache="memory"
        )  # noqa: E731

    start = time.perf_counter()
    clips = make().prepare(X)[0]
    cold = time.perf_counter() - start
    start = time.perf_counter()
    make().prepare(X)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in DataLoader(TensorDataset(clips), batch_size=args.batch_size, shuffle=True):
        pass
    epoch = time.perf_counter() - start
    print(
        f"\n3. preparing {len(X)} MP4 clips: first fit {cold:.2f} s, second fit {warm:.3f} s "
        f"({cold / warm:.0f}x faster); an epoch's data time over the prepared tensor {epoch:.4f} s"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-clips", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    arch_speed(args, device)
    with tempfile.TemporaryDirectory() as folder:
        X, y = make_files(folder, args.n_clips, args.frames, args.size)
        classifier_vs_loop(args, device, X, y)
        decoding(args, X)


if __name__ == "__main__":
    main()
