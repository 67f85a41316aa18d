"""What training did to the masks (chapter 8), read from the recorded runs: how far the GMM moved, which
heads are local and since when, why the ``identity`` start cannot learn locality, and what each
initialisation became.

:func:`what_masks_learn` gathers the numbers (with :mod:`gmmlib.analysis`) and every reading; each
reading is a function of plain rows, so it can be checked on numbers whose answer is known.
"""

from __future__ import annotations

import inspect
import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import torch

from ..analysis import head_changes, head_curves, head_locality, load_test_images, locality_change, mask_gradients
from ..masks import GaussianMixtureMask, pairwise_distance
from ..stats.tables import label, load, preset_of
from ..training.rebuild import model_from_record
from ..training.record import recorded_mask_parameters

__all__ = [
    "locality_reading",
    "movement_reading",
    "head_locality_reading",
    "own_patch_reading",
    "identity_reading",
    "MasksLearned",
    "what_masks_learn",
]

LOCAL_SHARE = 0.8  # a head is local when its mean attention distance is below this share of uniform attention's


def locality_reading(changes: Dict[str, Dict[str, float] | Sequence[Dict[str, float]]], tolerance: float = 0.1) -> str:
    """Markdown: what training did to each initialisation's locality (from :func:`gmmlib.analysis.locality_change`).

    Args:
        changes: ``{init name: locality_change(run)}``, or a list of them, one per seed: each seed is
            read on its own, and the line says whether the seeds agree; the numbers are their means.
        tolerance: a locality below this (in units of M) counts as none; a change smaller than this
            share of the starting locality counts as barely moved.
    """
    lines = []
    for init, per_seed in changes.items():
        per_seed = [per_seed] if isinstance(per_seed, Mapping) else list(per_seed)
        if not per_seed:
            raise ValueError(f"no run for init {init!r}: expected at least one locality_change")
        verdicts = [_locality_verdict(c["locality, step 0"], c["locality, trained"], tolerance) for c in per_seed]
        mean = {k: sum(c[k] for c in per_seed) / len(per_seed) for k in per_seed[0]}
        n = len(per_seed)
        if n == 1:
            said, seeds = verdicts[0], "one seed"
        elif len(set(verdicts)) == 1:
            said, seeds = f"{verdicts[0]} in {'both' if n == 2 else f'all {n}'} seeds", f"means over {n} seeds"
        else:
            counts = ", ".join(f"{v} in {verdicts.count(v)}" for v in dict.fromkeys(verdicts))
            said, seeds = f"the {n} seeds disagree: {counts}", f"means over {n} seeds"
        lines.append(
            f"* `{init}`: {said} (|M(0)| - |M(far)| from {mean['locality, step 0']:.2f} to "
            f"{mean['locality, trained']:.2f}; the scale |M(0)| from {mean['scale, step 0']:.2f} to "
            f"{mean['scale, trained']:.2f}; {seeds})."
        )
    return "\n".join(lines)


def _locality_verdict(a: float, b: float, tolerance: float) -> str:
    """What training did to a locality of ``a`` at step 0 that ended at ``b``."""
    if a < tolerance:
        return "learned locality it did not start with" if b >= tolerance else "stayed without locality"
    if abs(b - a) <= tolerance * a:
        return "its locality barely moved"
    return "sharpened the locality it started with" if b > a else "lost part of the locality it started with"


def _head_name(layer: Any, head: int) -> str:
    layer = f"layer {layer}" if isinstance(layer, int) else f"`{layer}`"
    return f"{layer} head {head}"


