"""The jobs on a Dask cluster: Beam 2.77's ``DaskRunner`` with the gaps the jobs would fall into closed.

Beam 2.77 ships ``apache_beam.runners.dask.dask_runner.DaskRunner``. Read in its
``dask_runner.py`` and ``transform_evaluator.py``, and measured with small
pipelines (``tests/beam_jobs/test_dask_runner.py`` keeps each case), it

1. computes only the bag of the *last* transform visited, so every other
   sink (the job's ``WriteRejected``) never runs;
2. collects a bundle's outputs before ``finish_bundle`` (``apply_dofn_to_bundle``),
   so what a DoFn emits there is lost (``WriteToText`` closes its files there);
3. puts every output of a multi-output ``ParDo`` into one bag: each consumer
   of any tag gets all of them (the rejected clips flow on with the good ones);
4. passes ``Reshuffle`` through, so a corpus read from a few TSVs stays in one
   partition (one worker) all the way;
5. computes a side input inside each consuming task with a nested compute;
6. raises ``NotImplementedError`` from ``metrics()``: the counters are lost.

``PortableDaskRunner`` keeps Beam's translations of ``Create``, ``GroupByKey``
and ``Flatten`` and its overrides, and translates the rest itself: each
``ParDo`` partition runs one bundle under a metrics container, emits
``(tag, value)`` pairs after ``finish_bundle`` plus its counters, and each
consumer keeps its own tag; side inputs are graph dependencies computed once;
``Reshuffle`` spreads a bag over ``--dask_npartitions`` partitions (default:
twice the cluster's threads); every sink and every counter is computed in
one ``client.compute``. Nothing in the transforms knows which runner runs them.

Values cross as plain Python values in the global window, as in Beam's own
Dask translation: the jobs here are batch jobs with no windowing.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Sequence

from apache_beam import pvalue
from apache_beam.metrics.execution import MetricKey, MetricResult, MetricsContainer
from apache_beam.metrics.metric import MetricResults
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.common import Receiver
from apache_beam.runners.runner import PipelineResult, PipelineRunner, PipelineState
from apache_beam.transforms import core
from apache_beam.transforms.window import GlobalWindow, GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

# Every spelling of --runner that means this runner (Beam refuses the short name for its own).
NAMES = ("DaskRunner", "dask", "apache_beam.runners.dask.dask_runner.DaskRunner",
         "beam_jobs.dask_runner.PortableDaskRunner")
_COUNTERS = "__counters__"  # the tag of a ParDo partition's counters among its outputs


class LocalDaskOptions(PipelineOptions):
    """The local cluster started when no ``--dask_client_address`` is given."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument("--dask_local_workers", type=int, default=None,
                            help="Worker processes of the local Dask cluster (one thread each; default: the "
                                 "machine's cores). Ignored with --dask_client_address.")


def is_dask(options: PipelineOptions) -> bool:
    """Whether ``--runner`` names the Dask runner, in any of its spellings."""
    return options.view_as(StandardOptions).runner in NAMES


def client_address(options: PipelineOptions) -> str | None:
    """``--dask_client_address`` (a running scheduler), or None for a local cluster."""
    from apache_beam.runners.dask.dask_runner import DaskOptions

    return options.view_as(DaskOptions).address


# --- what runs inside a Dask task -------------------------------------------------------------------------------

class _Receiver(Receiver):
    """Collects a bundle's outputs as ``(tag, value)``; ``tag`` is None for the main output."""

    def __init__(self, tag, values: list):
        self.tag, self.values = tag, values

    def receive(self, windowed_value: WindowedValue) -> None:
        self.values.append((self.tag, windowed_value.value))


class _Receivers(dict):
    def __init__(self, values: list):
        super().__init__()
        self.values = values

    def __missing__(self, tag):
        self[tag] = _Receiver(tag, self.values)
        return self[tag]


