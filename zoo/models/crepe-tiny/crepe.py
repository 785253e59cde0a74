"""CREPE's network as torchcrepe 0.0.24 defines it (torchcrepe/model.py, MIT License, Copyright (c)
2020 Max Morrison), written out here because importing the torchcrepe package pulls in librosa,
resampy and torchaudio. Layers, names and shapes are unchanged, so torchcrepe's state dicts
(torchcrepe/assets/tiny.pth) load strictly. Input: [N, 1024] windows at 16 kHz, each normalised
to zero mean and unit standard deviation; output: [N, 360] pitch-bin probabilities (sigmoid),
bins of 20 cents from 1997.38 cents above 10 Hz (about 31.7 Hz)."""

import functools

import torch
import torch.nn.functional as F

PITCH_BINS = 360


class Crepe(torch.nn.Module):
    def __init__(self, model="full"):
        super().__init__()
        if model == "full":
            in_channels = [1, 1024, 128, 128, 128, 256]
            out_channels = [1024, 128, 128, 128, 256, 512]
            self.in_features = 2048
        elif model == "tiny":
            in_channels = [1, 128, 16, 16, 16, 32]
            out_channels = [128, 16, 16, 16, 32, 64]
            self.in_features = 256
        else:
            raise ValueError(f"Model {model} is not supported")
        kernel_sizes = [(512, 1)] + 5 * [(64, 1)]
        strides = [(4, 1)] + 5 * [(1, 1)]
        batch_norm_fn = functools.partial(torch.nn.BatchNorm2d, eps=0.0010000000474974513, momentum=0.0)
        for i in range(6):
            setattr(self, f"conv{i + 1}", torch.nn.Conv2d(in_channels[i], out_channels[i], kernel_sizes[i], strides[i]))
            setattr(self, f"conv{i + 1}_BN", batch_norm_fn(num_features=out_channels[i]))
        self.classifier = torch.nn.Linear(in_features=self.in_features, out_features=PITCH_BINS)

    def forward(self, x, embed=False):
        x = self.embed(x)
        if embed:
            return x
        x = self.layer(x, self.conv6, self.conv6_BN)
        x = x.permute(0, 2, 1, 3).reshape(-1, self.in_features)
        return torch.sigmoid(self.classifier(x))

    def embed(self, x):
        x = x[:, None, :, None]
        x = self.layer(x, self.conv1, self.conv1_BN, (0, 0, 254, 254))
        x = self.layer(x, self.conv2, self.conv2_BN)
        x = self.layer(x, self.conv3, self.conv3_BN)
        x = self.layer(x, self.conv4, self.conv4_BN)
        x = self.layer(x, self.conv5, self.conv5_BN)
        return x

    def layer(self, x, conv, batch_norm, padding=(0, 0, 31, 32)):
        x = F.pad(x, padding)
        x = conv(x)
        x = F.relu(x)
        x = batch_norm(x)
        return F.max_pool2d(x, (2, 1), (2, 1))


def build(model="tiny"):
    """torchcrepe's Crepe(model), in eval mode."""
    return Crepe(model).eval()
