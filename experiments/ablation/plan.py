"""What the ablation trains: the variants (named quantizer overrides), the seeds, one run per pair.

Every run trains the same base codec config on the same data with the same seed schedule; only the
quantizer overrides differ. The budget is a number of optimizer steps (`train.max_steps`), with the
wall-clock budget switched off (`train.max_minutes=null`), so a slower quantizer is not starved.

Run layout (`<out>/runs/<variant>/seed<S>/`): the codec.train experiment directory (checkpoints/,
model/, losses.jsonl, train_summary.json, ...) plus

    ablation_run.json   the overrides the run was started with (a rerun with other ones is an error)
    .done.train         sentinel: training reached its step budget ({"steps": N})
    result.json         the cached evaluation (experiments.ablation.runner); removed -> recomputed

Values of the base config are never copied here: the variants list only what they change, and the
report resolves every variant's config at run time (`resolve_config`) to list the differences.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence

from codec.config import CodecConfig
from core.config import load_config, to_dict
from core.io import atomic_write_text

log = logging.getLogger("experiments.ablation")

ROOT = Path(__file__).resolve().parents[2]          # the repository
RECIPE = ROOT / "egs" / "libritts"                  # the recipe whose data, configs and run.sh the ablation uses
RunStatus = Literal["done", "trained", "partial", "missing"]
DONE_TRAIN = ".done.train"
RUN_INFO = "ablation_run.json"
RESULT = "result.json"


@dataclass(frozen=True)
class Variant:
    name: str
    title: str
    overrides: tuple[str, ...]       # dotted key=value, applied after the base config and --train-args
    why: str


# The authors' quantizer (as their fairseq code builds it): logvar starts at 0 (sigma = 1), the
# codebooks move only through the optimizer (no dead-code reset), logvar gets no reconstruction gradient
# (no sample term), the sigma^4 penalty 1e-5 summed over selected entries, codebook loss 0.25, 50 k-means
# iterations. Written out in full so the variant is the authors' whatever the base config sets.
AUTHORS_QUANTIZER: tuple[str, ...] = (
    "quantizer.kind=ndvq",
    "quantizer.logvar_init=zero",
    "quantizer.ndvq_dead_code_reset=false",
    "quantizer.sample_weight=0.0",
    "quantizer.sigma_penalty=1.0e-5",
    "quantizer.sigma_penalty_reduction=sum",
    "quantizer.codebook_weight=0.25",
    "quantizer.kmeans_iters=50",
)

VARIANTS: tuple[Variant, ...] = (
    Variant("ndvq_authors", "NDVQ as the authors built it", AUTHORS_QUANTIZER,
            "the authors' quantizer settings on this project's codec (only quantizer keys differ)"),
    Variant("ndvq", "NDVQ, this project's defaults", ("quantizer.kind=ndvq",),
            "the base config as it is; its departures from the authors are listed in the report"),
    Variant("ndvq_sample_weight", "NDVQ + sample term (logvar gets a gradient)",
            ("quantizer.kind=ndvq", "quantizer.sample_weight=0.25"),
            "project defaults plus the spec's 0.25 * mse(sample, z): log-variance gets a real gradient"),
    Variant("ndvq_mean_residual", "NDVQ, next stage's residual from the code's mean",
            ("quantizer.kind=ndvq", "quantizer.ndvq_residual=mean"),
            "project defaults, but training subtracts each code's mean as inference does (codec/config.py)"),
    Variant("rvq", "RVQ baseline (EnCodec: EMA, k-means, dead-code replacement)", ("quantizer.kind=rvq",),
            "the same codec, stages, codebook size and dead-code threshold with Euclidean EMA codebooks"),
)
VARIANT_NAMES: tuple[str, ...] = tuple(v.name for v in VARIANTS)
BASELINE = "rvq"


def variant(name: str) -> Variant:
    for v in VARIANTS:
        if v.name == name:
            return v
    raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANT_NAMES)}")


@dataclass(frozen=True)
class Run:
    variant: Variant
    seed: int
    dir: Path

    @property
    def key(self) -> str:
        return f"{self.variant.name}/seed{self.seed}"


@dataclass
class Plan:
    """Everything that defines the training runs (not their evaluation)."""
    out: Path
    codec_conf: Path
    train_manifests: tuple[str, ...]
    steps: int
    seeds: tuple[int, ...] = (0, 1, 2)
    variants: tuple[str, ...] = VARIANT_NAMES
    train_args: tuple[str, ...] = ()           # extra key=value overrides, shared by every variant
    # F0 caches (data.train_f0) for a decoder that trains on tracked F0 (codec_mini.yaml's harmonic head);
    # set by runner.prepare_f0, empty when the base config needs none or --train-args gives its own
    train_f0: tuple[str, ...] = ()
    keep_last: int = 1                         # checkpoints kept per run (only the newest is needed to resume)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"the step budget must be >= 1, got {self.steps}")
        if not self.seeds:
            raise ValueError("no seeds given")
        for name in self.variants:
            variant(name)
        if not Path(self.codec_conf).is_file():
            raise FileNotFoundError(f"codec config not found: {self.codec_conf}")

    def runs(self) -> list[Run]:
        """Every (variant, seed) run, seed-major: a partial ablation covers every variant early."""
        return [Run(variant(v), s, self.out / "runs" / v / f"seed{s}") for s in self.seeds for v in self.variants]

    def shared_overrides(self) -> list[str]:
        """Overrides every run gets (not the seed, directory or steps): data and bookkeeping only."""
        f0 = [f"data.train_f0=[{','.join(self.train_f0)}]"] if self.train_f0 else []
        return [f"data.train_manifests=[{','.join(self.train_manifests)}]", *f0,
                "data.valid_manifests=[]",          # scored by the ablation itself, not during training
                "train.eval_every=0",
                "train.max_minutes=null",           # the budget is steps, never wall time
                f"train.keep_last={self.keep_last}",
                *self.train_args]

    def run_overrides(self, run: Run) -> list[str]:
        """The full override list of one run, in the order applied (later wins)."""
        return [*self.shared_overrides(), *run.variant.overrides, f"train.seed={run.seed}",
                f"train.exp_dir={run.dir}", f"train.max_steps={self.steps}"]

    def resolve_config(self, run: Run) -> CodecConfig:
        return load_config(CodecConfig, [self.codec_conf], self.run_overrides(run))


# ------------------------------------------------------------------------------------------ run state
def run_status(run: Run, steps: int) -> RunStatus:
    """done: trained to `steps` and evaluated; trained: not evaluated; partial: started; missing."""
    done = read_done(run)
    if done is not None and done >= steps:
        return "done" if (run.dir / RESULT).is_file() else "trained"
    if (run.dir / "checkpoints").is_dir() or (run.dir / RUN_INFO).is_file():
        return "partial"
    return "missing"


def load_cached(path: Path, key_field: str, key: Optional[str] = None) -> Optional[dict]:
    """A cached JSON result (None if absent, or made with other settings: `key_field` differs from `key`)."""
    if not path.is_file():
        return None
    res = json.loads(path.read_text())
    if key is not None and res.get(key_field) != key:
        return None
    return res


def add_cost(path: Path, **deltas: float) -> dict:
    """Add `deltas` to the totals in JSON `path` (absent: zeros) and write them back; returns the totals.
    Costs are summed over the invocations that finished: a killed one's rusage is lost with it."""
    totals = json.loads(path.read_text()) if path.is_file() else {}
    totals = {**totals, **{k: totals.get(k, 0.0) + v for k, v in deltas.items()}}
    atomic_write_text(path, json.dumps(totals) + "\n")
    return totals


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    import resource
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def read_done(run: Run) -> Optional[int]:
    """Steps recorded by the training sentinel, or None."""
    path = run.dir / DONE_TRAIN
    if not path.is_file():
        return None
    try:
        return int(json.loads(path.read_text())["steps"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: malformed training sentinel ({e}); delete it to retrain") from e


def mark_trained(run: Run, steps: int) -> None:
    atomic_write_text(run.dir / DONE_TRAIN, json.dumps({"steps": steps}) + "\n")


def check_run_info(plan: Plan, run: Run) -> None:
    """Record the run's overrides; a directory started with other ones is an error, not a silent mix.

    The step budget may grow (the run resumes and trains on); it may not shrink below what was trained.
    """
    path = run.dir / RUN_INFO
    fixed = [o for o in plan.run_overrides(run) if not o.startswith("train.max_steps=")]
    info = {"variant": run.variant.name, "seed": run.seed, "codec_conf": str(plan.codec_conf), "overrides": fixed}
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("overrides") != fixed or old.get("codec_conf") != info["codec_conf"]:
            raise ValueError(f"{run.dir} was started with other settings ({path}):\n  before: {old.get('overrides')}"
                             f"\n  now:    {fixed}\nuse another --out, or delete the run directory")
    done = read_done(run)
    if done is not None and done > plan.steps:
        raise ValueError(f"{run.dir} was trained for {done} steps, more than the requested {plan.steps}: "
                         "use the same --steps or another --out")
    run.dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(info, indent=2) + "\n")


def quantizer_differences(a: CodecConfig, b: CodecConfig) -> dict[str, tuple]:
    """{quantizer key: (value in a, value in b)} where the resolved quantizer configs differ."""
    qa, qb = to_dict(a.quantizer), to_dict(b.quantizer)
    return {k: (qa[k], qb[k]) for k in qa if qa[k] != qb[k]}


def non_quantizer_differences(a: CodecConfig, b: CodecConfig, ignore: Sequence[str] = ("train",)) -> list[str]:
    """Dotted keys outside `quantizer` (and `ignore`) whose values differ: must be empty between variants."""
    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v
    fa, fb = dict(flat(to_dict(a))), dict(flat(to_dict(b)))
    skip = ("quantizer.",) + tuple(f"{i}." for i in ignore)
    return sorted(k for k in fa if not k.startswith(skip) and fa[k] != fb.get(k))
