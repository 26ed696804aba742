"""Synthetic multimodal cohorts for axillary lymph node metastasis."""

import numbers
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._logging import get_logger
from .._typing import FilePath, RandomStateLike
from . import _render

_log = get_logger(__name__)

MODALITIES = ("clinical", "ultrasound", "mammography", "pathology", "video", "bag")

# Columns produced by each modality, in table order.
MODALITY_COLUMNS = {
    "clinical": (
        "age",
        "tumor_size_mm",
        "t_stage",
        "histologic_type",
        "grade",
        "er",
        "pr",
        "her2",
        "ki67",
        "lvi",
        "birads",
        "axillary_us",
    ),
    "ultrasound": ("image", "mask"),
    "mammography": ("cc_image", "cc_mask", "mlo_image", "mlo_mask"),
    "pathology": ("pathology",),
    "video": ("video",),
    "bag": ("bag", "bag_kind", "bag_mask"),
}

# Categories of the categorical clinical columns (fixed, so one-hot encodings of two cohorts agree).
CLINICAL_CATEGORIES = {
    "t_stage": (["T1", "T2", "T3"], True),
    "histologic_type": (["IDC", "ILC", "other"], False),
    "grade": ([1, 2, 3], True),
    "er": (["negative", "positive"], False),
    "pr": (["negative", "positive"], False),
    "her2": (["negative", "positive"], False),
    "lvi": (["absent", "present"], False),
    "birads": (["3", "4A", "4B", "4C", "5"], True),
    "axillary_us": (["negative", "suspicious"], False),
}

# Generative model constants (documented in make_alnm_cohort's Notes).
_LABEL_SHIFT = 2.0  # delta: the latent risk differs by delta between N+ and N0 patients
_SHARED_SD = 0.8  # sigma_r: patient-level variation shared by every modality
# w_m: how strongly each modality's latent follows the shared risk (its own noise has unit sd)
_MODALITY_WEIGHT = {
    "clinical": 0.7,
    "ultrasound": 0.72,
    "mammography": 0.8,
    "pathology": 0.72,
    "video": 0.8,
    "node": 0.95,
}
_NODE_MISSING_RATE = 0.3  # share of patients without axillary node images in their bag
_NODE_EXTRA_INVOLVED = 0.25  # chance that a further imaged node of a visible N+ is involved

# Independent random streams (spawned from one SeedSequence), so that asking for a subset of
# modalities gives the same values for those modalities as asking for all of them.
_STREAMS = (
    "latent",
    "lesion",
    "clinical",
    "ultrasound",
    "mammography",
    "pathology",
    "video",
    "bag",
)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------- validation


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r}).")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def _check_modalities(modalities):
    if isinstance(modalities, str):
        if modalities == "all":
            return MODALITIES
        modalities = (modalities,)
    try:
        requested = tuple(modalities)
    except TypeError:
        raise TypeError(
            f"modalities must be 'all', a modality name or a sequence of names among "
            f"{MODALITIES}; got {modalities!r}."
        ) from None
    if not requested:
        raise ValueError(f"modalities must name at least one of {MODALITIES}; got an empty list.")
    unknown = [m for m in requested if not isinstance(m, str) or m not in MODALITIES]
    if unknown:
        raise ValueError(f"Unknown modality {unknown[0]!r}; expected names among {MODALITIES}.")
    return tuple(m for m in MODALITIES if m in requested)


def _seed_sequence(random_state):
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int, got {random_state}.")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(0, 2**31 - 1)))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(0, 2**63 - 1)))
    raise TypeError(
        "random_state must be None, a non-negative int, a numpy.random.RandomState or a "
        f"numpy.random.Generator; got {type(random_state).__name__}."
    )


# --------------------------------------------------------------------------- latent model


def _draw_latent(rng, n, n_pos):
    """Labels, the shared latent risk and one latent score per modality."""
    y = np.zeros(n, dtype=np.int64)
    y[rng.permutation(n)[:n_pos]] = 1
    risk = _LABEL_SHIFT * (y - 0.5) + _SHARED_SD * rng.standard_normal(n)
    z = {m: w * risk + rng.standard_normal(n) for m, w in _MODALITY_WEIGHT.items()}
    return y, z


def _lesion_geometry(rng, z, size):
    """Geometry of each patient's primary tumour on ultrasound (shared by ``image`` and the bag).

    All shape cues follow the suspicion ``q = sigmoid(z_ultrasound)``: taller-than-wide
    orientation, lobulation, spiculation, indistinct margin.
    """
    n = z.shape[0]
    q = _sigmoid(z)
    radius = size * rng.uniform(0.13, 0.19, n)
    aspect = np.clip(np.exp(-0.75 + 1.0 * q + rng.normal(0.0, 0.08, n)), 0.45, 1.6)
    harm_amp = (0.03 + 0.09 * q)[:, None] * rng.uniform(0.5, 1.0, (n, 3))
    return {
        "cy": size * (0.5 + rng.uniform(-0.06, 0.04, n)),
        "cx": size * (0.5 + rng.uniform(-0.06, 0.06, n)),
        "a": radius / np.sqrt(aspect),
        "b": radius * np.sqrt(aspect),
        "angle": rng.uniform(-0.2, 0.2, n),
        "harm_amp": harm_amp,
        "harm_phase": rng.uniform(0.0, 2.0 * np.pi, (n, 3)),
        "spike_amp": 0.6 * np.clip(q - 0.3, 0.0, 1.0) / 0.7 * rng.uniform(0.7, 1.3, n),
        "spike_n": rng.integers(5, 11, n).astype(np.float64),
        "spike_phase": rng.uniform(0.0, 2.0 * np.pi, n),
        "q": q,
    }


