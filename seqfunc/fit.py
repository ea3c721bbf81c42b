"""The host loop around the stepper: data, logging, evaluation, checkpoints, plots.

``fit(TrainConfig(...), out_dir)`` trains any registered model on any registered dataset of a
task kind it serves, and leaves a run folder::

    config.json        the full config (re-running it reproduces the run)
    metrics.jsonl      one JSON object per line: step, split, loss, metrics
    curves.png         loss and accuracy curves (needs matplotlib: pip install seqfunc[plot])
    params.safetensors, opt_state.safetensors, state.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import attrs
import torch

from seqfunc import optim, registry, rng
from seqfunc.checkpoint import save_params, save_tree, write_json
from seqfunc.config import ConfigError, from_dict, non_negative, one_of, positive, probability, to_dict
from seqfunc.tasks import task_for
from seqfunc.train import init_state, make_step, resolve_compile
from seqfunc.tree import tree_count, tree_map

OPTIMIZERS = ("adam", "adamw", "radam", "sgd")
SCHEDULES = ("constant", "warmup_cosine", "step")


@attrs.frozen
class TrainConfig:
    """Everything a run depends on. ``steps`` wins over ``epochs`` when both are set."""

    dataset: str = "formula"
    model: str = "transformer"
    dataset_options: dict = attrs.field(factory=dict)
    model_options: dict = attrs.field(factory=dict)
    steps: int | None = attrs.field(default=None, validator=positive)
    epochs: int | None = attrs.field(default=None, validator=positive)
    batch_size: int = attrs.field(default=128, validator=positive)
    optimizer: str = attrs.field(default="adam", validator=one_of(OPTIMIZERS))
    lr: float = attrs.field(default=1e-3, validator=positive)
    schedule: str = attrs.field(default="warmup_cosine", validator=one_of(SCHEDULES))
    warmup_steps: int = attrs.field(default=100, validator=non_negative)
    lr_end: float = attrs.field(default=0.0, validator=non_negative)
    step_size: int = attrs.field(default=1, validator=positive)  # schedule "step": decay period
    gamma: float = attrs.field(default=0.95, validator=positive)  # schedule "step": decay factor
    momentum: float = attrs.field(default=0.0, validator=non_negative)
    b1: float = attrs.field(default=0.9, validator=probability)  # Adam's betas
    b2: float = attrs.field(default=0.999, validator=probability)
    weight_decay: float = attrs.field(default=0.01, validator=non_negative)
    clip_norm: float | None = attrs.field(default=1.0, validator=positive)
    seed: int = 0
    device: str = "cpu"
    compile: bool | None = None  # None: on for CUDA, off for the CPU
    trim_padding: bool = False  # cut the positions every row pads off each batch (seq2seq)
    eval_every: int | None = attrs.field(default=None, validator=positive)
    eval_batch_size: int = attrs.field(default=500, validator=positive)
    log_every: int = attrs.field(default=50, validator=positive)
    examples: int = attrs.field(default=5, validator=non_negative)


def make_optimizer(cfg: TrainConfig, total_steps: int) -> optim.GradientTransformation:
    if cfg.schedule == "warmup_cosine":
        lr = optim.warmup_cosine(cfg.lr, min(cfg.warmup_steps, total_steps), total_steps, cfg.lr_end)
    elif cfg.schedule == "step":
        lr = optim.step_decay(cfg.lr, cfg.step_size, cfg.gamma)
    else:
        lr = cfg.lr
    base = {
        "adam": lambda: optim.adam(lr, cfg.b1, cfg.b2),
        "adamw": lambda: optim.adamw(lr, cfg.b1, cfg.b2, weight_decay=cfg.weight_decay),
        "radam": lambda: optim.radam(lr, cfg.b1, cfg.b2),
        "sgd": lambda: optim.sgd(lr, cfg.momentum),
    }[cfg.optimizer]()
    if cfg.clip_norm:
        base = optim.chain(optim.clip_by_global_norm(cfg.clip_norm), base)
    return optim.flatten(base)


def build(cfg: TrainConfig):
    """Dataset, model, task and their configs from the registry, checked for compatibility."""
    dataset_cls = registry.get_dataset(cfg.dataset)
    model_cls = registry.get_model(cfg.model)
    if dataset_cls.task not in model_cls.task_kinds:
        raise ConfigError(
            f"model {cfg.model!r} serves task kind(s) {', '.join(model_cls.task_kinds)} but "
            f"dataset {cfg.dataset!r} is a {dataset_cls.task!r} dataset"
        )
    dataset = dataset_cls(from_dict(dataset_cls.Config, dict(cfg.dataset_options), where="dataset options"))
    model_config = model_cls.config_for(dataset, **cfg.model_options)
    return dataset, model_cls(model_config), task_for(dataset)


class MetricsLog:
    """Appends one JSON object per line; each record is flushed as written."""

    def __init__(self, path: Path):
        self.path = path
        self.records: list[dict] = []
        path.write_text("")

    def write(self, record: dict) -> None:
        self.records.append(record)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def fit(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train, evaluate and save. Returns the last validation record."""
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device)
    dataset, model, task = build(cfg)
    trim = getattr(task, "trim_padding", None) if cfg.trim_padding else None
    if cfg.trim_padding and trim is None:
        raise ConfigError(f"trim_padding=True: the {task.kind!r} task of dataset {cfg.dataset!r} "
                          "does not trim padding; drop the option")
    steps_per_epoch = (  # datasets with bucketed batches say how many they make
        dataset.num_batches("train", cfg.batch_size) if hasattr(dataset, "num_batches")
        else dataset.num_examples("train") // cfg.batch_size
    )
    if steps_per_epoch == 0:
        raise ConfigError(
            f"batch_size={cfg.batch_size} is larger than the training split "
            f"({dataset.num_examples('train')} examples)"
        )
    total_steps = cfg.steps or (cfg.epochs or 1) * steps_per_epoch
    eval_every = cfg.eval_every or max(total_steps // 10, 1)

    write_json(out / "config.json", {
        "train": to_dict(cfg),
        "dataset": {"name": cfg.dataset, "config": to_dict(dataset.config)},
        "model": {"name": cfg.model, "config": to_dict(model.config)},
    })
    if hasattr(dataset, "save_artifacts"):  # e.g. trained tokenizers: the run needs them
        dataset.save_artifacts(out)
    if hasattr(dataset, "summary"):
        log(dataset.summary())
    metrics_log = MetricsLog(out / "metrics.jsonl")

    k_init, k_train = rng.split(rng.key(cfg.seed))
    params = tree_map(lambda t: t.to(device), model.init(k_init))
    optimizer = make_optimizer(cfg, total_steps)
    state = init_state(params, optimizer)
    step_fn = make_step(task.loss_fn(model), optimizer, compile=cfg.compile, device=device, trim=trim)
    k_train = k_train.to(device)
    compiled = " (compiled)" if resolve_compile(cfg.compile, device) else ""
    log(f"{cfg.model} on {cfg.dataset}: {tree_count(params):,} parameters, {total_steps} steps "
        f"of {cfg.batch_size} on {device}{compiled}")

    def evaluate(step: int) -> dict:
        record = task.evaluate(
            model, state.params, dataset.batches("val", cfg.eval_batch_size), device=device
        )
        record = {"step": step, "split": "val", **record, "elapsed_s": round(time.perf_counter() - start, 2)}
        metrics_log.write(record)
        return record

    start = time.perf_counter()
    step = 0
    window: list[dict[str, torch.Tensor]] = []
    bar = tqdm(total=total_steps, disable=not progress, unit="step", dynamic_ncols=True)
    emit = bar.write if progress else log  # lines printed above the bar, or through `log`
    last_val: dict = {}
    epoch = 0
    while step < total_steps:
        for batch in dataset.batches("train", cfg.batch_size, epoch=epoch):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            state, metrics = step_fn(state, batch, rng.fold_in(k_train, step))
            step += 1
            window.append(metrics)
            if step % cfg.log_every == 0 or step == total_steps:
                mean = {k: sum(float(m[k]) for m in window) / len(window) for k in window[0]}
                window.clear()
                record = {"step": step, "split": "train", "epoch": epoch, **mean,
                          "elapsed_s": round(time.perf_counter() - start, 2)}
                metrics_log.write(record)
                bar.set_postfix({k: f"{v:.4f}" for k, v in mean.items() if k != "grad_norm"})
            bar.update(1)
            if step % eval_every == 0 or step == total_steps:
                last_val = evaluate(step)
                emit(_format_eval(last_val))
                for line in _examples(task, model, state.params, dataset, cfg.examples, device):
                    emit("  " + line)
            if step >= total_steps:
                break
        epoch += 1
    bar.close()

    save_params(out / "params.safetensors", state.params)
    save_tree(out / "opt_state.safetensors", state.opt_state)
    write_json(out / "state.json", {"step": step, "epoch": epoch,
                                    "elapsed_s": round(time.perf_counter() - start, 2)})
    plot_path = plot_metrics(metrics_log.records, out / "curves.png")
    if plot_path is None:
        log("matplotlib is not installed: no curves.png (pip install 'seqfunc[plot]')")
    return last_val


def _format_eval(record: dict) -> str:
    shown = {k: v for k, v in record.items() if k not in ("split", "elapsed_s", "examples")}
    return "val " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())


