"""The training losses are pure functions of the last position's logits."""

from __future__ import annotations

import math

import pytest
import torch

from lychee_rerank.training.losses import listwise_loss, pointwise_loss, yes_no

YES, NO = 3, 1


def test_the_yesno_loss_is_the_log_loss_of_the_score_users_see():
    logits = torch.zeros(2, 5)
    logits[0, YES], logits[0, NO] = 2.0, -1.0  # a positive, scored sigmoid(3)
    logits[1, YES], logits[1, NO] = 0.5, 1.0  # a negative, scored sigmoid(-0.5)
    labels = torch.tensor([1, 0])
    score = torch.sigmoid(logits[:, YES] - logits[:, NO])
    expected = -(math.log(score[0]) + math.log(1 - score[1])) / 2
    assert pointwise_loss(logits, labels, YES, NO).item() == pytest.approx(expected, rel=1e-6)
    # The vocabulary loss also pays for the other tokens: larger here.
    assert pointwise_loss(logits, labels, YES, NO, "vocab").item() > expected


def test_listwise_ranks_the_positive_above_its_hard_negatives():
    two = yes_no(torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0, 2.0, 0.0, 0.0]]), yes_id=3, no_id=1)
    margins = two[:, 1] - two[:, 0]
    loss = listwise_loss(two, [(3, True)])
    assert loss.item() == pytest.approx(-torch.log_softmax(margins, dim=0)[0].item())
    assert listwise_loss(two, [(1, True), (2, False)]) is None
