"""all-MiniLM-L6-v2 as sentence-transformers runs it: a BERT encoder (Hugging Face transformers'
BertModel, absolute positions, GELU, post-layer-norm), then the mean of the token vectors over the
attention mask, then L2 normalisation. Written out here because the transformers and
sentence-transformers packages are not dependencies. Parameter names and shapes are BertModel's,
so the model.safetensors of the pinned package loads strictly (its unused pooler included).

Inputs: ``input_ids`` and ``attention_mask``, int64 [N, L] (L ≤ 512); token type ids are all 0
for one sentence, so row 0 of the token type table is added and they are not an input. Output:
``embedding`` [N, 384], unit length. See ARCHITECTURE.md, "Text embeddings".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MASKED = -10000.0  # added to the attention scores of padding positions (softmax weight exactly 0 in float32)


class Embeddings(nn.Module):
    def __init__(self, vocab: int, hidden: int, positions: int, types: int, eps: float):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.token_type_embeddings = nn.Embedding(types, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.register_buffer("position_ids", torch.arange(positions, dtype=torch.int64)[None, :])

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        x = self.word_embeddings(input_ids)
        x = x + self.position_embeddings(self.position_ids[:, :length])
        x = x + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads, self.size = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape
        return x.view(n, length, self.heads, self.size).transpose(1, 2)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.size) + bias
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        n, _, length, _ = ctx.shape
        return ctx.transpose(1, 2).reshape(n, length, self.heads * self.size)


class DenseNorm(nn.Module):
    """dense, then LayerNorm of (dense output + residual): BertSelfOutput and BertOutput."""

    def __init__(self, d_in: int, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(d_in, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, eps: float):
        super().__init__()
        self.self = SelfAttention(hidden, heads)
        self.output = DenseNorm(hidden, hidden, eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, bias), x)


class Intermediate(nn.Module):
    def __init__(self, hidden: int, inner: int):
        super().__init__()
        self.dense = nn.Linear(hidden, inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # exact (erf) GELU, BERT's "gelu"


class Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, inner: int, eps: float):
        super().__init__()
        self.attention = Attention(hidden, heads, eps)
        self.intermediate = Intermediate(hidden, inner)
        self.output = DenseNorm(inner, hidden, eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        a = self.attention(x, bias)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, layers: int, hidden: int, heads: int, inner: int, eps: float):
        super().__init__()
        self.layer = nn.ModuleList([Layer(hidden, heads, inner, eps) for _ in range(layers)])

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, bias)
        return x


class Pooler(nn.Module):
    """BertModel's pooler: its weights are in the file, sentence-transformers does not use it."""

    def __init__(self, hidden: int):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)


class SentenceBert(nn.Module):
    """BERT encoder + masked mean pooling + L2 normalisation (sentence-transformers' Transformer,
    Pooling(mean) and Normalize modules)."""

    def __init__(self, vocab: int = 30522, hidden: int = 384, layers: int = 6, heads: int = 12,
                 inner: int = 1536, positions: int = 512, types: int = 2, eps: float = 1e-12):
        super().__init__()
        self.embeddings = Embeddings(vocab, hidden, positions, types, eps)
        self.encoder = Encoder(layers, hidden, heads, inner, eps)
        self.pooler = Pooler(hidden)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.to(torch.float32)
        bias = ((1.0 - mask) * MASKED)[:, None, None, :]
        h = self.encoder(self.embeddings(input_ids), bias)
        w = mask[:, :, None]
        mean = (h * w).sum(dim=1) / torch.clamp(w.sum(dim=1), min=1e-9)
        # F.normalize(mean, dim=1, eps=1e-12), written so the exported output keeps its static width
        return mean / torch.clamp(torch.sqrt((mean * mean).sum(dim=1, keepdim=True)), min=1e-12)


def build(**config) -> SentenceBert:
    """all-MiniLM-L6-v2's network (its config.json by default), in eval mode."""
    return SentenceBert(**config).eval()

