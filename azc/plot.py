"""`azc plot`: fitness over individuals from a run's log (needs matplotlib: azc[plot])."""

from __future__ import annotations

import json
from pathlib import Path

from azc.errors import AzcError


def read_log(run_dir: str | Path) -> list[dict]:
    """The records of a run's log.jsonl."""
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        raise AzcError(f"no log in {run_dir}: {path} does not exist")
    records = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise AzcError(f"{path}:{n}: not a JSON line") from None
    return records


def plot_run(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Draw best and mean fitness per experiment over individuals; the PNG's path."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise AzcError("azc plot needs matplotlib: pip install 'azc[plot]'") from None
    records = [r for r in read_log(run_dir) if r.get("event") == "progress"]
    if not records:
        raise AzcError(f"the log in {run_dir} holds no progress records yet")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    experiments = sorted({r["experiment"] for r in records})
    for e in experiments:
        rs = [r for r in records if r["experiment"] == e]
        x = [r["individuals"] for r in rs]
        label = f"experiment {e}" if len(experiments) > 1 else ""
        line, = ax.plot(x, [r["best"] for r in rs], label=f"best {label}".strip())
        ax.plot(x, [r["mean"] for r in rs], color=line.get_color(), alpha=0.4, linestyle="--",
                label=f"mean {label}".strip())
    ax.set_xlabel("individuals")
    ax.set_ylabel("search fitness")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(f"azc: {Path(run_dir).name}")
    out = Path(output) if output else Path(run_dir) / "fitness.png"
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
