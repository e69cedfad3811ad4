"""Random test inputs for the chip ops."""
import torch


def random_boxes(gen, batch, count, image_size=2000.0, empty_fraction=0.1):
    """float32 [batch, count, 4] boxes of sizes from 1 to ~600 px anywhere in (and partly beyond) a
    square image, with about `empty_fraction` of the rows empty (zero padding or x2 <= x1)."""
    xy = torch.rand(batch, count, 2, generator=gen) * image_size * 1.1 - image_size * 0.05
    wh = torch.exp(torch.rand(batch, count, 2, generator=gen) * 6.4)
    boxes = torch.cat([xy, xy + wh], dim=-1)
    roll = torch.rand(batch, count, generator=gen)
    boxes[roll < empty_fraction / 2] = 0.0
    degenerate = (roll >= empty_fraction / 2) & (roll < empty_fraction)
    boxes[..., 2] = torch.where(degenerate, boxes[..., 0] - wh[..., 0], boxes[..., 2])
    return boxes