def movement_reading(changes: Mapping[int, Sequence[Mapping[str, Any]]], barely: float = 0.25) -> str:
    """Markdown: how far training moved the GMM's alpha and sigma, against the spread they started with, and
    whether any head's multiplier at distance 0 changed sign.

    Args:
        changes: ``{seed: head_changes(run)}`` (:func:`gmmlib.analysis.head_changes`).
        barely: a mean |alpha change| below this share of the starting spread reads as "barely moves".
    """
    rows = [dict(r, seed=seed) for seed, per_run in changes.items() for r in per_run]
    if not rows:
        raise ValueError("no GMM head to read: expected head_changes of at least one GMM run")
    alphas = [a for r in rows for a in r["alpha, step 0"]]
    spread = statistics.pstdev(alphas)
    moved = statistics.fmean(r["|alpha change|"] for r in rows)
    sigma_moved = statistics.fmean(r["|sigma change|"] for r in rows)
    share = moved / spread if spread else math.inf
    sigma_spread = statistics.pstdev(x for r in rows for x in r["sigma, step 0"])
    runs = f"{len(changes)} seed{'s' if len(changes) != 1 else ''}"
    flips = [r for r in rows if (r["M(0), step 0"] < 0) != (r["M(0), trained"] < 0)]
    text = (
        f"**Training {'barely moves' if share < barely else 'moves'} the mask: each $\\alpha$ by {moved:.2f} on average, "
        f"{share:.0%} of the spread the $\\alpha$ started with ({spread:.2f}); the sign of $M(0)$ changed in "
        f"{'no head' if not flips else f'{len(flips)} of {len(rows)} heads'}.** The numbers cover {runs} ({len(rows)} "
        f"heads); a spread is the standard deviation at step 0. Each $\\sigma$ moved by {sigma_moved:.2f}, "
        f"{sigma_moved / sigma_spread if sigma_spread else math.inf:.0%} of its spread ({sigma_spread:.2f})."
    )
    if not flips:
        return text
    typical = statistics.median(abs(r["M(0), step 0"]) for r in rows)
    named = "; ".join(
        f"seed {r['seed']}'s {_head_name(r['layer'], r['head'])}, {r['M(0), step 0']:+.2f} to {r['M(0), trained']:+.2f}"
        for r in flips[:3]
    )
    return text + (
        f" The head{'s' if len(flips) != 1 else ''} that changed the sign of $M(0)$, the multiplier at distance 0: {named}"
        f"{'; ...' if len(flips) > 3 else ''}. {'It' if len(flips) == 1 else 'Each'} started within "
        f"{max(abs(r['M(0), step 0']) for r in flips):.2f} of zero, where the median head's $|M(0)|$ is {typical:.2f}."
    )


def head_locality_reading(rows: Sequence[Mapping[str, Any]], uniform: float, local_share: float = LOCAL_SHARE) -> str:
    """Markdown: which heads attend locally, after training and at step 0, model by model (Fig. "distance").

    Args:
        rows: :func:`gmmlib.analysis.head_locality` rows with ``"model"`` (a label) and ``"state"``
            (``"step 0"`` or ``"trained"``) added.
        uniform: the mean distance of uniform attention on the grid.
        local_share: a head is local when its mean distance is below this share of ``uniform``.
    """
    threshold = local_share * uniform
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows):
        by_state = {
            s: {(r["layer"], r["head"]): r["distance"] for r in rows if r["model"] == model and r["state"] == s}
            for s in ("step 0", "trained")
        }
        start, trained = by_state["step 0"], by_state["trained"]
        local_now = [k for k, d in trained.items() if d < threshold]
        local_then = {k for k, d in start.items() if d < threshold}
        if not local_now:
            lines.append(
                f"**{model}: no head is local{', after training or at step 0' if not local_then else ' after training'}.** "
                f"After training every head's mean distance lies between "
                f"{min(trained.values()):.2f} and {max(trained.values()):.2f} patches, none below {threshold:.2f} "
                f"({local_share:.0%} of uniform attention's {uniform:.2f}); at step 0 they lay between "
                f"{min(start.values()):.2f} and {max(start.values()):.2f}."
                + (" It learned no locality these images show." if not local_then else "")
            )
            continue
        kept = [k for k in local_now if k in local_then]
        new = [k for k in local_now if k not in local_then]
        lost = sorted(local_then - set(local_now))

        def heads(keys):
            return ", ".join(f"{_head_name(*k)} ({start[k]:.2f} to {trained[k]:.2f})" for k in keys)

        line = (
            f"**{model}: {len(local_now)} of {len(trained)} heads are local after training, {len(kept)} of them "
            f"already at step 0.** Local means a mean distance below {threshold:.2f} patches, {local_share:.0%} of "
            f"uniform attention's {uniform:.2f}."
        )
        if kept:
            line += f" Local from the start: {heads(kept)}."
        if new:
            line += f" {len(new)} became local in training: {heads(new)}."
        if lost:
            line += f" {len(lost)} local at step 0 {'is' if len(lost) == 1 else 'are'} no longer: {heads(lost)}."
        lines.append(line)
    return "\n\n".join(lines)


