"""Chapter 7's reading of cost: the families' parameters, MACs and FLOPs beside the paper's, what the MAC count
leaves out, what the GMM adds, and why the chapter's question cannot be asked at ``cpu`` scale.

Counts come from :func:`gmmlib.cost.profile` on models built by :func:`gmmlib.create_model`; the paper's from its
table (:func:`gmmlib.stats.paper`). The paper prints one decimal in millions, so a count "agrees" when it rounds
to the printed digit.

Example:
    >>> table = cost_table()                 # paper size, every family with and without the GMM
    >>> print(agreement_text(table))
    >>> print("\\n".join(uncounted_lines(table)))
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

from torch import nn

from ..cost import profile
from ..masks import AttentionMask
from ..models.registry import PAPER_FAMILIES, create_model, display_name
from ..stats.paper import paper
from ..stats.tables import label
from ..training.config import PRESETS

__all__ = [
    "build",
    "cost_table",
    "printed_equal",
    "paper_agreement",
    "agreement_text",
    "flops_beyond_macs",
    "mask_products",
    "uncounted_lines",
    "paper_accuracy",
    "cpu_sizes",
    "cpu_scale_text",
    "cost_bullet",
]

_CPU_RATIO, _PAPER_RATIO = "cpu: params / ViT's", "paper: params / ViT's"

_KINDS = {"params": ("params (M)", "params_m", "parameter"), "MACs": ("MACs (M)", "macs_m", "MAC")}


def build(name: str, mask: Optional[str] = None, preset: str = "paper") -> nn.Module:
    """A family as the experiments build it at a preset's size (the ViT with GAP, as every masked comparison)."""
    overrides = PRESETS[preset].model_overrides.get(name, {})
    return create_model(name, mask=mask, pool="gap" if name == "vit" else None, **overrides)


def cost_table(families: Sequence[str] = PAPER_FAMILIES, masks: Sequence[Optional[str]] = (None, "gmm")):
    """Parameters, MACs and FLOPs (millions, per image) of each family at the paper's size, with and without
    each mask, beside the paper's printed parameters and MACs: a DataFrame indexed by the model's label."""
    import pandas as pd

    main = paper()["main_table"]["rows"]
    rows = []
    for name in families:
        for mask in masks:
            cost = profile(build(name, mask))
            rows.append(
                {
                    "model": label({"model": name, "mask": mask}),
                    "family": name,
                    "mask": mask or "none",
                    "params (M)": cost["params"] / 1e6,
                    "MACs (M)": cost["macs"] / 1e6,
                    "FLOPs (M)": cost["flops"] / 1e6,
                    "paper: params (M)": main[name]["params_m"] if name in main else math.nan,
                    "paper: MACs (M)": main[name]["macs_m"] if name in main else math.nan,
                }
            )
    return pd.DataFrame(rows).set_index("model")


def printed_equal(value: float, printed: float) -> bool:
    """Whether ``value`` (millions) equals the paper's printed number to the one decimal it prints."""
    return round(value, 1) == round(printed, 1)


def paper_agreement(table) -> Dict[str, List[str]]:
    """For ``"params"`` and ``"MACs"``: the labels of the rows of :func:`cost_table` that agree with the paper."""
    return {
        kind: [m for m, row in table.iterrows() if printed_equal(row[ours], row[f"paper: {ours}"])]
        for kind, (ours, _, _) in _KINDS.items()
    }


def agreement_text(table) -> str:
    """One sentence per count: in how many rows ours agrees with the paper's, naming the rows that do not."""
    agree, n = paper_agreement(table), len(table)
    parts = []
    for kind, rows in agree.items():
        off = [m for m in table.index if m not in rows]
        parts.append(
            f"Our {_KINDS[kind][2]} counts agree with the paper's in {len(rows)} of {n} rows"
            + (f" (not: {', '.join(off)})." if off else ".")
        )
    return " ".join(parts) + (
        " The paper prints one count per family, with and without the mask: the MACs as counted do not change "
        "with the mask."
    )


def flops_beyond_macs(table) -> Dict[str, float]:
    """For each unmasked row: the share of its FLOPs that lies beyond 2 x MACs (one MAC is two FLOPs), i.e. the
    work the paper's count leaves out, mostly the attention products."""
    rows = table[table["mask"] == "none"]
    return {m: (r["FLOPs (M)"] - 2 * r["MACs (M)"]) / r["FLOPs (M)"] for m, r in rows.iterrows()}


def mask_products(model: nn.Module) -> int:
    """Multiplications of the masks' elementwise product with the logits, per image: one per head and pair of
    tokens, in every masked attention layer of ``model``."""
    return sum(m.num_heads * m.num_tokens**2 for m in model.modules() if isinstance(m, AttentionMask))