def _ultrasound_params(rng, geometry, size, q):
    """Echo cues of the lesion: margin blur, posterior feature, capsule, darkness, texture."""
    n = q.shape[0]
    p = dict(geometry)
    p["edge_width"] = (size / 64.0) * (0.4 + 1.6 * q) * rng.uniform(0.8, 1.2, n)
    p["posterior"] = 0.35 - 0.8 * q + rng.normal(0.0, 0.08, n)  # >0 enhancement, <0 shadowing
    p["capsule"] = 45.0 * (1.0 - q) ** 2 * rng.uniform(0.7, 1.3, n)
    p["lesion_mean"] = 58.0 - 24.0 * q + rng.normal(0.0, 4.0, n)
    p["heterogeneity"] = 0.08 + 0.45 * q * rng.uniform(0.8, 1.2, n)
    return p


# --------------------------------------------------------------------------- modalities


def _make_clinical(rng, z):
    """Clinical table driven by ``z_clinical``; BI-RADS and axillary US also see imaging latents."""
    zc = z["clinical"]
    n = zc.shape[0]
    age = np.clip(np.round(rng.normal(54.0 - 2.0 * zc, 11.0)), 25, 89).astype(np.int64)
    size_mm = np.exp(np.log(17.0) + 0.3 * zc + rng.normal(0.0, 0.3, n))
    size_mm = np.round(np.clip(size_mm, 4.0, 95.0), 1)
    t_stage = np.where(size_mm <= 20.0, "T1", np.where(size_mm <= 50.0, "T2", "T3"))
    other = rng.random(n) < _sigmoid(-2.3 - 0.6 * zc)
    lobular = rng.random(n) < 0.12
    hist = np.where(other, "other", np.where(lobular, "ILC", "IDC"))
    grade_drive = 0.7 * zc + rng.normal(0.0, 0.8, n)
    grade = 1 + (grade_drive > -0.6).astype(np.int64) + (grade_drive > 0.7).astype(np.int64)
    er_pos = rng.random(n) < _sigmoid(1.2 - 0.2 * zc)
    pr_pos = np.where(er_pos, rng.random(n) < 0.8, rng.random(n) < 0.08)
    her2_pos = rng.random(n) < _sigmoid(-1.6 + 0.25 * zc)
    ki67 = np.round(np.clip(100.0 * _sigmoid(-1.3 + 0.6 * zc + rng.normal(0.0, 0.6, n)), 1, 95))
    lvi = 0.8 * zc + rng.normal(0.0, 1.0, n) > 0.9
    birads_drive = 0.4 * zc + 0.4 * z["ultrasound"] + rng.normal(0.0, 0.9, n)
    birads = np.array(["3", "4A", "4B", "4C", "5"])[
        np.searchsorted([-1.3, -0.3, 0.4, 1.1], birads_drive)
    ]
    axillary = 0.5 * z["node"] + rng.normal(0.0, 1.0, n) > 1.0
    columns = {
        "age": age,
        "tumor_size_mm": size_mm,
        "t_stage": t_stage,
        "histologic_type": hist,
        "grade": grade,
        "er": np.where(er_pos, "positive", "negative"),
        "pr": np.where(pr_pos, "positive", "negative"),
        "her2": np.where(her2_pos, "positive", "negative"),
        "ki67": ki67,
        "lvi": np.where(lvi, "present", "absent"),
        "birads": birads,
        "axillary_us": np.where(axillary, "suspicious", "negative"),
    }
    out = {}
    for name, values in columns.items():
        if name in CLINICAL_CATEGORIES:
            cats, ordered = CLINICAL_CATEGORIES[name]
            out[name] = pd.Categorical(values.tolist(), categories=cats, ordered=ordered)
        else:
            out[name] = values
    return out


def _render_ultrasound_chunked(rng, size, p):
    n = p["cy"].shape[0]
    image = np.empty((n, size, size), dtype=np.float32)
    mask = np.empty((n, size, size), dtype=bool)
    for sl in _render.chunks(n, 12 * size * size):
        sub = {k: v[sl] for k, v in p.items()}
        image[sl], mask[sl] = _render.render_ultrasound(rng, size, sub)
    return image, mask


