"""Runs an experiment matrix: cached, resumable, in parallel, failures isolated.

Each :class:`~speechbrain_sparse.reproduction.plan.Run` becomes one
``python <recipe>/train.py hparams/<yaml> --output_folder=<out>/<run> --key=value``
subprocess, logged to ``<out>/logs/<run>.log``. A run is *finished* when its
``results.json`` exists; it is then reused, not run again. A run that was
interrupted is started again with the same command, and SpeechBrain resumes it
from its last checkpoint (masks are reloaded from ``mask.pt``). The command of
each run is recorded in ``<out>/<run>/reproduce_command.json``; a folder made
with other options is refused (naming the options that differ) rather than
silently mixed. A failed run is reported with the tail of its log, the runs
that need it are skipped, and every other run goes on. ``<out>/status.json``
(written atomically after every run) says what happened to each run.

Up to ``workers`` runs go at once. Each gets ``cores // concurrent`` threads
(``OMP_NUM_THREADS``), so the pretraining, which runs alone, uses every core,
and the fine-tuning runs share them one thread each: on 2 CPU cores two
one-thread runs finish sooner than the same two runs one after the other with
two threads each, and far sooner than two two-thread runs side by side.
"""

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import read_json, write_json_atomic

logger = logging.getLogger(__name__)
COMMAND_FILE = "reproduce_command.json"
FINISHED, CACHED, FAILED, SKIPPED = "finished", "cached", "failed", "skipped"


def format_override(value):
    """A command-line override value hyperpyyaml reads back as ``value``.

    Example
    -------
    >>> format_override(["dev", "test"]), format_override(0.5), format_override("x")
    ('[dev, test]', '0.5', 'x')
    """
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_override(item) for item in value) + "]"
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


