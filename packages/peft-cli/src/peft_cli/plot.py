"""`peft demo --plot`: the loss curve as a PNG (matplotlib, the `plot` extra)."""

from __future__ import annotations

from pathlib import Path

from .errors import CliError


def write_loss_plot(losses: list[float], path: str | Path, title: str = "training loss") -> Path:
    try:
        import matplotlib
    except ImportError as exc:
        raise CliError("--plot needs matplotlib: pip install 'peft-cli[plot]' (or: uv add 'peft-cli[plot]')") from exc
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise CliError(f"--plot writes a PNG file; give a path ending in .png, not {str(path)!r}")
    if not path.parent.is_dir():
        raise CliError(f"cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    try:
        ax.plot(range(1, len(losses) + 1), losses, linewidth=1.5)
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy loss")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