def _make_ultrasound(rng, geometry, size):
    p = _ultrasound_params(rng, geometry, size, geometry["q"])
    image, mask = _render_ultrasound_chunked(rng, size, p)
    return {"image": _to_image(image), "mask": mask.astype(np.uint8)}


def _make_mammography(rng, z, size):
    """Both views of one mass: shared 3-D position, shape, spicules and calcification cluster."""
    n = z.shape[0]
    q = _sigmoid(z)
    radius = np.maximum(size * rng.uniform(0.055, 0.085, n), 1.5)
    aspect = rng.uniform(0.8, 1.25, n)
    harm_amp = (0.03 + 0.1 * q)[:, None] * rng.uniform(0.5, 1.0, (n, 3))
    harm_phase = rng.uniform(0.0, 2.0 * np.pi, (n, 3))
    # mass centre: depth from the chest wall (shared), superior-inferior Y, medial-lateral Z
    depth = size * rng.uniform(0.3, 0.55, n)
    pos_y = size * rng.uniform(-0.12, 0.12, n)
    pos_z = size * rng.uniform(-0.12, 0.12, n)
    base_angle = rng.uniform(0.0, np.pi, n)
    n_slots = 12
    n_spicules = np.minimum(np.round(12.0 * q**2 * rng.uniform(0.7, 1.3, n)), n_slots)
    active = (np.arange(n_slots)[None] < n_spicules[:, None]).astype(np.float64)
    spicule_angle = rng.uniform(0.0, 2.0 * np.pi, (n, n_slots))
    spicule_length = (
        radius[:, None] * (0.8 + 1.6 * q)[:, None] * rng.uniform(0.6, 1.4, (n, n_slots))
    )
    n_calc = rng.poisson(0.5 + 9.0 * q**3)
    calc_index = np.repeat(np.arange(n), n_calc)
    m = calc_index.size
    spread = 1.3 * radius[calc_index]
    offsets = rng.normal(0.0, 1.0, (m, 3)) * spread[:, None]
    calc_scale = rng.uniform(0.7, 1.3, m) * (1.0 + 0.4 * q[calc_index])
    shared = {
        "a": radius / np.sqrt(aspect),
        "b": radius * np.sqrt(aspect),
        "harm_amp": harm_amp,
        "edge_width": (size / 64.0) * (0.4 + 1.4 * q) * rng.uniform(0.8, 1.2, n),
        "mass_density": 30.0 + 50.0 * q + rng.normal(0.0, 5.0, n),
        "spicule_active": active,
        "spicule_length": spicule_length,
        "spicule_intensity": 35.0 + 20.0 * q,
        "calc_index": calc_index,
        "calc_scale": calc_scale,
        "density": rng.uniform(0.05, 0.9, n),
        "breast_reach": rng.uniform(0.82, 0.95, n),
        "breast_half_height": rng.uniform(0.42, 0.48, n),
    }
    tilt = np.pi / 4.0  # the MLO projection is rotated by ~45 degrees about the depth axis
    cos_t, sin_t = np.cos(tilt), np.sin(tilt)
    views = {
        "cc": {
            "cy": size / 2.0 + pos_z,
            "cx": depth,
            "angle": base_angle,
            "harm_phase": harm_phase,
            "spicule_angle": spicule_angle,
            "calc_y": size / 2.0 + pos_z[calc_index] + offsets[:, 2],
            "calc_x": depth[calc_index] + offsets[:, 0],
        },
        "mlo": {
            "cy": size * 0.54 + cos_t * pos_y + sin_t * pos_z,
            "cx": depth,
            "angle": base_angle + tilt,
            "harm_phase": harm_phase,
            "spicule_angle": spicule_angle + tilt,
            "calc_y": size * 0.54
            + cos_t * (pos_y[calc_index] + offsets[:, 1])
            + sin_t * (pos_z[calc_index] + offsets[:, 2]),
            "calc_x": depth[calc_index] + offsets[:, 0],
            "pectoral": rng.uniform(0.25, 0.4, n),
        },
    }
    out = {}
    for view, extra in views.items():
        p = dict(shared, **extra)
        image = np.empty((n, size, size), dtype=np.float32)
        mask = np.empty((n, size, size), dtype=bool)
        for sl in _render.chunks(n, 16 * size * size):
            image[sl], mask[sl] = _render.render_mammogram(
                rng, size, _subset(p, sl, "calc_"), mlo=view == "mlo"
            )
        out[f"{view}_image"] = _to_image(image)
        out[f"{view}_mask"] = mask.astype(np.uint8)
    return out


