"""What the loop does besides stepping: the progress bar, train and validation records (one
metrics log per member), printed samples and the curves. Nothing here may lose a run: an
exception while evaluating, printing samples or plotting is reported in one line and the run
goes on (and still writes its checkpoints)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from seqfunc.runs.folder import MetricsLog
from seqfunc.runs.plots import plot_metrics
from seqfunc.runs.state import Progress


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class SideTasks:
    def __init__(
        self,
        trainer,
        metrics: list[MetricsLog],
        *,
        progress: bool,
        start_step: int,
        log: Callable[[str], None],
        evaluates: bool = True,
    ):
        from tqdm.auto import tqdm

        self.trainer, self.metrics = trainer, metrics
        self.bar = tqdm(
            total=trainer.total_steps,
            initial=start_step,
            disable=not progress,
            unit="step",
            dynamic_ncols=True,
        )
        self.emit = self.bar.write if progress else log  # lines above the bar, or through log
        self.samples_on, self.evaluates = True, evaluates
        self.last_val: list[dict] = []  # each member's

    def __enter__(self) -> SideTasks:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
        for log in self.metrics:
            log.close()

    def advance(self) -> None:
        self.bar.update(1)

    def log_train(
        self, at: Progress, epoch: int, nonfinite_skipped: list[int], elapsed_s: float
    ) -> None:
        """Average the window of step metrics into one train record per member. A step's
        metric is a 0-d tensor (one member), a ``(members,)`` tensor, or after a resume a
        float or a list of floats (the window as a checkpoint keeps it)."""
        window, at.window = at.window, []
        # sorted: a window restored from a checkpoint's JSON has its keys sorted
        names = sorted(window[0]) if len(self.metrics) > 1 else list(window[0])
        host = [{k: _floats(m[k]) for k in names} for m in window]
        for i, (log, skipped) in enumerate(zip(self.metrics, nonfinite_skipped)):
            mean = {k: sum(m[k][i] for m in host) / len(host) for k in names}
            log.write(
                {
                    "step": at.step,
                    "split": "train",
                    "epoch": epoch,
                    **mean,
                    "nonfinite_skipped": skipped,
                    "elapsed_s": elapsed_s,
                }
            )
            if i == 0:
                self.bar.set_postfix({k: f"{v:.4f}" for k, v in mean.items() if k != "grad_norm"})

    def evaluate(self, params, step: int, elapsed_s: float, *, final: bool) -> None:
        if not self.evaluates:  # ranks other than 0: rank 0 evaluates
            return
        cfg = self.trainer.cfg
        limit = cfg.final_eval_batches if final else cfg.eval_batches
        try:
            records = self.trainer.evaluate(params, limit)
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            self.emit(f"evaluation at step {step} failed ({_one_line(exc)}); training goes on")
            return
        self.last_val = [
            {"step": step, "split": "val", **record, "elapsed_s": elapsed_s} for record in records
        ]
        for log, record in zip(self.metrics, self.last_val):
            log.write(record)
        if len(records) == 1:
            self.emit(_format_eval(self.last_val[0]))
        else:
            losses = ", ".join(f"{r['loss']:.4f}" for r in records)
            self.emit(f"step {step}/{self.trainer.total_steps}: val loss {losses}")
        if self.samples_on:
            self._print_samples(params, step)

    def _print_samples(self, params, step: int) -> None:
        try:
            lines = self.trainer.samples(params)
        except Exception as exc:  # noqa: BLE001
            self.samples_on = False
            self.emit(f"printing samples at step {step} failed ({_one_line(exc)}); no more samples")
            return
        for line in lines:
            self.emit("  " + line)

    def plot(self, path: Path, records: list[dict]) -> None:
        if not self.evaluates:
            return
        try:
            if plot_metrics(records, path) is None:
                self.emit(
                    "matplotlib is not installed: no curves.png (pip install 'seqfunc[plot]')"
                )
        except Exception as exc:  # noqa: BLE001
            self.emit(f"plotting {path.name} failed ({_one_line(exc)})")


def _format_eval(record: dict) -> str:
    shown = {k: v for k, v in record.items() if k not in ("split", "elapsed_s", "examples")}
    return "val " + " ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
    )


def _floats(value) -> list[float]:
    """A step metric as one float per member."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    return value if isinstance(value, list) else [float(value)]
