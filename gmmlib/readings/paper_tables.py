"""What the paper's own tables say before any rerun (chapters 5 and 10): the spread of its gains, which runs its
final ViT row mixes, how far one recipe's ViT baseline moves between its reports, and how SPT+LSA's published
gains compare with the GMM's. Every number comes from ``gmmlib/stats/paper_numbers.json``.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from ..stats.paper import paper
from ..stats.tables import DATASET_NAMES

__all__ = ["paper_table_facts", "baseline_gap", "spt_lsa_against_gmm"]


def _main_gains() -> List[float]:
    main = paper()["main_table"]
    return [g - n for row in main["rows"].values() for n, g in zip(row["none"], row["gmm"])]


def paper_table_facts() -> str:
    """Markdown bullets: the range of the main table's gains, and where its final ViT row's GMM values come from
    (looked up in the kernel ablation's runs), against the earlier README's ViT row."""
    data = paper()
    main, ablation, earlier = data["main_table"], data["kernel_ablation"], data["earlier_table"]["rows"]["vit"]
    gains = _main_gains()
    found = []
    for i, d in enumerate(main["datasets"]):
        final = main["rows"]["vit"]["gmm"][i]
        ks = [k for k, v in zip(ablation["kernels"], ablation["rows"][d]) if abs(v - final) < 1e-9]
        where = f"the K = {ks[0]} run" if ks else "no run of the ablation"
        found.append(f"{DATASET_NAMES[d]} {final} matches {where}")
    vit = main["rows"]["vit"]
    return (
        f"* **Gains from {min(gains):+.2f} to {max(gains):+.2f} points** across the {len(gains)} cells of the table.\n"
        "* **The ViT row mixes runs.** On CIFAR-10 an earlier README (February 2023) "
        f"gave {earlier['none'][0]} and {earlier['gmm'][0]} where the final one gives {vit['none'][0]} and "
        f"{vit['gmm'][0]}. Looked up in the runs of the kernel ablation (chapter 6), the final GMM-ViT values come "
        "from different runs: " + "; ".join(found) + ".\n"
        "* **Baselines differ between sources.** The same recipe in the SPT-LSA repository gives other ViT "
        "baselines; the ViT rows of the three sources side by side:"
    )


def baseline_gap() -> Tuple[float, str]:
    """The largest gap between two reports of the same ViT baseline (final README, earlier README, SPT-LSA README),
    over the data sets: ``(gap, sentence)``."""
    data = paper()
    sources = {
        "final README": data["main_table"]["rows"]["vit"]["none"],
        "earlier README": data["earlier_table"]["rows"]["vit"]["none"],
        "SPT-LSA README": data["spt_lsa_table"]["rows"]["vit"]["none"],
    }
    gaps = []
    for i, d in enumerate(data["main_table"]["datasets"]):
        values: Dict[str, float] = {s: v[i] for s, v in sources.items()}
        hi, lo = max(values, key=values.get), min(values, key=values.get)
        gaps.append((values[hi] - values[lo], d, hi, values[hi], lo, values[lo]))
    gap, d, hi, v_hi, lo, v_lo = max(gaps)
    return gap, (
        f'The "same" ViT baseline differs between these reports of one recipe by up to {gap:.2f} points '
        f"({DATASET_NAMES[d]}: {v_hi} in the {hi}, {v_lo} in the {lo}), more than most of the gains in the table."
    )


def spt_lsa_against_gmm() -> str:
    """One sentence: in how many cells SPT+LSA's published gain exceeds the GMM's, with the ViT CIFAR-100 example
    (each gain against its own source's baseline)."""
    data = paper()
    main, spt = data["main_table"], data["spt_lsa_table"]
    cells = []
    for model, values in spt["rows"].items():
        for i, d in enumerate(spt["datasets"]):
            j = main["datasets"].index(d)
            gmm_gain = main["rows"][model]["gmm"][j] - main["rows"][model]["none"][j]
            cells.append((model, d, values["spt_lsa"][i] - values["none"][i], gmm_gain))
    more = sum(s > g for _, _, s, g in cells)
    _, d, spt_gain, gmm_gain = next(c for c in cells if c[:2] == ("vit", "cifar100"))
    return (
        f"As published, SPT+LSA gains more than GMM in {more} of {len(cells)} cells (for example {spt_gain:+.1f} "
        f"points on {DATASET_NAMES[d]} for ViT against the GMM's {gmm_gain:+.1f}), at a larger cost in FLOPs, and "
        "from different baselines. No experiment combines the two."
    )
