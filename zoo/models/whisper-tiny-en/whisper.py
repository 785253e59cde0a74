"""Whisper (openai-whisper 20250625, whisper/model.py, MIT License, Copyright (c) 2022 OpenAI) as one
network with two entry points, its modules named as CTranslate2 names the variables of a converted
Whisper (``encoder/layer_0/self_attention/linear_0/weight`` ...), so a CTranslate2 ``model.bin``
loads strictly: the query, key and value projections are one fused linear (``linear_0``; the key has
no bias in Whisper, CTranslate2 stores zeros), cross-attention keeps the query (``linear_0``) apart
from the fused key and value (``linear_1``), layer norms are ``gamma``/``beta``, the positional
embeddings are stored (``position_encodings/encodings``) and the output projection is the token
embedding (CTranslate2's alias ``decoder/projection/weight``).

``forward(mel, tokens, encoded_in) -> (encoded, logits)``:

- ``encoded``: log-mel [B, 80, T] (T even, at most 3000) -> the encoder's output [B, T/2, 384]
  already projected to every decoder layer's cross-attention keys and values, [B, T/2, 4·2·384]
  (layer 0's keys, layer 0's values, layer 1's keys ...), so a decoding step does not project the
  audio again; the positional embedding is cut to T/2, so audio shorter than Whisper's 30 s is not
  padded to 30 s;
- ``logits``: the next-token scores [B, 51864] after the tokens [B, L] (L at most 448), attending
  to ``encoded_in`` (an ``encoded``).

The two paths share no node, so a caller asks for one output and feeds the other path's input a
one-step dummy (ARCHITECTURE.md, "Sequence-to-sequence models").
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(n))
        self.beta = nn.Parameter(torch.zeros(n))
        self.n = n

    def forward(self, x):
        return F.layer_norm(x, (self.n,), self.gamma, self.beta, 1e-5)


class Projections(nn.Module):
    """``layer_norm`` then numbered linears ``linear_0`` ... (CTranslate2's sub-layer layout)."""

    def __init__(self, n_state: int, outs: list[int], ins: list[int] | None = None):
        super().__init__()
        self.layer_norm = LayerNorm(n_state)
        for i, o in enumerate(outs):
            setattr(self, f"linear_{i}", nn.Linear((ins or [n_state] * len(outs))[i], o))


def attention(q, k, v, n_head: int, mask=None):
    """Whisper's qkv_attention: [B, L, C] each -> [B, L, C]."""
    b, lq, c = q.shape
    scale = (c // n_head) ** -0.25
    q = q.view(b, lq, n_head, -1).permute(0, 2, 1, 3) * scale
    k = k.view(b, k.shape[1], n_head, -1).permute(0, 2, 3, 1) * scale
    v = v.view(b, v.shape[1], n_head, -1).permute(0, 2, 1, 3)
    qk = q @ k
    if mask is not None:
        qk = qk + mask
    w = torch.softmax(qk.float(), dim=-1)
    return (w @ v).permute(0, 2, 1, 3).flatten(start_dim=2)


class Block(nn.Module):
    def __init__(self, n_state: int, n_head: int, cross: bool):
        super().__init__()
        self.n_head = n_head
        self.self_attention = Projections(n_state, [3 * n_state, n_state])
        if cross:
            self.attention = Projections(n_state, [n_state, 2 * n_state, n_state])
        self.ffn = Projections(n_state, [4 * n_state, n_state], [n_state, 4 * n_state])

    def forward(self, x, kv=None, mask=None):
        """`kv`: this layer's cross-attention keys and values of the audio [B, T, 2·C] (`cross_kv`)."""
        sa = self.self_attention
        q, k, v = sa.linear_0(sa.layer_norm(x)).chunk(3, dim=-1)
        x = x + sa.linear_1(attention(q, k, v, self.n_head, mask))
        if kv is not None:
            ca = self.attention
            q = ca.linear_0(ca.layer_norm(x))
            k, v = kv.chunk(2, dim=-1)
            x = x + ca.linear_2(attention(q, k, v, self.n_head))
        f = self.ffn
        return x + f.linear_1(F.gelu(f.linear_0(f.layer_norm(x))))


class Encodings(nn.Module):
    def __init__(self, n_ctx: int, n_state: int):
        super().__init__()
        self.encodings = nn.Parameter(torch.zeros(n_ctx, n_state))


class Embeddings(nn.Module):
    def __init__(self, n_vocab: int, n_state: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_vocab, n_state))


class Stack(nn.Module):
    def __init__(self, n_layer: int, n_state: int, n_head: int, n_ctx: int, cross: bool):
        super().__init__()
        self.n_layer = n_layer
        self.position_encodings = Encodings(n_ctx, n_state)
        for i in range(n_layer):
            setattr(self, f"layer_{i}", Block(n_state, n_head, cross))
        self.layer_norm = LayerNorm(n_state)

    def blocks(self):
        return [getattr(self, f"layer_{i}") for i in range(self.n_layer)]


class Encoder(Stack):
    def __init__(self, n_mels, n_ctx, n_state, n_head, n_layer):
        super().__init__(n_layer, n_state, n_head, n_ctx, cross=False)
        self.conv1 = nn.Conv1d(n_mels, n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(n_state, n_state, kernel_size=3, stride=2, padding=1)

    def forward(self, mel):
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).permute(0, 2, 1)
        x = x + self.position_encodings.encodings[:x.shape[1]]
        for block in self.blocks():
            x = block(x)
        return self.layer_norm(x)


class Decoder(Stack):
    def __init__(self, n_vocab, n_ctx, n_state, n_head, n_layer):
        super().__init__(n_layer, n_state, n_head, n_ctx, cross=True)
        self.embeddings = Embeddings(n_vocab, n_state)

    def cross_kv(self, xa):
        """The encoder output [B, T, C] -> every layer's cross-attention keys and values [B, T, layers·2·C]."""
        return torch.cat([block.attention.linear_1(xa) for block in self.blocks()], dim=-1)

    def forward(self, tokens, kv):
        b, n = tokens.shape
        # the lookup and the output projection read one [C, V] matrix (the exporter folds the
        # transpose into the stored weight): two layouts would store the 51864 x 384 table twice
        table = self.embeddings.weight.t()
        x = torch.index_select(table, 1, tokens.reshape(-1)).t().reshape(b, n, -1)
        x = x + self.position_encodings.encodings[:n]
        mask = torch.full((n, n), -math.inf).triu(1)
        for block, layer_kv in zip(self.blocks(), kv.chunk(self.n_layer, dim=-1)):
            x = block(x, layer_kv, mask)
        return self.layer_norm(x[:, -1]) @ table


class Whisper(nn.Module):
    """Whisper tiny.en's dimensions by default: 80 mels, 1500 audio and 448 text positions, 384
    wide, 6 heads, 4 layers each side, 51864 tokens."""

    def __init__(self, n_mels=80, n_audio_ctx=1500, n_vocab=51864, n_text_ctx=448, n_state=384, n_head=6,
                 n_layer=4):
        super().__init__()
        self.encoder = Encoder(n_mels, n_audio_ctx, n_state, n_head, n_layer)
        self.decoder = Decoder(n_vocab, n_text_ctx, n_state, n_head, n_layer)

    def forward(self, mel, tokens, encoded_in):
        return self.decoder.cross_kv(self.encoder(mel)), self.decoder(tokens, encoded_in)


def build(**dims):
    """Whisper with `dims` (tiny.en's by default), in eval mode."""
    return Whisper(**dims).eval()


def read_weights(path):
    """A CTranslate2 Whisper ``model.bin`` as a state dict of float32 tensors: every floating
    variable (fp16 in the file) under its dotted name; the integer scalars (head count, flags) are
    configuration, and the alias of the output projection is the token embedding itself."""
    from quantzoo.fetch.ctranslate2 import read_model

    m = read_model(path)
    return {k.replace("/", "."): torch.from_numpy(np.asarray(v, dtype=np.float32))
            for k, v in m.variables.items() if v.dtype.kind == "f"}
