"""The live display of deep training: a progress bar per epoch and one line per finished epoch."""

from __future__ import annotations

from typing import Any


class TrainingProgress:
    """A rich progress bar with live loss and the last epoch's val UA (a no-op when disabled).

    ``console``: the rich console to draw on (default: the terminal).
    """

    def __init__(self, enabled: bool, epochs: int, n_batches: int, console: Any = None) -> None:
        self.enabled, self.epochs, self.n_batches = enabled, epochs, n_batches
        self.info = ""
        if not enabled:
            return
        from rich.progress import TextColumn

        from emovox.progress import progress_bar

        self.p = progress_bar(True, console, TextColumn("{task.fields[info]}"))
        self.task = self.p.add_task("train", total=n_batches, info="")
        self.p.start()
        self.loss_sum = 0.0
        self.n = 0

    @property
    def shown(self) -> str:
        """The text the bar shows after its counters (loss and val UA)."""
        return str(self.p.tasks[0].fields["info"]) if self.enabled else ""

    def start_epoch(self, epoch: int) -> None:
        """Reset the bar for epoch ``epoch`` (0-based)."""
        if self.enabled:
            self.loss_sum, self.n = 0.0, 0
            desc = f"epoch {epoch + 1}/{self.epochs}"
            self.p.reset(self.task, total=self.n_batches, description=desc)

    def step(self, loss: float) -> None:
        """One optimizer step done with training loss ``loss``."""
        if self.enabled:
            self.loss_sum += loss
            self.n += 1
            info = f"loss {self.loss_sum / self.n:.3f} {self.info}"
            self.p.update(self.task, advance=1, info=info.rstrip())

    def epoch_done(self, record: dict[str, Any], state: dict[str, Any]) -> None:
        """Print the finished epoch's ``record`` and show its val UA on the bar at once (with
        the best so far from ``state``), not only from the next epoch's first step on."""
        if not self.enabled:
            return
        ua = record["val_ua"]
        best = state.get("best_ua")
        self.info = ""
        if ua is not None:
            self.info = f"| val UA {ua:.3f}" + ("" if best is None else f" (best {best:.3f})")
        self.p.update(self.task, info=f"loss {record['train_loss']:.3f} {self.info}".rstrip())
        self.p.console.print(
            f"epoch {record['epoch']}/{self.epochs}  loss {record['train_loss']:.4f}  "
            + ("" if ua is None else f"val loss {record['val_loss']:.4f}  val UA {ua:.3f}  ")
            + f"{record['seconds']:.1f}s"
        )

    def close(self) -> None:
        """Stop the live display."""
        if self.enabled:
            self.p.stop()
