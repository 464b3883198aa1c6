"""Train a method on a protocol (or find its finished run) and run the per-run notebooks into its folder (papermill).

A method run is runs/<protocol>/<method>/<stamp>-<preset>-s<seed>/; the executed notebooks go to its
notebooks/ folder with a manifest (parameters, status, timings, git commit), and a notebook already
done with the same parameters is skipped (an interrupted sweep resumes). --all-synthetic runs every
synthetic protocol for every method (muva, clipreid, pivl), --ablations every ablation of
muva_lib.config.ABLATIONS on one protocol (default synth-a->synth-b) beside the recipes it changes;
then 06_results once over all runs of the preset (runs/_results/<preset>/); --all-synthetic also writes
the sweep's tables and seed figures to figures/sweep/ (--figures DIR). --jobs N runs N trainings
side by side, each in its own process with its log under runs/_logs/ (the shared inputs, data, VGE
and parsing stores, are written first, by this process). key=value overrides change the config.

--inits NAME ... trains every job once per weights origin (synth: the shipped pretrained CLIP, random: random
init, leakage: the leakage control's second pretraining, see muva_lib.sweep); --leakage adds the leakage control
(synth-a->synth-b x every method from those weights). A sweep (--all-synthetic / --ablations / --leakage) copies
each finished run's small files into the committed records (figures/sweep/records/), skips a job its records
already hold (when it trains only: --notebooks with nothing after it), and writes its tables from the records;
--tables-only records the finished runs of the plan found under runs/ and rewrites the tables, training nothing.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Job:
    """One run to make: protocol, method, seed and its own overrides (an ablation's, with ``variant=``)."""

    protocol: str
    method: str
    seed: int
    overrides: tuple[str, ...] = ()

    @property
    def variant(self) -> str:
        return next((o.split("=", 1)[1] for o in self.overrides if o.startswith("variant=")), "")

    @property
    def init(self) -> str:
        """The ``--inits`` name of this job's weights ("" when it keeps the preset's own)."""
        from ..sweep import INITS

        value = next((o.split("=", 1)[1] for o in self.overrides if o.startswith("model.pretrained=")), None)
        return "" if value is None else next((k for k, v in INITS.items() if v == value), value)

    def title(self, preset: str) -> str:
        extra = f" / {self.variant}" if self.variant else ""
        init = f" / {self.init} init" if self.init else ""
        return f"{self.protocol} / {self.method}{extra}{init} / {preset} / seed {self.seed}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..runs import RUN_NOTEBOOKS

    parser.add_argument("--protocol", default=None,
                        help="protocol name, quoted in a shell: e.g. 'ma->d' or 'synth-a->synth-b'")
    parser.add_argument("--method", default="muva",
                        help="muva | clipreid | pivl, or several comma-separated (muva,clipreid; default muva)")
    parser.add_argument("--preset", default="smoke", help="smoke | paper (default smoke)")
    parser.add_argument("--seeds", nargs="+", default=["0"], help="seeds, one run each (default 0)")
    parser.add_argument("--notebooks", nargs="*", default=[s[:2] for s in RUN_NOTEBOOKS],
                        help="notebooks to execute per run (default 03 04 05; none: train only; "
                             "06 runs once at the end). A sweep skips its recorded jobs only when it trains only "
                             "(--notebooks with nothing after it): per-run notebooks need the run itself")
    parser.add_argument("--all-synthetic", action="store_true",
                        help="every synthetic protocol x every method, then 06_results")
    parser.add_argument("--ablations", action="store_true",
                        help="every ablation (muva_lib.config.ABLATIONS) on --protocol (default synth-a->synth-b) "
                             "and the recipes they change, then 06_results")
    parser.add_argument("--inits", nargs="+", default=[], metavar="INIT",
                        help="train each job from these weights: synth (shipped pretrained), random, leakage "
                             "(default: the preset's own)")
    parser.add_argument("--leakage", action="store_true",
                        help="add the leakage control: synth-a->synth-b x every method from the pretraining "
                             "without synth-b's style (muva_lib.sweep)")
    parser.add_argument("--tables-only", action="store_true",
                        help="train nothing: record the plan's finished runs found under runs/ and rewrite the "
                             "sweep's tables and figures from the records")
    parser.add_argument("--jobs", type=int, default=1,
                        help="trainings side by side, one process each (default 1; smoke runs use one thread each)")
    parser.add_argument("--prepare-only", action="store_true",
                        help="check and inject the parameters, write the notebooks, run nothing")
    parser.add_argument("--force", action="store_true", help="re-execute notebooks already done")
    parser.add_argument("--figures", default="", metavar="DIR",
                        help="where --all-synthetic writes the sweep's tables (md, tex) and seed figures "
                             "(default figures/sweep/, under $MUVA_FIGURES; 'none': not written); other runs "
                             "write them only when DIR is given (e.g. the quick start's seed spread)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def plan_jobs(protocol: str | None, method: str, seeds: list[int], all_synthetic: bool = False,
              ablations: bool = False, inits: list[str] | None = None, leakage: bool = False) -> list[Job]:
    """The runs a ``run`` call makes, seed by seed (a sweep cut short holds whole seeds): the main
    sweep (every synthetic protocol x every method, once per init of ``inits``), the ablations on
    ``protocol`` with the recipes they change (from the first init's weights) and the leakage control
    (:data:`muva_lib.sweep.LEAKAGE_PROTOCOL` x every method from the leakage weights); without any of them,
    ``protocol`` / ``method`` per init. ``inits``: names of :data:`muva_lib.sweep.INITS` (none: the
    preset's own weights). Duplicates are dropped."""
    from ..config import ABLATIONS, ablation_overrides
    from ..data.protocols import synthetic_protocols
    from ..runs import SWEEP_METHODS
    from ..sweep import LEAKAGE_PROTOCOL, init_override

    init_sets = [(init_override(i),) for i in inits] if inits else [()]
    if not (all_synthetic or ablations or leakage):
        if not protocol:
            raise ValueError("give --protocol (and --method), --all-synthetic, --ablations or --leakage")
        methods = [m.strip() for m in method.split(",") if m.strip()]
        return [Job(protocol, m, s, i) for s in seeds for i in init_sets for m in methods]
    target = protocol or "synth-a->synth-b"
    jobs: list[Job] = []
    for seed in seeds:
        if all_synthetic:
            jobs += [Job(p, m, seed, i) for i in init_sets for p in synthetic_protocols() for m in SWEEP_METHODS]
        if leakage:
            jobs += [Job(LEAKAGE_PROTOCOL, m, seed, (init_override("leakage"),)) for m in SWEEP_METHODS]
        if ablations:
            first = init_sets[0]
            bases = dict.fromkeys(a.method for a in ABLATIONS.values())
            jobs += [Job(target, m, seed, first) for m in bases]
            jobs += [Job(target, a.method, seed, (*first, *ablation_overrides(name)))
                     for name, a in ABLATIONS.items()]
    return list(dict.fromkeys(jobs))


def _cfg(job: Job, preset: str, overrides: list[str]):  # noqa: ANN202 (RunCfg; config imported lazily)
    from ..config import resolve

    return resolve(job.method, preset, job.protocol, job.seed, [*overrides, *job.overrides])


def _record(jobs: list[Job], preset: str, overrides: list[str]) -> tuple[list[Job], int]:
    """Record every job whose finished run is under runs/ and not yet in the records; the jobs still to
    make (no record) and the number of records written."""
    from ..runs import find_run
    from ..sweep import find_record, record_run

    todo, written = [], 0
    for job in jobs:
        cfg = _cfg(job, preset, overrides)
        if find_record(cfg) is not None:
            continue
        run = find_run(cfg)
        if run is None:
            todo.append(job)
            continue
        record_run(run)
        written += 1
    return todo, written


def _log_path(job: Job, preset: str) -> Path:
    from ..paths import runs_root, slug

    variant = f"-{job.variant}" if job.variant else ""
    init = f"-{job.init}" if job.init else ""
    return runs_root() / "_logs" / f"{slug(job.protocol)}-{job.method}{variant}{init}-{preset}-s{job.seed}.log"


def _subprocess(job: Job, args: argparse.Namespace, stems: list[str], overrides: list[str]) -> tuple[int, float, Path]:
    """Run one job as ``python -m muva_lib run ...`` with its output in its log file."""
    cmd = [sys.executable, "-m", "muva_lib", "run", *overrides, *job.overrides, "--protocol", job.protocol,
           "--method", job.method, "--preset", args.preset, "--seeds", str(job.seed), "--device", args.device,
           *(["--force"] if args.force else []), "--notebooks", *stems]
    log = _log_path(job, args.preset)
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode
    return rc, time.perf_counter() - start, log


def _run_parallel(jobs: list[Job], args: argparse.Namespace, stems: list[str], overrides: list[str]) -> int:
    """Shared inputs first (this process), then ``args.jobs`` runs at a time; the number that failed."""
    from ..runs import prepare_inputs

    seen = set()
    for job in jobs:
        cfg = _cfg(job, args.preset, overrides)
        key = (cfg.data.protocol, cfg.model.num_parts > 0, cfg.vge,
               cfg.stage1.part_epochs > 0 or cfg.stage2.w_fusion > 0)
        if repr(key) not in seen:
            seen.add(repr(key))
            print(f"-- inputs of {job.title(args.preset)}", flush=True)
            prepare_inputs(cfg)
    failed = 0
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(_subprocess, job, args, stems, overrides): job for job in jobs}
        for i, fut in enumerate(as_completed(futures), 1):
            job = futures[fut]
            rc, seconds, log = fut.result()
            failed += rc != 0
            if rc == 0 and args.sweep:
                _record([job], args.preset, overrides)
            status = "done" if rc == 0 else f"FAILED (exit {rc})"
            print(f"[{i}/{len(jobs)}] {job.title(args.preset)}: {status} in {seconds:.0f} s, log {log}", flush=True)
    return failed


