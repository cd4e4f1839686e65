"""How differently the tasks use the experts, per layer, against a shuffled-task baseline.

Per model and layer: the tasks' expert-load distributions p_t (phases summed, or one phase)
and their Jensen–Shannon divergence, weighted by each task's routed tokens:
`JS = H(Σ π_t p_t) − Σ π_t H(p_t)` in bits (= the mutual information between task and expert;
0 = every task routes alike, at most log2(#tasks)). A finite sample of tokens always gives
JS > 0, so the same statistic is recomputed with the task labels shuffled, many times with a
fixed seed: the observed JS is read against that baseline's mean and 95th percentile (and the
permutation p-value), so noise is not read as specialisation.

What is shuffled: whole samples when the store has each sample's counts
(`Store.router_frame(by_sample=True)`), since tokens of one prompt route alike; else single
routed tokens (a multivariate-hypergeometric draw from the pooled counts), a baseline that is
too low when samples differ, which the `unit` column says.

Per task and layer, `overused_experts` ranks experts by load / mean load over experts, with the
lift over the pooled (all-task) share beside it. numpy only, imported lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: Columns of `expert_divergence()`: one row per model × layer with two or more tasks.
DIVERGENCE_COLUMNS = (
    "model", "layer", "tasks", "units", "unit", "js_bits", "baseline_mean", "baseline_p95",
    "p_value", "above_p95",
)
#: Columns of `overused_experts()`: the top experts per model × task × layer.
OVERUSE_COLUMNS = ("model", "task", "layer", "rank", "expert", "tokens", "overuse", "lift")
PERMUTATIONS = 1000
SEED = 0


def expert_divergence(router: pd.DataFrame, *, permutations: int = PERMUTATIONS,
                      seed: int = SEED, phase: str | None = None) -> pd.DataFrame:
    """Per model × layer: observed JS between tasks and its shuffled-task baseline.

    Args:
        router: `Store.router_frame()` rows; with `case_id` and `repeat` columns
            (`by_sample=True`) samples are shuffled, else single tokens.
        permutations: how many label shuffles (fixed `seed`: the same frame gives the same
            baseline).
        phase: "prefill" or "decode" only; None sums both (as the heatmaps do).
    """
    import numpy as np
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for model, frame in _by_model(_phase(router, phase)):
        units, labels, tensor = _unit_tensor(frame)  # tensor: [units, layers, experts]
        if len(set(labels)) < 2:
            continue
        rng = np.random.default_rng(seed)
        by_sample = _has_samples(frame)
        observed = _js(_group(tensor, labels))
        null = (_sample_null(tensor, labels, permutations, rng) if by_sample
                else _token_null(tensor, labels, permutations, rng))  # [perm, layers]
        for layer in range(tensor.shape[1]):
            if tensor[:, layer].sum() == 0:
                continue  # a dense layer
            base = null[:, layer]
            rows.append({
                "model": model, "layer": layer, "tasks": len(set(labels)),
                "units": len(units) if by_sample else int(tensor[:, layer].sum()),
                "unit": "sample" if by_sample else "token",
                "js_bits": float(observed[layer]), "baseline_mean": float(base.mean()),
                "baseline_p95": float(np.quantile(base, 0.95)),
                "p_value": float((1 + (base >= observed[layer] - 1e-12).sum())
                                 / (1 + len(base))),
                "above_p95": bool(observed[layer] > np.quantile(base, 0.95)),
            })
    return pd.DataFrame(rows, columns=list(DIVERGENCE_COLUMNS))


def overused_experts(router: pd.DataFrame, *, top: int = 3,
                     phase: str | None = None) -> pd.DataFrame:
    """Per model × task × layer, the `top` experts by load / mean load over the layer's experts.

    `lift` is the expert's share of the task's tokens over its share of all tasks' tokens
    (> 1: the task uses it more than the tasks together do).
    """
    import numpy as np
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for model, frame in _by_model(_phase(router, phase)):
        _, labels, tensor = _unit_tensor(frame)
        tasks = list(dict.fromkeys(labels))
        grouped = _group(tensor, labels)  # [tasks, layers, experts]
        pooled = grouped.sum(axis=0)
        for t, task in enumerate(tasks):
            for layer in range(tensor.shape[1]):
                load = grouped[t, layer]
                if load.sum() == 0:
                    continue
                overuse = load / load.mean()
                pool_share = pooled[layer] / pooled[layer].sum()
                with np.errstate(divide="ignore", invalid="ignore"):
                    lift = (load / load.sum()) / pool_share
                for rank, e in enumerate(np.argsort(-overuse, kind="stable")[:top], 1):
                    rows.append({"model": model, "task": task, "layer": layer, "rank": rank,
                                 "expert": int(e), "tokens": int(load[e]),
                                 "overuse": float(overuse[e]), "lift": float(lift[e])})
    return pd.DataFrame(rows, columns=list(OVERUSE_COLUMNS))


def combined_router(router: pd.DataFrame | None,
                    by_sample: pd.DataFrame | None) -> pd.DataFrame | None:
    """Per-sample rows for the models that have them, task sums for the others: the frame
    `expert_divergence` shuffles samples of where it can."""
    import pandas as pd

    if by_sample is None or by_sample.empty:
        return router
    if router is None or router.empty:
        return by_sample
    keys = ["run_id", "model"]
    have = set(map(tuple, by_sample[keys].drop_duplicates().to_numpy().tolist()))
    rest = router[[tuple(k) not in have for k in router[keys].to_numpy().tolist()]]
    return pd.concat([by_sample, rest], ignore_index=True)


def _has_samples(frame: pd.DataFrame) -> bool:
    return "case_id" in frame and bool(frame["case_id"].notna().all())


def _phase(router: pd.DataFrame, phase: str | None) -> pd.DataFrame:
    return router if phase is None or router.empty else router[router["phase"] == phase]


def _by_model(router: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(model, rows) per model; a model in several runs is one per run, named `model (run)`."""
    if router is None or router.empty:
        return []
    if "run_id" not in router:
        return [(str(m), f) for m, f in router.groupby("model", sort=False)]
    runs_of = router.groupby("model")["run_id"].nunique()
    return [(f"{model} ({run})" if runs_of[model] > 1 else str(model), frame)
            for (run, model), frame in router.groupby(["run_id", "model"], sort=False)]


