"""Photo dataset adapters: fixed views of photographs, styles, mattes, class indices, quarter turns.

Each function is a `datasets.DatasetAdapter`'s ``read``; `photo_of` is their ``cluster`` (the
intervals count photos, not views). The pixel work lives in `augment`, `photosets` and
`labelling`; this module turns folders of photos into `samples.Sample` lists
(ARCHITECTURE.md, "How to add a dataset adapter or a preprocessor").
"""

from __future__ import annotations

from pathlib import Path

from .augment import augment, view_tag
from .photosets import matted_rows, styled_rows
from .samples import Sample, globs, images_dataset, thin
from .tiles import stack_files, tiled_pictures
from . import labelling


def augmented_images(root: Path, params: dict, skipped: list) -> list[Sample]:
    """Every photo under `root` in a fixed grid of views: each of ``crops`` ([fraction, anchor]
    pairs; default [[1, center]]) × ``flips`` ([false]) × ``rotations`` (degrees; [0]). The
    unchanged view's key is the photo's path, the others' ``<path>#<view>`` (e.g.
    ``coffee.png#crop0.8-top-left+flip+rot-8``). ``classes`` maps a photo's file name to its
    label (photos not listed are unlabelled); ``max_shorter_side`` shrinks each view; ``limit``
    thins the views, evenly. ``tiles`` adds pictures tiled from image stacks (`tiles`), photos
    like the others.

    >>> import tempfile, pathlib; from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp()); Image.new("RGB", (64, 48)).save(d / "a.png")
    >>> s = augmented_images(d, {"flips": [False, True], "rotations": [0, 5], "classes": {"a.png": "x"}}, [])
    >>> [(x.key, x.label) for x in s]
    [('a.png', 'x'), ('a.png#rot+5', 'x'), ('a.png#flip', 'x'), ('a.png#flip+rot+5', 'x')]
    """
    crops = params.get("crops") or [[1.0, "center"]]
    flips = params.get("flips") or [False]
    rotations = params.get("rotations") or [0]
    classes = params.get("classes") or {}
    views = [(float(c[0]), str(c[1]) if len(c) > 1 else "center", bool(f), float(r))
             for c in crops for f in flips for r in rotations]
    photos = images_dataset(root, {**{k: v for k, v in params.items() if k != "limit"},
                                   "exclude": globs(params, "exclude") + stack_files(params.get("tiles"))}, skipped)
    photos += [Sample(key, img, None) for key, img in tiled_pictures(root, params.get("tiles"))]
    out = []
    for photo in photos:
        name = photo.key.rsplit("/", 1)[-1]
        label = classes.get(photo.key, classes.get(name))
        for fraction, anchor, flip, angle in views:
            tag = view_tag(fraction, anchor, flip, angle)
            img = augment(photo.data, fraction, anchor, flip, angle, params.get("max_shorter_side"))
            out.append(Sample(f"{photo.key}#{tag}" if tag else photo.key, img,
                              None if label is None else str(label)))
    return thin(out, params.get("limit"))


def photo_of(key: str) -> str:
    """The photo a view's sample key was cut from (``<photo>#<view>``, see `augmented_images`).

    >>> photo_of("coffee.png#crop0.8-top-left+flip"), photo_of("coffee.png")
    ('coffee.png', 'coffee.png')
    """
    return key.split("#", 1)[0]


def styled_photos(root: Path, params: dict, skipped: list) -> list[Sample]:
    """Every photo (``include``/``exclude`` as for ``images``) in each style of ``styles``: keys
    ``<photo>#style-<i>`` (`photosets.styled_rows`), read by the ``styled-image`` preprocessor."""
    photos = images_dataset(root, {k: v for k, v in params.items() if k != "limit"}, skipped)
    return thin([Sample(*row) for row in styled_rows([(s.key, s.data) for s in photos], params)], params.get("limit"))


def matted_photos(root: Path, params: dict, skipped: list) -> list[Sample]:
    """Every photo, labelled with its reference matte where ``mattes`` names one
    (`photosets.matted_rows`: the label is the matte binarised at 0.5, `imagemetrics.encode_mask`)."""
    photos = images_dataset(root, {k: v for k, v in params.items() if k not in ("labels", "limit")}, skipped)
    return thin([Sample(*row) for row in matted_rows(root, [(s.key, s.data) for s in photos], params)],
                params.get("limit"))


def class_index_views(root: Path, params: dict, skipped: list) -> list[Sample]:
    """`augmented_images`, each photo labelled by the class index in its file name
    (`labelling.label_by_class_index`: ``class_pattern``, ``class_names``)."""
    return labelling.label_by_class_index(augmented_images(root, params, skipped), root, params)


def quarter_turns(root: Path, params: dict, skipped: list) -> list[Sample]:
    """Every image turned by quarter turns and labelled by the angle (`labelling.turned`)."""
    pages = images_dataset(root, {k: v for k, v in params.items() if k not in ("labels", "limit")}, skipped)
    return thin(labelling.turned(pages, params), params.get("limit"))