def own_patch_reading(rows: Sequence[Mapping[str, Any]], patches: int) -> str:
    """Markdown: the weight a query puts on its own patch, by model and by the sign of the head's ``M(0)``.

    Args:
        rows: trained :func:`gmmlib.analysis.head_locality` rows with ``"model"`` added, and ``"M(0)"``
            (the head's trained multiplier at distance 0) for a GMM model's heads.
        patches: N, the number of patches (uniform attention puts 1/N on each).
    """
    groups: Dict[str, List[float]] = {}
    for r in rows:
        sign = r.get("M(0)")
        name = r["model"] if sign is None else f"{r['model']} heads with M(0) {'<' if sign < 0 else '>'} 0"
        groups.setdefault(name, []).append(r["own patch"])
    parts = [f"{name}: {statistics.fmean(v):.3f} ({len(v)} heads)" for name, v in groups.items()]
    text = (
        f"The weight a query puts on its own patch, averaged over queries, images and heads (uniform attention: "
        f"1/{patches} = {1 / patches:.3f}): " + "; ".join(parts) + "."
    )
    negative = [v for name, v in groups.items() if "M(0) <" in name]
    if negative and statistics.fmean(negative[0]) >= 1 / patches:
        text += (
            " A negative $M(0)$ does not turn a query away from itself: where a head's whole curve has one sign, "
            "$M \\cdot (q \\cdot k) = |M| \\cdot ((-q) \\cdot k)$, so the query weights can absorb the sign."
        )
    elif negative:
        text += " The heads with a negative $M(0)$ look away from their own patch, which a mean over heads hides."
    return text


