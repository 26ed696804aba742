"""Training small networks on a few CPU cores: the optimizer kernel and the process layout.

Two choices of the library measured side by side in one run:

1. The Adam step. The neural estimators run ``torch.optim.Adam`` / ``AdamW`` with
   ``fused=True`` on CPU and CUDA; torch's own default on CPU is the loop over parameters
   (``foreach=False``). Printed: the optimizer step alone and the whole training step
   (forward, backward, step) of a ResNet18 for each implementation.
2. Two single-threaded processes vs one process with all threads. ``alnm demo`` fits its
   studies' model groups in ``n_jobs`` processes with ``cpu_count // n_jobs`` torch threads
   each. Printed: training steps per second of the whole machine, one process with every
   thread against as many single-threaded processes as there are cores, all busy at once.

Run: ``python benchmarks/bench_cpu_training.py [--steps 12]``.
"""

import argparse
import multiprocessing as mp
import os
import time
from queue import Empty


def _model_and_batch(size, batch, seed=0):
    import torch
    import torchvision

    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=1)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 2, (batch, 1)).float()
    return model, x, y


def _train_steps(model, optimizer, x, y, steps, warmup=3):
    """Seconds per step of forward + backward + optimizer, and of the optimizer alone."""
    import torch.nn.functional as F

    total = opt = 0.0
    for i in range(warmup + steps):
        start = time.perf_counter()
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        mid = time.perf_counter()
        optimizer.step()
        end = time.perf_counter()
        if i >= warmup:
            total += end - start
            opt += end - mid
    return (total / steps, opt / steps) if steps else (None, None)


def compare_adam(sizes, batch, steps):
    import torch

    print(f"== Adam on a ResNet18, batch {batch}, {torch.get_num_threads()} threads ==")
    print(f"{'input':>6} {'implementation':>22} {'optimizer ms':>13} {'step ms':>8}")
    variants = {
        "loop (torch CPU default)": {"foreach": False},
        "foreach": {"foreach": True},
        "fused (ours)": {"fused": True},
    }
    for size in sizes:
        for label, kwargs in variants.items():
            model, x, y = _model_and_batch(size, batch)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **kwargs)
            step, opt = _train_steps(model, optimizer, x, y, steps)
            print(f"{size:>4}px {label:>22} {1e3 * opt:>13.1f} {1e3 * step:>8.1f}")


def _worker(size, batch, steps, threads, barrier, queue):
    import torch

    torch.set_num_threads(threads)
    model, x, y = _model_and_batch(size, batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    _train_steps(model, optimizer, x, y, 0, warmup=3)
    barrier.wait()  # every process measures while the others run
    step, _ = _train_steps(model, optimizer, x, y, steps, warmup=0)
    queue.put(step)


def _throughput(size, batch, steps, processes, threads):
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(processes), ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(size, batch, steps, threads, barrier, queue))
        for _ in range(processes)
    ]
    for w in workers:
        w.start()
    seconds = []
    while len(seconds) < processes:
        try:
            seconds.append(queue.get(timeout=5))
        except Empty:
            if any(w.exitcode not in (None, 0) for w in workers):
                for w in workers:
                    w.terminate()
                raise RuntimeError("a benchmark process failed (see its traceback above)") from None
    for w in workers:
        w.join()
    return sum(1.0 / s for s in seconds), max(seconds)


def compare_layouts(sizes, batch, steps):
    cores = os.cpu_count() or 1
    print(f"\n== Process layout on {cores} cores: ResNet18 training steps, batch {batch} ==")
    print(f"{'input':>6} {'layout':>28} {'steps/s (machine)':>18} {'ms per step':>12}")
    for size in sizes:
        rates = {}
        for label, processes, threads in (
            (f"1 process x {cores} threads", 1, cores),
            (f"{cores} processes x 1 thread", cores, 1),
        ):
            rate, slowest = _throughput(size, batch, steps, processes, threads)
            rates[label] = rate
            print(f"{size:>4}px {label:>28} {rate:>18.2f} {1e3 * slowest:>12.1f}")
        first, second = rates.values()
        print(f"{'':>6} {'single-threaded processes':>28} {second / first:>17.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="measured steps (default: 12)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default: 16)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[32, 64], help="input sides (default: 32 64)"
    )
    args = parser.parse_args(argv)
    compare_adam(args.sizes, args.batch, args.steps)
    compare_layouts(args.sizes, args.batch, args.steps)


if __name__ == "__main__":
    main()
