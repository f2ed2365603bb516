import torch

from quant_models.loss import LossWeights, assign, detection_loss, distillation_loss, giou


def test_giou_hand_values():
    a = torch.tensor([[0.0, 0, 2, 2], [0, 0, 1, 1], [0, 0, 2, 2]])
    b = torch.tensor([[0.0, 0, 2, 2], [2, 0, 3, 1], [1, 0, 3, 2]])
    # identical -> 1; disjoint: IoU 0, hull 3, union 2 -> -(3-2)/3; half overlap: IoU 2/6, hull = union -> 1/3
    assert torch.allclose(giou(a, b), torch.tensor([1.0, -1 / 3, 1 / 3]), atol=1e-6)


def test_assignment_cells_and_anchors():
    anchors = torch.tensor([[0.1, 0.1], [0.5, 0.5], [0.9, 0.2]])
    # One box, centre (0.30, 0.55) on a 4x4 grid -> cell col 1 (1.2), row 2 (2.2); nearest neighbours are
    # left (frac 0.2 < 0.5) and up. Size 0.4 x 0.4: within ratio 4 of anchors 0 (4.0 is not < 4) no, 1 yes, 2 no
    # (0.9/0.4 = 2.25 but 0.4/0.2 = 2, both < 4 -> yes).
    boxes = torch.tensor([[[0.10, 0.35, 0.50, 0.75]]])
    labels = torch.tensor([[2]])
    pos = assign(boxes, labels, anchors, (4, 4), anchor_ratio=4.0)
    got = sorted(zip(pos.anchor.tolist(), pos.row.tolist(), pos.col.tolist()))
    expected = sorted((a, r, c) for a in (1, 2) for r, c in ((2, 1), (2, 0), (1, 1)))
    assert got == expected
    assert set(pos.label.tolist()) == {2}


def test_best_anchor_is_always_matched():
    anchors = torch.tensor([[0.9, 0.9]])
    boxes = torch.tensor([[[0.0, 0.0, 0.02, 0.02]]])  # 45x smaller than the only anchor
    pos = assign(boxes, torch.tensor([[0]]), anchors, (8, 8), anchor_ratio=4.0)
    assert len(pos.batch) >= 1 and set(pos.anchor.tolist()) == {0}


def test_padding_is_ignored():
    anchors = torch.tensor([[0.2, 0.2]])
    boxes = torch.zeros(2, 3, 4)
    labels = torch.full((2, 3), -1)
    assert len(assign(boxes, labels, anchors, (4, 4), 4.0).batch) == 0
    loss, parts = detection_loss(torch.zeros(2, 6, 4, 4), boxes, labels, anchors, 1)
    assert parts["box"] == 0.0 and loss > 0  # only objectness: every cell is background


def test_loss_prefers_the_right_answer():
    anchors = torch.tensor([[0.5, 0.5]])
    boxes = torch.tensor([[[0.25, 0.25, 0.75, 0.75]]])  # centre (0.5, 0.5): cell (1, 1) of 2x2, anchor-sized
    labels = torch.tensor([[1]])
    bad = torch.zeros(1, 1, 7, 2, 2)
    good = bad.clone()
    # Positives: the centre cell (1, 1) and its neighbours (1, 0), (0, 1). Each must put the centre at 0.5:
    # offset 2*sigmoid(t)-0.5 = 1 - cell index, i.e. t = +ln 3 in cell 0 (sigmoid 0.75), -ln 3 in cell 1 (0.25).
    ln3 = 1.0986123
    good[0, 0, 0, :, 0], good[0, 0, 0, :, 1] = ln3, -ln3
    good[0, 0, 1, 0, :], good[0, 0, 1, 1, :] = ln3, -ln3
    good[0, 0, 4] = -6.0
    good[0, 0, 4, 1, 1] = good[0, 0, 4, 1, 0] = good[0, 0, 4, 0, 1] = 6.0  # objectness on the three positives
    good[0, 0, 5] = -6.0
    good[0, 0, 6] = 6.0
    l_bad, _ = detection_loss(bad.view(1, 7, 2, 2), boxes, labels, anchors, 2, LossWeights())
    l_good, parts = detection_loss(good.view(1, 7, 2, 2), boxes, labels, anchors, 2, LossWeights())
    assert l_good < l_bad
    assert parts["box"] < 1e-4  # every positive cell decodes exactly the ground-truth box


