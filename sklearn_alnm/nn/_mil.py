"""Multiple-instance learning: pooling a patient's bag of instances into one prediction.

A bag is a variable number of instances (feature vectors, or images embedded by a registry
backbone) with an optional kind per instance (tumour view, axillary node image). A batch of
bags is padded to its longest bag and carries a boolean ``mask`` ``(B, N)`` (``True``: a real
instance); every pooling here reads only the real instances, so a bag's prediction does not
depend on the bags it is batched with. The poolings:

=====================  ===================================================================
``"mean"``             the mean of the instance tokens
``"max"``              the element-wise maximum
``"attention"``        Ilse et al.'s attention: ``softmax_k(w . tanh(V h_k))``-weighted sum
``"gated_attention"``  the gated variant: ``w . (tanh(V h_k) * sigmoid(U h_k))``
``"transformer"``      a learnable CLS token and pre-norm transformer blocks over the bag
                       (padding masked out of the keys); the CLS output is the bag's token
=====================  ===================================================================

Each returns the bag token and one weight per instance (summing to 1 over the real ones): the
attention, the uniform weights of the mean, each instance's share of the maxima, or the CLS
token's attention in the last block (averaged over heads, its attention to itself left out).
Nothing here knows of scikit-learn.
"""

import contextlib

import torch
from torch import nn

from ..utils._seed import forked_torch_rng
from ._backbones import Backbone
from ._layers import _check_dropout, _positive_int, masked_softmax

POOLINGS = ("transformer", "attention", "gated_attention", "mean", "max")


def _check_mask(tokens, mask):
    if mask is None:
        return torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
    if mask.shape != tokens.shape[:2]:
        raise ValueError(
            f"mask must have the shape (B, N) of the tokens' first two axes "
            f"{tuple(tokens.shape[:2])}; got {tuple(mask.shape)}."
        )
    if not bool(mask.any(dim=1).all()):
        raise ValueError("every bag needs at least one real instance (a row of mask is empty).")
    return mask.bool()


class MeanPooling(nn.Module):
    """The mean of the real instances' tokens; the weights are uniform over them."""

    def forward(self, tokens, mask=None):
        mask = _check_mask(tokens, mask)
        weights = mask.float() / mask.float().sum(dim=1, keepdim=True)
        return torch.einsum("bn,bnd->bd", weights.to(tokens.dtype), tokens), weights


class MaxPooling(nn.Module):
    """The element-wise maximum over the real instances; an instance's weight is its share
    of the feature dimensions where it is the maximum."""

    def forward(self, tokens, mask=None):
        mask = _check_mask(tokens, mask)
        filled = tokens.masked_fill(~mask[..., None], float("-inf"))
        pooled, winner = filled.max(dim=1)
        wins = torch.zeros(mask.shape, dtype=torch.float32, device=tokens.device)
        wins.scatter_add_(1, winner, torch.ones_like(winner, dtype=torch.float32))
        return pooled, wins / tokens.shape[-1]


class AttentionScore(nn.Module):
    """One attention score per instance: ``w @ tanh(V h)``, or gated,
    ``w @ (tanh(V h) * sigmoid(U h))`` (Ilse et al., 2018).

    Parameters
    ----------
    dim : int
        Size of the instance tokens.
    hidden : int, default=128
        Size of ``V h`` (and ``U h``).
    gated : bool, default=False
    """

    def __init__(self, dim, hidden=128, gated=False):
        super().__init__()
        dim, hidden = _positive_int(dim, "dim"), _positive_int(hidden, "hidden")
        self.value = nn.Linear(dim, hidden)
        self.gate = nn.Linear(dim, hidden) if gated else None
        self.score = nn.Linear(hidden, 1)

    def forward(self, tokens):
        inner = torch.tanh(self.value(tokens))
        if self.gate is not None:
            inner = inner * torch.sigmoid(self.gate(tokens))
        return self.score(inner)[..., 0]


