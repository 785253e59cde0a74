"""The model and its calibration data, run with any substitution of weights: the output error
against the float weights and the threshold metric's values (ARCHITECTURE.md, "Automatic mixed
precision"). `sensitivity.measure` probes one tensor at a time through it; `allocate.search`
checks whole allocations on the calibration split.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from ..errors import QuantzooError
from ..threads import ort_options
from .external import materialize, tensor_array
from .recipe import tensor_key
from .weights import Selected

# A probe pass over a small model costs about what making its session does (ppocr-mobile-v2-cls:
# 0.04 s for 32 samples, 0.025 s for the session), so small weights are probed through a session
# shared by a group of them, fed as its inputs: a main-graph weight of fewer than FED_ELEMENTS
# values, in groups of at most GROUP_ELEMENTS values in the model's order. Fed weights are not
# pre-packed, which costs little on small ones; large ones stay constants in a session per run
# (fed, crepe-tiny's ran 3.5 times slower). Decided from the tensors' sizes alone, so the same
# model is always measured the same way (ARCHITECTURE.md, "Automatic mixed precision").
FED_ELEMENTS = 4096
GROUP_ELEMENTS = 16384


def fed_groups(chosen: list[Selected]) -> dict[str, int]:
    """Tensor key -> the group whose shared session probes it, for the weights fed as inputs.

    >>> from types import SimpleNamespace as N
    >>> ts = [N(tensor=N(name=n, scope=sc, elements=e)) for n, sc, e in [("a", "", 4000), ("b", "", 4000),
    ...       ("c", "If/then", 300), ("d", "", 4096), ("e", "", 4000), ("f", "", 4000), ("g", "", 4000)]]
    >>> fed_groups(ts)
    {'a': 0, 'b': 0, 'e': 0, 'f': 0, 'g': 1}
    """
    out, group, size = {}, 0, 0
    for s in chosen:
        n = s.tensor.elements
        if s.tensor.scope or n >= FED_ELEMENTS:
            continue
        if size and size + n > GROUP_ELEMENTS:
            group, size = group + 1, 0
        out[tensor_key(s.tensor.name, s.tensor.scope)] = group
        size += n
    return out


def db(signal: float, error: float) -> float:
    """10·log10(signal / error), 200 dB when the error is zero.

    >>> db(100.0, 1.0), db(1.0, 0.0)
    (20.0, 200.0)
    """
    if error <= 0:
        return 200.0
    return float(min(200.0, 10.0 * np.log10(signal / error))) if signal > 0 else -200.0


class WeightSession:
    """The model and the evaluation data to run it on: `run(overrides)` gives the primary
    output's error against the float weights and its threshold metric, for any substitution of
    weights. A substitution is written into the model's own weight tensors (an initializer, a
    `Constant` node's value, in a subgraph or not) and run in a session made for it: onnxruntime
    folds and pre-packs constant weights, and a session fed all its weights as graph inputs ran
    the same passes 1.0-3.5 times slower (measured on the catalog; ARCHITECTURE.md, "Automatic
    mixed precision"). The float weights are restored after every run. One small weight alone
    (`fed_groups`) is probed through its group's shared session instead, against that session's
    own float outputs."""

    def __init__(self, proto: onnx.ModelProto, chosen: list[Selected], base_dir, evaluation, output: str,
                 metric: str, samples: int | None = None):
        if base_dir is not None:
            materialize(proto, base_dir)
        self.chosen, self.proto = chosen, proto
        # each weight's TensorProto inside `proto` (overwritten for a run) and a float copy of it
        self.tensors = {tensor_key(s.tensor.name, s.tensor.scope): s.tensor.proto for s in chosen}
        self.float_protos = {k: _copy(t) for k, t in self.tensors.items()}
        self.floats = {k: tensor_array(t, None) for k, t in self.float_protos.items()}
        self.custom_ops = evaluation.custom_ops
        if output not in evaluation.output_names:
            raise QuantzooError(f"threshold output {output!r} is not an output of the model "
                                f"({', '.join(evaluation.output_names)})")
        j = evaluation.output_names.index(output)
        if getattr(evaluation, "stream", None) is not None:
            raise QuantzooError("auto quantization of a streamed model (its evaluation runs windows with a "
                                "state) is not supported yet; quantize it with a uniform variant")
        from ..compare.kinds import compare_batch

        self.output, self.metric, self.j, self.names = output, metric, j, list(evaluation.output_names)
        # what a session is fed for a stored batch (inputs without a sample axis lose it: compare.core)
        self.feed = getattr(evaluation, "feed", None) or (lambda b: b)
        self.kind, self.ctx = evaluation.kinds[j], dict(evaluation.contexts[j])
        self.ctx.pop("all_labels", None)
        self.batches, self.reference = list(evaluation.batches), list(evaluation.reference[j])
        # the sensitivity passes use the first batches holding `samples` samples; checks use all
        self.probe_batches, n = 0, 0
        while self.probe_batches < len(self.batches) and (samples is None or n < samples):
            n += len(self.reference[self.probe_batches])
            self.probe_batches += 1
        self.samples, self.calibration_samples = n, sum(len(r) for r in self.reference)
        self.runs = 0  # passes over the probe samples (a full check counts its share)
        self.groups = fed_groups(chosen)
        self._fed: dict = {}  # group -> (its session, key -> input name, the float feeds, its float outputs)
        self._float_session = self._session()
        self.own = self._outputs({}, len(self.batches))  # the float weights through this very path
        self.signals = [self._components(o, o)[0] for o in self.own]
        self.signal = float(sum(self.signals[:self.probe_batches]))
        self.counts = [len(compare_batch(self.kind, r, o, self.ctx).get(metric, []))  # metric values a batch gives
                       for r, o in zip(self.reference, self.own)]

    def _session(self, proto: onnx.ModelProto | None = None):
        import onnxruntime as ort

        from ..customops import session_options

        proto = self.proto if proto is None else proto
        so = session_options(self.custom_ops, proto) if self.custom_ops else ort_options()
        so.log_severity_level = 3
        return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def _fed_session(self, group: int) -> tuple:
        """Group `group`'s shared session (its weights graph inputs) and its float outputs on
        the probe batches, made on first use."""
        if group not in self._fed:
            members = {s.tensor.name: (k, s.tensor.proto) for s in self.chosen
                       if self.groups.get(k := tensor_key(s.tensor.name, s.tensor.scope)) == group}
            proto = onnx.ModelProto()
            proto.CopyFrom(self.proto)
            g = proto.graph
            kept = [t for t in g.initializer if t.name not in members]
            nodes = [n for n in g.node
                     if not (n.op_type == "Constant" and len(n.output) == 1 and n.output[0] in members)]
            del g.initializer[:], g.node[:]
            g.initializer.extend(kept)
            g.node.extend(nodes)
            inputs = {i.name for i in g.input}
            g.input.extend(helper.make_tensor_value_info(name, t.data_type, list(t.dims))
                           for name, (_, t) in members.items() if name not in inputs)
            sess = self._session(proto)
            names = {k: name for name, (k, _) in members.items()}
            feeds = {name: self.floats[k] for k, name in names.items()}
            self._fed[group] = (sess, names, feeds, [self._output(sess, i, feeds) for i in range(self.probe_batches)])
            self.runs += 1
        return self._fed[group]

    def _session_with(self, overrides: dict[str, np.ndarray]):
        if not overrides:
            return self._float_session
        try:
            for k, w in overrides.items():
                self.tensors[k].CopyFrom(_with_data(self.float_protos[k], w))
            return self._session()
        finally:
            for k in overrides:
                self.tensors[k].CopyFrom(self.float_protos[k])

    def _output(self, sess, i: int, weights: dict | None = None):
        """Batch `i`'s primary output from `sess` (fed `weights` too), reduced as its comparison reads it."""
        from ..compare.kinds import KINDS
        from ..customops import run as run_session

        feed = self.feed(self.batches[i])
        # every output: decoders read them all
        ys = run_session(sess, self.names, {**feed, **weights} if weights else feed)
        return KINDS[self.kind].reduce(np.asarray(ys[self.j]), {**self.ctx, "outputs": ys, "reference": self.reference[i]})

    def _outputs(self, overrides: dict[str, np.ndarray], batches: int) -> list:
        sess = self._session_with(overrides)
        outs = [self._output(sess, i) for i in range(batches)]
        self.runs += batches / max(1, self.probe_batches)
        return outs

    def _components(self, ref, test) -> tuple[float, float]:
        from ..compare.kinds import compare_batch

        rows = np.asarray(compare_batch(self.kind, ref, test, self.ctx)["snr_db"], dtype=np.float64)
        return float(rows[:, 0].sum()), float(rows[:, 1].sum())

    def run(self, overrides: dict[str, np.ndarray], full: bool = False) -> tuple[float, list]:
        """(the output error energy against the float weights, the threshold metric's per-sample
        values against the float model's cached outputs) with `overrides` substituted, on the
        probe samples or (`full`) on the whole calibration split."""
        from ..compare.kinds import compare_batch

        key = next(iter(overrides)) if len(overrides) == 1 else None
        if not full and key in self.groups:  # one small weight: through its group's shared session
            sess, names, feeds, own = self._fed_session(self.groups[key])
            fed = {**feeds, names[key]: np.ascontiguousarray(overrides[key])}
            outs = [self._output(sess, i, fed) for i in range(self.probe_batches)]
            self.runs += 1
        else:
            outs = self._outputs(overrides, len(self.batches) if full else self.probe_batches)
            own = self.own
        error = sum(self._components(o, t)[1] for o, t in zip(own, outs))
        values: list = []
        for r, t in zip(self.reference, outs):
            values.extend(compare_batch(self.kind, r, t, self.ctx).get(self.metric, []))
        return float(error), values

    def check(self, overrides: dict[str, np.ndarray], give_up=None) -> tuple[float, list]:
        """(the measured SNR in dB, the threshold metric's per-sample values) with `overrides`
        substituted, over the whole calibration split, batch by batch; it stops after a batch when
        `give_up(values so far, values the other batches give)` says no outcome of those can make
        the check pass (`requirement.give_up`), and then measures the batches run."""
        from ..compare.kinds import compare_batch

        sess = self._session_with(overrides)
        error = signal = 0.0
        values: list = []
        for i in range(len(self.batches)):
            out = self._output(sess, i)
            error += self._components(self.own[i], out)[1]
            signal += self.signals[i]
            values.extend(compare_batch(self.kind, self.reference[i], out, self.ctx).get(self.metric, []))
            if give_up is not None and i + 1 < len(self.batches) and give_up(values, sum(self.counts[i + 1:])):
                break
        self.runs += (i + 1) / max(1, self.probe_batches)
        return db(signal, error), values


def _copy(t: onnx.TensorProto) -> onnx.TensorProto:
    out = onnx.TensorProto()
    out.CopyFrom(t)
    return out


def _with_data(float_proto: onnx.TensorProto, w: np.ndarray) -> onnx.TensorProto:
    """`float_proto` (name, type, shape) holding the values `w` instead."""
    from onnx import numpy_helper

    dtype = helper.tensor_dtype_to_np_dtype(float_proto.data_type)
    t = numpy_helper.from_array(np.ascontiguousarray(w, dtype=dtype).reshape(tuple(float_proto.dims)),
                                float_proto.name)
    return t


__all__ = ["WeightSession", "db", "fed_groups"]
