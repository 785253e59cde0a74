"""Labels by construction: a photo's class from the class index in its file name, and a page's
orientation from the quarter turn that made the sample.

Both work on samples another reader made (`photos.augmented_images` views, `samples.images_dataset`
pages) and return new ones (`dataclasses.replace`), so this module needs nothing from `datasets`
and `photos` holds the two adapters that use it (``class-index-views``, ``quarter-turns``).
Several samples made from one photo or page keep the ``<photo>#<view>`` key form, so the
adapter's ``cluster`` (`photos.photo_of`) counts photos, not samples, in the intervals
(ARCHITECTURE.md, "Uncertainty and splits").
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import QuantzooError

# foolbox's photos are named imagenet_<NN>_<class index>.jpg
DEFAULT_CLASS_PATTERN = r"_(\d+)\.[A-Za-z]+$"


def class_index(name: str, pattern: str = DEFAULT_CLASS_PATTERN) -> int | None:
    """The class index in a file name: the first group of `pattern` (searched), or None.

    >>> class_index("imagenet_07_609.jpg"), class_index("coffee.png")
    (609, None)
    """
    m = re.search(pattern, name)
    return int(m.group(1)) if m else None


def read_class_names(root: Path, rel: str) -> list[str]:
    """The class names (index order) in the file `rel` under the dataset folder `root`: a JSON
    list, a JSON object ``{"0": name, …}``, or one name per line."""
    path = Path(root) / rel
    if not path.is_file():
        raise QuantzooError(f"class_names: no file {rel!r} in the dataset folder {root}; add the class-names "
                            "file to the dataset's source (a bundle part) or drop class_names to label by index")
    text = path.read_text(encoding="utf-8")
    try:
        value: Any = json.loads(text)
    except ValueError:
        return [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value, key=int)]
    if not isinstance(value, list):
        raise QuantzooError(f"class_names: {path} holds a JSON {type(value).__name__}; expected a list of "
                            "class names in index order")
    return [str(x) for x in value]


def class_label(index: int, names: list[str] | None, where: str) -> str:
    """The label of class `index`: its name when `names` are given (it must be in range and not
    shared with another class, or accuracy would score the other class), else the index itself.

    >>> class_label(1, ["tench", "goldfish"], "a.jpg"), class_label(609, None, "a.jpg")
    ('goldfish', '609')
    """
    if names is None:
        return str(index)
    if not 0 <= index < len(names):
        raise QuantzooError(f"{where}: class index {index} is outside the {len(names)} class names; "
                            "check class_pattern and class_names")
    name = names[index]
    if names.count(name) > 1:
        raise QuantzooError(f"{where}: class {index}'s name {name!r} is shared by classes "
                            f"{[i for i, n in enumerate(names) if n == name]}, so a label by name is ambiguous; "
                            "use a class-names file with unique names, or drop class_names to label by index")
    return name


def label_by_class_index(views: list, root: Path, params: dict) -> list:
    """`views` with the label of the class index in their photo's file name (``class_pattern``,
    default `DEFAULT_CLASS_PATTERN`), as a name from ``class_names`` (a file in `root`) or as the
    index; photos whose name has no index keep the label they had (``classes``).

    >>> from quantzoo.compare.datasets import Sample as S
    >>> vs = [S("d/imagenet_00_243.jpg#flip", None), S("cat.png", None, "tabby")]
    >>> [v.label for v in label_by_class_index(vs, Path("."), {})]
    ['243', 'tabby']
    """
    pattern = str(params.get("class_pattern") or DEFAULT_CLASS_PATTERN)
    names = read_class_names(root, params["class_names"]) if params.get("class_names") else None
    out = []
    for v in views:
        photo = v.key.split("#", 1)[0]
        index = class_index(photo.rsplit("/", 1)[-1], pattern)
        out.append(v if index is None else replace(v, label=class_label(index, names, photo)))
    return out


# --- quarter turns --------------------------------------------------------------------------------

_TURNS = {90: "ROTATE_90", 180: "ROTATE_180", 270: "ROTATE_270"}  # Pillow's, counterclockwise


def quarter_turn(img, angle: int, clockwise: bool = True):
    """`img` turned exactly (no resampling, nothing cut off) by `angle` degrees, a multiple of 90.

    >>> from PIL import Image
    >>> im = Image.new("L", (3, 2)); im.putpixel((0, 0), 255)
    >>> quarter_turn(im, 90).size, quarter_turn(im, 90).getpixel((1, 0)), quarter_turn(im, 90, False).getpixel((0, 2))
    ((2, 3), 255, 255)
    """
    from PIL import Image

    a = int(angle) % 360
    if a % 90:
        raise QuantzooError(f"quarter-turns: angle {angle} is not a multiple of 90")
    if a == 0:
        return img.copy()
    ccw = (360 - a) % 360 if clockwise else a
    return img.transpose(getattr(Image.Transpose, _TURNS[ccw]))


def shrink(img, max_side: int | None):
    """`img` scaled down so its longer side is at most `max_side` (unchanged when it already is)."""
    from PIL import Image

    if not max_side or max(img.size) <= int(max_side):
        return img
    r = int(max_side) / max(img.size)
    return img.resize((max(1, round(img.width * r)), max(1, round(img.height * r))), Image.Resampling.BILINEAR)


def turned(pages: list, params: dict) -> list:
    """Every page at every angle of ``angles`` (default 0, 90, 180, 270), turned ``clockwise``
    (default true) and labelled by the angle (``'90'``); keys ``<page>`` for 0 and
    ``<page>#turn<angle>`` for the others. ``max_side`` shrinks each page first.

    >>> from quantzoo.compare.datasets import Sample; from PIL import Image
    >>> t = turned([Sample("p.png", Image.new("RGB", (4, 2)))], {})
    >>> [(s.key, s.label, s.data.size) for s in t[:2]], [s.key for s in t[2:]]
    ([('p.png', '0', (4, 2)), ('p.png#turn90', '90', (2, 4))], ['p.png#turn180', 'p.png#turn270'])
    """
    angles = [int(a) for a in (params.get("angles") or [0, 90, 180, 270])]
    clockwise = bool(params.get("clockwise", True))
    out = []
    for page in pages:
        img = shrink(page.data.convert("RGB") if page.data.mode not in ("L", "RGB") else page.data,
                     params.get("max_side"))
        for a in angles:
            out.append(replace(page, key=f"{page.key}#turn{a}" if a % 360 else page.key,
                               data=quarter_turn(img, a, clockwise), label=str(a)))
    return out