def identity_reading(
    gradients: Sequence[Mapping[str, float]],
    sigmas_trained: Mapping[int, Sequence[float]],
    sigma_start: float,
    grid: Sequence[int],
    lr: float,
    images: int,
) -> str:
    """Markdown: why the ``identity`` start cannot learn locality in a short run.

    Args:
        gradients: :func:`gmmlib.analysis.mask_gradients` of an ``identity`` run's model at step 0.
        sigmas_trained: ``{seed: every trained sigma of that run}``.
        sigma_start: the sigma every kernel starts with.
        grid: the patch grid.
        lr: the peak learning rate.
        images: the batch the gradients were measured on.
    """
    eps = inspect.signature(torch.optim.AdamW).parameters["eps"].default  # the training loop keeps AdamW's default
    far = pairwise_distance(tuple(grid), "squared").max().item()
    alpha_grad = statistics.fmean(g["mean |dL/dalpha|"] for g in gradients)
    sigma_grad = statistics.fmean(g["mean |dL/dsigma|"] for g in gradients)
    largest = max(g["largest |dL/dsigma|"] for g in gradients)
    step = lr * largest / eps
    at = torch.tensor(sigma_start, dtype=torch.float32)
    spacing = (torch.nextafter(at, torch.tensor(math.inf)) - at).item()  # float32 numbers near sigma are this far apart
    every = [s for values in sigmas_trained.values() for s in values]
    text = (
        f"**`identity` cannot learn locality in a short run: the loss's gradient on its $\\sigma$ is "
        f"{sigma_grad:.0e}, {eps / sigma_grad:,.0f} times smaller than AdamW's $\\epsilon$.** It starts with every "
        f"$\\sigma = {sigma_start:g}$ patches, so each Gaussian is flat to {1 - math.exp(-far / (2 * sigma_start**2)):.0e} "
        f"across the {grid[0]}$\\times${grid[1]} grid, and $|\\partial M / \\partial \\sigma| \\le |\\alpha|\\, d_{{\\max}}^2 / "
        f"\\sigma^3$ is at most {max(abs(g['mean sigma']) for g in gradients) ** -3 * far:.0e} per unit of $|\\alpha|$. "
        f"Measured on a batch of {images} test images at step 0, the loss's gradient on $\\sigma$ is {sigma_grad:.0e} "
        f"on average (largest {largest:.0e}), against {alpha_grad:.0e} on $\\alpha$. AdamW divides a gradient by its "
        f"running root mean square plus $\\epsilon = {eps:g}$, so a gradient this far below $\\epsilon$ moves $\\sigma$ "
        f"by at most about lr $\\cdot g / \\epsilon$ = {step:.0e} per step at the peak learning rate, "
        f"{f'less than half the spacing of float32 numbers near {sigma_start:g} ({spacing:.0e} apart): the update rounds away' if step < spacing / 2 else 'a negligible move'}."
    )
    if every:
        low, high = min(every), max(every)
        seeds = len(sigmas_trained)
        text += (
            " The trained runs agree: every $\\sigma$ of every layer, head and kernel ends "
            + (
                f"at {low:.2f} (the same to the 6 decimals the records keep)"
                if high - low < 1e-5
                else f"between {low:.2f} and {high:.2f}"
            )
            + f" in {'the one seed' if seeds == 1 else f'all {seeds} seeds'}, {sigma_start:g} shrunk by a "
            f"common factor of {statistics.fmean(every) / sigma_start:.3f}, which only the weight decay gives (it "
            f"multiplies every parameter by $1 - \\mathrm{{lr}} \\cdot \\mathrm{{wd}}$ at each step). Such a "
            f'$\\sigma$ is still flat to {1 - math.exp(-far / (2 * low**2)):.0e}. "Stayed without locality" '
            "says that this start cannot move in a short run, not that the data argued against locality."
        )
    return text


@dataclass
class MasksLearned:
    """Everything chapter 8 reads, gathered once: the runs, the rows its figures draw and its readings.

    Empty lists and None where the results lack the runs (or the saved weights) a part needs.
    """

    preset: Optional[str]
    gmm_runs: List[Dict[str, Any]]
    vit_runs: List[Dict[str, Any]]
    init_runs: Dict[str, List[Dict[str, Any]]]
    curves: List[Dict[str, Any]] = field(default_factory=list)
    init_curves: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)
    changes: Dict[int, List[Dict[str, Any]]] = field(default_factory=dict)
    locality: List[Dict[str, Any]] = field(default_factory=list)
    uniform: float = float("nan")
    models: Dict[str, Any] = field(default_factory=dict)  # label -> (trained model, model at step 0)
    images: Any = None  # the test images the attention was measured on
    texts: Dict[str, str] = field(default_factory=dict)

    @property
    def answer(self) -> str:
        """The chapter's opening paragraph: the bold first sentence of every reading, in the chapter's order."""
        said = [
            part.split("**")[1]
            for key in ("movement", "locality", "identity")
            for part in self.texts.get(key, "").split("\n\n")
            if part.startswith("**")
        ]
        if not said:
            return "The results hold no trained GMM-ViT yet: run `python -m gmmlib run headline`."
        seeds = "the seed-0 runs, the only ones whose weights are kept" if self.locality else ""
        return (
            f"From the recorded runs (`{self.preset}` preset; the attention from {seeds or 'no saved weights'}): "
            + " ".join(s if s.endswith(".") else s + "." for s in said)
        )