class _WindowedValues:
    """A computed side input's values, iterated as windowed values (what ``SideInputMap`` reads)."""

    def __init__(self, values: list):
        self.values = values

    def __iter__(self):
        for value in self.values:
            yield WindowedValue(value, 0, (GlobalWindow(),))


_local = threading.local()  # per worker thread: the DoFns of the current run already set up


def _set_up_fn(run: str, key: str, fn):
    """The DoFn of ``key`` set up once per worker thread and run (a DoFn instance may serve many bundles).

    A worker of a long-lived cluster serves many runs: the first bundle of a
    new run tears down the previous run's DoFns, so none outlives its run by
    more than that.
    """
    if getattr(_local, "run", None) != run:
        for old in getattr(_local, "fns", {}).values():
            try:
                old.teardown()
            except Exception:  # noqa: BLE001 - Beam's teardown is best effort; a failed one must not fail a run
                logging.exception("teardown of a finished run's DoFn failed")
        _local.run, _local.fns = run, {}
    if key not in _local.fns:
        fn.setup()
        _local.fns[key] = fn
    return _local.fns[key]


def _run_bundle(items: Iterable, *side_values: list, spec: dict) -> list:
    """One partition = one bundle of a ParDo: its ``(tag, value)`` outputs, then ``(_COUNTERS, counters)``."""
    from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, _OutputHandler
    from apache_beam.runners.worker import statesampler
    from apache_beam.transforms.sideinputs import SideInputMap
    from apache_beam.utils import counters

    fn = _set_up_fn(spec["run"], spec["key"], spec["fn"])
    values: list = []
    receivers = _Receivers(values)
    handler = _OutputHandler(window_fn=GlobalWindows(), main_receivers=receivers[None], tagged_receivers=receivers,
                             per_element_output_counter=None, output_batch_converter=None,
                             process_yields_batches=False, process_batch_yields_elements=False)
    side_inputs = [SideInputMap(view, options, _WindowedValues(computed))
                   for (view, options), computed in zip(spec["side_views"], side_values, strict=True)]
    invoker = DoFnInvoker.create_invoker(
        DoFnSignature(fn), handler, context=DoFnContext(spec["label"], state=None), side_inputs=side_inputs,
        input_args=spec["args"], input_kwargs=spec["kwargs"], user_state_context=None,
        bundle_finalizer_param=core.DoFn.BundleFinalizerParam())
    sampler = statesampler.StateSampler("", counters.CounterFactory())
    statesampler.set_current_tracker(sampler)
    container = MetricsContainer(spec["label"])
    try:
        with sampler.scoped_state(spec["label"], "process", metrics_container=container):
            invoker.invoke_start_bundle()
            for item in items:
                invoker.invoke_process(WindowedValue(item, 0, (GlobalWindow(),)))
            invoker.invoke_finish_bundle()  # before the outputs are returned: what it emits is kept
    finally:
        statesampler.set_current_tracker(None)
    cumulative = container.get_cumulative()
    values.append((_COUNTERS, (cumulative.counters, cumulative.distributions)))
    return values


class _HasTag:
    """A picklable predicate: the pair carries ``tag``."""

    def __init__(self, tag):
        self.tag = tag

    def __call__(self, pair: tuple) -> bool:
        return pair[0] == self.tag


def _second(pair: tuple):
    return pair[1]


def _to_list(partition: Iterable) -> list:
    return list(partition)


def _concat(lists: Iterable[list]) -> list:
    return list(itertools.chain.from_iterable(lists))


def _drain(partition: Iterable) -> list:
    for _ in partition:
        pass
    return []


# --- the graph ---------------------------------------------------------------------------------------------------

