"""What every Beam main shares: its errors, logging, flags, the local runner and one ``run_pipeline``.

``preprocess`` and ``label_clips`` both parse their absl flags with
``parse_known_flags`` (Beam's options pass through untouched), default to a
local multi-processing run, and call ``run_pipeline``, which builds the graph,
runs it (with a live progress report when local) and says what happened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, TestOptions
from apache_beam.runners.runner import PipelineResult

from beam_jobs import dask_runner
from beam_jobs.progress import ProgressReporter
from beam_jobs.rejections import NAMESPACE


class JobError(Exception):
    """A problem found before any work starts (bad input paths, output exists): the command is wrong."""

    exit_status = 2


class UnusableDataError(JobError):
    """The job ran, but its data cannot train a model (``metadata.incomplete.json`` was written)."""

    exit_status = 1


LOCAL_RUNNERS = ("DirectRunner", "direct", "FnApiRunner")
# Without --runner, jobs run locally on every core.
DEFAULT_RUNNER_ARGS = ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0"]


def configure_logging() -> None:
    """INFO for the job's own messages; Beam's per-stage and per-worker chatter kept to warnings."""
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    # Worker messages are relayed through the job service; keep only errors.
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)


def parse_known_flags(argv: list[str]) -> list[str]:
    """absl flags parser for Beam mains: parses ours, leaves every other flag for Beam."""
    from absl import flags

    return flags.FLAGS(argv, known_only=True)


def with_default_runner(beam_args: Sequence[str]) -> list[str]:
    """``beam_args``, with the local multi-processing runner when no ``--runner`` is given."""
    beam_args = list(beam_args)
    if not any(a.startswith("--runner") for a in beam_args):
        beam_args = DEFAULT_RUNNER_ARGS + beam_args
    return beam_args


def is_dry_run(options: PipelineOptions) -> bool:
    """Beam's own ``--dry_run`` (TestOptions): build the graph, submit nothing."""
    value = options.view_as(TestOptions).dry_run
    return str(value).lower() in ("true", "1", "yes")


def is_local(options: PipelineOptions) -> bool:
    return options.view_as(StandardOptions).runner in LOCAL_RUNNERS


def local_runner(options: PipelineOptions):
    """The runner for a local run, or None to let Beam create the one asked for.

    Beam 2.77's DirectRunner first tries the Prism runner, which downloads a
    Go binary at run time (offline it fails and prints an error) and ignores
    ``--direct_num_workers``. The FnApiRunner it falls back to is what honours
    ``--direct_running_mode=multi_processing``, so a local run uses it directly,
    set up exactly as the DirectRunner does (pinned by
    ``tests/beam_jobs/test_runner.py``, which fails on a Beam upgrade that
    moves these internals).
    """
    if not is_local(options):
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return fn_runner.FnApiRunner(provision_info=provision)


def pipeline_runner(options: PipelineOptions):
    """The runner ``--runner`` asks for, or None to let Beam create it (Dataflow and the rest).

    Local runs get ``local_runner``; ``--runner=DaskRunner`` (any spelling in
    ``dask_runner.NAMES``) gets ``dask_runner.PortableDaskRunner``, which closes
    the gaps of Beam 2.77's own DaskRunner (see that module).

    Raises:
      JobError: the Dask runner is asked for and ``dask.distributed`` is not installed.
    """
    if dask_runner.is_dask(options):
        import importlib.util

        if importlib.util.find_spec("distributed") is None:
            raise JobError("--runner=DaskRunner needs dask.distributed: pip install 'voicegender[dask]'")
        return dask_runner.PortableDaskRunner()
    return local_runner(options)


def reports_progress(options: PipelineOptions) -> bool:
    """Whether the run's workers share this machine's disk: local runs, and Dask's local cluster."""
    return is_local(options) or (dask_runner.is_dask(options) and dask_runner.client_address(options) is None)