def _make_pathology(rng, z, size):
    """Nuclear density, size, pleomorphism and hyperchromasia follow ``q = sigmoid(z)``."""
    n = z.shape[0]
    q = _sigmoid(z)
    n_nuclei = np.round((22.0 + 45.0 * q) * rng.uniform(0.85, 1.15, n)).astype(np.int64)
    index = np.repeat(np.arange(n), n_nuclei)
    m = index.size
    qi = q[index]
    mean_r = size * (0.026 + 0.014 * qi)
    pleo = 0.08 + 0.28 * qi
    r = mean_r * np.exp(rng.normal(0.0, 1.0, m) * pleo)
    elong = np.exp(np.abs(rng.normal(0.0, 1.0, m)) * (0.1 + 0.25 * qi))
    p = {
        "stroma": rng.uniform(0.35, 0.6, n),
        "nuc_index": index,
        "nuc_y": rng.uniform(0.0, size, m),
        "nuc_x": rng.uniform(0.0, size, m),
        "nuc_ry": r * np.sqrt(elong),
        "nuc_rx": r / np.sqrt(elong),
        "nuc_angle": rng.uniform(0.0, np.pi, m),
        "nuc_stain": (0.85 + 0.6 * qi) * np.exp(rng.normal(0.0, 0.08 + 0.12 * qi, m)),
    }
    rgb = np.empty((n, size, size, 3), dtype=np.float32)
    for sl in _render.chunks(n, 16 * size * size):
        rgb[sl] = _render.render_pathology(rng, size, _subset(p, sl, "nuc_"))
    return {"pathology": _to_image(rgb)}


def _make_video(rng, z, size, n_frames):
    """Temporal cues follow ``q = sigmoid(z_video)``; the static appearance ignores the label."""
    n = z.shape[0]
    q = _sigmoid(z)
    neutral = rng.uniform(0.15, 0.85, n)  # label-free shape suspicion of the video's lesion
    geometry = _lesion_geometry(rng, _logit(neutral), size)
    p = _ultrasound_params(rng, geometry, size, neutral)
    p.update(
        strain=0.04 + 0.25 * (1.0 - q) * rng.uniform(0.8, 1.2, n),
        flow=rng.uniform(50.0, 90.0, n),  # label-free amplitude: a frame shows no rate
        pulse_cycles=(0.5 + 2.5 * q) * rng.uniform(0.85, 1.15, n),
        vessel_base=rng.uniform(20.0, 50.0, n),
        vessel_r=size * rng.uniform(0.10, 0.15, n),
        vessel_dy=rng.uniform(-0.2, 0.2, n),
        vessel_dx=rng.uniform(-0.2, 0.2, n),
        cycles=rng.uniform(1.5, 2.5, n),
        phase=rng.uniform(0.0, 2.0 * np.pi, n),
        pulse_phase=rng.uniform(0.0, 2.0 * np.pi, n),
    )
    video = np.empty((n, n_frames, size, size), dtype=np.float32)
    for sl in _render.chunks(n, (n_frames + 12) * size * size):
        sub = {k: v[sl] for k, v in p.items()}
        video[sl] = _render.render_video(rng, size, n_frames, sub)
    return {"video": _to_image(video)}


def _node_involvement(rng, y, z_node, n_node):
    """Which imaged nodes are involved: ``(n_node.sum(),)`` booleans, patient by patient.

    An N+ patient's metastasis is visible on ultrasound with probability
    ``sigmoid(z_node)`` (otherwise it is occult: micrometastases, or involved nodes that were
    not imaged); a visible one makes one of the patient's imaged nodes involved, and each of
    the others with probability ``_NODE_EXTRA_INVOLVED``. The involved node's place among
    the node images is random. An N0 patient's nodes are all uninvolved.
    """
    visible = (y == 1) & (rng.random(y.shape[0]) < _sigmoid(z_node))
    first = np.concatenate([[0], np.cumsum(n_node)[:-1]])
    involved = rng.random(int(n_node.sum())) < _NODE_EXTRA_INVOLVED
    involved &= np.repeat(visible, n_node)
    has_one = visible & (n_node > 0)
    involved[first[has_one] + rng.integers(0, n_node[has_one])] = True
    return involved


