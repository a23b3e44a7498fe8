"""Finished fold results kept in one JSON file that several processes may fill at once.

``emovox build-fast-model`` trains one student per fold, minutes each; a second process
started on the same run folder (another core) takes the folds nobody has claimed, and each
process finishes by reading everyone's results. A fold is claimed in ``<file>.claims`` with the
process id; a claim whose process is gone is taken over. Results made with other settings
than the caller's are ignored (and redone). Without ``fcntl`` (Windows) there is no locking:
run one process per folder there.

>>> store = FoldStore(run_dir / "loco-folds.json", settings)
>>> if store.claim("fold1"): ... store.finish("fold1", result)
>>> results = store.wait(["fold1", "fold2"], compute)  # all, once the others have finished
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emovox.io import atomic_write_json


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class FoldStore:
    """The fold results in ``path`` made with ``settings``, shared between processes."""

    def __init__(self, path: str | Path, settings: dict[str, Any], poll_s: float = 30.0):
        self.path = Path(path)
        self.claims = self.path.with_name(self.path.name + ".claims")
        self.settings = json.loads(json.dumps(settings))  # as it reads back from JSON
        self.poll_s = poll_s

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # no locking on this system: one process per folder
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        return json.loads(path.read_text()) if path.is_file() else {}

    def stale(self) -> list[str]:
        """Kept folds made with other settings (they count as not done)."""
        return [n for n, f in self._read(self.path).items() if f.get("settings") != self.settings]

    def results(self) -> dict[str, Any]:
        """The finished folds made with these settings."""
        return {
            n: f for n, f in self._read(self.path).items() if f.get("settings") == self.settings
        }

    def claim(self, name: str) -> bool:
        """True when this process should compute fold ``name``: not finished, and not being
        computed by another live process (its claim is now this process's)."""
        with self._locked():
            if name in self.results():
                return False
            claims = self._read(self.claims)
            owner = claims.get(name)
            if owner is not None and owner != os.getpid() and _alive(int(owner)):
                return False
            claims[name] = os.getpid()
            atomic_write_json(self.claims, claims)
            return True

    def finish(self, name: str, result: dict[str, Any]) -> None:
        """Keep fold ``name``'s result (with the settings) and drop its claim."""
        with self._locked():
            done = self._read(self.path)
            done[name] = {**result, "settings": self.settings}
            atomic_write_json(self.path, done)
            claims = self._read(self.claims)
            if claims.pop(name, None) is not None:
                atomic_write_json(self.claims, claims)

    def wait(
        self,
        names: Sequence[str],
        compute: Callable[[str], None],
        say: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Every fold of ``names``: waits for those other processes are computing; a fold whose
        process has gone is handed to ``compute`` (which must :meth:`finish` it)."""
        while True:
            done = self.results()
            missing = [n for n in names if n not in done]
            if not missing:
                return {n: done[n] for n in names}
            orphan = next((n for n in missing if self.claim(n)), None)
            if orphan is not None:
                compute(orphan)
                continue
            if say:
                say(f"waiting for {len(missing)} fold(s) another process is computing")
            time.sleep(self.poll_s)
