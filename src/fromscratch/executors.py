"""Where corpus-sized work runs: one YAML key picks a datatrove executor (local, Slurm or Ray).

The data and tokenize stages describe their work as datatrove pipelines over file shards; this module only
turns `ExecutorArguments` into the executor that runs them. Every executor writes a completion marker per task
under its logging folder, so a rerun after a kill redoes only the tasks that had not finished.
"""

from __future__ import annotations

import functools
import os
import shlex
import sys
from dataclasses import dataclass, field

from fromscratch.config import UserError

EXECUTORS = ("local", "slurm", "ray")


@dataclass
class ExecutorArguments:
    executor: str = field(default="local", metadata={"help": "local | slurm | ray: where the pipeline's tasks run"})
    tasks: int | None = field(default=None, metadata={
        "help": "tasks the work is split into (a killed task is redone whole: prefer many small ones); "
                "null = one per input file, at most 4x the workers"})
    workers: int | None = field(default=None, metadata={
        "help": "tasks running at once (local, ray); null = the cores of this machine"})
    slurm_partition: str | None = field(default=None, metadata={"help": "Slurm partition (executor: slurm)"})
    slurm_time: str = field(default="04:00:00", metadata={"help": "Slurm time limit per job array element"})
    slurm_cpus_per_task: int = field(default=1, metadata={"help": "CPUs per Slurm task"})
    slurm_mem_per_cpu_gb: int = field(default=2, metadata={"help": "memory per CPU in GB (Slurm and Ray)"})
    slurm_qos: str = field(default="normal", metadata={"help": "Slurm quality of service"})
    slurm_env_command: str | None = field(default=None, metadata={
        "help": "shell line run before each Slurm task, e.g. `module load python`; null = put this interpreter's "
                "bin folder first on PATH (the submitting environment is exported as is)"})


def check(args: ExecutorArguments) -> None:
    """Fail at start, in one line, on a setting no executor can run."""
    if args.executor not in EXECUTORS:
        raise UserError(f"executor: must be one of {', '.join(EXECUTORS)}, got {args.executor!r}")
    if args.tasks is not None and args.tasks < 1:
        raise UserError(f"tasks must be >= 1, got {args.tasks}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"workers must be >= 1, got {args.workers}")
    if args.executor == "slurm" and not args.slurm_partition:
        raise UserError("executor: slurm needs slurm_partition")
    if args.executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("executor: ray needs the ray package (pip install 'ray==2.60.0')") from None


def tasks_for(sizes: list[int], share: int, workers: int) -> int:
    """Tasks when `tasks: null`, from the units' sizes in bytes: at least 4 per worker (many tiny files pay a
    task's fixed cost once per task, not per file), and enough that no task's share is much above `share` (a
    data-stage task holds its train share in memory to shuffle it), never more than there are units."""
    return max(1, min(len(sizes), max(4 * workers, -(-sum(sizes) // max(1, share)))))


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _library_dirs_once() -> None:
    """datatrove adds three loguru sinks per task, and loguru works out the interpreter's library folders for each
    (36 sysconfig.get_path calls: 4 ms a sink, over half of a task's fixed cost, measured). They do not change
    within a run: work them out once, before the tasks fork. Skipped if loguru's internals move."""
    try:
        from loguru._better_exceptions import ExceptionFormatter

        if not hasattr(ExceptionFormatter._get_lib_dirs, "cache_info"):
            ExceptionFormatter._get_lib_dirs = staticmethod(functools.lru_cache(1)(ExceptionFormatter._get_lib_dirs))
    except (ImportError, AttributeError):
        pass


def _this_interpreter() -> str:
    """The tasks run datatrove's `launch_pickled_pipeline` script, which lives beside this interpreter: sbatch exports
    the environment, but a venv used by its path (`.venv/bin/python run.py`, never activated) is not on its PATH."""
    return f"export PATH={shlex.quote(os.path.dirname(sys.executable))}:$PATH"


def build(pipeline: list, args: ExecutorArguments, logging_dir: str, *, name: str, tasks: int | None = None,
          depends=None):
    """The datatrove executor for `pipeline` with `tasks` tasks (default: args.tasks, else the workers).

    `depends` chains stages (a Slurm job waits for the previous array; locally the previous stage runs first).
    """
    tasks = tasks or args.tasks or args.workers or default_workers()
    workers = min(args.workers or default_workers(), tasks)
    if args.executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        _library_dirs_once()
        # fork, not forkserver: steps hold our own objects, and forking keeps start-up to milliseconds per task
        return LocalPipelineExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir,
                                     depends=depends, skip_completed=True, start_method="fork")
    if args.executor == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        # requeue on SIGUSR1, which Slurm sends to the tasks 120 s before the time limit (`--signal`; datatrove does
        # not ask for it itself); `--requeue` requeues a preempted or failed job; finished tasks are kept
        return SlurmPipelineExecutor(
            pipeline, tasks=tasks, time=args.slurm_time, partition=args.slurm_partition,
            cpus_per_task=args.slurm_cpus_per_task, mem_per_cpu_gb=args.slurm_mem_per_cpu_gb, qos=args.slurm_qos,
            job_name=f"fromscratch-{name}", env_command=args.slurm_env_command or _this_interpreter(),
            logging_dir=logging_dir,
            depends=depends, skip_completed=True, requeue_signals=("SIGUSR1",), requeue=True,
            sbatch_args={"signal": "USR1@120"}, workers=args.workers or -1)
    from datatrove.executor import RayPipelineExecutor

    return RayPipelineExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir, depends=depends,
                               skip_completed=True, cpus_per_task=1, mem_per_cpu_gb=args.slurm_mem_per_cpu_gb)


def run_chain(stages: list[tuple[str, list, int]], args: ExecutorArguments, logging_root: str,
              checks: dict | None = None) -> None:
    """Run pipelines one after the other, each (name, steps, tasks), logging under `logging_root/<name>`.

    Local and Ray run here, stage by stage: a failed task raises, `checks[name]()` (if given) runs in this
    process once stage `name` has finished (a one-line UserError there stops the chain), and a rerun with the
    same logging folder skips the tasks that had finished. Slurm submits job arrays chained by dependencies.
    """
    if args.executor == "ray":
        import ray

        if not ray.is_initialized():
            ray.init(ignore_reinit_error=True, log_to_driver=False)  # RAY_ADDRESS joins a running cluster
    previous = None
    for name, steps, tasks in stages:
        ex = build(steps, args, f"{logging_root}/{name}", name=name, tasks=tasks,
                   depends=previous if args.executor == "slurm" else None)
        if args.executor == "slurm":
            previous = ex
            continue
        ex.run()
        if ex.get_incomplete_ranks(skip_completed=True):
            raise RuntimeError(f"stage {name}: tasks {ex.get_incomplete_ranks(skip_completed=True)[:10]} did not "
                               f"finish (logs in {logging_root}/{name}); rerun with --resume true")
        if checks and name in checks:
            checks[name]()
    if args.executor == "slurm":
        previous.run()
