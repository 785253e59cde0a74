"""Resemblyzer's voice encoder as Resemblyzer 0.1.4 defines it (resemblyzer/voice_encoder.py and
resemblyzer/hparams.py, Apache License 2.0, Copyright (c) 2019 Resemble AI / Corentin Jemine),
written out here because importing the resemblyzer package pulls in librosa and webrtcvad. Layers,
names and shapes are unchanged, so the ``model_state`` of resemblyzer/pretrained.pt loads strictly
(its ``similarity_weight`` and ``similarity_bias``, the scale and offset of the training loss's
similarity matrix, are kept as parameters and unused, as in upstream). Input: [N, T, 40] mel
frames (16 kHz, 25 ms windows, 10 ms hop, 40 channels, power, not log; T = 160 frames = 1.6 s per
partial utterance upstream); output: [N, 256] embeddings, non-negative and L2-normalised."""

import torch
from torch import nn

MEL_CHANNELS = 40
HIDDEN = 256
EMBEDDING = 256
LAYERS = 3


class VoiceEncoder(nn.Module):
    def __init__(self, mel_n_channels=MEL_CHANNELS, hidden=HIDDEN, embedding=EMBEDDING, layers=LAYERS):
        super().__init__()
        self.lstm = nn.LSTM(mel_n_channels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, embedding)
        self.relu = nn.ReLU()
        self.similarity_weight = nn.Parameter(torch.tensor([10.0]))
        self.similarity_bias = nn.Parameter(torch.tensor([-5.0]))

    def forward(self, mels):
        # the final hidden state of the last layer, a linear layer, ReLU and L2 normalisation
        _, (hidden, _) = self.lstm(mels)
        embeds_raw = self.relu(self.linear(hidden[-1]))
        return embeds_raw / torch.norm(embeds_raw, dim=1, keepdim=True)


def build(mel_n_channels=MEL_CHANNELS, hidden=HIDDEN, embedding=EMBEDDING, layers=LAYERS):
    """Resemblyzer's VoiceEncoder network (without its weights loading and device logic), in eval mode."""
    return VoiceEncoder(mel_n_channels, hidden, embedding, layers).eval()
