"""Mask options in one canonical form: parsed strictly, defaults filled in.

A run's key hashes its mask options, so ``{"num_kernels": 5}``, ``{}`` and the string
``"5"`` typed on the command line must all mean the same run. Each mask class's
constructor (the registry of :mod:`gmmlib.masks`) is the single source of truth: its
signature gives the accepted names and their defaults, and a default's type (or the
parameter's annotation when the default is None) gives how a value is parsed.

Example:
    >>> normalise_mask_options("gmm", {"num_kernels": "3"})
    {'num_kernels': 3, 'init': 'official', 'truncate_like_official': False}
    >>> non_default_options("gmm", {"num_kernels": 5, "init": "official"})
    {}
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any, Dict, Mapping, Optional

from .. import masks

__all__ = ["mask_parameters_of", "normalise_mask_options", "non_default_options", "parse_option", "probe_mask"]

_TRUE, _FALSE = ("true",), ("false",)
_INT = re.compile(r"[+-]?\d+")


def mask_parameters_of(kind: str) -> Dict[str, inspect.Parameter]:
    """The options a mask kind accepts: its constructor's parameters after ``grid`` and ``num_heads``.

    Raises:
        ValueError: ``kind`` is not a registered mask.
    """
    if kind not in masks.list_masks():
        raise ValueError(f"unknown mask {kind!r}; choices: {', '.join(masks.list_masks())}")
    cls = masks._MASKS[kind]  # the registry: name -> mask class
    params = inspect.signature(cls.__init__).parameters
    return {n: p for n, p in params.items() if n not in ("self", "grid", "num_heads")}


def parse_option(kind: str, name: str, value: Any, param: inspect.Parameter) -> Any:
    """Parse one option value to its parameter's type, strictly.

    Strings (as typed on the command line) are parsed: ``true``/``false`` for booleans,
    digits for ints, numbers for floats, JSON lists for sequences, ``none`` for None.
    A value of the wrong type (``"yes"`` for a boolean, ``3.5`` for an int) is an error.

    Raises:
        ValueError: naming the mask, the option, the value and what is expected.
    """
    default = param.default
    annotation = str(param.annotation)

    def bad(expected: str) -> ValueError:
        return ValueError(f"mask option {name}={value!r} of mask {kind!r}: expected {expected}")

    if isinstance(default, bool) or annotation == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise bad("true or false")
    if isinstance(default, int) or annotation == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INT.fullmatch(value.strip()):
            return int(value)
        raise bad("an integer")
    if isinstance(default, float) or annotation == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise bad("a number")
    if isinstance(default, str) or annotation == "str":
        if isinstance(value, str):
            return value
        raise bad("a string")
    if default is None and "Sequence[float]" in annotation:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise bad("a list of numbers, e.g. [0.9,0.99]") from None
        if isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            return [float(v) for v in value]
        raise bad("a list of numbers, e.g. [0.9,0.99]")
    return list(value) if isinstance(value, tuple) else value


def normalise_mask_options(kind: Optional[str], options: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """Every option of mask ``kind``, parsed, with the constructor's defaults filled in.

    Args:
        kind: mask name, or None (no mask: no options allowed).
        options: the options as written (values may be strings from the command line).

    Returns:
        ``{name: value}`` for every option of the mask, in the constructor's order.

    Raises:
        ValueError: an unknown mask, an unknown option, a value of the wrong type, or
            options without a mask.
    """
    options = dict(options or {})
    if kind is None:
        if options:
            given = ", ".join(f"{k}={v}" for k, v in options.items())
            raise ValueError(f"mask options ({given}) given without a mask: choose one (e.g. --mask gmm) or drop them")
        return {}
    params = mask_parameters_of(kind)
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ValueError(
            f"unknown mask option(s) {', '.join(unknown)} for mask {kind!r}; accepted: {', '.join(params) or 'none'}"
        )
    out = {}
    for name, param in params.items():
        if name in options:
            out[name] = parse_option(kind, name, options[name], param)
        elif param.default is not inspect.Parameter.empty:
            out[name] = param.default
    return out


def non_default_options(kind: Optional[str], options: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The options of :func:`normalise_mask_options` that differ from the defaults (for names and labels)."""
    if kind is None:
        return {}
    params = mask_parameters_of(kind)
    full = normalise_mask_options(kind, options)
    return {k: v for k, v in full.items() if params[k].default is inspect.Parameter.empty or v != params[k].default}


def probe_mask(kind: str, options: Mapping[str, Any], num_heads: int = 1, isolate: bool = True) -> bool:
    """Build mask ``kind`` once on a 4 x 4 grid: the check that its option values are ones its constructor
    accepts (before any data loads), and whether building it draws random numbers.

    Args:
        kind: the mask kind.
        options: its options (parsed).
        num_heads: heads to build it with (options with one value per head need the run's count).
        isolate: draw from a forked random state, so that the caller's draws are not shifted; records made
            under init scheme 1 had the probe draw from the global generator, and are rebuilt so.

    Returns:
        Whether building the mask drew random numbers (such a mask shifted the backbone's initial weights
        under init scheme 1).

    Raises:
        ValueError: a value the mask's constructor rejects.
    """
    import contextlib

    import torch

    with torch.random.fork_rng(devices=[]) if isolate else contextlib.nullcontext():
        before = torch.get_rng_state()
        masks.create(kind, grid=(4, 4), num_heads=num_heads, **options)
        return not torch.equal(before, torch.get_rng_state())
