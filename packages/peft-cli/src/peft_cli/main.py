"""The `peft` command (click). Each command imports what it needs when it runs.

Errors: a user error (`CliError`, a peft-core `PeftError`, a missing file, a bad option) is printed as
one line, `peft <command>: error: <message>`, on stderr with exit status 1 (2 for usage errors).
`peft --traceback <command> ...` shows the full traceback instead.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Sequence

import click

from .errors import CliError

STARTED = time.perf_counter()  # before torch/transformers are imported: the demo's total includes them

USER_ERRORS: tuple[type[BaseException], ...] = (CliError, OSError)


class PeftGroup(click.Group):
    """A click group whose errors are single lines (and that remembers the command being run)."""

    active: str | None = None
    show_traceback: bool = False

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, cmd, rest = super().resolve_command(ctx, args)
        self.active = name
        return name, cmd, rest

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        prog = prog_name or "peft"
        try:
            result = super().main(args=args, prog_name=prog, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:  # --help, --version
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo(f"{prog}: aborted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            path = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else prog  # type: ignore[attr-defined]
            hint = f" (see '{path} --help')" if isinstance(exc, click.UsageError) else ""
            click.echo(f"{path}: error: {_one_line(exc.format_message())}{hint}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo(f"{prog}: interrupted", err=True)
            sys.exit(130)
        except BaseException as exc:
            if self.show_traceback or not _is_user_error(exc):
                raise
            where = f"{prog} {self.active}" if self.active else prog
            click.echo(f"{where}: error: {_one_line(str(exc)) or type(exc).__name__}", err=True)
            sys.exit(getattr(exc, "exit_code", 1))
        sys.exit(result if isinstance(result, int) else 0)


def _is_user_error(exc: BaseException) -> bool:
    if isinstance(exc, USER_ERRORS):
        return True
    try:
        from peft_core import PeftError
    except ImportError:  # pragma: no cover - peft-core is a dependency
        return False
    return isinstance(exc, PeftError)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


@click.group(cls=PeftGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="peft-cli", prog_name="peft")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the full traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, show_traceback: bool) -> None:
    """Parameter-efficient fine-tuning: installed methods, adapters, merging, a demo.

    Adapters are Hugging Face PEFT's files (adapter_config.json + adapter_model.safetensors).
    """
    group = ctx.command
    if isinstance(group, PeftGroup):
        group.show_traceback = show_traceback


@cli.command("methods")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def methods_cmd(as_json: bool) -> None:
    """List installed methods: distribution, version, prefix, entry point, problems.

    Each method package is imported on its own; an import or registration error (for example a
    parameter prefix taken by another package) is reported for that method and the exit status is 1.
    """
    from .methods import collect_methods, format_methods

    rows = collect_methods()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        click.echo(format_methods(rows))
    if any(r.problem for r in rows):
        sys.exit(1)


@cli.command("inspect")
@click.argument("adapter_dir", metavar="DIR", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
def inspect_cmd(adapter_dir: str, as_json: bool) -> int:
    """Describe the adapter saved in DIR (method, task, targets, rank, size, dtypes).

    Works without the method's package: the config is read as JSON and the weights through the
    safetensors header. Tells whether the package is installed, and how to install it if not.
    """
    from .inspect_adapter import format_adapters, inspect_adapter

    adapters = inspect_adapter(adapter_dir)
    if as_json:
        click.echo(json.dumps([a.as_dict() for a in adapters], indent=2, default=str))
    else:
        click.echo(format_adapters(adapters))
    errors = [f"{a.name}: {e}" for a in adapters for e in a.errors]
    for error in errors:
        click.echo(f"peft inspect: error: {error}", err=True)
    return 1 if errors else 0


@cli.command("merge")
@click.option("--base", required=True, type=click.Path(path_type=str), help="Local transformers model folder.")
@click.option("--adapter", required=True, type=click.Path(path_type=str), help="Adapter folder (adapter_config.json).")
@click.option("--out", required=True, type=click.Path(path_type=str), help="Folder for the merged model.")
@click.option("--max-shard-size", default="5GB", show_default=True, help="Largest safetensors shard, e.g. 500MB.")
@click.option(
    "--dtype", type=click.Choice(["auto", "float32", "float16", "bfloat16"]), default="auto", show_default=True,
    help="Load (and save) the base model in this dtype.",
)
@click.option("--safe-merge", is_flag=True, help="Refuse an adapter that would make weights NaN or inf.")
@click.option("--force", is_flag=True, help="Write into --out even if it is not empty.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
def merge_cmd(
    base: str, adapter: str, out: str, max_shard_size: str, dtype: str, safe_merge: bool, force: bool, no_progress: bool
) -> None:
    """Merge an adapter into its base model and save the full model.

    The transformers class follows the adapter's task_type (CAUSAL_LM -> AutoModelForCausalLM, ...).
    The result is a plain transformers model folder (safetensors, sharded above --max-shard-size),
    with the base folder's tokenizer files copied next to it.
    """
    from .merge import merge_adapter

    result = merge_adapter(
        base, adapter, out, max_shard_size=max_shard_size, dtype=dtype, safe_merge=safe_merge, force=force,
        progress=not no_progress,
    )
    size = result.total_bytes / 2**20
    click.echo(f"merged model ({result.model_class}) saved to {result.out}: {len(result.files)} files, {size:.1f} MiB")
    for name in result.files:
        click.echo(f"  {name}")


@cli.command("demo")
@click.option("--method", default="lora", show_default=True, help="Any installed method (see `peft methods`).")
@click.option("--steps", type=click.IntRange(min=1), default=60, show_default=True, help="Training steps.")
@click.option("--out", type=click.Path(path_type=str), default=None, help="Save the adapter here (default: a temp folder).")
@click.option("--plot", type=click.Path(path_type=str), default=None, help="Write the loss curve to this PNG file.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the base model and the batches.")
@click.option("--lr", type=float, default=None, help="Learning rate (default: the method's demo setting).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def demo_cmd(method: str, steps: int, out: str | None, plot: str | None, seed: int, lr: float | None, no_progress: bool) -> None:
    """Fine-tune a small causal LM on a built-in text, then save, reload, verify and merge.

    The model is built from a config (random weights) with a character-level vocabulary, so
    nothing is downloaded; it runs on a CPU in well under a minute.
    """
    from .demo import format_report, run_demo

    if plot is not None:  # fail before training, not after
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise CliError("--plot needs matplotlib: pip install 'peft-cli[plot]' (or: uv add 'peft-cli[plot]')") from None
    report = run_demo(
        method=method, steps=steps, out=out, seed=seed, lr=lr, progress=not no_progress, started=STARTED
    )
    click.echo(format_report(report, saved=out is not None))
    if plot is not None:
        from .plot import write_loss_plot

        path = write_loss_plot(report.losses, plot, title=f"peft demo: {report.display}, {steps} steps")
        click.echo(f"  loss curve           {path}")


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (`peft`)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="peft")


if __name__ == "__main__":  # python -m peft_cli.main
    main()