class _BagBuilder(PipelineVisitor):
    """Translates each leaf transform into a Dask bag; remembers sinks and counters."""

    def __init__(self, npartitions: int, bag_kwargs: dict):
        self._run = uuid.uuid4().hex
        from apache_beam.runners.dask.transform_evaluator import TRANSLATIONS

        self._translations = TRANSLATIONS
        self._npartitions, self._bag_kwargs = npartitions, bag_kwargs
        self.bags: dict = {}
        self._pardos: set = set()
        self._tagged: dict = {}
        self._consumed: set = set()

    def _input(self, pcoll):
        """The bag of ``pcoll``: its producer's, reduced to its own tag when the producer is a ParDo."""
        producer = pcoll.producer
        self._consumed.add(producer)
        if producer not in self._pardos:
            return self.bags[producer]
        key = (producer, pcoll.tag)
        if key not in self._tagged:
            self._tagged[key] = self.bags[producer].filter(_HasTag(pcoll.tag)).map(_second)
        return self._tagged[key]

    def visit_transform(self, node) -> None:
        from apache_beam.runners.dask.overrides import _Reshuffle
        from apache_beam.runners.dask.transform_evaluator import Flatten, NoOp

        transform = node.transform
        inputs = [self._input(v) for v in node.main_inputs.values() if not isinstance(v, pvalue.PBegin)]
        if transform.__class__ is core.ParDo:
            self.bags[node] = self._pardo(node, inputs[0])
            self._pardos.add(node)
            return
        if isinstance(transform, _Reshuffle):
            bag = inputs[0]
            self.bags[node] = bag.repartition(npartitions=max(self._npartitions, bag.npartitions))
            return
        op_class = self._translations.get(transform.__class__, NoOp)
        if op_class is NoOp and not inputs and node.outputs:
            # A source without a translation (Beam's Read becomes _Read here) would be an empty bag.
            raise NotImplementedError(f"{node.full_label} ({type(transform).__name__}) cannot run on the Dask "
                                      "runner: it has no translation for this source")
        op = op_class(node, bag_kwargs=self._bag_kwargs)
        if op.__class__ is Flatten:
            self.bags[node] = op.apply(input_bag=inputs)
        else:
            self.bags[node] = op.apply(input_bag=inputs[0] if inputs else None)

    def _pardo(self, node, bag):
        transform = node.transform
        side_views, side_items = [], []
        for side in node.side_inputs:
            side_views.append((type(side), side._view_options()))
            # A Delayed of the whole list, unoptimized: an Item would be fused into a copy of its
            # producer's tasks per consumer (a side effect upstream would then run once per consumer).
            side_items.append(self._input(side.pvalue).reduction(_to_list, _concat).to_delayed(optimize_graph=False))
        # transform.args: the side inputs replaced by placeholders, filled from side_inputs in order.
        spec = {"run": self._run, "key": uuid.uuid4().hex, "fn": transform.fn, "label": node.full_label, "side_views": side_views,
                "args": list(transform.args), "kwargs": dict(transform.kwargs)}
        return bag.map_partitions(_run_bundle, *side_items, spec=spec)

    def final_bag(self):
        """One bag whose computation runs every sink and yields every ParDo partition's counters."""
        import dask.bag as db

        sinks = [bag.map_partitions(_drain) for node, bag in self.bags.items()
                 if node not in self._consumed and bag is not None]
        counters = [self.bags[node].filter(_HasTag(_COUNTERS)).map(_second) for node in self._pardos]
        return db.concat(sinks + counters)


# --- the runner and its result -----------------------------------------------------------------------------------

class _Metrics(MetricResults):
    """The finished run's counters and distributions, combined over partitions (gauges are not collected)."""

    def __init__(self, counters: dict[MetricKey, int], distributions: dict):
        self._counters, self._distributions = counters, distributions

    def query(self, filter=None) -> dict[str, list]:
        counters = [MetricResult(key, value, value) for key, value in self._counters.items()
                    if self.matches(filter, key)]
        distributions = [MetricResult(key, data.get_result(), data.get_result())
                         for key, data in self._distributions.items() if self.matches(filter, key)]
        return {self.COUNTERS: counters, self.DISTRIBUTIONS: distributions, self.GAUGES: [], self.STRINGSETS: [],
                self.BOUNDED_TRIES: [], self.HISTOGRAMS: []}


def close(client, cluster=None) -> None:
    """Closes a client and the local cluster it was started with (either may be None)."""
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