def _make_bag(rng, geometry, y, z_node, size):
    """1-2 extra tumour planes plus 0-5 axillary node images per patient.

    Node images show involved or uninvolved nodes (:func:`_node_involvement`); an involved
    node's suspicion is ``q = sigmoid(1 + z_node / 2 + noise)``, an uninvolved one's
    ``sigmoid(-1.5 + noise)``: rounder node (lower long-to-short axis ratio), thicker and
    eccentric cortex, effaced fatty hilum as ``q`` grows. About ``_NODE_MISSING_RATE`` of the
    patients (N+ and N0 alike) have no node image.
    """
    n = z_node.shape[0]
    n_tumor = 1 + (rng.random(n) < 0.5).astype(np.int64)
    has_nodes = rng.random(n) >= _NODE_MISSING_RATE
    n_node = np.where(has_nodes, 1 + rng.binomial(4, 0.4, n), 0)
    # tumour planes: the patient's lesion seen again, slightly rotated and re-scanned
    t_idx = np.repeat(np.arange(n), n_tumor)
    mt = t_idx.size
    tg = {k: v[t_idx] for k, v in geometry.items()}
    tg["angle"] = tg["angle"] + rng.uniform(-0.25, 0.25, mt)
    tg["harm_phase"] = tg["harm_phase"] + rng.uniform(-0.6, 0.6, (mt, 1))
    tg["spike_phase"] = rng.uniform(0.0, 2.0 * np.pi, mt)
    scale = rng.uniform(0.9, 1.1, mt)
    tg["a"] = tg["a"] * scale
    tg["b"] = tg["b"] * scale
    tg["cy"] = tg["cy"] + rng.normal(0.0, 0.03 * size, mt)
    tg["cx"] = tg["cx"] + rng.normal(0.0, 0.03 * size, mt)
    tp = _ultrasound_params(rng, tg, size, tg["q"])
    tumor_images, tumor_masks = _render_ultrasound_chunked(rng, size, tp)
    tumor_images = _to_image(tumor_images)
    # node images
    n_idx = np.repeat(np.arange(n), n_node)
    mn = n_idx.size
    involved = _node_involvement(rng, y, z_node, n_node)
    qn = _sigmoid(np.where(involved, 1.0 + 0.5 * z_node[n_idx], -1.5) + rng.normal(0.0, 0.5, mn))
    long_axis = size * rng.uniform(0.2, 0.28, mn)
    ls_ratio = 1.05 + 1.6 * (1.0 - qn) * rng.uniform(0.85, 1.15, mn)
    hilum = np.clip(0.8 - 0.8 * qn + rng.normal(0.0, 0.05, mn), 0.0, 0.8)
    hilum = np.where(hilum < 0.12, 0.0, hilum)
    sign = np.where(rng.random(mn) < 0.5, -1.0, 1.0)
    node_p = {
        "cy": size * (0.5 + rng.uniform(-0.06, 0.06, mn)),
        "cx": size * (0.5 + rng.uniform(-0.06, 0.06, mn)),
        "a": long_axis,
        "b": long_axis / ls_ratio,
        "angle": rng.uniform(-0.3, 0.3, mn),
        "hilum": hilum,
        "hilum_shift": sign * 0.35 * qn * (hilum > 0),
        "cortex_mean": 58.0 - 18.0 * qn + rng.normal(0.0, 4.0, mn),
    }
    node_images = np.empty((mn, size, size), dtype=np.float32)
    node_masks = np.empty((mn, size, size), dtype=bool)
    for sl in _render.chunks(mn, 10 * size * size):
        sub = {k: v[sl] for k, v in node_p.items()}
        node_images[sl], node_masks[sl] = _render.render_node(rng, size, sub)
    node_images = _to_image(node_images)
    tumor_masks, node_masks = tumor_masks.astype(np.uint8), node_masks.astype(np.uint8)
    bags, kinds, masks = [], [], []
    t_start = np.concatenate([[0], np.cumsum(n_tumor)])
    n_start = np.concatenate([[0], np.cumsum(n_node)])
    for i in range(n):
        items = list(tumor_images[t_start[i] : t_start[i + 1]])
        items += list(node_images[n_start[i] : n_start[i + 1]])
        bags.append(items)
        kinds.append(["tumor"] * int(n_tumor[i]) + ["node"] * int(n_node[i]))
        masks.append(
            list(tumor_masks[t_start[i] : t_start[i + 1]])
            + list(node_masks[n_start[i] : n_start[i + 1]])
        )
    return {"bag": bags, "bag_kind": kinds, "bag_mask": masks}


def _subset(p, sl, prefix):
    """Parameters of the patients in slice ``sl``; ``prefix`` keys are per item of
    ``p[prefix + "index"]`` (e.g. one entry per nucleus) and are re-indexed from 0."""
    index = p[prefix + "index"]
    keep = (index >= sl.start) & (index < sl.stop)
    sub = {k: v[keep] if k.startswith(prefix) else v[sl] for k, v in p.items()}
    sub[prefix + "index"] = sub[prefix + "index"] - sl.start
    return sub


def _logit(p):
    return np.log(p) - np.log1p(-p)


def _to_image(array):
    """Round to the 8-bit grid (so PNG round trips are exact) and store as float32."""
    return np.round(np.clip(array, 0.0, 255.0)).astype(np.float32)


def _object_column(values):
    column = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        column[i] = value
    return column


# --------------------------------------------------------------------------- public API


