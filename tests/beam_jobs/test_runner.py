"""beam_jobs.runner: the shared Beam-main helpers, and the Beam internals ``local_runner`` depends on.

``local_runner`` builds the FnApiRunner the way Beam's DirectRunner does,
because the DirectRunner would first try Prism (a Go binary downloaded at run
time, which ignores ``--direct_num_workers``). These tests fail loudly when a
Beam upgrade moves those internals, so that the copy is re-checked, not left
to drift.
"""

from __future__ import annotations

import inspect
import os

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.direct import direct_runner
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.testing.util import assert_that

from beam_jobs import runner

PINNED_BEAM = "2.77.0"


def test_beam_is_the_version_local_runner_was_checked_against():
    assert beam.__version__ == PINNED_BEAM, (
        f"Beam {beam.__version__} replaces {PINNED_BEAM}: re-read DirectRunner.run_pipeline and check that "
        "beam_jobs.runner.local_runner still builds the FnApiRunner as it does (then update PINNED_BEAM)")


def test_direct_runner_still_prefers_prism_and_builds_the_fn_api_runner_as_local_runner_does():
    source = inspect.getsource(direct_runner.SwitchingDirectRunner.run_pipeline)
    # Why local_runner exists: the DirectRunner tries Prism first.
    assert "prism_runner.PrismRunner()" in source
    # What local_runner copies: the FnApiRunner with the pipeline options in its provision info.
    for line in ("JobServiceHandle.encode_pipeline_options(all_options)",
                 "fn_runner.ExtendedProvisionInfo(",
                 "fn_runner.FnApiRunner(provision_info=provision_info)"):
        assert line in source, f"DirectRunner no longer has {line!r}: re-check beam_jobs.runner.local_runner"


def test_local_runner_for_local_runs_only():
    local = runner.local_runner(PipelineOptions(["--runner=DirectRunner", "--direct_num_workers=3"]))
    assert isinstance(local, fn_runner.FnApiRunner)
    encoded = local._provision_info.provision_info.pipeline_options
    assert str(encoded["beam:option:direct_num_workers:v1"]) == "3"  # the options reach the runner's workers
    assert runner.local_runner(PipelineOptions(["--runner=DataflowRunner"])) is None


def test_default_runner_and_dry_run_flags():
    assert runner.with_default_runner([]) == runner.DEFAULT_RUNNER_ARGS
    assert runner.with_default_runner(["--runner=DataflowRunner", "--project=p"]) == [
        "--runner=DataflowRunner", "--project=p"]
    assert runner.is_dry_run(PipelineOptions(["--dry_run=True"]))
    assert not runner.is_dry_run(PipelineOptions([]))


def test_a_dry_run_builds_the_graph_and_runs_nothing(tmp_path):
    built = []

    def build(p, progress_dir):
        built.append(progress_dir)
        _ = p | beam.Create([1]) | beam.Map(lambda x: open(os.path.join(str(tmp_path), "ran"), "w"))

    assert runner.run_pipeline(build, PipelineOptions(["--runner=DirectRunner", "--dry_run=True"])) is None
    assert built == [None] and not (tmp_path / "ran").exists()


@pytest.mark.slow
def test_local_runner_honours_multi_processing(tmp_path):
    """The reason for local_runner: workers in other processes, as --direct_running_mode asks."""
    options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                               "--direct_num_workers=2"])
    parent = os.getpid()

    def build(p, progress_dir):
        assert progress_dir is not None and os.path.isdir(progress_dir)  # a local run reports progress
        pids = p | beam.Create(range(8)) | beam.Map(lambda _: os.getpid())

        def in_workers(found):
            assert found and parent not in found, f"ran in the launcher ({parent}): {set(found)}"

        assert_that(pids, in_workers)

    assert runner.run_pipeline(build, options) is not None  # the finished run's result


VARIABLES = [variable for variable, _, _ in runner.MALLOC_SETTINGS]


def _unset(monkeypatch):
    """The malloc variables absent for the test and as they were afterwards (``tune_malloc`` sets them)."""
    for variable in VARIABLES:
        monkeypatch.setenv(variable, "0")  # records the value before, which delenv alone does not for an unset one
        monkeypatch.delenv(variable)


def test_malloc_is_tuned_here_and_for_the_workers(monkeypatch):
    import platform

    _unset(monkeypatch)
    applied = runner.tune_malloc()
    for variable, _, value in runner.MALLOC_SETTINGS:
        assert os.environ[variable] == str(value)  # what spawned workers inherit
    assert applied is (platform.libc_ver()[0] == "glibc")  # mallopt took them in this process
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    runner.tune_malloc()
    assert os.environ["MALLOC_ARENA_MAX"] == "4"  # a user's own setting is kept


@pytest.mark.parametrize("value", ["", "many"])
def test_a_malloc_setting_glibc_cannot_read_is_left_alone(monkeypatch, value):
    _unset(monkeypatch)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", value)
    assert runner.tune_malloc() is False and os.environ["MALLOC_MMAP_THRESHOLD_"] == value
    assert os.environ["MALLOC_ARENA_MAX"] == "2"  # the others are still set
