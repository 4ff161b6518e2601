"""The per-core ceiling: the project's own per-image work in a tight single-process loop.

read bytes → ``transforms.image.process_image(data, spec)`` → ``transforms.example.build_example``
(build + deterministic serialization). No Beam, no shard files: what one core can do at best with the
converter's own functions, the yardstick for the pipeline's parallel efficiency. Imports and one
warm-up image (TensorFlow's protos load on first use) are excluded from the timed loop.

Usage: ``python -m benchmarks.ceiling --input DIR [--resize_shorter_side 256 --center_crop 256]``;
prints one JSON line: images, cpu_s, wall_s, us_per_image (CPU), images_per_s (wall).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.synth import list_images


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--input', required=True)
    parser.add_argument('--resize_shorter_side', type=int, default=256)
    parser.add_argument('--center_crop', type=int, default=256)
    parser.add_argument('--jpeg_quality', type=int, default=90)
    parser.add_argument('--resample', default='bilinear')
    args = parser.parse_args(argv)

    from transforms.example import build_example
    from transforms.image import ImageSpec, process_image
    spec = ImageSpec(resize_shorter_side=args.resize_shorter_side, center_crop=args.center_crop,
                     jpeg_quality=args.jpeg_quality, resample=args.resample)
    root = Path(args.input)
    files = [(path, label, path.parent.name, str(path.relative_to(root))) for path, label in list_images(root)]
    warm = process_image(files[0][0].read_bytes(), spec)
    build_example(warm.encoded, warm.height, warm.width, files[0][3], 0, files[0][2])

    total_bytes = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for path, label, synset, key in files:
        stored = process_image(path.read_bytes(), spec)
        record = build_example(stored.encoded, stored.height, stored.width, key, label, synset)
        total_bytes += len(record)
    cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    print(json.dumps({'images': len(files), 'cpu_s': cpu_s, 'wall_s': wall_s, 'record_bytes': total_bytes,
                      'us_per_image': cpu_s / len(files) * 1e6, 'images_per_s': len(files) / wall_s}))


if __name__ == '__main__':
    main()