def make_alnm_cohort(
    n_patients: int = 200,
    *,
    modalities: str | Sequence[str] = "all",
    image_size: int = 64,
    n_frames: int = 16,
    positive_fraction: float = 0.5,
    missing_pathology: float = 0.0,
    random_state: RandomStateLike = None,
    data_home: FilePath | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Generate a synthetic multimodal breast-cancer cohort labelled for node metastasis.

    One row per patient with any subset of: clinical variables, an ultrasound image and lesion
    mask, craniocaudal (CC) and mediolateral-oblique (MLO) mammograms with mass masks, an H&E
    pathology tile, an ultrasound clip, and a bag of tumour / axillary-node ultrasound images.
    Every modality carries its own, partly independent, learnable cue about the label, so
    single-modality models are informative and combining modalities helps. The images look
    schematic, not real; the data set exists to exercise and test pipelines end to end.

    Parameters
    ----------
    n_patients : int, default=200
        Number of patients (rows), at least 2.
    modalities : "all", str or sequence of str, default="all"
        Modalities to generate, among ``"clinical"``, ``"ultrasound"``, ``"mammography"``,
        ``"pathology"``, ``"video"`` and ``"bag"``. Each modality draws from its own random
        stream, so a subset gives exactly the columns it would have in the full cohort.
    image_size : int, default=64
        Height and width in pixels of every image, mask, video frame and bag image (>= 16).
    n_frames : int, default=16
        Number of frames ``T`` of each ultrasound clip (>= 4).
    positive_fraction : float, default=0.5
        Share of node-positive patients, in ``(0, 1)``. Exactly
        ``round(n_patients * positive_fraction)`` patients are positive; both classes must
        be present.
    missing_pathology : float, default=0.0
        Share of patients, in ``[0, 1)``, whose pathology tile is missing (a ``None`` cell,
        no file), as when no biopsy image was scanned: ``round(n_patients *
        missing_pathology)`` patients drawn at random after the tiles, so the other patients'
        tiles are those of the complete cohort.
    random_state : int, numpy.random.RandomState, numpy.random.Generator or None, default=None
        Seed. The same int gives bitwise-identical arrays and table (on a given platform);
        a ``RandomState`` or ``Generator`` contributes one draw, so it advances between calls.
        ``None`` draws fresh entropy.
    data_home : str, os.PathLike or None, default=None
        If given, the images are written under this folder (created if needed) and the table
        holds file paths instead of arrays: PNG for ultrasound images, masks, pathology tiles
        and bag images; NIfTI (``.nii.gz``) for the mammogram views and their masks; MP4 for
        the clips. The table is also saved as ``manifest.csv`` in that folder, with the label
        as a last column ``label`` (so the file is a complete study table), readable with
        :func:`sklearn_alnm.io.load_manifest`. The layout is given in the Notes. Files of
        an earlier call with the same names are overwritten; if writing fails, the files this
        call wrote are removed again.

    Returns
    -------
    X : pandas.DataFrame of shape (n_patients, n_columns)
        ``patient_id`` (``"P0001"``, ...) and the columns of the requested modalities:

        - clinical: ``age`` (years), ``tumor_size_mm``, ``t_stage`` (T1 <= 20 mm < T2 <= 50 mm
          < T3, consistent with the size), ``histologic_type`` (IDC / ILC / other), ``grade``
          (1-3), ``er``, ``pr``, ``her2`` (negative / positive), ``ki67`` (%), ``lvi``
          (lymphovascular invasion: absent / present), ``birads`` (3, 4A, 4B, 4C, 5) and
          ``axillary_us`` (negative / suspicious). The categorical columns have a pandas
          ``category`` dtype with fixed categories (ordered for T stage, grade and BI-RADS).
        - ultrasound: ``image`` (float32 H x W in [0, 255]) and ``mask`` (uint8 0/1).
        - mammography: ``cc_image``, ``cc_mask``, ``mlo_image``, ``mlo_mask``.
        - pathology: ``pathology`` (float32 H x W x 3, RGB).
        - video: ``video`` (float32 T x H x W).
        - bag: ``bag`` (list of float32 H x W images), ``bag_kind`` (list of ``"tumor"`` /
          ``"node"``, same length) and ``bag_mask`` (the lesion mask of each image, uint8
          0/1: the tumour, or the whole node); tumour images come first. About 30% of the
          patients, node-positive ones included, have no node image; the others have 1-5.

        Image cells are numpy arrays, or paths (``str``) when ``data_home`` is given.
    y : ndarray of shape (n_patients,)
        ``1`` for axillary node metastasis (N+), ``0`` for N0; int64, in random order.

    Raises
    ------
    TypeError
        If an integer parameter is not an int, or ``random_state`` has an unsupported type.
    ValueError
        If a parameter is out of range, a modality is unknown, ``positive_fraction`` leaves
        one class empty, or ``data_home`` exists and is not a folder.

    See Also
    --------
    load_busi : Load the public BUSI breast-ultrasound data set.
    sklearn_alnm.io.load_manifest : Read the ``manifest.csv`` written with ``data_home``.

    Notes
    -----
    **Latent model.** With labels :math:`y_i \\in \\{0, 1\\}`, each patient has a latent risk

    .. math:: r_i = \\delta (y_i - 1/2) + \\sigma_r u_i, \\qquad u_i \\sim N(0, 1),

    with :math:`\\delta = 2` and :math:`\\sigma_r = 0.8`, and each modality :math:`m` its own
    score

    .. math:: z_{im} = w_m r_i + e_{im}, \\qquad e_{im} \\sim N(0, 1),

    with weights :math:`w_m` of 0.7 (clinical), 0.72 (ultrasound, pathology), 0.8
    (mammography, video) and 0.95 (axillary nodes, whose images are missing for some
    patients). The AUC of :math:`z_{im}` alone is
    :math:`\\Phi(w_m \\delta / \\sqrt{2 (w_m^2 \\sigma_r^2 + 1)})`, about 0.81-0.86. The
    independent noise :math:`e_{im}` averages out when modalities are combined; :math:`u_i` is
    shared, so the cues of one patient are correlated and a combination stays imperfect.
    Image cues are monotone functions of the suspicion :math:`q_{im} = 1 / (1 + e^{-z_{im}})`
    plus small cue-level jitter, so a feature extractor recovers most but not all of
    :math:`z_{im}`. With simple hand-made features and logistic regression, single modalities
    reach cross-validated AUCs of about 0.75-0.82 and their combination about 0.9.

    **Cues.**

    - *Clinical* (:math:`z_{clinical}`): larger tumour size (log-normal, hence T stage),
      higher grade and Ki-67, lymphovascular invasion, slightly younger age, and fewer
      special-type ("other") histologies with higher risk; ER, PR and HER2 are only weakly
      associated. BI-RADS also follows the ultrasound latent, and axillary ultrasound
      suspicion (sensitivity well below 1) follows the node latent, as in practice.
    - *Ultrasound* (:math:`z_{ultrasound}`): irregular, lobulated and spiculated margins and a
      taller-than-wide orientation for N+, smooth wider-than-tall ovals with a thin echogenic
      capsule for N0; indistinct (blurred) margins, darker and more heterogeneous echo texture,
      and posterior acoustic shadowing (enhancement for N0) below the lesion; all on speckled
      tissue with skin, fat and glandular layers.
    - *Mammography* (:math:`z_{mammography}`): a mass whose density, margin blur,
      irregularity, number and length of spicules and number of (pleomorphic)
      calcifications grow with risk, on fatty / fibroglandular parenchyma of random density.
      CC and MLO show the same mass from two angles: shared depth from the chest wall, shape,
      spicules and 3-D calcification cluster, projected with a 45 degree tilt.
    - *Pathology* (:math:`z_{pathology}`): purple haematoxylin nuclei on pink eosin stroma
      (Beer-Lambert stain mixing); nuclear count, size, size variation (pleomorphism),
      elongation and staining intensity (hyperchromasia) grow with risk.
    - *Video* (:math:`z_{video}`): the lesion is compressed periodically by the probe (axial
      strain larger for soft N0 lesions, up to about 30%) and contains a vascular spot (radius
      10-15% of the image side) whose echo pulsates with a label-free amplitude at a rate
      that grows with risk (about 0.5 periods per clip at low risk, 3 at high risk). Both
      oscillate around a label-free mean with a random phase and the lesion's static
      appearance (shape, echo, margins) is drawn independently of the label, so the cue is
      temporal: a single frame is close to uninformative, while the change between frames
      (e.g. the mean absolute frame difference of the lesion) is not.
    - *Bag*: 1-2 further planes of the same primary tumour (cues of :math:`z_{ultrasound}`)
      and 0-5 axillary node images, involved or not, as in the clinic: an N+ patient's
      metastasis is visible with probability :math:`1 / (1 + e^{-z_{node}})` (otherwise
      occult, every imaged node normal); a visible one makes one imaged node involved and
      each further one with probability 0.25, at a random place in the bag; an N0
      patient's nodes are all uninvolved. An involved node's suspicion is
      :math:`q = 1 / (1 + e^{-(1 + z_{node} / 2 + e)})`, an uninvolved one's
      :math:`1 / (1 + e^{-(-1.5 + e)})` (:math:`e \\sim N(0, 0.5^2)` per node), so the
      label rests on the most suspicious node rather than on the average one. Involved
      nodes are rounder, with a thick, eccentric hypoechoic cortex and an effaced fatty
      hilum; normal nodes are oval with a thin cortex and a bright hilum.

    **Files.** With ``data_home``, ``<id>`` being the patient id and ``k = 1, 2, ...`` the
    position in the bag::

        manifest.csv
        ultrasound/<id>.png, ultrasound/<id>_mask.png
        mammography/<id>_cc.nii.gz, <id>_cc_mask.nii.gz, <id>_mlo.nii.gz, <id>_mlo_mask.nii.gz
        pathology/<id>.png                     (RGB)
        video/<id>.mp4                         (H.264, 8 frames per second)
        bag/<id>_<k>_tumor.png, bag/<id>_<k>_node.png (+ _mask.png: each instance's mask)

    Images are on the 8-bit grid, so PNG and NIfTI files read back exactly; MP4 frames read
    back within the codec's rounding (+-1 grey level). The manifest stores paths relative to
    ``data_home``; the returned table holds absolute paths.

    Examples
    --------
    >>> from sklearn_alnm.datasets import make_alnm_cohort
    >>> X, y = make_alnm_cohort(40, image_size=32, n_frames=8, random_state=0)
    >>> X.shape, y.shape, int(y.sum())
    ((40, 24), (40,), 20)
    >>> X.loc[0, "patient_id"], X.loc[0, "image"].shape, X.loc[0, "video"].shape
    ('P0001', (32, 32), (8, 32, 32))
    >>> X.loc[0, "pathology"].shape, X.loc[0, "pathology"].dtype
    ((32, 32, 3), dtype('float32'))
    >>> X_clin, _ = make_alnm_cohort(40, modalities=("clinical",), random_state=0)
    >>> list(X_clin.columns[:4])
    ['patient_id', 'age', 'tumor_size_mm', 't_stage']

    Written to files, with a manifest:

    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn_alnm.io import load_manifest, read_mask
    >>> home = tempfile.mkdtemp()
    >>> params = dict(modalities="ultrasound", image_size=32, random_state=0)
    >>> X_files, _ = make_alnm_cohort(4, data_home=home, **params)
    >>> sorted(os.listdir(home)), sorted(os.listdir(os.path.join(home, "ultrasound")))[:2]
    (['manifest.csv', 'ultrasound'], ['P0001.png', 'P0001_mask.png'])
    >>> X_memory, _ = make_alnm_cohort(4, **params)
    >>> np.array_equal(read_mask(X_files.loc[0, "mask"]), X_memory.loc[0, "mask"])
    True
    >>> load_manifest(os.path.join(home, "manifest.csv"))["image"].equals(X_files["image"])
    True
    """
    n = _check_int(n_patients, "n_patients", 2)
    requested = _check_modalities(modalities)
    size = _check_int(image_size, "image_size", 16)
    n_frames = _check_int(n_frames, "n_frames", 4)
    if isinstance(positive_fraction, bool) or not isinstance(positive_fraction, numbers.Real):
        raise TypeError(
            f"positive_fraction must be a float in (0, 1), got {type(positive_fraction).__name__}."
        )
    if not 0.0 < float(positive_fraction) < 1.0:
        raise ValueError(f"positive_fraction must be in (0, 1), got {positive_fraction}.")
    if (
        isinstance(missing_pathology, bool)
        or not isinstance(missing_pathology, numbers.Real)
        or not 0.0 <= float(missing_pathology) < 1.0
    ):
        raise ValueError(f"missing_pathology must be a float in [0, 1), got {missing_pathology!r}.")
    n_pos = int(round(n * float(positive_fraction)))
    if not 0 < n_pos < n:
        raise ValueError(
            f"positive_fraction={positive_fraction} with n_patients={n} gives {n_pos} positive "
            "patients; both classes need at least one patient."
        )
    if data_home is not None:
        if not isinstance(data_home, str | os.PathLike):
            raise TypeError(
                f"data_home must be None or a folder path (str or os.PathLike), got "
                f"{type(data_home).__name__}."
            )
        if os.path.exists(data_home) and not os.path.isdir(data_home):
            raise ValueError(
                f"data_home must be a folder; {os.fspath(data_home)!r} exists and is not a "
                "directory."
            )
    streams = dict(zip(_STREAMS, _seed_sequence(random_state).spawn(len(_STREAMS))))
    rngs = {name: np.random.default_rng(seq) for name, seq in streams.items()}

    y, z = _draw_latent(rngs["latent"], n, n_pos)
    geometry = _lesion_geometry(rngs["lesion"], z["ultrasound"], size)
    width = max(4, len(str(n)))
    table = {"patient_id": [f"P{i + 1:0{width}d}" for i in range(n)]}
    for modality in requested:
        _log.debug("drawing %s for %d patients", modality, n)
        rng = rngs[modality]
        if modality == "clinical":
            table.update(_make_clinical(rng, z))
        elif modality == "ultrasound":
            table.update(_make_ultrasound(rng, geometry, size))
        elif modality == "mammography":
            table.update(_make_mammography(rng, z["mammography"], size))
        elif modality == "pathology":
            table.update(_make_pathology(rng, z["pathology"], size))
            n_missing = int(round(n * float(missing_pathology)))
            if n_missing:
                tiles = list(table["pathology"])
                for i in rng.choice(n, n_missing, replace=False):
                    tiles[i] = None
                table["pathology"] = tiles
        elif modality == "video":
            table.update(_make_video(rng, z["video"], size, n_frames))
        else:
            table.update(_make_bag(rng, geometry, y, z["node"], size))
    array_columns = {
        c for m in requested if m != "clinical" for c in MODALITY_COLUMNS[m] if c != "bag_kind"
    }
    frame = {}
    for name, values in table.items():
        if name in array_columns or name == "bag_kind":
            frame[name] = _object_column(list(values))
        else:
            frame[name] = values
    X = pd.DataFrame(frame)
    X["patient_id"] = X["patient_id"].astype(object)
    if data_home is not None:
        from ._write import write_cohort

        X = write_cohort(X, data_home, y=y)
    return X, y