class MatrixRunner:
    """Runs the runs of a matrix (see the module docstring).

    Arguments
    ---------
    recipe_dir : str or Path
        The recipe folder holding ``train.py`` and ``hparams/``.
    out_dir : str or Path
        Where each run's folder, the logs and ``status.json`` go.
    overrides : callable
        ``run -> dict`` of extra top-level YAML keys (data folder, epochs, ...).
    workers : int
        Runs at the same time.
    cores : int
        CPU threads shared among the running runs.
    run_options : list of str
        Passed to every ``train.py`` (e.g. ``["--device=cuda:0"]``).
    progress : bool
        Show a tqdm bar.
    """

    def __init__(self, recipe_dir, out_dir, overrides=lambda run: {}, workers=2,
                 cores=None, run_options=(), progress=True):
        self.recipe_dir = Path(recipe_dir).resolve()
        self.out_dir = Path(out_dir).resolve()
        self.overrides = overrides
        self.workers = max(1, int(workers))
        self.cores = max(1, int(cores or os.cpu_count() or 1))
        self.run_options = list(run_options)
        self.progress = progress
        self.status = {}

    def folder(self, run):
        """The output folder of ``run``."""
        return self.out_dir / run.name

    def command(self, run):
        """The ``train.py`` command line of ``run`` (without the interpreter)."""
        overrides = {**run.overrides, **self.overrides(run)}
        return [
            str(self.recipe_dir / "train.py"),
            str(self.recipe_dir / "hparams" / run.hparams),
            f"--output_folder={self.folder(run)}",
            *(f"--{key}={format_override(value)}" for key, value in overrides.items()),
            *self.run_options,
        ]

    def check_cache(self, run):
        """``True`` when ``run`` finished earlier with the same command.

        Raises
        ------
        ValueError
            The folder holds a run (results or checkpoints) made with a different
            command. One that stopped before its first checkpoint is started
            afresh with the new command.
        """
        folder = self.folder(run)
        recorded = read_json(folder / COMMAND_FILE)
        command = self.command(run)
        started = (folder / "results.json").is_file() or any(
            (folder / "save").glob("CKPT+*")
        )
        if recorded is not None and recorded != command and started:
            differing = sorted(set(recorded) ^ set(command))
            raise UserInputError(
                f"{folder} holds run {run.name} made with other options "
                f"({' '.join(differing)}); use another output folder or delete it"
            )
        return recorded is not None and (folder / "results.json").is_file()

    def results(self, run):
        """The ``results.json`` of a finished run, or ``None``."""
        return read_json(self.folder(run) / "results.json")

    def run_all(self, runs):
        """Runs every run not finished yet; returns ``{name: status record}``."""
        pending = list(runs)
        running = {}
        bar = tqdm(total=len(pending), desc="runs", unit="run",
                   disable=not self.progress, dynamic_ncols=True)
        try:
            while pending or running:
                self._launch_ready(pending, running, bar)
                self._collect_finished(running, bar)
                if running:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            for process, _, _, handle in running.values():
                process.terminate()
                process.wait()
                handle.close()
            self._write_status()
            raise
        finally:
            bar.close()
        self._write_status()
        return self.status

    def _say(self, bar, message):
        """One progress line (above the bar)."""
        if self.progress:
            bar.write(message)
        logger.info(message)

    def _record(self, run, status, bar, **details):
        self.status[run.name] = {"status": status, **details}
        bar.update(1)
        self._write_status()

    def _launch_ready(self, pending, running, bar):
        """Starts the pending runs whose needs are met, up to ``workers``.

        Runs that others need (vanilla, which diff needs) go first."""
        dependents = {}
        for run in pending:
            for name in run.needs:
                dependents[name] = dependents.get(name, 0) + 1
        for run in sorted(pending, key=lambda r: -dependents.get(r.name, 0)):
            blocked = [n for n in run.needs if self.status.get(n, {}).get("status")
                       in (FAILED, SKIPPED)]
            if blocked:
                pending.remove(run)
                self._say(bar, f"[skip] {run.name}: needs {blocked[0]}, which failed")
                self._record(run, SKIPPED, bar, reason=f"needs {blocked[0]}")
                continue
            if any(self.status.get(n, {}).get("status") not in (FINISHED, CACHED)
                   for n in run.needs):
                continue
            try:
                cached = self.check_cache(run)
            except ValueError as error:
                pending.remove(run)
                self._say(bar, f"[fail] {run.name}: {error}")
                self._record(run, FAILED, bar, error=str(error))
                continue
            if cached:
                pending.remove(run)
                self._say(bar, f"[done] {run.name}: finished earlier, reused")
                self._record(run, CACHED, bar, folder=str(self.folder(run)))
                continue
            if len(running) >= self.workers:
                continue
            pending.remove(run)
            running[run.name] = self._start(run, pending, running, bar)

    def _ready_count(self, pending):
        done = (FINISHED, CACHED)
        return sum(all(self.status.get(n, {}).get("status") in done for n in r.needs)
                   for r in pending)

    def _start(self, run, pending, running, bar):
        """Launches ``run``; returns ``(process, run, start time, log handle)``."""
        folder = self.folder(run)
        folder.mkdir(parents=True, exist_ok=True)
        command = self.command(run)
        write_json_atomic(folder / COMMAND_FILE, command)
        concurrent = min(self.workers, len(running) + 1 + self._ready_count(pending))
        threads = max(1, self.cores // concurrent)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads),
               "MKL_NUM_THREADS": str(threads)}
        log_file = self.out_dir / "logs" / f"{run.name.replace('/', '__')}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(log_file, "a")
        handle.write(f"$ {sys.executable} {' '.join(command)}\n")
        handle.flush()
        process = subprocess.Popen([sys.executable, *command], stdout=handle,
                                   stderr=subprocess.STDOUT, env=env)
        self._say(bar, f"[run ] {run.name} ({threads} thread{'s' * (threads > 1)}); "
                       f"log: {log_file}")
        return process, run, time.time(), handle

    def _collect_finished(self, running, bar):
        for name, (process, run, started, handle) in list(running.items()):
            if process.poll() is None:
                continue
            handle.close()
            del running[name]
            seconds = round(time.time() - started, 1)
            log = handle.name
            finished = (self.folder(run) / "results.json").is_file()
            if process.returncode == 0 and finished:
                self._say(bar, f"[ok  ] {name} in {seconds:.0f} s")
                self._record(run, FINISHED, bar, seconds=seconds, log=log)
                continue
            tail = Path(log).read_text(errors="replace").splitlines()[-15:]
            self._say(bar, f"[fail] {name} (exit {process.returncode}) after "
                           f"{seconds:.0f} s; log: {log}\n    " + "\n    ".join(tail))
            self._record(run, FAILED, bar, seconds=seconds, log=log,
                         error=f"exit {process.returncode}")

    def _write_status(self):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.out_dir / "status.json", self.status)


def summarize_status(status):
    """``'12 finished, 3 reused, 1 failed, 2 skipped'`` (non-zero counts).

    Example
    -------
    >>> summarize_status({"a": {"status": "finished"}, "b": {"status": "failed"}})
    '1 finished, 1 failed'
    """
    counts = {}
    for record in status.values():
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    words = {FINISHED: "finished", CACHED: "reused", FAILED: "failed",
             SKIPPED: "skipped"}
    return ", ".join(f"{counts[key]} {word}" for key, word in words.items()
                     if counts.get(key))


def read_status(out_dir):
    """The ``status.json`` of a matrix folder (empty dict when none)."""
    return read_json(Path(out_dir) / "status.json") or {}
