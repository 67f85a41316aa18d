"""Helper for tests/test_distributed.py (not a test): one quick run, under torchrun or as one process.

    python tests/distributed_run.py OUT [--fixed] [--epochs N] [--resume] [--pids DIR]

--fixed switches off every random part of the recipe (augmentation, Mixup/CutMix, stochastic
depth), so that runs over different numbers of processes can be compared weight for weight.
"""

import argparse
import dataclasses
import os
from pathlib import Path

import gmmlib.training.config as config
from gmmlib.data import batched_augment
from gmmlib.training.config import RunConfig
from gmmlib.training.loop import train

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--fixed", action="store_true")
ap.add_argument("--epochs", type=int, default=2)
ap.add_argument("--resume", action="store_true")
ap.add_argument("--pids", default=None)
args = ap.parse_args()
if args.pids:
    Path(args.pids, f"rank{os.environ.get('RANK', '0')}.pid").write_text(str(os.getpid()))
preset = "quick"
if args.fixed:
    config.PRESETS["fixed"] = dataclasses.replace(
        config.PRESETS["quick"], name="fixed", autoaugment=False, random_erasing=0.0, mix_prob=0.0, drop_path=0.0
    )
    preset = "fixed"

    def normalise_only(self, images, generator):
        return batched_augment.normalize(images, self.info.mean, self.info.std)

    batched_augment.BatchedAugment.__call__ = normalise_only  # no crop, flip, AutoAugment, erasing
run = RunConfig(model="vit", mask="gmm", dataset="synthetic", preset=preset, epochs=args.epochs)
train(run, args.out, resume=args.resume, progress=False, data_pipeline="gpu", device="cpu")
