"""The whole job at growing pool sizes: seconds and peak memory per stage, and how each grows.

Usage: python bench/scale.py [--sizes 10000,100000,1000000] [--encoder auto|real|tiny]
                            [--real-up-to 10000] [--stages raw_dataset,...] [--home DIR] [--extra "..."]

For each size N it writes a JSONL source of N rows (Natural Instructions has 193,250 real rows;
beyond that, real rows again with one input word dropped and a variant number appended, so every
row is distinct and looks like its original), then runs the main job's stages one at a time, each
in its own process (`dg.materialize` of that asset, its inputs read back from the project folder,
the same path as a run that materializes a selection in the UI). Per stage it prints the seconds of
the stage's run (without starting Python and importing the libraries) and the process's peak RSS
(`wait4`: everything the stage held, including about 0.5 GB of imported libraries), and between
consecutive sizes the growth exponent b in t ~ N^b.

Encoding a million rows with the real encoder takes hours on a CPU, so above `--real-up-to` rows
(`--encoder auto`) the `embeddings` stage uses a tiny randomly initialised encoder with the same
interface (the packaged all-MiniLM-L6-v2 tokenizer, one transformer layer of width 32 over at most 32
word pieces, a linear map to 384 dimensions; its vectors mean nothing but have the same shape), and
the table says so. The real
encoder's throughput: `python bench/embedding_throughput.py`.

No LM fine-tunes (`--no-lm-eval`): evaluation_metrics is its model-free report. Every size runs in
its own project folder under --home, which keeps the generated sources and the encoder; rerunning a
size starts that size's project folder afresh (with `--keep`, it runs only `--stages` on the stored
inputs, e.g. to remeasure clustering at 1M rows without embedding again).
"""

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shed_pipeline.asset_names import ASSET_NAMES  # noqa: E402

STAGES = list(ASSET_NAMES)
TINY_ENCODER = "tiny_encoder_w32"
TINY_WIDTH, TINY_MAX_TOKENS = 32, 32  # the real encoder: width 384, six layers, 256 word pieces


def write_source(n: int, path: Path) -> None:
    """N rows as JSONL: real Natural Instructions rows, then perturbed copies of them."""
    import numpy as np
    import polars as pl

    from shed_pipeline.core.sources import natural_instructions_parquet
    from shed_pipeline.settings import Settings

    settings = Settings.from_env()
    extracted = natural_instructions_parquet(settings.downloads, archive=settings.bigbench_archive)
    real = pl.read_parquet(extracted).select("task", "instruction", "input", "output")
    rng = np.random.default_rng(0)
    order = rng.permutation(real.height)
    rows = real[order[: min(n, real.height)]].to_dicts()
    variant = 1
    while len(rows) < n:
        for i in order[: n - len(rows)]:
            r = dict(real.row(int(i), named=True))
            words = r["input"].split(" ")
            if len(words) > 3:
                del words[int(rng.integers(len(words)))]
            r["input"] = " ".join(words) + f" [{variant}]"
            rows.append(r)
        variant += 1
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    tmp.replace(path)


