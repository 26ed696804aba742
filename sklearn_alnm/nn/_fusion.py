"""Feature-level fusion of several image networks: the heads and the multimodal network.

The ultrasound + H&E study (Peng et al., 2025) extracts one embedding per modality (ULNet on
the ultrasound image, PLNet on the biopsy) and fuses them. :class:`MultimodalNet` holds one
:class:`~sklearn_alnm.nn.Backbone` per modality (each with its own classification head, so a
fitted single-modality model loads into it unchanged) and one fusion head:

==============  =====================================================================
``"concat"``    concatenation of the embeddings -> linear layer
``"weighted"``  each embedding projected to ``hidden``; a learned softmax weight per
                modality (renormalised over the modalities a patient has)
``"attention"`` each embedding projected to ``hidden``; a per-patient attention over
                modalities (gated tanh / sigmoid scoring, as attention MIL), masked
``"voting"``    late fusion: the mean of the branches' own class probabilities
``"multilayer"`` each embedding through its own BatchNorm -> concatenation -> FC ``hidden``
                -> ReLU -> BatchNorm -> squeeze-and-excitation -> one output (binary)
==============  =====================================================================

A batch is ``(images, present)``: a dict of image tensors by modality and a boolean
``(N, n_modalities)`` tensor saying which modalities each patient has. An absent modality's
embedding is replaced by a learned "missing" embedding of that modality (concat, multilayer)
or left out of the softmax (weighted, attention, voting). ``modality_dropout`` hides present
modalities at random in training, so the fused model learns to predict without them.
Nothing here knows of scikit-learn.
"""

import contextlib
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from ..utils._seed import forked_torch_rng
from ._backbones import Backbone
from ._layers import _positive_int, masked_softmax
from ._mil import AttentionScore

FUSIONS = ("concat", "weighted", "attention", "voting", "multilayer")


class SqueezeExcitation1d(nn.Module):
    """Squeeze-and-excitation of a feature vector: ``x * sigmoid(W2 relu(W1 x))``.

    Parameters
    ----------
    channels : int
    reduction : int, default=16
        The bottleneck has ``max(1, channels // reduction)`` units.
    """

    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = max(
            1, _positive_int(channels, "channels") // _positive_int(reduction, "reduction")
        )
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x))))


class _FusionHead(nn.Module):
    """Base of the heads: ``forward(embeddings, present, branch_logits) -> (logits, weights)``.

    ``weights`` is ``(N, n_modalities)`` (each row sums to 1 over the present modalities) for
    the heads that weigh modalities, else ``None``.
    """

    #: Whether absent embeddings must be replaced by the learned missing embeddings.
    needs_filled = True

    def __init__(self, dims, num_classes):
        super().__init__()
        self.dims = tuple(int(d) for d in dims)
        self.num_classes = int(num_classes)


class ConcatFusion(_FusionHead):
    """Concatenation of the embeddings, then one linear layer."""

    def __init__(self, dims, num_classes, hidden=None):
        super().__init__(dims, num_classes)
        self.fc = nn.Linear(sum(self.dims), self.num_classes)

    def forward(self, embeddings, present, branch_logits=None):
        return self.fc(torch.cat(embeddings, dim=1)), None


class _ProjectedFusion(_FusionHead):
    """Embeddings projected to a common size ``hidden`` (linear + ReLU), then weighed."""

    needs_filled = False

    def __init__(self, dims, num_classes, hidden=256):
        super().__init__(dims, num_classes)
        hidden = _positive_int(hidden, "hidden")
        self.project = nn.ModuleList(
            nn.Sequential(nn.Linear(d, hidden), nn.ReLU(inplace=True)) for d in self.dims
        )
        self.fc = nn.Linear(hidden, self.num_classes)

    def _projected(self, embeddings):
        return torch.stack([p(e) for p, e in zip(self.project, embeddings)], dim=1)

    def _scores(self, projected):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, embeddings, present, branch_logits=None):
        projected = self._projected(embeddings)  # (N, B, hidden)
        weights = masked_softmax(self._scores(projected), present)
        fused = (weights.unsqueeze(-1).to(projected.dtype) * projected).sum(dim=1)
        return self.fc(fused), weights


class WeightedFusion(_ProjectedFusion):
    """Learned softmax weights over the modalities (the same for every patient)."""

    def __init__(self, dims, num_classes, hidden=256):
        super().__init__(dims, num_classes, hidden)
        self.logits = nn.Parameter(torch.zeros(len(self.dims)))

    def _scores(self, projected):
        return self.logits.expand(projected.shape[0], -1)


