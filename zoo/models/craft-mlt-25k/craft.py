"""CRAFT (Baek et al., CVPR 2019) as EasyOCR 1.7.2 builds it (easyocr/craft.py and
easyocr/model/modules.py, MIT and Apache-2.0), without torchvision: the VGG16-BN feature
layers are written out here with torchvision's module indices, so the state dict keys are the
same. `build()` wraps the network as ``module`` because EasyOCR's craft_mlt_25k.pth was saved
from a DataParallel (every key starts with ``module.``); its forward returns the region and
affinity score maps as [N, 2, H/2, W/2] (EasyOCR's CRAFT returns them permuted to
[N, H/2, W/2, 2] together with the refiner's 32-channel feature map, which text detection
does not use).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

# torchvision's vgg16_bn configuration "D": channels per conv, "M" a 2x2 max pool
VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16_bn_features() -> nn.Sequential:
    """torchvision.models.vgg16_bn().features: conv 3x3, batch norm, ReLU (in place) per entry."""
    layers, cin = [], 3
    for v in VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*layers)


class VGG16BN(nn.Module):
    """EasyOCR's vgg16_bn backbone: torchvision's layers 0-38 in four slices plus fc6/fc7."""

    def __init__(self):
        super().__init__()
        features = vgg16_bn_features()
        self.slice1, self.slice2, self.slice3, self.slice4 = (nn.Sequential() for _ in range(4))
        for lo, hi, s in ((0, 12, self.slice1), (12, 19, self.slice2), (19, 29, self.slice3), (29, 39, self.slice4)):
            for x in range(lo, hi):
                s.add_module(str(x), features[x])
        self.slice5 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            nn.Conv2d(512, 1024, kernel_size=3, padding=6, dilation=6),
            nn.Conv2d(1024, 1024, kernel_size=1))

    def forward(self, x):
        h = self.slice1(x)
        relu2_2 = h
        h = self.slice2(h)
        relu3_2 = h
        h = self.slice3(h)
        relu4_3 = h
        h = self.slice4(h)
        relu5_3 = h
        fc7 = self.slice5(h)
        return fc7, relu5_3, relu4_3, relu3_2, relu2_2


class DoubleConv(nn.Module):
    def __init__(self, in_ch, mid_ch, out_ch):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch + mid_ch, mid_ch, kernel_size=1), nn.BatchNorm2d(mid_ch), nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, out_ch, kernel_size=3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.conv(x)


class CRAFT(nn.Module):
    def __init__(self):
        super().__init__()
        self.basenet = VGG16BN()
        self.upconv1 = DoubleConv(1024, 512, 256)
        self.upconv2 = DoubleConv(512, 256, 128)
        self.upconv3 = DoubleConv(256, 128, 64)
        self.upconv4 = DoubleConv(128, 64, 32)
        self.conv_cls = nn.Sequential(
            nn.Conv2d(32, 32, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 16, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, kernel_size=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 2, kernel_size=1))

    def forward(self, x):
        sources = self.basenet(x)
        y = torch.cat([sources[0], sources[1]], dim=1)
        y = self.upconv1(y)
        for k, up in ((2, self.upconv2), (3, self.upconv3), (4, self.upconv4)):
            y = F.interpolate(y, size=sources[k].size()[2:], mode="bilinear", align_corners=False)
            y = up(torch.cat([y, sources[k]], dim=1))
        return self.conv_cls(y)  # [N, 2, H/2, W/2]: region score, affinity score


class Wrapped(nn.Module):
    """The network under the name ``module`` (the checkpoint's DataParallel prefix)."""

    def __init__(self):
        super().__init__()
        self.module = CRAFT()

    def forward(self, x):
        return self.module(x)


def build():
    return Wrapped()
