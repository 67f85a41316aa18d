"""What a run record must hold to be read: the fields and types that its readers (status, report, the tables, the
book) index without a check. A record edited by hand or half migrated is named and skipped, never a traceback."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from ..training.config import RunConfig
from ..training.record import mask_parameters_problem

__all__ = ["record_problem"]


_NUMBER = "a number"
# What the readers of a record (status, report, the tables and the book) index without a check: a record that
# lacks one, or holds another type there (edited by hand, half migrated), is named and skipped, never a traceback.
_RECORD_FIELDS = {
    "name": str,
    "config": dict,
    "history": list,
    "best_top1": _NUMBER,
    "final_top1": _NUMBER,
    "wall_seconds": _NUMBER,
    "cost": dict,
    "data_source": dict,
    "hardware": dict,
}
_CONFIG_FIELDS = {"model": str, "mask": (str, None), "dataset": str, "preset": str, "seed": int}
_CONFIG_OPTIONAL = {"pool": (str, None), "mask_options": (dict, None), "model_options": (dict, None)}
_CONFIG_OPTIONAL |= {"epochs": (int, None), "init_scheme": int, "train_size": (int, None), "data_path": str}
_EPOCH_FIELDS = ("epoch", "test_top1", "train_loss", "lr", "epoch_seconds", "images_per_second")
_COST_FIELDS = ("params", "macs", "flops")


def _type_problem(where: str, value: Any, kind: Any) -> Optional[str]:
    """``"its <where> is a str ('x'), not a number"``, or None when ``value`` is of ``kind``."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for k in kinds:
        if k is None and value is None:
            return None
        if k == _NUMBER and isinstance(value, (int, float)) and not isinstance(value, bool):
            return None
        if isinstance(k, type) and isinstance(value, k) and not (k is int and isinstance(value, bool)):
            return None
    wanted = " or ".join("null" if k is None else k if isinstance(k, str) else _a(k.__name__) for k in kinds)
    found = "null" if value is None else f"{_a(type(value).__name__)} ({value!r:.40})"
    return f"its {where} is {found}, not {wanted}"


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _fields_problem(data: Mapping[str, Any], fields: Mapping[str, Any], where: str, required: bool) -> Optional[str]:
    for name, kind in fields.items():
        if name not in data:
            if required:
                return f"it has no {where}{name}"
            continue
        problem = _type_problem(where + name, data[name], kind)
        if problem:
            return problem
    return None


def record_problem(data: Any, key: str) -> Optional[str]:
    """What makes ``data`` not a readable record of run ``key`` (one clause), or None.

    Args:
        data: the file's JSON.
        key: the key its file name says.
    """
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not a run record"
    if data.get("key") != key:
        return f"its key is {data.get('key')!r}, not {key!r} as its name says"
    problem = _fields_problem(data, _RECORD_FIELDS, "", required=True)
    problem = problem or _fields_problem(data["config"], _CONFIG_FIELDS, "config.", required=True)
    problem = problem or _fields_problem(data["config"], _CONFIG_OPTIONAL, "config.", required=False)
    problem = problem or _fields_problem(data["cost"], dict.fromkeys(_COST_FIELDS, _NUMBER), "cost.", required=True)
    if problem:
        return problem
    if not data["history"]:
        return "its history is empty"
    for i, epoch in enumerate(data["history"]):
        if not isinstance(epoch, dict):
            return f"its history[{i}] is {_a(type(epoch).__name__)}, not an epoch"
        problem = _fields_problem(epoch, dict.fromkeys(_EPOCH_FIELDS, _NUMBER), f"history[{i}].", required=True)
        if problem:
            return problem
    problem = mask_parameters_problem(data)  # the book reads the learned masks (an ELM's packed)
    if problem:
        return problem
    try:  # the mask's options are those its mask accepts (a table labels each run by them)
        RunConfig.from_result(data).name()
    except (ValueError, TypeError, KeyError) as e:
        return f"its config is not a run's ({e})"
    return None