# glibc malloc settings of a local run's processes (see tune_malloc): the variable each process
# reads when it starts, mallopt's parameter number (malloc.h), the value. The thresholds sit above a
# log_mel clip's arrays (a 10 s clip decoded at 48 kHz is 1.9 MB; with 256 KiB each of them was mapped,
# faulted in and unmapped again, which made the numpy front end's FFT 4x slower; stft_seed's spectra,
# ~5 MB, are still mapped) and below the runner's largest buffers (50 MB in a one-pass 50k-clip run, 6
# MB or more at a 12,500-clip window's 2 workers), which are then mapped on their own and returned.
MALLOC_SETTINGS = (
    ("MALLOC_ARENA_MAX", -8, 2),  # M_ARENA_MAX
    ("MALLOC_MMAP_THRESHOLD_", -3, 4 * 1024 * 1024),  # M_MMAP_THRESHOLD
    ("MALLOC_TRIM_THRESHOLD_", -1, 4 * 1024 * 1024),  # M_TRIM_THRESHOLD
)


def tune_malloc(settings=MALLOC_SETTINGS) -> bool:
    """Sets glibc's malloc so freed memory goes back to the system, here and in the workers it starts.

    The launcher's RSS grew ~16 KB per clip while its live Python objects grew
    ~2 KB (tracemalloc, WORKSPACE.md): the rest was freed memory glibc kept.
    Two causes, both measured: per-thread arenas (gRPC's threads; 2 arenas
    took a 4x run's growth from 0.29 to 0.20 GB), and glibc's *dynamic* mmap
    threshold, which rises after the first large free so that the runner's
    multi-megabyte data buffers land in the heap, where freed ones stay
    mapped. A fixed threshold (which turns the dynamic one off) maps every
    allocation over 4 MiB on its own and returns it when freed. Workers read
    the variables when they start; this process is changed with ``mallopt``.
    A value the user set is kept.

    Returns:
      Whether every setting took in this process (False where libc is not glibc,
      or a value the user set cannot be read).
    """
    import ctypes
    import os

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        libc = None
    applied = libc is not None
    for variable, parameter, value in settings:
        os.environ.setdefault(variable, str(value))
        try:
            chosen = int(os.environ[variable])
        except ValueError:
            applied = False  # a value glibc ignores too: left as it is
            continue
        applied = bool(libc is not None and libc.mallopt(parameter, chosen)) and applied
    return applied


def run_pipeline(build: Callable[[beam.Pipeline, str | None], None],
                 options: PipelineOptions) -> PipelineResult | None:
    """Builds the job with ``build(pipeline, progress_dir)`` and runs it to the end.

    A local run (or one on Dask's local cluster) gets a progress directory and
    a ``ProgressReporter`` (a live line on a terminal, a log line every 10 s
    otherwise); a remote run gets ``progress_dir=None`` and reports through its
    Beam counters (and Dask's dashboard).

    Returns:
      The finished run's result (its counters), or None for a dry run (graph built, nothing run).
    """
    dry_run = is_dry_run(options)
    if dry_run and (is_local(options) or dask_runner.is_dask(options)):
        # Dataflow honours --dry_run itself; a local or Dask runner would run the job, so it is not started.
        build(beam.Pipeline(runner=pipeline_runner(options), options=options), None)
        logging.info("Dry run: job graph built, nothing run.")
        return None
    chosen = pipeline_runner(options)  # first: a missing extra is one line, before anything imports it
    local = reports_progress(options)  # the workers run on this machine: its malloc and its progress files
    if local:
        tune_malloc()
    reporter = ProgressReporter().start() if local and not dry_run else None
    try:
        with beam.Pipeline(runner=chosen, options=options) as p:
            build(p, reporter.progress_dir if reporter else None)
    finally:
        if reporter is not None:
            reporter.stop()
    if dry_run:
        logging.info("Dry run: job graph built, nothing submitted or read.")
        return None
    return p.result


def rejected_count(result: PipelineResult, ignore: tuple[str, ...] = ()) -> int:
    """How many rows, clips or files a finished run rejected, from its ``rejected_<reason>`` counters.

    Args:
      result: the finished run.
      ignore: reason prefixes not counted (rows a job never uses by design).
    """
    counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    names = [(c.key.metric.name, c) for c in counters]
    return sum(int(c.committed or 0) for name, c in names
               if name.startswith("rejected_") and not name.removeprefix("rejected_").startswith(ignore))
