"""The GridSampler custom op of stn-digits, in numpy: what onnxruntime runs for the custom node.

The class has the shape quantzoo (and the seed's custom layers) expect: ``__init__`` takes the
node's attributes, ``evaluate`` does the maths on numpy arrays, ``output_shapes`` says what it
returns. It reproduces ``torch.nn.functional.affine_grid`` + ``grid_sample`` (bilinear, zero
padding, ``align_corners=False``)::

    from quantzoo.customops import session_options
    so = session_options({"ai.quantzoo.seed.GridSampler": GridSampler}, "stn-digits.onnx")
    onnxruntime.InferenceSession("stn-digits.onnx", so)
"""

import numpy as np


class GridSampler:
    """Resample each image on the affine grid its theta gives, at output_height × output_width."""

    def __init__(self, output_height, output_width):
        self.output_height = int(output_height)
        self.output_width = int(output_width)

    def output_shapes(self, image_shape, theta_shape):
        return [(image_shape[0], image_shape[1], self.output_height, self.output_width)]

    def evaluate(self, image, theta):
        """image [N, C, H, W], theta [N, 2, 3] -> [N, C, output_height, output_width]."""
        image = np.asarray(image, dtype=np.float64)
        theta = np.asarray(theta, dtype=np.float64)
        n, c, h, w = image.shape
        oh, ow = self.output_height, self.output_width
        # the output pixel centres in [-1, 1] (align_corners=False), mapped through theta
        ys = (2 * np.arange(oh) + 1) / oh - 1
        xs = (2 * np.arange(ow) + 1) / ow - 1
        gy, gx = np.meshgrid(ys, xs, indexing="ij")
        base = np.stack([gx, gy, np.ones_like(gx)], axis=-1).reshape(-1, 3)       # [P, 3]
        grid = np.einsum("pk,njk->npj", base, theta)                              # [N, P, 2] (x, y)
        ix = ((grid[..., 0] + 1) * w - 1) / 2                                     # input pixel coordinates
        iy = ((grid[..., 1] + 1) * h - 1) / 2
        x0, y0 = np.floor(ix).astype(np.int64), np.floor(iy).astype(np.int64)
        out = np.zeros((n, c, oh * ow))
        for dy in (0, 1):
            for dx in (0, 1):
                xi, yi = x0 + dx, y0 + dy
                weight = (1 - np.abs(ix - xi)) * (1 - np.abs(iy - yi))           # bilinear weight
                inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)              # zero padding outside
                flat = np.clip(yi, 0, h - 1) * w + np.clip(xi, 0, w - 1)
                values = np.take_along_axis(image.reshape(n, c, h * w), flat[:, None, :].repeat(c, 1), axis=2)
                out += values * (weight * inside)[:, None, :]
        return out.reshape(n, c, oh, ow).astype(np.float32)