class AttentionPooling(nn.Module):
    """Attention-weighted sum of the instance tokens (masked softmax over real instances).

    Parameters
    ----------
    dim : int
    hidden : int, default=128
    gated : bool, default=False
        The gated attention of Ilse et al.
    """

    def __init__(self, dim, hidden=128, gated=False):
        super().__init__()
        self.attention = AttentionScore(dim, hidden, gated)

    def forward(self, tokens, mask=None):
        mask = _check_mask(tokens, mask)
        weights = masked_softmax(self.attention(tokens), mask)
        return torch.einsum("bn,bnd->bd", weights.to(tokens.dtype), tokens), weights


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + MHA(LN(x))``, then ``x + MLP(LN(x))``; padded
    positions are masked out of the keys. Returns the block output and the attention
    weights ``(B, L, L)`` averaged over heads."""

    def __init__(self, dim, heads, mlp_ratio=4, dropout=0.1):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_ratio * dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x, padding):
        h = self.norm1(x)
        out, weights = self.attn(
            h, h, h, key_padding_mask=padding, need_weights=True, average_attn_weights=True
        )
        x = x + out
        return x + self.mlp(self.norm2(x)), weights


class TransformerPooling(nn.Module):
    """A learnable CLS token attends over the bag through ``depth`` transformer blocks.

    No positional encoding (a bag is a set) and no normalisation by the bag's length: the
    CLS token's output, layer-normalised, is the bag's token.

    Parameters
    ----------
    dim : int
    depth : int, default=2
    heads : int, default=4
        Must divide ``dim``.
    dropout : float, default=0.1
    """

    def __init__(self, dim, depth=2, heads=4, dropout=0.1):
        super().__init__()
        dim, depth, heads = (
            _positive_int(dim, "dim"),
            _positive_int(depth, "depth"),
            _positive_int(heads, "heads"),
        )
        if dim % heads:
            raise ValueError(f"heads ({heads}) must divide dim ({dim}).")
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, heads, dropout=_check_dropout(dropout)) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens, mask=None):
        mask = _check_mask(tokens, mask)
        x = torch.cat([self.cls.expand(tokens.shape[0], -1, -1).to(tokens.dtype), tokens], dim=1)
        padding = torch.cat([torch.zeros_like(mask[:, :1]), ~mask], dim=1)
        for block in self.blocks:
            x, attention = block(x, padding)
        # the CLS query's attention to the instances, renormalised without its own share
        weights = attention[:, 0, 1:].float().masked_fill(~mask, 0.0)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return self.norm(x[:, 0]), weights


def build_pooling(pooling, dim, *, depth=2, heads=4, hidden=128, dropout=0.1):
    """The pooling module of a name in :data:`POOLINGS`."""
    if pooling == "mean":
        return MeanPooling()
    if pooling == "max":
        return MaxPooling()
    if pooling in ("attention", "gated_attention"):
        return AttentionPooling(dim, hidden, gated=pooling == "gated_attention")
    if pooling == "transformer":
        return TransformerPooling(dim, depth, heads, dropout)
    raise ValueError(f"pooling must be one of {list(POOLINGS)}; got {pooling!r}.")


class MILNet(nn.Module):
    """Bag classifier: instance encoder -> tokens (+ kind embedding) -> pooling -> head.

    A batch is ``(instances, mask, kinds)``: ``instances`` ``(B, N, F)`` feature vectors or
    ``(B, N, C, H, W)`` images (with ``backbone``), ``mask`` ``(B, N)`` bool (``True``: a
    real instance) and ``kinds`` ``(B, N)`` long (``1..n_kinds``; 0 for padding; ignored
    when ``n_kinds`` is 0). Instance tokens are ``Linear(F, dim) -> LayerNorm -> GELU`` of the
    features (the backbone's embedding for images); no batch statistics are used, so
    padding never changes a real bag's output.

    Parameters
    ----------
    in_features : int or None
        Size of the feature vectors; ``None`` with ``backbone`` (its embedding size).
    dim : int, default=256
        Size of the instance tokens.
    pooling : {"transformer", "attention", "gated_attention", "mean", "max"}, \
default="transformer"
    depth, heads : int, default=2, 4
        Transformer blocks and attention heads (``"transformer"``).
    hidden : int, default=128
        Size of the attention scorer (``"attention"``, ``"gated_attention"``).
    n_kinds : int, default=0
        Instance kinds (a learned embedding added to the tokens); 0 for none.
    num_classes : int, default=2
    dropout : float, default=0.1
        In the transformer blocks and in front of the head.
    backbone : str or None, default=None
        A registry backbone embedding image instances (see :class:`Backbone`).
    in_chans : int, default=1
        Channels of image instances.
    weights : None, str or os.PathLike, default=None
        The backbone's initial weights.
    seed : int or None, default=None
        Seeds the initial weights (in a fork of torch's generator).

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import MILNet
    >>> net = MILNet(8, dim=16, pooling="gated_attention", seed=0).eval()
    >>> mask = torch.tensor([[True, True, False], [True, True, True]])
    >>> with torch.no_grad():
    ...     logits, weights = net.forward_with_weights((torch.randn(2, 3, 8), mask, None))
    >>> tuple(logits.shape), weights.sum(dim=1).round(decimals=4).tolist(), float(weights[0, 2])
    ((2, 2), [1.0, 1.0], 0.0)
    """

    def __init__(
        self,
        in_features=None,
        *,
        dim=256,
        pooling="transformer",
        depth=2,
        heads=4,
        hidden=128,
        n_kinds=0,
        num_classes=2,
        dropout=0.1,
        backbone=None,
        in_chans=1,
        weights=None,
        seed=None,
    ):
        super().__init__()
        dim = _positive_int(dim, "dim")
        dropout = _check_dropout(dropout)
        n_kinds = int(n_kinds)
        if n_kinds < 0:
            raise ValueError(f"n_kinds must be >= 0; got {n_kinds!r}.")
        with contextlib.nullcontext() if seed is None else forked_torch_rng(seed):
            self.encoder = None
            if backbone is not None:
                self.encoder = Backbone(backbone, in_chans=in_chans, weights=weights)
                in_features = self.encoder.feature_dim
            elif in_features is None:
                raise ValueError("MILNet needs in_features (feature bags) or a backbone.")
            self.in_features = _positive_int(in_features, "in_features")
            self.project = nn.Sequential(
                nn.Linear(self.in_features, dim), nn.LayerNorm(dim), nn.GELU()
            )
            self.kinds = nn.Embedding(n_kinds + 1, dim, padding_idx=0) if n_kinds else None
            self.pooling = build_pooling(
                pooling, dim, depth=depth, heads=heads, hidden=hidden, dropout=dropout
            )
            self.head = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(dim, _positive_int(num_classes, "num_classes"))
            )
        self.pooling_name = pooling
        self.n_kinds = n_kinds

    def tokens(self, instances, mask=None, kinds=None):
        """Instance tokens ``(B, N, dim)`` (padding positions are zeros); ``mask`` ``None``:
        every instance is real."""
        mask = _check_mask(instances, mask)
        if self.encoder is not None:
            if instances.ndim != 5:
                raise ValueError(
                    f"image bags must be (B, N, C, H, W); got {tuple(instances.shape)}."
                )
            features = instances.new_zeros((*mask.shape, self.in_features))
            features[mask] = self.encoder(instances[mask]).to(features.dtype)
        else:
            if instances.ndim != 3 or instances.shape[-1] != self.in_features:
                raise ValueError(
                    f"feature bags must be (B, N, {self.in_features}); got "
                    f"{tuple(instances.shape)}."
                )
            features = instances
        tokens = self.project(features)
        if self.kinds is not None and kinds is not None:
            tokens = tokens + self.kinds(kinds.long())
        return tokens * mask[..., None].to(tokens.dtype)

    def forward_with_weights(self, batch):
        """``(logits (B, num_classes), instance weights (B, N))`` of a batch of bags."""
        instances, mask, kinds = batch
        mask = _check_mask(instances, mask)
        pooled, weights = self.pooling(self.tokens(instances, mask, kinds), mask)
        return self.head(pooled), weights

    def forward(self, batch):
        return self.forward_with_weights(batch)[0]
