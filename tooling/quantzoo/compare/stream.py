"""Stateful streaming: a model run over a sample's frames, its state carried from step to step.

A streaming model (silero-vad: ``input[B, 576]``, ``state[2, B, 128]``, ``sr``) sees one short
window per call and hands back, beside its result, the state its next call takes. A sample is one
whole recording; the model runs over its windows with the state carried, and its outputs are
stacked on a time axis: an output ``[B, ...]`` per step becomes ``[B, T, ...]`` per batch. The
manifest names the mechanism, not the model (ARCHITECTURE.md, "Streaming models"), in the
preprocessing params:

```yaml
stream:
  input: input          # the input cut into windows along its last axis
  frame: 512            # new samples per step
  context: 64           # samples of the previous window repeated at the start of each window
  state: {state: stateN}   # state input -> the output that carries it to the next step
  constants: {sr: 16000}   # inputs fed the same value at every step
```

A state input starts at zero, its dynamic dimensions (the batch) set to the batch size. A model
without ``state`` is simply framed: every window of a batch runs in one call. The samples give
the streamed input only (`fed_specs`); the carried outputs are not compared (`compared_outputs`).

A `Stream` is one kind of *runner*: a record, named by a preprocessing param, that says how a
model that is not run in one call is run. Every runner has the methods ``fed_specs(specs)``,
``compared_outputs(names)``, ``first_step(feed, specs)`` and ``run_batch(run, sess, names, feed,
specs)``; the functions below call them, or run the model in one call when there is none.
`runner_of` reads the runner of a model's params: a `Stream` (``stream``) or a greedy decoder
(``decode``, `seq2seq.Decode`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from ..errors import QuantzooError
from .inputs import InputSpec, np_dtype
from .seq2seq import decode_of


@dataclass(frozen=True)
class Stream:
    """How a model is streamed: the windowed input, the hop, the context, the carried state."""

    input: str
    frame: int
    context: int = 0
    state: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, object] = field(default_factory=dict)

    @property
    def window(self) -> int:
        return self.context + self.frame

    # --- the runner methods ---

    def fed_specs(self, specs: list[InputSpec]) -> list[InputSpec]:
        return [s for s in specs if s.name not in self.state and s.name not in self.constants]

    def compared_outputs(self, names: list[str]) -> list[str]:
        carried = set(self.state.values())
        return [n for n in names if n not in carried]

    def first_step(self, feed: dict, specs: list[InputSpec]) -> dict:
        return step_feed(feed, self, specs, windows(feed[self.input], self.frame, self.context)[0])

    def run_batch(self, run: Callable, sess, names: list[str], feed: dict, specs: list[InputSpec]) -> list[np.ndarray]:
        return run_stream(run, sess, names, feed, self, specs)


def stream_of(params: dict, specs: list[InputSpec], outputs: list[str], model_file: str) -> Stream | None:
    """The `Stream` of a preprocessing's ``stream`` param, checked against the model's inputs and
    outputs (None when the model is not streamed).

    >>> spec = [InputSpec("x", "tensor(float)", (None, None)), InputSpec("h", "tensor(float)", (None, 4))]
    >>> stream_of({"stream": {"input": "x", "frame": 8, "state": {"h": "hN"}}}, spec, ["y", "hN"], "m.onnx").state
    {'h': 'hN'}
    >>> stream_of({"stream": {"input": "z", "frame": 8}}, spec, ["y"], "m.onnx")
    Traceback (most recent call last):
    quantzoo.errors.QuantzooError: preprocessing params.stream.input names 'z', which is not an input of m.onnx; its inputs are h, x
    """
    raw = params.get("stream")
    if not raw:
        return None
    inputs = {s.name for s in specs}
    where = "preprocessing params.stream"
    if not isinstance(raw, dict) or "input" not in raw or "frame" not in raw:
        raise QuantzooError(f"{where} must be a mapping with at least 'input' and 'frame' (found {raw!r}); "
                            "see ARCHITECTURE.md, 'Streaming models'")
    s = Stream(str(raw["input"]), int(raw["frame"]), int(raw.get("context", 0)), dict(raw.get("state") or {}),
               dict(raw.get("constants") or {}))
    for what, name, known in ([("input", s.input, inputs)] + [("state", k, inputs) for k in s.state]
                              + [("state output", v, set(outputs)) for v in s.state.values()]
                              + [("constants", k, inputs) for k in s.constants]):
        if name not in known:
            kind = "output" if what == "state output" else "input"
            raise QuantzooError(f"{where}.{what.split()[0]} names {name!r}, which is not an {kind} of {model_file}; "
                                f"its {kind}s are {', '.join(sorted(known))}")
    if s.frame <= 0 or s.context < 0:
        raise QuantzooError(f"{where}: frame must be > 0 and context >= 0 (found frame {s.frame}, "
                            f"context {s.context})")
    return s


def runner_of(params: dict, specs: list[InputSpec], outputs: list[str], model_file: str):
    """The runner a preprocessing's params name (a `Stream`, a `seq2seq.Decode`), or None."""
    found = [r for r in (stream_of(params, specs, outputs, model_file), decode_of(params, specs, outputs, model_file))
             if r is not None]
    if len(found) > 1:
        raise QuantzooError(f"preprocessing params of {model_file} name both 'stream' and 'decode'; a model is run one way")
    return found[0] if found else None


