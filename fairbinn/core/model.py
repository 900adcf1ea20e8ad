"""The three-part model every strategy trains: encoder -> fairness -> head."""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from torch import Tensor, nn
from torch.func import functional_call

__all__ = ["FairModel"]


class FairModel(nn.Module):
    """A binary classifier cut into an encoder, a fairness block and a head.

    Parameters
    ----------
    encoder : nn.Module
        Maps the batch inputs (a tensor, ``(x, edge_index)`` for a graph, or
        whatever the backbone takes) to features, usually ``(n, width)``
        (a feature map ``(n, C, h, w)`` when the fairness block sits before an
        image model's pooling). Owned by the accuracy player.
    head : nn.Module
        Maps the fairness block's output to logits of shape ``(n, 1)`` or
        ``(n,)``. Owned by the accuracy player.
    fairness : nn.Module, optional
        Block between encoder and head, owned by the fairness player: any
        module whose output the head accepts, usually width-preserving
        ``(n, width) -> (n, width)``. ``None`` means no block (an identity);
        the bilevel strategy then has nothing to train for the follower and
        refuses to run.

    ``forward(inputs)`` returns logits of shape ``(n,)``; probabilities are
    ``torch.sigmoid(logits)``.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, fairness: nn.Module | None = None):
        super().__init__()
        self.encoder = encoder
        self.fairness = fairness if fairness is not None else nn.Identity()
        self.head = head

    def decode(self, features: Tensor, follower: Mapping[str, Tensor] | None = None) -> Tensor:
        """Logits ``(n,)`` from encoder features: ``head(fairness(features))``.

        ``follower`` optionally replaces the fairness block's parameters for
        this call (names as in ``fairness.named_parameters()``, e.g. the
        follower's anticipated next parameters, differentiable), through
        ``torch.func.functional_call``; the block's own parameters are left alone.
        """
        hidden = self.fairness(features) if follower is None else functional_call(self.fairness, dict(follower),
                                                                                   (features,))
        return self._checked_logits(self.head(hidden))

    def _checked_logits(self, logits: Tensor) -> Tensor:
        """The head's output as logits ``(n,)``; an error for any other shape."""
        if logits.dim() == 2 and logits.shape[1] == 1:
            logits = logits.squeeze(1)
        if logits.dim() != 1:
            raise ValueError(
                f"the head must output one logit per example, shape (n,) or (n, 1); "
                f"got {tuple(logits.shape)}"
            )
        return logits

    def forward(self, inputs: Any) -> Tensor:
        return self.decode(self.encoder(inputs))

    def leader_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the accuracy player (leader): encoder and head."""
        yield from self.encoder.parameters()
        yield from self.head.parameters()

    def follower_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the fairness player (follower): the fairness block."""
        yield from self.fairness.parameters()

    def parameter_counts(self) -> dict[str, int]:
        """Number of scalar parameters of each player: ``{"leader_parameters", "follower_parameters"}``."""
        return {
            "leader_parameters": sum(p.numel() for p in self.leader_parameters()),
            "follower_parameters": sum(p.numel() for p in self.follower_parameters()),
        }
