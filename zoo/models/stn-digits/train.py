"""Train stn-digits reproducibly: `python zoo/models/stn-digits/train.py` (from the repository root).

Trains only on the calibration part of the uci-digits dataset — the images quantzoo's split
(`quantzoo.compare.split`, the dataset manifest's ``calibration`` fraction, the same sample keys
the uci-digits adapter gives) never evaluates on — and reports the accuracy on the evaluation
part it never saw. Fixed seeds, deterministic kernels and 2 threads: the same weights on every
run. Writes stn-digits.pt (the state dict) beside this file and prints its sha256 and size for
model.yaml.
"""

import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from stn import build  # noqa: E402

from quantzoo.compare.datasets import uci_digits  # noqa: E402
from quantzoo.compare.split import part_of  # noqa: E402
from quantzoo.fetch import fetch_source  # noqa: E402
from quantzoo.registry import load_registry  # noqa: E402

SEED = 0
EPOCHS = 60
BATCH = 32
LR = 2e-3


def load(zoo: Path):
    """(images [N, 1, 8, 8] scaled to 0..1 as the model's preprocessing does, labels, keys, calibration fraction)."""
    ds = load_registry(zoo).dataset("uci-digits")
    root = fetch_source(ds.source, base_dir=ds.path.parent)
    samples = uci_digits(root, ds.params or {}, [])
    x = np.stack([np.asarray(s.data, dtype=np.float32)[None] / 16.0 for s in samples])
    y = np.asarray([int(s.label) for s in samples])
    return x, y, [s.key for s in samples], ds.calibration


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    x, y, keys, fraction = load(HERE.parents[1])
    train = np.asarray([part_of(k, fraction) == "calibration" for k in keys])
    print(f"{len(keys)} images: training on the {train.sum()} of the calibration part "
          f"(fraction {fraction}); the {(~train).sum()} of the evaluation part are never seen in training")
    xt, yt = torch.from_numpy(x[train]), torch.from_numpy(y[train])
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    g = torch.Generator().manual_seed(SEED)
    t0 = time.monotonic()
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(len(xt), generator=g)
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            batch = xt[idx]
            # a random small shift and scale of each training digit: what the transformer learns to undo
            theta = torch.eye(2, 3).repeat(len(idx), 1, 1)
            theta[:, :, :2] *= 1 + 0.15 * (torch.rand(len(idx), 1, 1, generator=g) - 0.5)
            theta[:, :, 2] = 0.25 * (torch.rand(len(idx), 2, generator=g) - 0.5)
            batch = F.grid_sample(batch, F.affine_grid(theta, list(batch.shape), align_corners=False),
                                  align_corners=False)
            loss = F.cross_entropy(model(batch), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    took = time.monotonic() - t0
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(x[~train])).argmax(1).numpy()
        train_pred = model(xt).argmax(1).numpy()
    print(f"trained {EPOCHS} epochs in {took:.0f} s on {torch.get_num_threads()} threads; accuracy: "
          f"training part {np.mean(train_pred == y[train]):.4f}, held-out evaluation part "
          f"{np.mean(pred == y[~train]):.4f} ({(~train).sum()} images)")
    out = HERE / "stn-digits.pt"
    torch.save(model.state_dict(), out)
    data = out.read_bytes()
    print(f"wrote {out}: sha256 {hashlib.sha256(data).hexdigest()}, size {len(data)}")


if __name__ == "__main__":
    main()