def what_masks_learn(
    dataset: str,
    images: int,
    model_of: Callable[..., Any],
    results: Optional[str] = None,
) -> MasksLearned:
    """Gather what chapter 8 reads from the ``headline`` and ``exp2-init`` runs.

    Args:
        dataset: the data set whose test images the attention is measured on.
        images: how many test images.
        model_of: ``model_of(record, initial=False)``: a recorded run's trained model (None when the store
            kept no weights), or its model at step 0 (the book passes :func:`gmmlib.book.model_from_result`).
        results: the results folder (default: the repository's).
    """
    preset = preset_of("headline", results)
    runs = [r for r in load("headline", results) if r["config"]["preset"] == preset]
    gmm = _by_seed(r for r in runs if r["config"]["mask"] == "gmm")
    vit = _by_seed(r for r in runs if r["config"]["mask"] is None)
    init_preset = preset_of("exp2-init", results)
    inits: Dict[str, List[Dict[str, Any]]] = {}
    for r in _by_seed(load("exp2-init", results)):
        if r["config"]["mask"] == "gmm" and r["config"]["preset"] == init_preset:
            inits.setdefault((r["config"].get("mask_options") or {}).get("init", "official"), []).append(r)
    out = MasksLearned(preset, gmm, vit, inits)
    if gmm:
        out.curves = head_curves(gmm[0])
        out.changes = {r["config"]["seed"]: head_changes(r) for r in gmm}
        out.texts["movement"] = movement_reading(out.changes)
        _read_attention(out, dataset, images, model_of)
    if inits:
        out.init_curves = {init: head_curves(rs[0]) for init, rs in inits.items()}
        out.texts["inits"] = locality_reading({init: [locality_change(r) for r in rs] for init, rs in inits.items()})
    if "identity" in inits:
        run = inits["identity"][0]
        x, y, _ = load_test_images(dataset, images, run)
        start = model_from_record(run)
        first = next(m for m in start.modules() if isinstance(m, GaussianMixtureMask))
        sigmas = {
            r["config"]["seed"]: [
                s for p in recorded_mask_parameters(r).values() for s in p["sigma"].flatten().tolist()
            ]
            for r in inits["identity"]
        }
        out.texts["identity"] = identity_reading(
            mask_gradients(start, x, y), sigmas, first.sigma.max().item(), first.grid,
            run["config"]["preset_values"]["lr"], images,
        )  # fmt: skip
    return out


def _by_seed(runs) -> List[Dict[str, Any]]:
    return sorted(runs, key=lambda r: r["config"]["seed"])


def _read_attention(out: MasksLearned, dataset: str, images: int, model_of: Callable[..., Any]) -> None:
    """The seed-0 ViT's and GMM-ViT's heads, trained and at step 0 (only their weights are kept)."""
    pairs = [(r, model_of(r)) for r in (out.vit_runs[:1] + out.gmm_runs[:1])]
    pairs = [(r, m) for r, m in pairs if m is not None]
    if not pairs:
        return
    grid = (8, 8)
    out.images, _, _ = load_test_images(dataset, images, pairs[0][0])
    sign = {(int(c["layer"].split(".")[-1]), c["head"]): c["M(0), trained"] for c in out.changes.get(0, [])}
    for run, trained in pairs:
        out.models[label(run["config"])] = (trained, model_of(run, initial=True))
        for state, model in zip(("trained", "step 0"), out.models[label(run["config"])]):
            for row in head_locality(model, out.images, grid):
                row.update(model=label(run["config"]), mask=run["config"]["mask"], state=state)
                if run["config"]["mask"] == "gmm" and state == "trained":
                    row["M(0)"] = sign.get((row["layer"], row["head"]))
                out.locality.append(row)
    out.uniform = pairwise_distance(grid).mean().item()
    out.texts["locality"] = head_locality_reading(out.locality, out.uniform)
    out.texts["own patch"] = own_patch_reading([r for r in out.locality if r["state"] == "trained"], grid[0] * grid[1])
