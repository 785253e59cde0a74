"""Greedy decoding: an encoder-decoder model run as it is used, one token at a time.

A sequence-to-sequence model (Whisper) is one ONNX graph with two entry points that share no
node: the encoder path reads the sample's input (``mel``) and returns what the decoder attends to
(``encoded``); the decoder path reads the tokens so far and that encoding and returns the next
token's scores (``logits`` [B, V]). onnxruntime needs every input fed, so each call feeds the path
it does not ask for a one-step dummy, and computes only the nodes the requested output needs. The
manifest names the mechanism in the preprocessing params (ARCHITECTURE.md, "Sequence-to-sequence
models"):

```yaml
decode:
  input: mel                # the sample-fed input of the encoder path
  encoded: encoded          # the encoder path's output ...
  features: encoded_in      # ... fed to the decoder path as this input
  tokens: tokens            # the decoder path's token input [B, L] (int64)
  logits: logits            # the decoder path's next-token scores [B, V]
  start: [50257, 50362]     # the prompt every sequence starts with
  end: 50256                # the token that ends a sequence
  max_tokens: 40            # tokens generated at most (after the prompt)
  suppress: [...]           # ids never chosen
  suppress_from: 50357      # ... nor any id from this one on
  suppress_first: [220, 50256]   # ids not chosen as the first generated token
```

Decoding is greedy (temperature 0, no beam): at each step the highest-scoring id that is not
suppressed; a batch decodes together until every sequence has ended or ``max_tokens`` is reached.
The ``logits`` output is then compared as one record per sequence: the generated ``ids``
[max_tokens] (int32, -1 after the end; the end token is not kept) and, with ``first_scores:
true``, the ``first`` step's scores [V] (before any suppression: the float model's and a variant's
scores on the same input, for the SNR); the ``encoded`` output is not compared. `Decode` has the runner
methods `stream.Stream` has (``fed_specs``, ``compared_outputs``, ``first_step``, ``run_batch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import QuantzooError
from .inputs import InputSpec, np_dtype

PAD = -1  # the generated ids after a sequence's end


@dataclass(frozen=True)
class Decode:
    """How an encoder-decoder graph is decoded: its inputs and outputs, the prompt, the end, the limits."""

    input: str
    encoded: str
    features: str
    tokens: str
    logits: str
    start: tuple[int, ...]
    end: int
    max_tokens: int = 40
    suppress: tuple[int, ...] = ()
    suppress_from: int | None = None
    suppress_first: tuple[int, ...] = ()
    first_scores: bool = False

    # --- the runner methods (as `stream.Stream`) ---

    def fed_specs(self, specs: list[InputSpec]) -> list[InputSpec]:
        """The inputs a sample gives: all but the token and feature inputs."""
        return [s for s in specs if s.name not in (self.tokens, self.features)]

    def compared_outputs(self, names: list[str]) -> list[str]:
        """The generated ids (on the ``logits`` output); the encoding is an intermediate."""
        return [n for n in names if n != self.encoded]

    def first_step(self, feed: dict, specs: list[InputSpec]) -> dict:
        """One call's feed for a stored batch (what a runtime check runs): the batch, the prompt
        and a one-step encoding of zeros."""
        b = len(feed[self.input])
        return {**feed, self.tokens: self._prompt(b, specs), self.features: self._dummy(self.features, specs, b)}

    def run_batch(self, run: Callable, sess, names: list[str], feed: dict, specs: list[InputSpec]) -> list[np.ndarray]:
        """`names`' outputs for one stored batch: the encoding once, then `greedy` decoding."""
        b = len(feed[self.input])
        enc = run(sess, [self.encoded], {**feed, self.tokens: self._prompt(b, specs),
                                         self.features: self._dummy(self.features, specs, b)})[0]
        dummy = {k: v for k, v in feed.items() if k != self.input}
        dummy[self.input] = self._dummy(self.input, specs, b)

        def step(tokens: np.ndarray) -> np.ndarray:
            return np.asarray(run(sess, [self.logits], {**dummy, self.tokens: tokens, self.features: enc})[0])

        ids, first = greedy(step, self._prompt(b, specs), self)
        fields = [("ids", np.int32, (self.max_tokens,))] + ([("first", np.float32, first.shape[1:])]
                                                            if self.first_scores else [])
        out = np.zeros(b, dtype=fields)
        out["ids"] = ids
        if self.first_scores:
            out["first"] = first
        return [out if n == self.logits else np.asarray(enc) for n in names]

    # --- helpers ---

    def _prompt(self, batch: int, specs: list[InputSpec]) -> np.ndarray:
        spec = _spec(specs, self.tokens)
        return np.tile(np.asarray(self.start, dtype=np_dtype(spec)), (batch, 1))

    def _dummy(self, name: str, specs: list[InputSpec], batch: int) -> np.ndarray:
        """Zeros for the path not run: the batch, the fixed sizes, 2 along each dynamic axis (an
        even length: a stride-2 encoder keeps one step)."""
        spec = _spec(specs, name)
        shape = [batch] + [d if d is not None else 2 for d in spec.shape[1:]]
        return np.zeros(shape, dtype=np_dtype(spec))


