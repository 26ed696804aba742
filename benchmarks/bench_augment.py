"""Training-batch augmentation: the library's batched affine maps vs torchvision.transforms.v2.

The defaults of :mod:`sklearn_alnm.inputs` draw one affine map per image and resample the
whole batch at once (``affine_grid`` / ``grid_sample``): :class:`RandomResizedCropFlip` for
images, :class:`RandomFlipRotate` for image + mask pairs. The plain alternative applies
``torchvision.transforms.v2`` to each image (``RandomResizedCrop`` + ``RandomHorizontalFlip``;
``RandomHorizontalFlip`` + ``RandomAffine`` on a ``tv_tensors.Image`` and ``tv_tensors.Mask``
pair), the same transformations drawn per image. Both sides run on the same batches, side by
side, in one process; the median time per batch over ``--repeats`` batches is printed.

Usage::

    python benchmarks/bench_augment.py                      # CPU, 32 images of 1x128x128
    python benchmarks/bench_augment.py --device cuda --batch-size 64 --size 224 --channels 3
"""

import argparse
import statistics
import time

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from sklearn_alnm.inputs import RandomFlipRotate, RandomResizedCropFlip


def timed(fn, batches, device):
    times = []
    for batch in batches:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(*batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:] if len(times) > 1 else times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    shape = (args.batch_size, args.channels, args.size, args.size)
    batches = [
        (torch.rand(shape, device=device), (torch.rand(shape[0], 1, *shape[2:]) > 0.5).to(device))
        for _ in range(args.repeats)
    ]

    ours_images = RandomResizedCropFlip()
    tv_images = v2.Compose(
        [
            v2.RandomResizedCrop(
                args.size, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3), antialias=False
            ),
            v2.RandomHorizontalFlip(0.5),
        ]
    )
    ours_pairs = RandomFlipRotate()
    tv_pairs = v2.Compose(
        [v2.RandomHorizontalFlip(0.5), v2.RandomAffine(degrees=15.0, scale=(0.9, 1.1))]
    )

    def tv_per_image(images, masks):
        return torch.stack([tv_images(image) for image in images])

    def tv_per_pair(images, masks):
        pairs = [tv_pairs(tv_tensors.Image(i), tv_tensors.Mask(m)) for i, m in zip(images, masks)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    rows = [
        (
            "images",
            "RandomResizedCropFlip (batched)",
            timed(lambda i, m: ours_images(i), batches, device),
        ),
        ("images", "v2 crop + flip, per image", timed(tv_per_image, batches, device)),
        (
            "image+mask",
            "RandomFlipRotate (batched)",
            timed(lambda i, m: ours_pairs(i, m.float()), batches, device),
        ),
        ("image+mask", "v2 flip + affine, per pair", timed(tv_per_pair, batches, device)),
    ]
    print(f"device={device} batch={shape} threads={torch.get_num_threads()}")
    print(f"{'input':<11} {'augmentation':<34} {'ms/batch':>9} {'images/s':>10}")
    for kind, name, seconds in rows:
        print(f"{kind:<11} {name:<34} {1000 * seconds:9.2f} {args.batch_size / seconds:10.0f}")
    for k in (0, 2):
        print(f"{rows[k][0]}: batched is {rows[k + 1][2] / rows[k][2]:.1f}x faster than per image")


if __name__ == "__main__":
    main()