def test_distillation_is_zero_gradient_at_the_teacher():
    torch.manual_seed(0)
    teacher = torch.randn(2, 2 * 7, 4, 4)
    student = teacher.clone().requires_grad_(True)
    distillation_loss(student, teacher, 2, 2).backward()
    assert student.grad.abs().max() < 1e-6
    other = (teacher + 1.0).requires_grad_(True)
    assert distillation_loss(other, teacher, 2, 2) > distillation_loss(teacher, teacher, 2, 2)


def test_each_ground_truth_goes_to_the_scale_of_its_best_anchor():
    from quant_models.loss import best_heads

    coarse = torch.tensor([[0.25, 0.25], [0.4, 0.4]])  # output 0 (stride 16)
    fine = torch.tensor([[0.05, 0.05], [0.1, 0.1]])  # output 1 (stride 8)
    # Sizes 0.06 (best: 0.05, fine), 0.3 (best: 0.25, coarse), 0.17 x 0.17: shape IoU 0.17^2/0.25^2 = 0.46 with
    # 0.25 against 0.1^2/0.17^2 = 0.35 with 0.1 -> coarse; a tall 0.04 x 0.5 box, though half as tall as the
    # image: IoU 0.01/0.0725 = 0.138 with 0.25 x 0.25, 0.004/0.026 = 0.154 with 0.1 x 0.1 -> fine; padding -> -1.
    boxes = torch.tensor([[[0.1, 0.1, 0.16, 0.16], [0.2, 0.2, 0.5, 0.5], [0.0, 0.0, 0.17, 0.17],
                           [0.3, 0.2, 0.34, 0.7], [0, 0, 0, 0]]])
    labels = torch.tensor([[0, 1, 2, 3, -1]])
    assert best_heads(boxes, labels, [coarse, fine]).tolist() == [[1, 0, 0, 1, -1]]


def test_two_scale_loss_trains_each_object_on_its_own_scale_only():
    from quant_models.loss import detection_loss_heads

    coarse_anchors = torch.tensor([[0.5, 0.5]])
    fine_anchors = torch.tensor([[0.1, 0.1]])
    boxes = torch.tensor([[[0.25, 0.25, 0.75, 0.75]]])  # anchor-sized for the coarse output
    labels = torch.tensor([[1]])
    coarse = torch.zeros(1, 7, 2, 2, requires_grad=True)
    fine = torch.zeros(1, 7, 4, 4, requires_grad=True)
    loss, parts = detection_loss_heads((coarse, fine), boxes, labels, [coarse_anchors, fine_anchors], 2)
    loss.backward()
    # The box and class terms reach the coarse map's positive cells only; on the fine map, all of which is
    # background for this object, only objectness gets a gradient.
    assert coarse.grad[0, :4].abs().sum() > 0 and coarse.grad[0, 5:].abs().sum() > 0
    assert fine.grad[0, :4].abs().max() == 0 and fine.grad[0, 5:].abs().max() == 0
    assert fine.grad[0, 4].abs().min() > 0
    assert parts["box"] > 0
    # The same object, now sized for the fine anchors: the roles swap.
    small = torch.tensor([[[0.45, 0.45, 0.55, 0.55]]])
    coarse.grad = fine.grad = None
    detection_loss_heads((coarse, fine), small, labels, [coarse_anchors, fine_anchors], 2)[0].backward()
    assert coarse.grad[0, :4].abs().max() == 0 and fine.grad[0, :4].abs().sum() > 0


def test_one_output_is_the_single_scale_loss():
    from quant_models.loss import detection_loss_heads, distillation_loss_heads

    torch.manual_seed(0)
    out = torch.randn(2, 14, 4, 4)
    anchors = torch.tensor([[0.2, 0.2], [0.5, 0.4]])
    boxes = torch.tensor([[[0.1, 0.1, 0.3, 0.4]], [[0.5, 0.5, 0.9, 0.8]]])
    labels = torch.tensor([[0], [1]])
    a, parts_a = detection_loss(out, boxes, labels, anchors, 2)
    b, parts_b = detection_loss_heads((out,), boxes, labels, [anchors], 2)
    assert torch.equal(a, b) and parts_a == parts_b
    teacher = torch.randn_like(out)
    assert torch.equal(distillation_loss(out, teacher, 2, 2), distillation_loss_heads((out,), (teacher,), 2, 2))
