"""Images/s of the full training step and the share of time spent waiting for data.

Runs one epoch of the ``cpu`` preset (ViT, CIFAR-10 from GMMLIB_DATA, or the synthetic
set with --dataset synthetic) through the real training loop and prints the figures
it records in every run's history. Goal: data wait under 10% of the training time.

    GMMLIB_DATA=../shared/data python benchmarks/data_pipeline.py [--mask gmm] [--record PATH]
"""

from __future__ import annotations

import argparse
import tempfile

from gmmlib.training.config import PRESETS, RunConfig
from gmmlib.training.loop import train

import _record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--model", default="vit")
    ap.add_argument("--mask", default=None)
    ap.add_argument("--preset", default="cpu", choices=list(PRESETS))
    _record.add_arguments(ap)
    args = ap.parse_args()
    recorder = _record.Recorder("data_pipeline", args)
    config = RunConfig(model=args.model, mask=args.mask, dataset=args.dataset, preset=args.preset, epochs=1)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(config, tmp, progress=False)
    h = result["history"][0]
    print(
        f"{result['name']} ({args.preset} preset, batch {PRESETS[args.preset].batch_size}, "
        f"{PRESETS[args.preset].num_workers} data worker(s), {result['hardware']['cpu']}):"
    )
    print(f"  training step, data loading included: {h['images_per_second']:.0f} images/s")
    print(f"  time waiting for data: {100 * h['data_wait_share']:.1f}% of the training time")
    recorder.record(
        {
            "run": result["name"],
            "images_per_second": h["images_per_second"],
            "data_wait_share": h["data_wait_share"],
            "batch": PRESETS[args.preset].batch_size,
            "workers": PRESETS[args.preset].num_workers,
        }
    )


if __name__ == "__main__":
    main()
