"""Fresh-interpreter jobs: probes that must run in an interpreter that has imported nothing from the workspace
(forked from a pre-imported parent on Linux, else one subprocess each; see `_workspace_checks.py`)."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from _ws_model import Problem

# --------------------------------------------------------------------------------------------------
# Fresh-interpreter jobs
# --------------------------------------------------------------------------------------------------

# The workspace checks' script: it runs the job server, single jobs and whole check runs in clean interpreters.
SCRIPT = Path(__file__).resolve().with_name("_workspace_checks.py")

JOBS: dict[str, Callable[..., Any]] = {}


def _is_harness(filename: str) -> bool:
    """A frame of the checks themselves (this script and its `_ws_*` modules), left out of error summaries."""
    path = Path(filename)
    return path.parent == SCRIPT.parent and (path.name == SCRIPT.name or path.name.startswith("_ws_"))


def job(fn: Callable[..., Any]) -> Callable[..., Any]:
    JOBS[fn.__name__] = fn
    return fn


def _short_error(exc: BaseException, limit: int = 6) -> str:
    """The exception and its innermost frames, without importlib's and this harness's own frames."""
    importlib_dir = os.path.dirname(importlib.__file__)

    def interesting(filename: str) -> bool:
        return not (
            filename.startswith("<frozen") or _is_harness(filename) or filename.startswith(importlib_dir + os.sep)
        )

    frames = [
        f"  {f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__) if interesting(f.filename)
    ][-limit:]
    head = f"{type(exc).__name__}: {exc}"
    return head + ("\n" + "\n".join(frames) if frames else "")


def _loaded(prefixes: Iterable[str]) -> list[str]:
    prefixes = tuple(prefixes)
    return sorted(m for m in sys.modules if m.split(".")[0] in prefixes)


def _fork_available() -> bool:
    return hasattr(os, "fork") and sys.platform.startswith("linux") and not os.environ.get("PEFT_WS_SPAWN")


def child_env(pythonpath: Sequence[Path | str] = ()) -> dict[str, str]:
    """Environment for the interpreters this module starts: `pythonpath` first on PYTHONPATH.

    OMP_NUM_THREADS defaults to 1 (the probes run in parallel on tiny tensors). With PYTHONDONTWRITEBYTECODE set (and no PYTHONPYCACHEPREFIX), every interpreter would compile
    torch's ~1000 modules from source (~5 s each time). Bytecode then goes to a cache folder in the
    temp dir instead, so nothing is written next to the sources and later interpreters start fast.
    """
    env = dict(os.environ)
    if pythonpath:
        parts = [str(p) for p in pythonpath] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        env["PYTHONPATH"] = os.pathsep.join(parts)
    # Probes run two at a time on small tensors: one thread each beats OpenMP threads spinning for cores.
    env.setdefault("OMP_NUM_THREADS", "1")
    if env.get("PYTHONDONTWRITEBYTECODE") and not env.get("PYTHONPYCACHEPREFIX"):
        del env["PYTHONDONTWRITEBYTECODE"]
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), f"peft-ws-pycache-{uid}")
    return env


def run_fresh(
    jobs: Sequence[tuple[str, dict[str, Any]]],
    *,
    preimport: Sequence[str] = (),
    forbidden: Sequence[str] = (),
    workers: int = 2,
    timeout: float = 300.0,
) -> list[dict[str, Any]]:
    """Run each ``(job name, kwargs)`` in an interpreter where no `forbidden` module was imported.

    Returns one ``{"ok": bool, "value": ..., "error": str}`` per job, in order.
    `preimport` names third-party packages to import once before forking (never workspace ones).
    """
    if not jobs:
        return []
    if not _fork_available():
        return _run_spawned(jobs, workers, timeout)
    if _loaded(forbidden):
        # This process already imported workspace code (e.g. pytest): fork from a clean server.
        return _run_server(jobs, preimport, forbidden, workers, timeout)
    for name in preimport:
        if name.split(".")[0] in forbidden:
            continue
        try:
            importlib.import_module(name)
        except BaseException:  # an optional dependency: the job will fail or skip on its own
            pass
    if _loaded(forbidden):  # a third-party package imported workspace code: don't trust forks
        return _run_spawned(jobs, workers, timeout)
    return _run_forked(jobs, workers, timeout)


def _run_forked(jobs: Sequence[tuple[str, dict[str, Any]]], workers: int, timeout: float) -> list[dict[str, Any]]:
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    pending = list(enumerate(jobs))
    running: dict[int, tuple[int, str, str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="peft-ws-jobs-") as tmp:
        while pending or running:
            while pending and len(running) < workers:
                index, (name, kwargs) = pending.pop(0)
                out = os.path.join(tmp, f"{index}.json")
                log = os.path.join(tmp, f"{index}.log")
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:  # child: never returns
                    _child_main(name, kwargs, out, log)
                running[pid] = (index, out, log, time.monotonic())
            time.sleep(0.005)
            for pid in list(running):
                index, out, log, started = running[pid]
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    if time.monotonic() - started > timeout:
                        os.kill(pid, signal.SIGKILL)
                        os.waitpid(pid, 0)
                        del running[pid]
                        results[index] = {"ok": False, "error": f"timed out after {timeout:.0f}s\n{_tail(log)}"}
                    continue
                del running[pid]
                results[index] = _read_result(out, log, f"exit status {status}")
    return [r if r is not None else {"ok": False, "error": "no result"} for r in results]


def _tail(path: str, limit: int = 3000) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()[-limit:]
    except OSError:
        return ""


def _read_result(out: str, log: str, how: str) -> dict[str, Any]:
    try:
        with open(out, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {"ok": False, "error": f"the job process died ({how}) without a result; its output:\n{_tail(log)}"}


def _child_main(name: str, kwargs: dict[str, Any], out: str, log: str) -> None:
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        try:
            result = {"ok": True, "value": JOBS[name](**kwargs)}
        except BaseException as exc:
            result = {"ok": False, "error": _short_error(exc, limit=12)}
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, default=str)
    finally:
        os._exit(0)


def _run_server(jobs, preimport, forbidden, workers, timeout) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="peft-ws-server-") as tmp:
        spec = Path(tmp, "jobs.json")
        out = Path(tmp, "results.json")
        spec.write_text(
            json.dumps(
                {
                    "jobs": list(jobs),
                    "preimport": list(preimport),
                    "forbidden": list(forbidden),
                    "workers": workers,
                    "timeout": timeout,
                }
            )
        )
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), "serve", str(spec), str(out)],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=timeout * max(1, len(jobs)),
        )
        if proc.returncode != 0 or not out.is_file():
            error = f"job server failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
            return [{"ok": False, "error": error} for _ in jobs]
        return json.loads(out.read_text())


def _run_spawned(jobs, workers, timeout) -> list[dict[str, Any]]:
    from concurrent.futures import ThreadPoolExecutor

    def one(item: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="peft-ws-job-") as tmp:
            spec = Path(tmp, "job.json")
            out = Path(tmp, "result.json")
            spec.write_text(json.dumps({"name": item[0], "kwargs": item[1]}))
            try:
                proc = subprocess.run(
                    [sys.executable, str(SCRIPT), "job", str(spec), str(out)],
                    env=child_env(),
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                return {"ok": False, "error": f"timed out after {timeout:.0f}s"}
            if not out.is_file():
                return {"ok": False, "error": f"job process died (exit {proc.returncode}):\n{proc.stderr[-3000:]}"}
            return json.loads(out.read_text())

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, jobs))


_LIVE: set[subprocess.Popen] = set()


def kill_running() -> None:
    """Stop check subprocesses still running (e.g. when pytest is interrupted)."""
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.kill()


def run_checks_subprocess(
    root: Path | str,
    checks: Sequence[str],
    pythonpath: Sequence[Path | str] = (),
    options: dict[str, Any] | None = None,
    timeout: float = 900,
) -> dict[str, Any]:
    """Run `checks` in a fresh interpreter (with `pythonpath` prepended); problems come back as Problem objects."""
    env = child_env(pythonpath)
    with tempfile.TemporaryDirectory(prefix="peft-ws-run-") as tmp:
        out = Path(tmp, "out.json")
        cmd = [sys.executable, str(SCRIPT), "check", "--root", str(root), "--out", str(out), "--checks", ",".join(checks)]
        if options:
            cmd += ["--options", json.dumps(options)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp)
        _LIVE.add(proc)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        finally:
            _LIVE.discard(proc)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"running the workspace checks failed (exit {proc.returncode}):\n{stdout[-3000:]}\n{stderr[-6000:]}")
        data = json.loads(out.read_text())
    data["problems"] = {k: [Problem(**p) for p in v] for k, v in data["problems"].items()}
    return data
