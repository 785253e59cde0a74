"""mobilenet-v2: torchvision's MobileNetV2 (Sandler et al., 2018), written out so it builds
without torchvision (whose wheel here is linked against a CUDA libtorch and fails to import
next to the CPU build of torch).

The module tree mirrors torchvision 0.x `torchvision.models.mobilenetv2.MobileNetV2` at width
1.0, so torchvision's IMAGENET1K_V1 state dict loads with strict key checking:
``features.0.0`` / ``features.0.1`` (stem conv + BN), ``features.N.conv.…`` (inverted residual
blocks), ``features.18.0`` / ``features.18.1`` (the 1×1 conv to 1280), ``classifier.1`` (the
Linear after the dropout). `build` is the builder quantzoo's `pytorch` source kind calls.
"""

from torch import nn

# (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1))


def conv_bn_relu6(inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias) → BatchNorm → ReLU6: torchvision's Conv2dNormActivation (keys .0, .1)."""
    return nn.Sequential(nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """1×1 expansion (when t > 1) → 3×3 depthwise → 1×1 linear projection; a residual
    connection when the block keeps its size and channel count."""

    def __init__(self, inp: int, out: int, stride: int, expand: int):
        super().__init__()
        hidden = inp * expand
        layers = [conv_bn_relu6(inp, hidden, kernel=1)] if expand != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and inp == out

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """224×224 RGB (ImageNet mean/std) → 1000 ImageNet-1k logits."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        layers, inp = [conv_bn_relu6(3, 32, stride=2)], 32
        for t, c, n, s in SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        layers.append(conv_bn_relu6(inp, 1280, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(x.flatten(1))


def build(num_classes: int = 1000) -> MobileNetV2:
    """The network in eval mode (the `pytorch` source kind loads the state dict into it)."""
    return MobileNetV2(num_classes).eval()