class AttentionFusion(_ProjectedFusion):
    """Per-patient attention over the modalities: ``w @ (tanh(V h) * sigmoid(U h))``."""

    def __init__(self, dims, num_classes, hidden=256):
        super().__init__(dims, num_classes, hidden)
        self.attention = AttentionScore(int(hidden), max(1, int(hidden) // 2), gated=True)

    def _scores(self, projected):
        return self.attention(projected)


class VotingFusion(_FusionHead):
    """Late fusion: the mean of the branches' class probabilities over present modalities.

    No parameters of its own; the logits returned are the log of the mean probabilities.
    """

    needs_filled = False

    def __init__(self, dims, num_classes, hidden=None):
        super().__init__(dims, num_classes)

    def forward(self, embeddings, present, branch_logits=None):
        probs = torch.stack([torch.softmax(z.float(), dim=1) for z in branch_logits], dim=1)
        weights = present.float() / present.float().sum(dim=1, keepdim=True)
        mean = (weights.unsqueeze(-1) * probs).sum(dim=1)
        return torch.log(mean.clamp_min(torch.finfo(mean.dtype).tiny)), weights


class MultilayerFusion(_FusionHead):
    """Per-modality BatchNorm -> concat -> FC ``hidden`` -> ReLU -> BatchNorm -> SE -> output.

    For two classes the output is one logit ``s`` (the study's single sigmoid unit), returned
    as the class logits ``(0, s)`` so that the softmax of class 1 is ``sigmoid(s)``; for more
    classes, one logit per class. No dropout (as in the study).
    """

    def __init__(self, dims, num_classes, hidden=256, reduction=16):
        super().__init__(dims, num_classes)
        hidden = _positive_int(hidden, "hidden")
        self.norms = nn.ModuleList(nn.BatchNorm1d(d) for d in self.dims)
        self.fc = nn.Linear(sum(self.dims), hidden)
        self.norm = nn.BatchNorm1d(hidden)
        self.se = SqueezeExcitation1d(hidden, reduction)
        self.out = nn.Linear(hidden, 1 if self.num_classes == 2 else self.num_classes)

    def forward(self, embeddings, present, branch_logits=None):
        x = torch.cat([norm(e) for norm, e in zip(self.norms, embeddings)], dim=1)
        x = self.se(self.norm(F.relu(self.fc(x))))
        out = self.out(x)
        if self.num_classes == 2:
            out = torch.cat([torch.zeros_like(out), out], dim=1)
        return out, None


_HEADS = {
    "concat": ConcatFusion,
    "weighted": WeightedFusion,
    "attention": AttentionFusion,
    "voting": VotingFusion,
    "multilayer": MultilayerFusion,
}


def _check_probability(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a float in [0, 1); got {value!r}.")
    return float(value)


class MultimodalNet(nn.Module):
    """One backbone per modality and a fusion head over their embeddings.

    Parameters
    ----------
    branches : dict of str to dict
        Per modality (in order), the :class:`~sklearn_alnm.nn.Backbone` arguments: ``name``
        and optionally ``in_chans``, ``input_size``, ``dropout``, ``weights``. Each backbone
        keeps its own classification head of ``num_classes`` outputs (used by ``"voting"``
        and :meth:`branch_logits`), so a fitted single-modality ``Backbone`` loads into it
        with :meth:`load_branch`.
    num_classes : int, default=2
    fusion : {"concat", "weighted", "attention", "voting", "multilayer"}, default="multilayer"
        See the module's table.
    hidden : int, default=256
        Width of the projection (weighted, attention) or of the FC layer (multilayer).
    modality_dropout : float, default=0.0
        In training, each present modality of a patient is hidden with this probability
        (at least one stays), its embedding replaced as for an absent one.
    seed : int or None, default=None
        Seed of the initialisation (torch's global generator is left as it was).

    Attributes
    ----------
    names : tuple of str
        The modalities, in order (the columns of ``present`` and of the weights).
    branches : torch.nn.ModuleDict
        The backbones.
    missing : torch.nn.ParameterDict
        The learned embedding of each absent modality.
    head : torch.nn.Module
        The fusion head.
    frozen : frozenset of str
        Branches excluded from training (no gradients; batch norm in evaluation mode).

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import MultimodalNet
    >>> net = MultimodalNet({"us": {"name": "resnet18", "in_chans": 1},
    ...                      "path": {"name": "plnet"}}, fusion="attention", seed=0).eval()
    >>> images = {"us": torch.zeros(2, 1, 32, 32), "path": torch.zeros(2, 3, 32, 32)}
    >>> present = torch.tensor([[True, True], [True, False]])
    >>> logits, weights = net.forward_with_weights((images, present))
    >>> logits.shape, weights[1].tolist()
    (torch.Size([2, 2]), [1.0, 0.0])
    """

    def __init__(
        self,
        branches,
        num_classes=2,
        *,
        fusion="multilayer",
        hidden=256,
        modality_dropout=0.0,
        seed=None,
    ):
        super().__init__()
        if not isinstance(branches, dict) or not branches:
            raise ValueError("branches must be a non-empty dict {modality: backbone arguments}.")
        if fusion not in _HEADS:
            raise ValueError(f"fusion must be one of {list(FUSIONS)}; got {fusion!r}.")
        num_classes = _positive_int(num_classes, "num_classes", minimum=2)
        self.names = tuple(branches)
        self.fusion = fusion
        self.num_classes = num_classes
        self.modality_dropout = _check_probability(modality_dropout, "modality_dropout")
        with contextlib.nullcontext() if seed is None else forked_torch_rng(seed):
            self.branches = nn.ModuleDict(
                {
                    name: Backbone(num_classes=num_classes, **dict(kw))
                    for name, kw in branches.items()
                }
            )
            dims = [self.branches[name].feature_dim for name in self.names]
            self.missing = nn.ParameterDict(
                {name: nn.Parameter(torch.zeros(d)) for name, d in zip(self.names, dims)}
            )
            self.head = _HEADS[fusion](dims, num_classes, hidden)
        self.frozen = frozenset()

    # ---------------------------------------------------------------------------- branches

    def load_branch(self, name, state_dict):
        """Load a fitted single-modality :class:`Backbone`'s ``state_dict`` into a branch."""
        self.branches[name].load_state_dict(state_dict)

    def freeze(self, names=None, frozen=True):
        """Exclude branches (all by default) from training, or include them again."""
        names = set(self.names if names is None else names)
        for name in names:
            for p in self.branches[name].parameters():
                p.requires_grad_(not frozen)
        self.frozen = frozenset(self.frozen | names) if frozen else frozenset(self.frozen - names)
        self.train(self.training)
        return self

    def train(self, mode=True):
        super().train(mode)
        for name in self.frozen:  # frozen branches keep their batch-norm statistics
            self.branches[name].eval()
        return self

    # ----------------------------------------------------------------------------- forward

    def _present(self, present, n):
        if present is None:
            return torch.ones((n, len(self.names)), dtype=torch.bool)
        present = present.to(torch.bool)
        if present.shape != (n, len(self.names)):
            raise ValueError(
                f"present must have shape ({n}, {len(self.names)}); got {tuple(present.shape)}."
            )
        return present

    def _drop_modalities(self, present):
        """Hide present modalities at random (training), keeping at least one per patient."""
        keep = torch.rand(present.shape, device=present.device) >= self.modality_dropout
        dropped = present & keep
        empty = ~dropped.any(dim=1)
        if empty.any():  # give each emptied patient back one of its modalities at random
            scores = torch.rand(present.shape, device=present.device).masked_fill(~present, -1)
            back = F.one_hot(scores.argmax(dim=1), len(self.names)).to(torch.bool)
            dropped = torch.where(empty.unsqueeze(1), back, dropped)
        return dropped

    def embeddings(self, images, present=None):
        """Per modality the embedding ``(N, d)``, absent rows left as computed, and ``present``.

        A modality given as a 2-D tensor ``(N, d)`` is taken as its embedding already (the
        branch is skipped): a model whose branches are frozen and not augmented can train its
        head on embeddings computed once.
        """
        first = next(iter(images.values()))
        present = self._present(present, first.shape[0]).to(first.device)
        out = []
        for name in self.names:
            x = images[name]
            out.append(x if x.ndim == 2 else self.branches[name].forward_features(x))
        return out, present

    def forward_with_weights(self, batch):
        """``(logits (N, num_classes), modality weights (N, B) or None)`` of a batch."""
        images, present = batch
        embeddings, present = self.embeddings(images, present)
        if not bool(present.any(dim=1).all()):
            raise ValueError("every patient needs at least one present modality.")
        if self.training and self.modality_dropout > 0:
            present = self._drop_modalities(present)
        branch_logits = None
        if self.fusion == "voting":
            branch_logits = [self.branches[n].head(e) for n, e in zip(self.names, embeddings)]
        if self.head.needs_filled:
            embeddings = [
                torch.where(present[:, k : k + 1], e, self.missing[name].to(e.dtype).expand_as(e))
                for k, (name, e) in enumerate(zip(self.names, embeddings))
            ]
        return self.head(embeddings, present, branch_logits)

    def forward(self, batch):
        """The fused logits ``(N, num_classes)`` of a batch ``(images, present)``."""
        return self.forward_with_weights(batch)[0]

    def branch_logits(self, images):
        """Each branch's own logits (its single-modality head), by modality."""
        return {name: self.branches[name](images[name]) for name in self.names}
