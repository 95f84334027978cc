"""Kill processes that are saving an adapter folder, then report what the folder loads as.

Run as a script (`python save_fault_harness.py WORKDIR SEED`); prints one JSON object. One process
imports torch once and `fork()`s a child per save (torch on one thread, so forking is safe):
- "steps": a child is killed with SIGKILL just before each file event of a save (a temp file
  written, a rename, a deletion), for a save in the same format and one that switches format;
- "random": a child is killed at a random instant of its save;
- "concurrent": two children save different adapters into the same folder at once (and once with
  one of them killed part-way).
After each, both adapters of the folder (`default` at the root, `second` in its subfolder) are
loaded on a fresh base model and classified: "old" or "new" (outputs equal to one complete save),
"refused" (a PeftError naming the folder), or anything else (a failure of the test). Then a normal
save into the folder must leave no temp file behind and load as the new adapter.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import time

import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peft_toy  # noqa: E402
from core_test_models import MLP  # noqa: E402

from peft_core import PeftError, PeftModel, atomic_files, get_peft_model  # noqa: E402

torch.manual_seed(1234)
X = torch.randn(3, 8)
ADAPTERS = ("default", "second")


def build(seed: int, scaling: float) -> PeftModel:
    """Two adapters; versions differ in weights and in `scaling`, a field that changes no shape."""
    torch.manual_seed(0)
    base = MLP()
    torch.manual_seed(seed)
    config = peft_toy.ToyConfig(target_modules=["lin0", "lin1"], init_weights=False, scaling=scaling)
    model = get_peft_model(base, config)
    model.add_adapter("second", peft_toy.ToyConfig(target_modules=["lin1"], init_weights=False, scaling=scaling))
    return model.eval()


def outputs(model: PeftModel) -> dict[str, torch.Tensor]:
    out = {}
    with torch.no_grad():
        for name in ADAPTERS:
            model.set_adapter(name)
            out[name] = model(X)
    model.set_adapter("default")
    return out


def adapter_folder(folder: str, name: str) -> str:
    return folder if name == "default" else os.path.join(folder, name)


def classify(folder: str, versions: dict[str, dict[str, torch.Tensor]]) -> dict[str, str]:
    result = {}
    for name in ADAPTERS:
        path = adapter_folder(folder, name)
        torch.manual_seed(0)
        try:
            loaded = PeftModel.from_pretrained(MLP(), path)
            with torch.no_grad():
                got = loaded(X)
        except PeftError as exc:
            result[name] = "refused" if path in str(exc) else f"refused without naming the folder: {exc}"
            continue
        except Exception as exc:  # noqa: BLE001 - reported as a failure
            result[name] = f"crashed: {type(exc).__name__}: {exc}"
            continue
        hits = [v for v, outs in versions.items() if torch.equal(got, outs[name])]
        result[name] = hits[0] if hits else "a mix: outputs of no complete save"
    return result


def temp_files(folder: str) -> list[str]:
    return sorted(n for _, _, files in os.walk(folder) for n in files if n.endswith((".peft-tmp", ".tmp")))


class FileEvents:
    """Counts the file events of a save; optionally SIGKILLs the process just before event `kill_at`."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.count = 0
        self.kill_at = kill_at
        self.real = (os.replace, os.unlink, atomic_files.write_temp)

    def event(self) -> None:
        if self.kill_at is not None and self.count == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        self.count += 1

    def install(self) -> None:
        real_replace, real_unlink, real_write = self.real

        def replace(src, dst, **kw):
            self.event()
            return real_replace(src, dst, **kw)

        def unlink(path, **kw):
            self.event()
            return real_unlink(path, **kw)

        def write_temp(path, write):
            tmp = real_write(path, write)
            self.event()  # the temp file is complete
            return tmp

        os.replace, os.unlink, atomic_files.write_temp = replace, unlink, write_temp

    def uninstall(self) -> None:
        os.replace, os.unlink, atomic_files.write_temp = self.real


