"""Detection loss (YOLOv5-style target assignment, GIoU box loss) and the distillation loss.

Assignment: a ground-truth box is matched to every anchor whose width/height ratios to it are within
``anchor_ratio`` (and always to its best anchor), in the cell holding its centre and in the one or two
neighbouring cells nearest to the centre. More positives per object make a small detector converge in few epochs,
which matters when the whole training budget is minutes on two CPU cores.

Several outputs (tinyyolo): each ground truth goes to the output holding its best-matching anchor over *all*
anchor sets, as YOLOv3 assigns scales, and within that output it is matched as above (:func:`best_heads`,
:func:`detection_loss_heads`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from quant_models.decode import boxes_from_terms, split_head


@dataclass(frozen=True)
class LossWeights:
    """Relative weights of the loss terms."""

    # YOLOv5's box weight is 0.05 beside an objectness weight it scales by (image size / 640)^2 * 3 / layers;
    # at 128x128 with one output layer that puts box at ~0.4 of objectness, not 0.05. Measured here: 0.2 instead
    # of 0.05 lifted float tinydet from 0.771 to 0.845 mAP@0.5 and W2A2 from 0.468 to 0.572 (CPU,
    # bench/results/ablation_w2a2_cpu.md), and W2A2 by 26 points on the GPU (bench/results/ablation_w2a2.md).
    box: float = 0.2
    obj: float = 1.0
    cls: float = 0.5
    anchor_ratio: float = 4.0


def giou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Generalised IoU of paired xyxy boxes (..., 4).

    >>> giou(torch.tensor([0., 0, 2, 2]), torch.tensor([0., 0, 2, 2])).item()
    1.0
    >>> round(giou(torch.tensor([0., 0, 1, 1]), torch.tensor([2., 0, 3, 1])).item(), 4)  # IoU 0, hull 3 -> -1/3
    -0.3333
    """
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp_min(0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp_min(0)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter + eps
    hull = ((torch.maximum(a[..., 2], b[..., 2]) - torch.minimum(a[..., 0], b[..., 0]))
            * (torch.maximum(a[..., 3], b[..., 3]) - torch.minimum(a[..., 1], b[..., 1]))) + eps
    return inter / union - (hull - union) / hull


@dataclass(frozen=True)
class Positives:
    """Assigned (image, anchor, row, col) cells, with their ground-truth box (normalised xyxy) and class."""

    batch: torch.Tensor
    anchor: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    box: torch.Tensor
    label: torch.Tensor


def assign(boxes: torch.Tensor, labels: torch.Tensor, anchors: torch.Tensor, grid: tuple[int, int],
           anchor_ratio: float) -> Positives:
    """Match ground truth (B, M, 4) normalised xyxy / (B, M) labels (-1 = padding) to cells and anchors."""
    gh, gw = grid
    b_idx, m_idx = torch.nonzero(labels >= 0, as_tuple=True)
    gt = boxes[b_idx, m_idx]
    cls = labels[b_idx, m_idx]
    wh = (gt[:, 2:] - gt[:, :2]).clamp_min(1e-6)
    ratio = wh[:, None, :] / anchors[None, :, :]
    match = torch.maximum(ratio, 1 / ratio).amax(-1) < anchor_ratio  # (N, A)
    inter = torch.minimum(wh[:, None, :], anchors[None]).prod(-1)
    shape_iou = inter / (wh.prod(-1)[:, None] + anchors.prod(-1)[None] - inter)
    match[torch.arange(len(gt), device=gt.device), shape_iou.argmax(1)] = True
    n_idx, a_idx = torch.nonzero(match, as_tuple=True)
    centre = (gt[n_idx, :2] + gt[n_idx, 2:]) / 2 * torch.tensor([gw, gh], device=gt.device, dtype=gt.dtype)
    cell = centre.floor().long()
    frac = centre - cell
    # The centre cell, plus the horizontal and vertical neighbour nearest to the centre (when inside the grid).
    offsets = [torch.zeros_like(cell)]
    left = torch.where(frac[:, 0] < 0.5, -1, 1)
    up = torch.where(frac[:, 1] < 0.5, -1, 1)
    offsets.append(torch.stack([left, torch.zeros_like(left)], 1))
    offsets.append(torch.stack([torch.zeros_like(up), up], 1))
    cells, picks = [], []
    limits = torch.tensor([gw, gh], device=gt.device)
    for off in offsets:
        c = cell.clamp(min=torch.zeros_like(limits), max=limits - 1) + off
        ok = ((c >= 0) & (c < limits)).all(1)
        cells.append(c[ok])
        picks.append(torch.nonzero(ok).flatten())
    cell_all = torch.cat(cells)
    pick = torch.cat(picks)
    n_sel = n_idx[pick]
    return Positives(batch=b_idx[n_sel], anchor=a_idx[pick], row=cell_all[:, 1], col=cell_all[:, 0],
                     box=gt[n_sel], label=cls[n_sel])


def detection_loss(output: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, anchors: torch.Tensor,
                   num_classes: int, weights: LossWeights = LossWeights()) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts for raw head maps ``output`` against padded ground truth."""
    pred = split_head(output, len(anchors), num_classes)
    b, a, gh, gw, _ = pred.shape
    pos = assign(boxes, labels, anchors, (gh, gw), weights.anchor_ratio)
    tobj = torch.zeros(pred.shape[:4], device=pred.device, dtype=pred.dtype)
    lbox = lcls = pred.new_zeros(())
    if len(pos.batch):
        cell_pred = pred[pos.batch, pos.anchor, pos.row, pos.col]  # (P, 5+C)
        pbox = boxes_from_terms(cell_pred[:, :4], pos.col, pos.row, (gh, gw), anchors[pos.anchor])
        g = giou(pbox, pos.box)
        lbox = (1 - g).mean()
        # Objectness learns the achieved IoU, so scores rank boxes by localisation quality (helps mAP@.5:.95).
        tobj[pos.batch, pos.anchor, pos.row, pos.col] = g.detach().clamp_min(0).to(tobj.dtype)
        tcls = F.one_hot(pos.label, num_classes).to(cell_pred.dtype)
        lcls = F.binary_cross_entropy_with_logits(cell_pred[:, 5:], tcls)
    lobj = F.binary_cross_entropy_with_logits(pred[..., 4], tobj)
    total = weights.box * lbox + weights.obj * lobj + weights.cls * lcls
    return total, {"box": float(lbox.detach()), "obj": float(lobj.detach()), "cls": float(lcls.detach())}


def best_heads(boxes: torch.Tensor, labels: torch.Tensor, anchor_sets: Sequence[torch.Tensor]) -> torch.Tensor:
    """Output index (B, M) of each ground truth: the one whose anchor set holds the anchor of highest shape IoU
    (box and anchor sharing a centre) over all sets; -1 for padding. Ties go to the earlier output."""
    wh = (boxes[..., 2:] - boxes[..., :2]).clamp_min(1e-6)  # (B, M, 2)
    flat = torch.cat(list(anchor_sets)).to(wh)  # (K, 2)
    inter = torch.minimum(wh[..., None, :], flat).prod(-1)  # (B, M, K)
    shape_iou = inter / (wh.prod(-1)[..., None] + flat.prod(-1) - inter)
    owner = torch.cat([torch.full((len(a),), i, device=wh.device) for i, a in enumerate(anchor_sets)])
    return torch.where(labels >= 0, owner[shape_iou.argmax(-1)], -1)


def detection_loss_heads(outputs: Sequence[torch.Tensor], boxes: torch.Tensor, labels: torch.Tensor,
                         anchor_sets: Sequence[torch.Tensor], num_classes: int,
                         weights: LossWeights = LossWeights()) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`detection_loss` over several outputs, ``outputs[i]`` with anchors ``anchor_sets[i]``.

    A ground truth is a positive only on its :func:`best_heads` output. Every term counts each of its items once,
    wherever it is: box and class terms average over the positives of all outputs, objectness over the cells of
    all outputs, as the single-output loss does, so a stride-8 map weighs 4x a stride-16 one (close to YOLOv5's
    4:1 balance of those scales). Against averaging the two maps' objectness means instead, on the CPU bench
    budget (bench/accuracy.py, section cpu-arch, one seed each): float tinyyolo 0.458 against 0.429 mAP@0.5, W4A4
    0.350 against 0.358, so no clear winner on accuracy. With one output this is :func:`detection_loss` itself."""
    if len(outputs) != len(anchor_sets):
        raise ValueError(f"{len(outputs)} head maps but {len(anchor_sets)} anchor sets")
    if len(outputs) == 1:
        return detection_loss(outputs[0], boxes, labels, anchor_sets[0], num_classes, weights)
    owner = best_heads(boxes, labels, anchor_sets)
    ious, cls_logits, cls_labels, obj_logits, obj_targets = [], [], [], [], []
    for i, (output, anchors) in enumerate(zip(outputs, anchor_sets)):
        pred = split_head(output, len(anchors), num_classes)
        _, _, gh, gw, _ = pred.shape
        pos = assign(boxes, torch.where(owner == i, labels, -1), anchors, (gh, gw), weights.anchor_ratio)
        tobj = torch.zeros(pred.shape[:4], device=pred.device, dtype=pred.dtype)
        if len(pos.batch):
            cell_pred = pred[pos.batch, pos.anchor, pos.row, pos.col]
            g = giou(boxes_from_terms(cell_pred[:, :4], pos.col, pos.row, (gh, gw), anchors[pos.anchor]), pos.box)
            tobj[pos.batch, pos.anchor, pos.row, pos.col] = g.detach().clamp_min(0).to(tobj.dtype)
            ious.append(g)
            cls_logits.append(cell_pred[:, 5:])
            cls_labels.append(pos.label)
        obj_logits.append(pred[..., 4].reshape(-1))
        obj_targets.append(tobj.reshape(-1))
    lobj = F.binary_cross_entropy_with_logits(torch.cat(obj_logits), torch.cat(obj_targets))
    lbox = lcls = lobj.new_zeros(())
    if ious:
        lbox = (1 - torch.cat(ious)).mean()
        logits = torch.cat(cls_logits)
        lcls = F.binary_cross_entropy_with_logits(logits, F.one_hot(torch.cat(cls_labels), num_classes).to(logits))
    total = weights.box * lbox + weights.obj * lobj + weights.cls * lcls
    return total, {"box": float(lbox.detach()), "obj": float(lobj.detach()), "cls": float(lcls.detach())}


def distillation_loss_heads(students: Sequence[torch.Tensor], teachers: Sequence[torch.Tensor], anchors_per_head: int,
                            num_classes: int) -> torch.Tensor:
    """:func:`distillation_loss` averaged over outputs (with one output, that loss itself)."""
    if len(students) != len(teachers):
        raise ValueError(f"{len(students)} student head maps but {len(teachers)} teacher maps")
    if len(students) == 1:
        return distillation_loss(students[0], teachers[0], anchors_per_head, num_classes)
    return torch.stack([distillation_loss(s, t, anchors_per_head, num_classes)
                        for s, t in zip(students, teachers)]).mean()


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, num_anchors: int,
                      num_classes: int) -> torch.Tensor:
    """Match the teacher's head outputs: objectness and class probabilities (soft BCE) and box terms (L2 on the
    bounded box parameters, weighted by the teacher's objectness so background cells do not dominate)."""
    s = split_head(student, num_anchors, num_classes)
    t = split_head(teacher.detach(), num_anchors, num_classes)
    t_obj = torch.sigmoid(t[..., 4])
    obj = F.binary_cross_entropy_with_logits(s[..., 4], t_obj)
    weight = t_obj.unsqueeze(-1)
    denom = t_obj.sum().clamp_min(1.0)
    cls = (F.binary_cross_entropy_with_logits(s[..., 5:], torch.sigmoid(t[..., 5:]), reduction="none")
           * weight).sum() / (denom * num_classes)
    box = ((torch.sigmoid(s[..., :4]) - torch.sigmoid(t[..., :4])) ** 2 * weight).sum() / (denom * 4)
    return obj + cls + box


__all__ = ["LossWeights", "Positives", "assign", "best_heads", "detection_loss", "detection_loss_heads",
           "distillation_loss", "distillation_loss_heads", "giou"]