def _examples(task, model, params, dataset, n, device) -> list[str]:
    if not n or not hasattr(task, "examples"):
        return []
    return task.examples(model, params, dataset, n, device=device)


#: Metrics drawn on the accuracy panel when a task reports them.
ACCURACY_METRICS = ("token_accuracy", "exact_match", "accuracy")


def plot_metrics(records: list[dict], path: Path) -> Path | None:
    """Loss and accuracy against step, train and validation; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from seqfunc.checkpoint import atomic_write

    accuracy_names = [
        name for name in ACCURACY_METRICS if any(name in r for r in records)
    ]
    panels = 2 if accuracy_names else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    ax_loss = axes[0, 0]
    for split, style in (("train", "-"), ("val", "o-")):
        rows = [r for r in records if r["split"] == split]
        if not rows:
            continue
        steps = [r["step"] for r in rows]
        ax_loss.plot(steps, [r["loss"] for r in rows], style, label=f"{split} loss")
        for name in accuracy_names:
            if name in rows[0]:
                axes[0, 1].plot(steps, [r[name] for r in rows], style, label=f"{split} {name}")
    ax_loss.set(xlabel="step", ylabel="loss", yscale="log", title="loss")
    if accuracy_names:
        axes[0, 1].set(xlabel="step", ylabel="accuracy", title="accuracy", ylim=(0, 1.01))
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