def in_child(run) -> int:
    """fork(); the child calls `run()` and exits; returns the child's pid."""
    pid = os.fork()
    if pid == 0:
        try:
            run()
        finally:
            os._exit(0)
    return pid


def wait(pid: int) -> str:
    _, status = os.waitpid(pid, 0)
    return "killed" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"


def main(workdir: str, seed: int) -> dict:
    rng = random.Random(seed)
    old, new, other = build(1, 1.0), build(2, 2.0), build(3, 0.5)
    versions = {"old": outputs(old), "new": outputs(new), "other": outputs(other)}
    report: dict = {"scenarios": [], "events": {}}

    def template(fmt: bool) -> str:
        path = os.path.join(workdir, f"template-{'st' if fmt else 'bin'}")
        if not os.path.isdir(path):
            old.save_pretrained(path, safe_serialization=fmt)
        return path

    def fresh_copy(label: str, old_format: bool) -> str:
        folder = os.path.join(workdir, label)
        shutil.copytree(template(old_format), folder)
        return folder

    def check_after(label: str, folder: str, allowed: tuple[str, ...], extra: dict | None = None) -> None:
        state = classify(folder, versions)
        leftovers = temp_files(folder)
        new.save_pretrained(folder)  # the next save cleans up and wins
        report["scenarios"].append(
            {
                "label": label,
                "state": state,
                "allowed": list(allowed),
                "temp_files_before_next_save": leftovers,
                "temp_files_after_next_save": temp_files(folder),
                "after_next_save": classify(folder, versions),
                **(extra or {}),
            }
        )

    # 1. kill before every file event, for a same-format save and for format switches
    for old_format, new_format in ((True, True), (True, False), (False, True)):
        counter = FileEvents()
        probe = fresh_copy(f"count-{old_format}-{new_format}", old_format)
        counter.install()
        try:
            new.save_pretrained(probe, safe_serialization=new_format)
        finally:
            counter.uninstall()
        report["events"][f"{old_format}->{new_format}"] = counter.count
        for k in range(counter.count + 1):
            folder = fresh_copy(f"step-{old_format}-{new_format}-{k}", old_format)

            def save(k=k, folder=folder, new_format=new_format) -> None:
                FileEvents(kill_at=k).install()
                new.save_pretrained(folder, safe_serialization=new_format)

            how = wait(in_child(save))
            check_after(f"kill before event {k} ({old_format}->{new_format})", folder, ("old", "new", "refused"), {"child": how})

    # 2. kill at random instants
    timing = fresh_copy("timing", True)
    start = time.perf_counter()
    for _ in range(3):
        new.save_pretrained(timing)
    duration = (time.perf_counter() - start) / 3
    report["save_seconds"] = duration
    for i in range(16):
        folder = fresh_copy(f"random-{i}", True)
        delay = rng.uniform(0, 1.5 * duration)
        pid = in_child(lambda folder=folder: new.save_pretrained(folder))
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        how = wait(pid)
        check_after(f"kill after {delay * 1000:.2f} ms", folder, ("old", "new", "refused"), {"child": how})

    # 3. two savers at once (serialised by the folder lock: always one complete save)
    for i in range(4):
        folder = fresh_copy(f"concurrent-{i}", True)
        pids = [in_child(lambda m=m, folder=folder: m.save_pretrained(folder)) for m in (new, other)]
        hows = [wait(pid) for pid in pids]
        check_after(f"two savers {i}", folder, ("new", "other"), {"children": hows, "same_save": True})
    for i in range(4):
        folder = fresh_copy(f"concurrent-killed-{i}", True)
        first = in_child(lambda folder=folder: new.save_pretrained(folder))
        second = in_child(lambda folder=folder: other.save_pretrained(folder))
        time.sleep(rng.uniform(0, duration))
        os.kill(first, signal.SIGKILL)
        hows = [wait(first), wait(second)]
        check_after(f"two savers, one killed {i}", folder, ("old", "new", "other", "refused"), {"children": hows})
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