def _unit_tensor(frame: pd.DataFrame) -> tuple[list[Any], list[str], np.ndarray]:
    """Units (samples, or tasks when per-sample counts are absent), their task labels and
    their counts `[units, layers, experts]` (phases summed)."""
    import numpy as np

    task = (frame["suite"].astype(str) + "/" + frame["task"].astype(str)).tolist()
    extra = (zip(frame["case_id"].astype(str), frame["repeat"].astype(str))
             if _has_samples(frame) else ((),) * len(task))
    unit = [(t, *e) for t, e in zip(task, extra)]
    units = list(dict.fromkeys(unit))
    index = {u: i for i, u in enumerate(units)}
    tensor = np.zeros((len(units), int(frame["layer"].max()) + 1,
                       int(frame["expert"].max()) + 1))
    np.add.at(tensor, (np.array([index[u] for u in unit], dtype=int),
                       frame["layer"].to_numpy(int), frame["expert"].to_numpy(int)),
              frame["tokens"].to_numpy(float))
    labels = [u[0] for u in units]
    return units, labels, tensor


def _group(tensor: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Unit counts summed per task: `[tasks, layers, experts]`, tasks in first-seen order."""
    import numpy as np

    tasks = list(dict.fromkeys(labels))
    onehot = np.zeros((len(tasks), len(labels)))
    onehot[[tasks.index(t) for t in labels], range(len(labels))] = 1
    return (onehot @ tensor.reshape(len(labels), -1)).reshape(len(tasks), *tensor.shape[1:])


def _js(grouped: np.ndarray) -> np.ndarray:
    """Token-weighted JS divergence in bits over the task axis (-3): `[..., layers]`."""
    import numpy as np

    per_task = grouped.sum(axis=-1)  # [..., tasks, layers]
    total = per_task.sum(axis=-2)  # [..., layers]
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.nan_to_num(per_task / total[..., None, :])
        pooled = grouped.sum(axis=-3)
        mix = _entropy(pooled / pooled.sum(axis=-1, keepdims=True))
        each = _entropy(grouped / per_task[..., None])
    return np.nan_to_num(mix - (weights * each).sum(axis=-2))


def _entropy(p: np.ndarray) -> np.ndarray:
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.nansum(np.where(p > 0, p * np.log2(p), 0.0), axis=-1)


def _sample_null(tensor: np.ndarray, labels: Sequence[str], permutations: int,
                 rng: np.random.Generator) -> np.ndarray:
    """JS per layer with the task labels shuffled over samples: `[permutations, layers]`.

    The shuffles are grouped as one batched product per block of permutations (a one-hot
    `[block, tasks, units]` times the unit counts) rather than one Python-level grouping each.
    """
    import numpy as np

    tasks = list(dict.fromkeys(labels))
    codes = np.array([tasks.index(t) for t in labels])
    units = np.arange(len(codes))
    flat = tensor.reshape(len(codes), -1)  # [units, layers × experts]
    out = np.empty((permutations, tensor.shape[1]))
    for start in range(0, permutations, _BLOCK):
        shuffled = np.stack([rng.permutation(codes)
                             for _ in range(min(_BLOCK, permutations - start))])
        onehot = np.zeros((len(shuffled), len(tasks), len(codes)))
        onehot[np.arange(len(shuffled))[:, None], shuffled, units] = 1
        grouped = (onehot @ flat).reshape(len(shuffled), len(tasks), *tensor.shape[1:])
        out[start:start + len(shuffled)] = _js(grouped)
    return out


#: permutations grouped per batched product (bounds the one-hot's memory on large runs)
_BLOCK = 100


def _token_null(tensor: np.ndarray, labels: Sequence[str], permutations: int,
                rng: np.random.Generator) -> np.ndarray:
    """JS per layer with the task labels shuffled over routed tokens: each task's token count
    drawn without replacement from the pooled counts (multivariate hypergeometric)."""
    import numpy as np

    grouped = _group(tensor, labels).astype(np.int64)  # one unit per task here
    pooled, sizes = grouped.sum(axis=0), grouped.sum(axis=2)  # [layers, E], [tasks, layers]
    out = np.empty((permutations, tensor.shape[1]))
    for i in range(permutations):
        draw = np.zeros_like(grouped)
        for layer in range(tensor.shape[1]):
            left = pooled[layer].copy()
            for t in range(len(grouped) - 1):
                draw[t, layer] = rng.multivariate_hypergeometric(left, sizes[t, layer])
                left -= draw[t, layer]
            draw[-1, layer] = left
        out[i] = _js(draw.astype(float))
    return out
