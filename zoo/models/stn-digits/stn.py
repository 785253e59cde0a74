"""stn-digits: a spatial transformer digit classifier (Jaderberg et al., 2015) for 8×8 digits.

A localisation network reads the digit and predicts an affine transform; the grid sampler
renders the digit again through it at 16×16, focused on the strokes; a small CNN classifies
the result. The grid sampler is a custom layer: `convert_grid_sampler` tells quantzoo to export
it as one ``ai.quantzoo.seed.GridSampler`` node with its parameters, and grid_sampler.py holds
the numpy implementation that runs that node in onnxruntime.
"""

import torch
import torch.nn.functional as F
from torch import nn


class GridSampler(nn.Module):
    """Bilinear sampling of the input on the affine grid theta gives, at output_height × output_width."""

    def __init__(self, output_height=16, output_width=16):
        super().__init__()
        self.output_height = output_height
        self.output_width = output_width

    def forward(self, image, theta):
        size = [image.shape[0], image.shape[1], self.output_height, self.output_width]
        grid = F.affine_grid(theta, size, align_corners=False)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def convert_grid_sampler(module):
    """The custom node for a GridSampler module: quantzoo's `custom_layers` conversion function."""
    return {"op_type": "GridSampler", "domain": "ai.quantzoo.seed",
            "attributes": {"output_height": module.output_height, "output_width": module.output_width},
            "description": "Spatial transformer grid sampler: resamples the image [N, C, H, W] bilinearly "
                           "(zero padding, align_corners=False) on the affine grid of theta [N, 2, 3], giving "
                           "[N, C, output_height, output_width]."}


class STNDigits(nn.Module):
    """8×8 digit (pixels 0..1) -> localisation -> GridSampler (16×16) -> CNN -> 10 logits."""

    def __init__(self, size=16):
        super().__init__()
        self.localisation = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 6))
        nn.init.zeros_(self.localisation[-1].weight)  # start at the identity transform
        with torch.no_grad():
            self.localisation[-1].bias.copy_(torch.tensor([1.0, 0, 0, 0, 1.0, 0]))
        self.sampler = GridSampler(size, size)
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * (size // 4) ** 2, 64), nn.ReLU(),
                                        nn.Linear(64, 10))

    def forward(self, x):
        theta = self.localisation(x).view(-1, 2, 3)
        return self.classifier(self.features(self.sampler(x, theta)))


def build():
    return STNDigits()
