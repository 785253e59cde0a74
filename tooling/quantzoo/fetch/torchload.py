"""Reading a `pytorch` source's weights and building its network (for `convert`).

`read_weights` gives the state dict: ``torch.load(weights_only=True)`` (tensors only, never
pickled code; `state_dict_key` picks an entry of a saved checkpoint), or the manifest's
``architecture.weights_reader`` for a file that is not a torch state dict (CTranslate2,
safetensors). `build_model` calls the architecture's builder and loads the weights strictly: a
missing, unexpected or mis-shaped key is one error naming them (`state_dict_mismatch`,
`mismatch_message`). See ARCHITECTURE.md, "Fetch".
"""

from __future__ import annotations

from pathlib import Path

from ..errors import QuantzooError
from .architecture import ConversionError, load_builder

TORCH_INSTALL_HINT = ("install it with `pip install torch==2.13.0` (the CPU build; a plain `torch` "
                      "requirement pulls several GB of CUDA wheels) and then `pip install 'quantzoo[torch]'`")


def state_dict_mismatch(expected: dict[str, tuple], found: dict[str, tuple]) -> dict[str, list]:
    """Keys missing from the weights, keys the architecture does not have, and shape mismatches,
    from two {name: shape} mappings.

    >>> state_dict_mismatch({"a": (2, 3), "b": (4,)}, {"a": (3, 3), "c": (1,)})
    {'missing': ['b'], 'unexpected': ['c'], 'shape': [('a', (2, 3), (3, 3))]}
    """
    return {
        "missing": sorted(k for k in expected if k not in found),
        "unexpected": sorted(k for k in found if k not in expected),
        "shape": sorted((k, tuple(expected[k]), tuple(found[k])) for k in expected
                        if k in found and tuple(expected[k]) != tuple(found[k])),
    }


def _names(items: list, limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


def mismatch_message(m: dict[str, list], weights: str, builder: str) -> str:
    """One readable error for a `state_dict_mismatch` result (empty string when it matched)."""
    parts = []
    if m["missing"]:
        parts.append(f"{len(m['missing'])} missing from the weights ({_names(m['missing'])})")
    if m["unexpected"]:
        parts.append(f"{len(m['unexpected'])} not in the architecture ({_names(m['unexpected'])})")
    if m["shape"]:
        shapes = [f"{k}: architecture {list(a)} vs weights {list(b)}" for k, a, b in m["shape"]]
        parts.append(f"{len(m['shape'])} with a different shape ({_names(shapes, 4)})")
    if not parts:
        return ""
    return (f"the weights {weights} do not match the architecture {builder}: " + "; ".join(parts)
            + ". Check architecture.builder, args and kwargs in the manifest: they must build the network "
              "these weights were saved from.")


def require_torch():
    try:
        import torch
    except ImportError:
        raise QuantzooError(f"converting a pytorch source needs torch, which is not installed; "
                            f"{TORCH_INSTALL_HINT}") from None
    return torch


def load_state_dict(path: Path, where: str, key: str | None = None) -> dict:
    """A state dict of tensors, read safely (``weights_only=True``: no code runs); with `key`, the
    state dict is that entry of a saved checkpoint dict (``{"step": …, "model_state": {…}, …}``)."""
    torch = require_torch()
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError … for bad files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConversionError(
            f"cannot read the weights {where} as a PyTorch state dict with weights_only=True: {first}. "
            "quantzoo loads tensors only, never pickled code; the file must be a state dict saved with "
            "torch.save(model.state_dict(), path).") from None
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            found = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, dict) else type(obj).__name__
            raise ConversionError(f"the weights {where} have no entry {key!r} (source.state_dict_key); found: {found}")
        obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        kind = type(obj).__name__
        raise ConversionError(f"the weights {where} hold a {kind}, not a state dict (a mapping of names to "
                              "tensors); save them with torch.save(model.state_dict(), path)")
    return obj


def read_weights(source: dict, path: Path, root: Path | None, where: str) -> dict:
    """The state dict of `source`'s weights: ``torch.load`` (`load_state_dict`), or the
    architecture's ``weights_reader`` (``module:callable``, path -> {name: tensor or array}) for
    weights in another format (a CTranslate2 ``model.bin``, safetensors)."""
    arch = source["architecture"]
    if not arch.get("weights_reader"):
        return load_state_dict(path, where, source.get("state_dict_key"))
    torch = require_torch()
    reader = load_builder(arch, root, arch["weights_reader"], "architecture.weights_reader")
    try:
        obj = reader(path)
    except QuantzooError:
        raise
    except Exception as e:  # the reader is the model's own code: name it and the file
        raise ConversionError(f"architecture.weights_reader {arch['weights_reader']} failed on {where}: "
                              f"{type(e).__name__}: {e}") from None
    if not isinstance(obj, dict):
        raise ConversionError(f"architecture.weights_reader {arch['weights_reader']} returned a {type(obj).__name__}, "
                              "expected a mapping of names to tensors")
    return {k: v if isinstance(v, torch.Tensor) else torch.as_tensor(v) for k, v in obj.items()}


def build_model(arch: dict, root: Path | None, state: dict, where: str):
    """The built network with `state` loaded, in eval mode; a mismatch is one named error."""
    builder = load_builder(arch, root)
    desc = arch["builder"] + "(" + ", ".join(
        [repr(a) for a in arch.get("args") or []] + [f"{k}={v!r}" for k, v in (arch.get("kwargs") or {}).items()]) + ")"
    try:
        model = builder(*(arch.get("args") or []), **(arch.get("kwargs") or {}))
    except Exception as e:
        raise ConversionError(f"the architecture builder {desc} failed: {type(e).__name__}: {e}") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    msg = mismatch_message(state_dict_mismatch(expected, found), where, desc)
    if msg:
        raise ConversionError(msg)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model