def _spec(specs: list[InputSpec], name: str) -> InputSpec:
    for s in specs:
        if s.name == name:
            return s
    raise QuantzooError(f"the model has no input {name!r} (preprocessing params.decode); its inputs are "
                        f"{', '.join(s.name for s in specs)}")


def greedy(step: Callable[[np.ndarray], np.ndarray], prompt: np.ndarray, d: Decode) -> tuple[np.ndarray, np.ndarray]:
    """Greedy decoding: `step(tokens [B, L]) -> scores [B, V]` of the next token, from `prompt`
    [B, P], at most ``d.max_tokens`` steps, suppressions applied. Returns the generated ids
    [B, max_tokens] (int32, `PAD` from each sequence's end on) and the first step's scores [B, V]
    as the model gave them.

    >>> table = np.eye(5)[[1, 2, 3, 0, 0]] * 10  # after token t the best next one is table[t]
    >>> d = Decode("x", "e", "f", "t", "l", start=(0,), end=3, max_tokens=5)
    >>> ids, first = greedy(lambda toks: table[toks[:, -1]], np.array([[0], [2]]), d)
    >>> ids.tolist(), first[1].tolist()
    ([[1, 2, -1, -1, -1], [-1, -1, -1, -1, -1]], [0.0, 0.0, 0.0, 10.0, 0.0])
    """
    tokens = np.asarray(prompt)
    b = tokens.shape[0]
    out = np.full((b, d.max_tokens), PAD, dtype=np.int32)
    done = np.zeros(b, dtype=bool)
    first = None
    for i in range(d.max_tokens):
        scores = np.array(step(tokens), dtype=np.float32).reshape(b, -1)
        if first is None:
            first = scores.copy()
        scores[:, list(d.suppress)] = -np.inf
        if d.suppress_from is not None:
            scores[:, d.suppress_from:] = -np.inf
        if i == 0:
            scores[:, list(d.suppress_first)] = -np.inf
        nxt = np.argmax(scores, axis=1).astype(tokens.dtype)
        nxt[done] = d.end
        done |= nxt == d.end
        out[~done, i] = nxt[~done]
        if done.all():
            break
        tokens = np.concatenate([tokens, nxt[:, None]], axis=1)
    return out, first


def decode_of(params: dict, specs: list[InputSpec], outputs: list[str], model_file: str) -> Decode | None:
    """The `Decode` of a preprocessing's ``decode`` param, checked against the model's inputs and
    outputs (None when the model is not decoded).

    >>> spec = [InputSpec(n, "tensor(float)", (None, None)) for n in ("m", "t", "f")]
    >>> decode_of({"decode": {"input": "m", "encoded": "e", "features": "f", "tokens": "t", "logits": "l",
    ...                       "start": [1], "end": 2}}, spec, ["e", "l"], "m.onnx").start
    (1,)
    """
    raw = params.get("decode")
    if not raw:
        return None
    where = "preprocessing params.decode"
    need = ("input", "encoded", "features", "tokens", "logits", "start", "end")
    if not isinstance(raw, dict) or any(k not in raw for k in need):
        raise QuantzooError(f"{where} must be a mapping with {', '.join(need)} (found {raw!r}); see "
                            "ARCHITECTURE.md, 'Sequence-to-sequence models'")
    d = Decode(str(raw["input"]), str(raw["encoded"]), str(raw["features"]), str(raw["tokens"]), str(raw["logits"]),
               tuple(int(t) for t in raw["start"]), int(raw["end"]), int(raw.get("max_tokens", 40)),
               tuple(int(t) for t in raw.get("suppress") or ()),
               int(raw["suppress_from"]) if raw.get("suppress_from") is not None else None,
               tuple(int(t) for t in raw.get("suppress_first") or ()), bool(raw.get("first_scores", False)))
    inputs = {s.name for s in specs}
    for what, name, known in (("input", d.input, inputs), ("features", d.features, inputs), ("tokens", d.tokens, inputs),
                              ("encoded", d.encoded, set(outputs)), ("logits", d.logits, set(outputs))):
        if name not in known:
            kind = "input" if known is inputs else "output"
            raise QuantzooError(f"{where}.{what} names {name!r}, which is not an {kind} of {model_file}; "
                                f"its {kind}s are {', '.join(sorted(known))}")
    if d.max_tokens <= 0 or not d.start:
        raise QuantzooError(f"{where}: max_tokens must be > 0 and start a non-empty list (found {d.max_tokens}, "
                            f"{list(d.start)})")
    return d