def fed_specs(specs: list[InputSpec], stream) -> list[InputSpec]:
    """The inputs a sample gives: all of them, or those the runner does not feed itself (a
    streamed model: the streamed input and any input that is neither state nor constant)."""
    return specs if stream is None else stream.fed_specs(specs)


def compared_outputs(names: list[str], stream) -> list[str]:
    """The outputs that are compared: all, or those the runner compares (a stream: all but the carried state)."""
    return names if stream is None else stream.compared_outputs(names)


def windows(x: np.ndarray, frame: int, context: int) -> np.ndarray:
    """`x` [B, L] cut into ceil(L / frame) windows [T, B, context + frame]: window t holds the
    `context` samples before t·frame (zeros before the start) and the `frame` samples from it
    (zeros past the end).

    >>> windows(np.arange(1, 6, dtype=np.float32)[None], 2, 1)[:, 0].tolist()
    [[0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [4.0, 5.0, 0.0]]
    """
    x = np.asarray(x)
    b, n = x.shape
    t = max(1, -(-n // frame))
    padded = np.zeros((b, context + t * frame), dtype=x.dtype)
    padded[:, context:context + n] = x
    idx = np.arange(t)[:, None] * frame + np.arange(context + frame)[None, :]
    return np.ascontiguousarray(np.transpose(padded[:, idx], (1, 0, 2)))


def _initial_state(spec: InputSpec, batch: int) -> np.ndarray:
    return np.zeros([batch if d is None else d for d in spec.shape], dtype=np_dtype(spec))


def _constant(spec: InputSpec, value) -> np.ndarray:
    return np.asarray(value, dtype=np_dtype(spec)).reshape([1 if d is None else d for d in spec.shape])


def step_feed(feed: dict, stream: Stream, specs: list[InputSpec], window: np.ndarray, state: dict | None = None) -> dict:
    """One step's feed: the window, the constants, the state (initial zeros when `state` is None)."""
    by_name = {s.name: s for s in specs}
    batch = window.shape[0]
    out = {k: v for k, v in feed.items() if k != stream.input}
    out[stream.input] = window
    out.update({k: _constant(by_name[k], v) for k, v in stream.constants.items()})
    out.update(state if state is not None else {k: _initial_state(by_name[k], batch) for k in stream.state})
    return out


def first_step(feed: dict, stream, specs: list[InputSpec]) -> dict:
    """What one call of the model is fed for a stored batch: the batch itself, or the runner's
    first call (a streamed model: its first window with the initial state; what a runtime check runs)."""
    return feed if stream is None else stream.first_step(feed, specs)


def run_batch(run: Callable, sess, names: list[str], feed: dict, stream,
              specs: list[InputSpec]) -> list[np.ndarray]:
    """One stored batch through `sess`: a plain call, or the runner's (`run_stream` for a stream)."""
    return run(sess, names, feed) if stream is None else stream.run_batch(run, sess, names, feed, specs)


def run_stream(run: Callable, sess, names: list[str], feed: dict, stream: Stream,
               specs: list[InputSpec]) -> list[np.ndarray]:
    """`names`' outputs over every window of `feed`, stacked [B, T, ...]; `run(sess, names, feed)`
    runs one call. With state, one call per window, each fed the previous call's state outputs;
    without, all windows in one call."""
    w = windows(feed[stream.input], stream.frame, stream.context)
    t, b = w.shape[:2]
    if not stream.state:
        ys = run(sess, names, step_feed(feed, stream, specs, w.reshape(t * b, -1)))
        return [np.swapaxes(np.asarray(y).reshape(t, b, *np.shape(y)[1:]), 0, 1) for y in ys]
    want = list(names) + [o for o in stream.state.values() if o not in names]
    carried_at = {k: want.index(o) for k, o in stream.state.items()}
    per: list[list[np.ndarray]] = [[] for _ in names]
    state = None
    for i in range(t):
        ys = run(sess, want, step_feed(feed, stream, specs, w[i], state))
        state = {k: ys[j] for k, j in carried_at.items()}
        for j in range(len(names)):
            per[j].append(np.asarray(ys[j]))
    return [np.stack(p, axis=1) for p in per]