class DaskResult(PipelineResult):
    """A run on Dask: ``wait_until_finish`` gathers its counters and closes a local cluster."""

    def __init__(self, client, future, cluster=None):
        super().__init__(PipelineState.RUNNING)
        self._client, self._future, self._cluster = client, future, cluster
        self._counters: dict[MetricKey, int] = collections.Counter()
        self._distributions: dict = {}

    def wait_until_finish(self, duration=None) -> str:
        """Waits (at most ``duration`` ms, if given) and returns the state; RUNNING when the time ran out."""
        import dask.distributed as ddist

        if PipelineState.is_terminal(self._state):  # TestPipeline waits, then its `with` waits again
            return self._state
        try:
            partitions = self._future.result(timeout=None if duration is None else duration / 1000)
        except ddist.TimeoutError:
            return self._state  # still running: Beam's contract for a timed wait
        except BaseException:
            self._state = PipelineState.FAILED
            self._close()
            raise
        for counters, distributions in partitions:
            for key, value in counters.items():
                self._counters[key] += value
            for key, data in distributions.items():
                self._distributions[key] = data.combine(self._distributions[key]) \
                    if key in self._distributions else data
        self._state = PipelineState.DONE
        self._close()
        return self._state

    def _close(self) -> None:
        close(self._client, self._cluster)
        self._client = self._cluster = None

    def cancel(self) -> str:
        if PipelineState.is_terminal(self._state):
            return self._state
        self._client.cancel([self._future])
        self._close()
        self._state = PipelineState.CANCELLED
        return self._state

    def metrics(self) -> MetricResults:
        return _Metrics(dict(self._counters), dict(self._distributions))


class PortableDaskRunner(PipelineRunner):
    """Runs a batch pipeline on a Dask cluster (``--dask_client_address``) or a local one of N worker processes."""

    def run_pipeline(self, pipeline, options: PipelineOptions) -> DaskResult:
        import dask.distributed as ddist
        from apache_beam.runners.dask.dask_runner import DaskOptions
        from apache_beam.runners.dask.overrides import dask_overrides

        # Importing distributed sets its loggers to INFO: every connection of the scheduler and nannies.
        logging.getLogger("distributed").setLevel(logging.WARNING)
        dask_options = options.view_as(DaskOptions)
        cluster = None
        if dask_options.address:
            client = ddist.Client(dask_options.address, timeout=dask_options.timeout or 30)
        else:
            workers = options.view_as(LocalDaskOptions).dask_local_workers or os.cpu_count() or 1
            # Processes, one thread each: decoding and the numpy front end hold the GIL for stretches.
            cluster = ddist.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None)
            client = ddist.Client(cluster)
        logging.info("Dask cluster: %s (%d worker threads)%s", client.scheduler.address,
                     sum(client.nthreads().values()),
                     f"; dashboard {client.dashboard_link}" if dask_options.address else "")
        try:
            npartitions = dask_options.npartitions or 2 * max(1, sum(client.nthreads().values()))
            bag_kwargs = {"partition_size": dask_options.partition_size} if dask_options.partition_size else \
                {"npartitions": npartitions}
            pipeline.replace_all(dask_overrides())
            builder = _BagBuilder(npartitions, bag_kwargs)
            pipeline.visit(builder)
            # Unoptimized: fusing inlines a task into each of its consumers, and a task with a side effect
            # (WriteToText's initialize_write makes a temporary directory) would then run once per consumer.
            future = client.compute(builder.final_bag(), optimize_graph=False)
        except BaseException:
            close(client, cluster)  # a graph that cannot be built leaves no cluster behind
            raise
        return DaskResult(client, future, cluster)


def sum_counters(results: Sequence[MetricResult]) -> dict[str, int]:
    """Counter totals by name (what a test or a summary compares between runners)."""
    totals: dict[str, int] = collections.Counter()
    for result in results:
        totals[result.key.metric.name] += int(result.committed or 0)
    return dict(totals)