def write_tiny_encoder(path: Path) -> None:
    """A stand-in encoder with random weights (seeded): the packaged tokenizer, one transformer layer
    of width 32, then a linear map to 384 dimensions, normalised: the real encoder's interface and
    output shape at a small fraction of its cost per text."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    try:  # sentence-transformers >= 6 moved the modules here
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models

    from shed_pipeline.core.embedding import DEFAULT_MODEL, resolve_model_path

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(resolve_model_path(DEFAULT_MODEL))
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=TINY_WIDTH,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=TINY_WIDTH,
        max_position_embeddings=512,
    )
    bert_dir = path / "bert"
    BertModel(cfg).save_pretrained(bert_dir)
    tok.save_pretrained(bert_dir)
    word = models.Transformer(str(bert_dir), max_seq_length=TINY_MAX_TOKENS)
    dense = models.Dense(TINY_WIDTH, 384, activation_function=torch.nn.Identity())
    SentenceTransformer(modules=[word, models.Pooling(TINY_WIDTH, "mean"), dense, models.Normalize()]).save(str(path))


def child(a) -> None:
    """One stage of one size, in this process (the parent measures it)."""
    import dagster as dg

    from shed_pipeline.assets import ALL_ASSETS
    from shed_pipeline.cli import build_parser, run_config_from_args
    from shed_pipeline.resources import resources_for
    from shed_pipeline.settings import Settings

    argv = (
        ["run", "--source", a.source, "--no-lm-eval", "--seed", "0"]
        + (["--set", f"embeddings.model={a.encoder_path}"] if a.encoder_path else [])
        + shlex.split(a.extra)
    )
    config = run_config_from_args(build_parser().parse_args(argv))
    config = {"ops": {k: v for k, v in config["ops"].items() if k == a.child}}
    t0 = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        dg.materialize(
            ALL_ASSETS,
            selection=[a.child],
            resources=resources_for(Settings.from_env()),
            run_config=config,
            instance=instance,
        )
    Path(a.result).write_text(json.dumps({"seconds": time.perf_counter() - t0}))


def run_stage(
    stage: str, n: int, source: Path, encoder: str | None, project: Path, extra: str, log_path: Path
) -> tuple[float, float, bool]:
    """(seconds, peak RSS in GiB, ok) of one stage in a child process. The seconds are the stage's
    run inside the process (without the ~10 s of starting Python and importing the libraries)."""
    env = {
        **os.environ,
        "SHED_PIPELINE_HOME": str(project),
        "DAGSTER_HOME": str(project / "dagster_home"),
        "PYTHONUNBUFFERED": "1",
    }
    (project / "dagster_home").mkdir(parents=True, exist_ok=True)
    result = project / f"{stage}.result.json"
    result.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        __file__,
        "--child",
        stage,
        "--source",
        str(source),
        f"--extra={extra}",
        "--result",
        str(result),
    ] + (["--encoder-path", encoder] if encoder else [])
    with log_path.open("a") as log:
        log.write(f"\n=== {stage}, {n} rows ===\n")
        log.flush()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    peak_gib = usage.ru_maxrss / 1024**2  # Linux: KiB
    ok = proc.returncode == 0 and result.exists()
    return (json.loads(result.read_text())["seconds"] if ok else 0.0), peak_gib, ok


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--encoder", choices=["auto", "real", "tiny"], default="auto")
    ap.add_argument(
        "--real-up-to",
        type=int,
        default=10_000,
        help="--encoder auto: the real encoder up to this many rows, the tiny one above",
    )
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument(
        "--home", help="folder for sources, the tiny encoder and one project per size (default: a new temporary one)"
    )
    ap.add_argument("--extra", default="", help="more `shed-pipeline run` arguments, e.g. '--clusters 5000'")
    ap.add_argument(
        "--keep",
        action="store_true",
        help=(
            "keep each size's project folder and run only --stages on it (their inputs are the stored ones), e.g. to "
            "remeasure one stage"
        ),
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    ap.add_argument("--encoder-path", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a)
        return
    home = Path(a.home or tempfile.mkdtemp(prefix="shed_scale_")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in a.sizes.split(",")]
    stages = a.stages.split(",")
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        sys.exit(f"unknown stage(s) {', '.join(unknown)}; the stages are {', '.join(STAGES)}")
    log_path = home / "scale.log"
    results: dict[int, dict[str, tuple[float, float, bool]]] = {}
    encoders: dict[int, str] = {}
    for n in sizes:
        source = home / f"source_{n}.jsonl"
        if not source.exists():
            t0 = time.perf_counter()
            write_source(n, source)
            print(f"{n} rows: source written in {time.perf_counter() - t0:.0f}s ({source})", flush=True)
        tiny = a.encoder == "tiny" or (a.encoder == "auto" and n > a.real_up_to)
        encoder = None
        if tiny:
            encoder = str(home / TINY_ENCODER)
            if not Path(encoder).exists():
                write_tiny_encoder(Path(encoder))
        encoders[n] = "tiny (random weights)" if tiny else "all-MiniLM-L6-v2"
        project = home / f"project_{n}"
        if not a.keep:
            shutil.rmtree(project, ignore_errors=True)
        results[n] = {}
        for stage in stages:
            secs, peak, ok = run_stage(stage, n, source, encoder, project, a.extra, log_path)
            results[n][stage] = (secs, peak, ok)
            print(
                f"{n} rows, {stage}: {secs:.1f}s, peak RSS {peak:.2f} "
                f"GiB{'' if ok else ' FAILED (see ' + str(log_path) + ')'}",
                flush=True,
            )
            if not ok:
                break

    print(
        f"\nscale: {os.cpu_count()} CPUs ({platform.machine()}), load {os.getloadavg()[0]:.1f}; seconds (peak RSS "
        "GiB) per stage; b = growth exponent to the previous size"
    )
    print("encoder: " + ", ".join(f"{n} rows {e}" for n, e in encoders.items()))
    header = f"{'stage':<22}" + "".join(f"{n:>22,}" for n in sizes)
    print(header)
    for stage in stages + ["total"]:
        cells = []
        for j, n in enumerate(sizes):
            r = results.get(n, {})
            if stage == "total":
                got = [v for v in r.values() if v[2]]
                cell = (
                    (sum(v[0] for v in got), max((v[1] for v in got), default=0.0), len(got) == len(stages))
                    if got
                    else None
                )
            else:
                cell = r.get(stage)
            if cell is None:
                cells.append(f"{'-':>22}")
                continue
            text = f"{cell[0]:.1f}s ({cell[1]:.2f})" if cell[2] else "failed"
            prev = results.get(sizes[j - 1], {}).get(stage) if j and stage != "total" else None
            if prev and prev[2] and cell[2] and prev[0] > 0:
                text += f" b={math.log(cell[0] / prev[0]) / math.log(n / sizes[j - 1]):.2f}"
            cells.append(f"{text:>22}")
        print(f"{stage:<22}" + "".join(cells))


if __name__ == "__main__":
    main()
