"""The Adaptive Concept Generator and its modularity loss."""

from __future__ import annotations

import torch

from unseg.models.acseg import ConceptGenerator, modularity_loss


def test_modularity_prefers_the_true_communities():
    a = torch.full((20, 20), 0.02)
    a[:10, :10] = a[10:, 10:] = 1.0
    truth = torch.zeros(20, 2)
    truth[:10, 0] = truth[10:, 1] = 1
    single = torch.zeros(20, 2)
    single[:, 0] = 1
    mixed = truth[torch.randperm(20, generator=torch.Generator().manual_seed(0))]
    assert modularity_loss(truth, a) < modularity_loss(mixed, a)
    assert abs(float(modularity_loss(single, a))) < 1e-6  # one community: Q = 0


def test_generator_gives_soft_assignments_and_learns_two_communities():
    torch.manual_seed(0)
    x = torch.cat([torch.tensor([1.0, 0, 0]) + 0.05 * torch.randn(30, 3),
                   torch.tensor([0, 1.0, 0]) + 0.05 * torch.randn(30, 3)])
    a = (torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(x, dim=1).T
         ).clamp_min(0)
    model = ConceptGenerator(3, n_prototypes=3, n_steps=2)
    assign = model(x)
    assert assign.shape == (60, 3) and torch.allclose(assign.sum(1), torch.ones(60))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = modularity_loss(model(x), a)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    labels = model(x).argmax(1)
    assert len(set(labels[:30].tolist())) == 1 and len(set(labels[30:].tolist())) == 1
    assert labels[0] != labels[30]


def test_generator_defaults_are_the_reports():
    model = ConceptGenerator(8)
    assert model.prototypes.shape == (6, 8)  # 6 prototypes
    assert len(model.cross) == len(model.self_attention) == len(model.feed_forward) == 6
    assert model(torch.randn(10, 8)).shape == (10, 6)