def _write_sweep(args: argparse.Namespace, failed: int) -> None:
    """The sweep's step after its runs: its tables and seed figures into ``--figures`` (default
    figures/sweep/), from every finished run of the preset; not when a run failed (a partial sweep
    must not replace the committed one)."""
    from ..runs import sweep_dir, write_sweep
    from ..sweep import write_tables

    if args.figures == "none" or args.prepare_only:
        return
    out = Path(args.figures) if args.figures else sweep_dir()
    if failed:
        print(f"== {out}/ not rewritten: {failed} run(s) failed", flush=True)
        return
    paths = write_tables(args.preset, out) if args.sweep else write_sweep(args.preset, out)
    print(f"== sweep tables and figures -> {out}/ ({', '.join(sorted({p.name for p in paths}))})", flush=True)


def run(args: argparse.Namespace) -> int:
    """Bad arguments, config, data and missing runs propagate to ``python -m muva_lib`` (one line, exit 2);
    a failed notebook: exit 1."""
    from ..runs import RESULTS_NOTEBOOK, NotebookError, notebook_stem, run_method, run_results

    # key=value items right after --seeds / --notebooks belong to the overrides
    overrides = [a for a in (*args.seeds, *args.notebooks) if "=" in a] + list(args.overrides)
    bad = [s for s in args.seeds if "=" not in s and not s.lstrip("-").isdigit()]
    if bad:
        raise ValueError(f"--seeds {' '.join(bad)}: seeds are integers")
    seeds = [int(s) for s in args.seeds if "=" not in s]
    jobs = plan_jobs(args.protocol, args.method, seeds, args.all_synthetic, args.ablations, args.inits,
                     args.leakage)
    stems = [notebook_stem(n) for n in args.notebooks if "=" not in n]
    if args.jobs < 1:
        raise ValueError(f"--jobs {args.jobs}: give 1 or more")
    # a sweep keeps records: finished runs are recorded, recorded jobs skipped (unless notebooks run per run)
    args.sweep = args.all_synthetic or args.ablations or args.leakage
    results = (args.all_synthetic or args.ablations or RESULTS_NOTEBOOK in stems) and not args.tables_only
    per_run = [s for s in stems if s != RESULTS_NOTEBOOK]
    plan = jobs
    if args.sweep and not args.prepare_only:
        planned = len(jobs)
        todo, written = _record(jobs, args.preset, overrides)
        print(f"== records: {written} written now, {planned - len(todo)} of {planned} planned runs recorded",
              flush=True)
        if not per_run:
            jobs = todo
    if args.tables_only:
        if not args.sweep:
            raise ValueError("--tables-only rewrites a sweep's tables: give --all-synthetic, --ablations or --leakage")
        _write_sweep(args, 0)
        return 0
    failed = 0
    try:
        if args.jobs > 1 and not args.prepare_only:
            failed = _run_parallel(jobs, args, per_run, overrides)
        else:
            for job in jobs:
                print(f"== {job.title(args.preset)}", flush=True)
                run_dir, records = run_method(job.protocol, job.method, args.preset, job.seed, notebooks=per_run,
                                              overrides=[*overrides, *job.overrides], device=args.device,
                                              force=args.force, prepare_only=args.prepare_only)
                print(f"  run folder: {run_dir.root if run_dir is not None else '(none yet: notebooks prepared only)'}")
                if args.sweep and run_dir is not None:
                    _record([job], args.preset, overrides)
                for rec in records:
                    print(f"  {rec.notebook:<20} {rec.status:<8} {rec.seconds:6.0f} s  {rec.output}", flush=True)
        if args.sweep or args.figures not in ("", "none"):
            _write_sweep(args, failed)
        if results:
            first = plan[0]
            rec = run_results(args.preset, first.protocol, first.method, seeds[0], args.device,
                              prepare_only=args.prepare_only)
            print(f"== {RESULTS_NOTEBOOK}: {rec.status} in {rec.seconds:.0f} s -> {rec.output}")
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if failed:
        print(f"error: {failed} of {len(jobs)} runs failed; see their logs under runs/_logs/", file=sys.stderr)
        return 1
    return 0
