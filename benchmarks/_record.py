"""``--record PATH``: a benchmark's figures written to one JSON file, with the command, machine, date and commit.

The book reads speed only from such files (``results/benchmarks/*.json``, read by
:mod:`gmmlib.readings.speed`), never from training logs. The file is written atomically (whole or not at all),
so a benchmark killed halfway leaves the previous record as it was.

Every record holds:

* ``benchmark``: the script's name; ``command``: how to run it again, as it was run;
* ``date`` (UTC) and ``git``: the commit and whether gmmlib had local changes;
* ``machine``: CPU model, cores, torch threads, torch and Python versions, the GPU when one was used, the load
  average before and after (a busy machine slows both arms of a side-by-side run, not their ratio as much), and
  ``note``: what the person running it knows and the load does not say (``--note``, e.g. a shared machine);
* ``settings``: the script's arguments; ``figures``: what it measured.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from gmmlib.files import write_json
from gmmlib.training.provenance import environment

FORMAT = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--record", default=None, metavar="PATH", help="write the figures to this JSON file")
    parser.add_argument(
        "--note", default="", help="recorded with the machine: what the load does not say (e.g. a shared machine)"
    )


def _load() -> Optional[list]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # platforms without a load average
        return None


class Recorder:
    """Collects the machine's state at the start of a benchmark and writes the record at its end."""

    def __init__(self, name: str, args: argparse.Namespace, device: Optional[torch.device] = None) -> None:
        self.name, self.args = name, args
        self.device = device or torch.device("cpu")
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.load_before = _load()

    def record(self, figures: Dict[str, Any]) -> Optional[Path]:
        """Write the record to ``--record`` (nothing without it); returns the path written."""
        if not self.args.record:
            return None
        env = environment(self.device)
        hw = env["hardware"]
        machine = {
            "cpu": hw["cpu"],
            "cores": hw["cpu_count"],
            "torch_threads": hw["torch_threads"],
            "torch": env["versions"]["torch"],
            "python": env["versions"]["python"],
            "platform": env["platform"],
            "device": hw["device"],
            **{k: hw[k] for k in ("gpu", "gpu_capability") if k in hw},
            "load_before": self.load_before,
            "load_after": _load(),
            "note": self.args.note,
        }
        settings = {k: v for k, v in vars(self.args).items() if k not in ("record", "note")}
        script = Path(sys.argv[0])
        command = " ".join(["python", f"benchmarks/{script.name}", *map(shlex.quote, sys.argv[1:])])
        out = {
            "format": FORMAT,
            "benchmark": self.name,
            "command": command,
            "date": self.started.isoformat(timespec="seconds"),
            "git": env["git"],
            "machine": machine,
            "settings": settings,
            "figures": figures,
        }
        path = write_json(self.args.record, out)
        print(f"recorded in {self.args.record}")
        return path
