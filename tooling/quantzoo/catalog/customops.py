"""A model's custom ops in index.json: what a client must register to run the model, and where
the implementation is (`quantzoo.customops` for the classes themselves).

    "custom_ops": [{"op": "GridSampler", "domain": "ai.quantzoo.seed", "class": "grid_sampler:GridSampler",
                    "description": "...", "attributes": {"output_height": 16, "output_width": 16}, "nodes": 1,
                    "implementation": {"file": "files/stn-digits/grid_sampler.py", "size": 2681, "sha256": "..."}}]

``attributes`` are those of the op's first node (``nodes`` counts its nodes); ``implementation``
is null when the class is not published with the site (the user brings it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .fields import Entry, FileEntry, kind_of, parse_unique

_CLASS = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class CustomOpEntry(Entry):
    """One custom op of a model: its node, its parameters and its implementation class and file.

    >>> e = CustomOpEntry.from_json({"op": "Scale", "domain": "ai.example", "class": "scale:Scale",
    ...     "attributes": {"factor": 2.0}, "implementation": None}, "custom_ops[0]")
    >>> e.key, e.class_name, e.to_json()["nodes"]
    ('ai.example.Scale', 'Scale', 1)
    """

    op: str
    domain: str
    cls: str | None = None                      # "module:Class", written as "class"
    description: str | None = None
    attributes: dict = field(default_factory=dict)
    nodes: int = 1
    implementation: FileEntry | None = None     # the class's source file in the site

    @property
    def key(self) -> str:
        """``domain.OpType``, the key `quantzoo.customops` takes."""
        return f"{self.domain}.{self.op}"

    @property
    def class_name(self) -> str | None:
        return self.cls.rpartition(":")[2] if self.cls else None

    def to_json(self) -> dict:
        return {"attributes": self.attributes, "class": self.cls, "description": self.description,
                "domain": self.domain, "implementation": self.implementation.to_json() if self.implementation else None,
                "nodes": self.nodes, "op": self.op}

    @classmethod
    def _parse(cls, doc: Any, key: str, problems: list[str]) -> CustomOpEntry | None:
        if not isinstance(doc, dict):
            problems.append(f"{key}: expected {{op, domain, class, attributes, implementation}}, found {kind_of(doc)}")
            return None
        before = len(problems)
        for name in ("op", "domain"):
            if not isinstance(doc.get(name), str) or not doc.get(name):
                problems.append(f"{key}.{name}: expected a non-empty string, found {kind_of(doc.get(name))}")
        spec = doc.get("class")
        if spec is not None and not (isinstance(spec, str) and _CLASS.match(spec)):
            problems.append(f"{key}.class: expected 'module:Class' or null, found {json.dumps(spec)[:60]}")
        attrs = doc.get("attributes", {})
        if not isinstance(attrs, dict):
            problems.append(f"{key}.attributes: expected {{name: value}}, found {kind_of(attrs)}")
        nodes = doc.get("nodes", 1)
        if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
            problems.append(f"{key}.nodes: expected a node count >= 1, found {nodes!r}")
        impl = doc.get("implementation")
        impl = FileEntry._parse(impl, f"{key}.implementation", problems) if impl is not None else None
        if len(problems) > before:
            return None
        desc = doc.get("description")
        return cls(doc["op"], doc["domain"], spec, desc if isinstance(desc, str) else None, attrs, nodes, impl)


def parse_custom_ops(doc: Any, key: str, problems: list[str]) -> tuple[CustomOpEntry, ...]:
    """A model's ``custom_ops`` list; two entries for one op are a problem."""
    return parse_unique(doc, key, problems, CustomOpEntry._parse, lambda o: o.key,
                        "a list of custom ops", "an op is listed twice")