def uncounted_lines(table, families: Sequence[str] = ("vit", "swin", "cait")) -> List[str]:
    """What the MAC count leaves out, in short lines: the FLOPs beyond the MACs per family, the FLOPs the
    counter adds for the GMM, and the ViT's elementwise product of mask and logits (which no counter sees)."""
    beyond = flops_beyond_macs(table)
    lines = ["FLOPs not counted as MACs: " + ", ".join(f"{m} {v:.0%}" for m, v in beyond.items())]
    for name in families:
        rows = table[table["family"] == name].set_index("mask")["FLOPs (M)"]
        added = rows["gmm"] - rows["none"]
        lines.append(
            f"{display_name(name):5s}: the counter adds {1e3 * added:5.1f} thousand FLOPs per image "
            f"for the GMM ({added / rows['none']:.4%})"
        )
    vit = table[(table["family"] == "vit") & (table["mask"] == "none")]["FLOPs (M)"].iloc[0]
    products = mask_products(build("vit", "gmm"))
    lines.append(
        f"ViT  : mask times logits, {products / 1e3:5.1f} thousand multiplications per image "
        f"({products / (vit * 1e6):.2%} of FLOPs)"
    )
    return lines


def paper_accuracy(families: Sequence[str] = ("vit", "swin", "cait")):
    """The paper's table for ``families``, with and without the GMM: top-1 (%) per data set, parameters and
    MACs (millions), one row per model (its label)."""
    import pandas as pd

    from ..stats.tables import DATASET_NAMES

    main = paper()["main_table"]
    rows = []
    for name in families:
        row = main["rows"][name]
        for mask in ("none", "gmm"):
            rows.append(
                {
                    "model": label({"model": name, "mask": None if mask == "none" else mask}),
                    **{DATASET_NAMES[d]: v for d, v in zip(main["datasets"], row[mask])},
                    "params (M)": row["params_m"],
                    "MACs (M)": row["macs_m"],
                }
            )
    return pd.DataFrame(rows).set_index("model")


def cpu_sizes(families: Sequence[str] = ("vit", "swin", "cait")):
    """Each family's size at the ``cpu`` preset beside the paper's: parameters and MACs, and parameters as a
    multiple of the ViT's at each scale. A DataFrame indexed by the family's display name."""
    import pandas as pd

    main = paper()["main_table"]["rows"]
    cost = {name: profile(build(name, preset="cpu")) for name in families}
    vit = cost["vit"]
    return pd.DataFrame(
        {
            display_name(name): {
                "cpu preset: params": c["params"],
                "cpu preset: MACs (M)": c["macs"] / 1e6,
                _CPU_RATIO: c["params"] / vit["params"],
                _PAPER_RATIO: main[name]["params_m"] / main["vit"]["params_m"],
            }
            for name, c in cost.items()
        }
    ).T


def cpu_scale_text(sizes) -> str:
    """Why the chapter's question cannot be asked at ``cpu`` scale: CaiT's size against the ViT's there."""
    cait, vit = sizes.loc[display_name("cait")], sizes.loc[display_name("vit")]
    return (
        f"At the `cpu` preset the ViT has {vit['cpu preset: params']:,.0f} parameters and CaiT "
        f"{cait['cpu preset: params']:,.0f}, {cait[_CPU_RATIO]:.2f} times as many (the paper's CaiT "
        f"has {cait[_PAPER_RATIO]:.1f} times its ViT's), and CaiT costs "
        f"{cait['cpu preset: MACs (M)'] / vit['cpu preset: MACs (M)']:.2f} times the ViT's MACs. "
        "**This chapter's question cannot be answered at `cpu` scale:** there the ViT is no smaller than CaiT, "
        "so a GMM-ViT matching it would say nothing about buying a bigger model's biases cheaply. The runs below "
        "measure something narrower, each family's gain from the mask at this scale."
    )


def cost_bullet(table) -> str:
    """The summary's cost bullet: agreement with the paper, and what the GMM adds to the ViT."""
    agree, n = paper_agreement(table), len(table)
    vit = table[table["family"] == "vit"].set_index("mask")
    params = vit.loc["none", "params (M)"] * 1e6
    extra = round(vit.loc["gmm", "params (M)"] * 1e6 - params)
    products = mask_products(build("vit", "gmm"))
    return (
        f"* **Cost.** `gmmlib.profile` reproduces the paper's parameter counts in {len(agree['params'])} of {n} "
        f"rows and its MAC counts in {len(agree['MACs'])} of {n}. The GMM adds {extra:,} parameters to the ViT "
        f"({extra / params:.2%}), no MACs as the paper counts them, and an elementwise product of "
        f"{products / (vit.loc['none', 'FLOPs (M)'] * 1e6):.2%} of the ViT's FLOPs."
    )
