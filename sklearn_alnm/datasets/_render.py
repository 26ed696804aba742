"""Vectorised drawing primitives for the synthetic cohort.

Every function draws a whole batch of images at once: arrays are ``(n, H, W)`` (or
``(n, T, H, W)`` for clips) and per-image parameters are 1-D arrays of length ``n``. Nothing loops
over pixels; the only Python loops run over a handful of harmonics, frames or patient chunks.
Intensities are float64 in ``[0, 255]`` here; :mod:`._synthetic` rounds and casts them.
"""

import numpy as np
from scipy import ndimage

# Optical densities of haematoxylin and eosin (RGB absorbance per unit stain concentration),
# after Ruifrok & Johnston's colour deconvolution vectors.
_HEMATOXYLIN_OD = np.array([0.65, 0.70, 0.29])
_EOSIN_OD = np.array([0.07, 0.99, 0.11])

# Number of float64 elements one chunk of a dense (n, K, H, W) computation may allocate.
_CHUNK_ELEMENTS = 2**22


def chunks(n, per_item):
    """Yield ``slice`` objects covering ``range(n)`` so each chunk holds ~``_CHUNK_ELEMENTS``."""
    step = max(1, _CHUNK_ELEMENTS // max(1, int(per_item)))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _grid(size):
    yy, xx = np.mgrid[0:size, 0:size]
    return yy.astype(np.float32), xx.astype(np.float32)


def _col(values):
    """Per-image parameters as float32 ``(n, 1, 1)`` for broadcasting against image stacks."""
    return np.asarray(values, dtype=np.float32)[:, None, None]


def smooth_noise(rng, shape, sigma):
    """Gaussian-smoothed white noise over the last two axes, standardised per image.

    ``sigma`` is a scalar or a ``(sigma_rows, sigma_cols)`` pair in pixels.
    """
    sig = (sigma, sigma) if np.isscalar(sigma) else tuple(sigma)
    field = ndimage.gaussian_filter(
        rng.standard_normal(shape, dtype=np.float32), (0,) * (len(shape) - 2) + sig, mode="wrap"
    )
    field -= field.mean(axis=(-2, -1), keepdims=True)
    field /= field.std(axis=(-2, -1), keepdims=True) + np.float32(1e-6)
    return field


def complex_speckle_field(rng, shape, sigma=0.8):
    """Smoothed circular complex Gaussian field (the scatterer sum behind B-mode speckle)."""
    sig = (0,) * (len(shape) - 2) + (sigma, sigma)
    re = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sig, truncate=3.0)
    im = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sig, truncate=3.0)
    return re + np.complex64(1j) * im


def speckle_amplitude(field):
    """Rayleigh-distributed envelope of a complex field, normalised to mean 1 per image."""
    amp = np.abs(field)
    return amp / (amp.mean(axis=(-2, -1), keepdims=True) + np.float32(1e-6))


def star_field(size, cy, cx, a, b, angle, harm_amp, harm_phase, spike_amp, spike_n, spike_phase):
    """Normalised radial coordinate of star-shaped lesions (``< 1`` inside).

    In the lesion frame (rotated by ``angle``, axes scaled by the semi-axes ``a`` horizontal and
    ``b`` vertical) a pixel has polar coordinates ``(rho, theta)``; the boundary radius is

    ``r(theta) = 1 + sum_k A_k cos(k theta + phi_k) + s * max(0, cos(m theta + psi)) ** 8``,

    low-order harmonics ``k = 2, 3, ...`` giving lobulation / irregularity and the last term
    ``m`` narrow spicules of relative length ``s``. Powers of ``exp(i theta)`` are taken from the
    complex lesion-frame coordinate, so no trigonometric function is evaluated per pixel.

    Returns
    -------
    field : ndarray of shape (n, size, size)
        ``rho / r(theta)``.
    edge_px : ndarray of shape (n, size, size)
        Boundary radius in pixels along the ray through each pixel; ``(1 - field) * edge_px``
        is the (signed) distance to the lesion edge in pixels.
    """
    yy, xx = _grid(size)
    dy = yy[None] - _col(cy)
    dx = xx[None] - _col(cx)
    ca = _col(np.cos(angle))
    sa = _col(np.sin(angle))
    # the lesion frame as complex numbers w = u + iv: powers of w / |w| give cos(k theta) cheaply
    w = np.empty(dy.shape, dtype=np.complex64)
    w.real = (dx * ca + dy * sa) / _col(a)
    w.imag = (dy * ca - dx * sa) / _col(b)
    rho = np.abs(w)
    unit = w / np.maximum(rho, np.float32(1e-6))
    power = unit * unit
    # Re(coef * e^{ik theta}) = A cos(k theta + phi)
    coef = (harm_amp * np.exp(1j * harm_phase)).astype(np.complex64)
    boundary = 1.0 + (coef[:, 0, None, None] * power).real
    for k in range(1, harm_amp.shape[1]):
        power = power * unit
        boundary += (coef[:, k, None, None] * power).real
    if np.any(spike_amp > 0):
        orders = np.rint(spike_n).astype(np.int64)
        for order in np.unique(orders[spike_amp > 0]):
            sel = np.flatnonzero((orders == order) & (spike_amp > 0))
            turn = np.exp(1j * spike_phase[sel]).astype(np.complex64)[:, None, None]
            lobe = np.maximum((_int_power(unit[sel], int(order)) * turn).real, 0.0)
            lobe = lobe * lobe
            lobe = lobe * lobe
            boundary[sel] += _col(spike_amp[sel]) * (lobe * lobe)
    boundary = np.maximum(boundary, np.float32(0.2))
    return rho / boundary, _col(0.5 * (a + b)) * boundary


def _int_power(z, order):
    """``z ** order`` for a positive int ``order`` by repeated squaring (fast for complex)."""
    result = None
    base = z
    while order:
        if order & 1:
            result = base if result is None else result * base
        order >>= 1
        if order:
            base = base * base
    return result


def soft_inside(field, edge_px, width):
    """Soft indicator of ``field < 1`` whose edge is about ``width`` pixels wide.

    ``0.5 (1 + tanh(d / (2 width)))`` of the distance ``d = (1 - field) edge_px`` to the edge.
    """
    w = np.maximum(np.asarray(width, dtype=np.float32), np.float32(0.05))
    if w.ndim:
        w = w.reshape((-1,) + (1,) * (field.ndim - 1))
    dist = (1.0 - field) * edge_px
    return 0.5 * (1.0 + np.tanh(dist / (2.0 * w)))


def splat(canvas, index, cy, cx, ry, rx, angle, amplitude, *, edge=0.35, mode="max"):
    """Draw filled soft ellipses into a stack of images in place.

    Parameters
    ----------
    canvas : ndarray of shape (n, H, W)
    index : int ndarray of shape (m,)
        Image each ellipse belongs to.
    cy, cx, ry, rx, angle, amplitude : ndarray of shape (m,)
        Centre, semi-axes (pixels), rotation and peak value of each ellipse.
    edge : float
        Width of the soft edge relative to the semi-axes.
    mode : {"max", "add"}
        Combine overlapping ellipses by maximum or by sum.
    """
    n, height, width = canvas.shape
    if index.size == 0:
        return canvas
    half = int(np.ceil(max(ry.max(), rx.max()) * (1.0 + edge))) + 1
    offs = np.arange(-half, half + 1)
    oy, ox = np.meshgrid(offs, offs, indexing="ij")
    flat = canvas.reshape(-1)
    ufunc = np.maximum if mode == "max" else np.add
    per_item = offs.size**2
    for sl in chunks(index.size, 4 * per_item):
        iy = np.floor(cy[sl]).astype(np.int64)[:, None, None] + oy[None]
        ix = np.floor(cx[sl]).astype(np.int64)[:, None, None] + ox[None]
        dy = iy - cy[sl, None, None]
        dx = ix - cx[sl, None, None]
        ca = np.cos(angle[sl])[:, None, None]
        sa = np.sin(angle[sl])[:, None, None]
        u = (dx * ca + dy * sa) / rx[sl, None, None]
        v = (-dx * sa + dy * ca) / ry[sl, None, None]
        d = np.hypot(u, v)
        val = amplitude[sl, None, None] * np.clip((1.0 + edge - d) / edge, 0.0, 1.0)
        ok = (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width) & (val > 0)
        target = (index[sl, None, None] * height + iy) * width + ix
        ufunc.at(flat, target[ok], val[ok])
    return canvas


def segment_distance(size, y0, x0, y1, x1):
    """Distance of every pixel to one segment per image: inputs ``(m,)``, output ``(m, H, W)``."""
    yy, xx = _grid(size)
    py = yy[None] - _col(y0)
    px = xx[None] - _col(x0)
    vy = _col(y1 - y0)
    vx = _col(x1 - x0)
    length2 = np.maximum(vy**2 + vx**2, np.float32(1e-6))
    t = np.clip((py * vy + px * vx) / length2, 0.0, 1.0)
    return np.hypot(py - t * vy, px - t * vx)


def _mixed_speckle(rng, n, n_frames, size, n_bases=4):
    """Speckle envelopes ``(n, T, H, W)`` that decorrelate smoothly from frame to frame.

    Each frame's complex field is a unit-norm combination ``sum_j g_j(t) c_j`` of a few
    independent complex fields ``c_j`` with smoothly varying random weights ``g_j(t)``; the
    result is again circular Gaussian, so every frame has Rayleigh speckle.
    """
    bases = complex_speckle_field(rng, (n, n_bases, size, size))
    t = np.arange(n_frames, dtype=np.float64)[None, :, None]
    freq = rng.uniform(0.05, 0.2, (n, 1, n_bases))
    phase = rng.uniform(0.0, 2.0 * np.pi, (n, 1, n_bases))
    weights = 0.25 * np.cos(2.0 * np.pi * freq * t + phase)
    weights[..., 0] += 1.0  # mostly one field: the probe is held still
    weights /= np.sqrt((weights**2).sum(axis=-1, keepdims=True))
    weights = weights.astype(np.complex64)[..., None, None]
    field = weights[:, :, 0] * bases[:, None, 0]
    for j in range(1, n_bases):  # elementwise (not BLAS) so the result is bitwise reproducible
        field += weights[:, :, j] * bases[:, None, j]
    return speckle_amplitude(field)


# --------------------------------------------------------------------------- ultrasound


def ultrasound_background(rng, n, size):
    """Echo map of breast tissue: skin line, subcutaneous fat, textured glandular layer."""
    yy, _ = _grid(size)
    depth = yy[None] / np.float32(size)  # 0 at the probe, 1 at the bottom
    skin = _col(rng.uniform(0.03, 0.06, n))
    fat_end = skin + _col(rng.uniform(0.12, 0.22, n))
    base = np.where(depth < skin, 185.0, np.where(depth < fat_end, 75.0, 118.0))
    base = ndimage.gaussian_filter(base.astype(np.float32), (0, 0.8, 0.8))
    texture = smooth_noise(rng, (n, size, size), (size / 40.0, size / 12.0))
    base = base * (1.0 + 0.18 * texture)
    return base * (1.0 - 0.25 * depth)  # residual attenuation after gain compensation


def _lesion_field(size, p, **override):
    q = dict(p, **override)
    return star_field(
        size,
        q["cy"],
        q["cx"],
        q["a"],
        q["b"],
        q["angle"],
        q["harm_amp"],
        q["harm_phase"],
        q["spike_amp"],
        q["spike_n"],
        q["spike_phase"],
    )


def _lesion_echo(rng, n, size, p):
    heterogeneity = smooth_noise(rng, (n, size, size), size / 18.0)
    lesion = _col(p["lesion_mean"]) * (1.0 + _col(p["heterogeneity"]) * heterogeneity)
    return np.maximum(lesion, np.float32(4.0))


def _b_mode(rng, echo, speckle):
    """Speckle modulates the echo map; add a little electronic noise."""
    noise = rng.standard_normal(echo.shape, dtype=np.float32)
    return np.clip(echo * (0.45 + 0.55 * speckle) + 3.0 * noise, 0.0, 255.0)


def render_ultrasound(rng, size, p):
    """Draw B-mode images of a lesion; ``p`` holds the per-image lesion parameters.

    The lesion (star-shaped, see :func:`star_field`) has a soft edge ``edge_width`` pixels
    wide, a mean echo ``lesion_mean`` modulated by smooth texture of relative amplitude
    ``heterogeneity``, a thin echogenic rim of strength ``capsule``, and scales the tissue
    below it by ``1 + posterior`` (enhancement > 0, shadowing < 0).

    Returns the image ``(n, size, size)`` in ``[0, 255]`` and the binary lesion mask.
    """
    n = p["cy"].shape[0]
    field, edge_px = _lesion_field(size, p)
    mask = field < 1.0
    inside = soft_inside(field, edge_px, p["edge_width"])
    tissue = ultrasound_background(rng, n, size)
    # posterior acoustic feature: everything deeper than the lesion in its columns
    below = np.clip(np.maximum.accumulate(inside, axis=1) - inside, 0.0, 1.0)
    below = ndimage.gaussian_filter(below, (0, 0.6, 1.0))
    tissue = tissue * (1.0 + _col(p["posterior"]) * below)
    edge_dist = (field - 1.0) * edge_px
    capsule = _col(p["capsule"]) * np.exp(-0.5 * (edge_dist / 0.8) ** 2)
    lesion = _lesion_echo(rng, n, size, p)
    echo = tissue * (1.0 - inside) + lesion * inside + capsule
    speckle = speckle_amplitude(complex_speckle_field(rng, (n, size, size)))
    return _b_mode(rng, echo, speckle), mask


def render_node(rng, size, p):
    """Draw B-mode images of axillary lymph nodes (hypoechoic cortex around a fatty hilum).

    The node is an ellipse (semi-axes ``a`` x ``b``) of echo ``cortex_mean``; the hilum is a
    concentric-shaped ellipse scaled by ``hilum`` (0 = effaced) and shifted along the short axis
    by ``hilum_shift`` times ``b`` (eccentric cortical thickening).

    Returns the image ``(n, size, size)`` in ``[0, 255]`` and the binary node mask.
    """
    n = p["cy"].shape[0]
    flat = {
        "harm_amp": np.zeros((n, 1)),
        "harm_phase": np.zeros((n, 1)),
        "spike_amp": np.zeros(n),
        "spike_n": np.ones(n),
        "spike_phase": np.zeros(n),
    }
    field, edge_px = _lesion_field(size, dict(p, **flat))
    node = soft_inside(field, edge_px, 0.7)
    ca, sa = np.cos(p["angle"]), np.sin(p["angle"])
    hilum_size = np.maximum(p["hilum"], 0.05)
    hfield, hedge = _lesion_field(
        size,
        dict(p, **flat),
        cy=p["cy"] + p["hilum_shift"] * p["b"] * ca,
        cx=p["cx"] - p["hilum_shift"] * p["b"] * sa,
        a=p["a"] * hilum_size,
        b=p["b"] * hilum_size,
    )
    hilum = soft_inside(hfield, hedge, 0.8) * _col(p["hilum"] > 0.05)
    yy, _ = _grid(size)
    tissue = 95.0 * (1.0 + 0.15 * smooth_noise(rng, (n, size, size), (size / 30.0, size / 10.0)))
    tissue = tissue * (1.0 - 0.2 * yy[None] / np.float32(size))
    node_echo = _col(p["cortex_mean"]) * (1.0 - hilum) + 165.0 * hilum
    echo = tissue * (1.0 - node) + node * node_echo
    speckle = speckle_amplitude(complex_speckle_field(rng, (n, size, size)))
    return _b_mode(rng, echo, speckle), field < 1.0


def render_video(rng, size, n_frames, p):
    """Draw B-mode clips ``(n, T, size, size)`` of a lesion that deforms and pulsates.

    Per frame ``t`` (phase ``w t + phi``) the lesion height is ``b (1 + strain sin(.))`` and its
    width ``a (1 - 0.3 strain sin(.))`` (probe compression; soft lesions deform more), and a
    vascular spot inside it has echo ``vessel_base + flow sin(2 pi pulse_cycles t / T + phi')``
    (pulsatile intralesional flow, ``pulse_cycles`` periods per clip). Both oscillations have
    zero mean and a random phase, so one frame does not show their rate.
    The speckle decorrelates slowly between frames and the probe jitters by a fraction of a
    pixel.
    """
    n = p["cy"].shape[0]
    tissue = ultrasound_background(rng, n, size)
    t = np.arange(n_frames, dtype=np.float64)
    omega = 2.0 * np.pi * p["cycles"][:, None] / n_frames
    compression = np.sin(omega * t[None] + p["phase"][:, None])  # (n, T)
    pulse_omega = 2.0 * np.pi * p["pulse_cycles"][:, None] / n_frames
    pulse = np.sin(pulse_omega * t[None] + p["pulse_phase"][:, None])
    jitter_y = rng.normal(0.0, 0.3, (n, n_frames))
    jitter_x = rng.normal(0.0, 0.3, (n, n_frames))
    lesion = _lesion_echo(rng, n, size, p)
    speckle = _mixed_speckle(rng, n, n_frames, size)
    noise = rng.standard_normal((n, n_frames, size, size), dtype=np.float32)
    yy, xx = _grid(size)
    video = np.empty((n, n_frames, size, size), dtype=np.float32)
    for k in range(n_frames):
        b_t = p["b"] * (1.0 + p["strain"] * compression[:, k])
        a_t = p["a"] * (1.0 - 0.3 * p["strain"] * compression[:, k])
        cy = p["cy"] + jitter_y[:, k]
        cx = p["cx"] + jitter_x[:, k]
        field, edge_px = _lesion_field(size, p, cy=cy, cx=cx, a=a_t, b=b_t)
        inside = soft_inside(field, edge_px, p["edge_width"])
        d2 = ((yy[None] - _col(cy + p["vessel_dy"] * b_t)) ** 2) + (
            (xx[None] - _col(cx + p["vessel_dx"] * a_t)) ** 2
        )
        vessel = np.exp(-0.5 * d2 / _col(p["vessel_r"] ** 2)) * inside
        flow = _col(p["vessel_base"] + p["flow"] * pulse[:, k]) * vessel
        echo = tissue * (1.0 - inside) + lesion * inside + flow
        video[:, k] = echo * (0.45 + 0.55 * speckle[:, k]) + 3.0 * noise[:, k]
    return np.clip(video, 0.0, 255.0)


# --------------------------------------------------------------------------- mammography


def render_mammogram(rng, size, p, *, mlo):
    """Draw one mammographic view per patient: breast, parenchyma, mass, spicules, calcifications.

    The chest wall is on the left, the nipple to the right. ``p`` gives the mass centre and shape
    in this view's pixel frame, its spicules (angles/lengths, shared by both views up to the view
    rotation) and the projected calcification positions. Returns the image and the mass mask.
    """
    n = p["cy"].shape[0]
    yy, xx = _grid(size)
    # breast silhouette: half-ellipse from the chest wall, slightly different per patient
    reach = _col(p["breast_reach"] * size)
    half_height = _col(p["breast_half_height"] * size)
    centre_y = np.float32(size * (0.54 if mlo else 0.5))
    rb = np.sqrt((xx[None] / reach) ** 2 + ((yy[None] - centre_y) / half_height) ** 2)
    breast = 0.5 * (1.0 + np.tanh((1.0 - rb) * np.float32(size / 3.0)))
    thickness = np.sqrt(np.clip(1.0 - rb**2, 0.0, 1.0))  # compressed-thickness fall-off
    tissue = 55.0 + 25.0 * thickness
    noise = smooth_noise(rng, (n, size, size), size / 14.0)
    # fibroglandular tissue: more of it near the chest wall; 'density' sets how much
    gland_drive = noise + 1.2 * (1.0 - xx[None] / reach) - 1.6 + 2.4 * _col(p["density"])
    gland = 0.5 * (1.0 + np.tanh(gland_drive / 0.5))
    tissue = tissue + 70.0 * gland * thickness
    if mlo:  # pectoral muscle: bright triangle in the upper-left corner
        edge = _col(p["pectoral"] * size)
        pect = 0.5 * (1.0 + np.tanh(edge * (1.0 - yy[None] / (1.6 * edge)) - xx[None]))
        tissue = tissue * (1.0 - pect) + 185.0 * pect
        breast = np.maximum(breast, pect)
    field, edge_px = star_field(
        size,
        p["cy"],
        p["cx"],
        p["a"],
        p["b"],
        p["angle"],
        p["harm_amp"],
        p["harm_phase"],
        np.zeros(n),
        np.ones(n),
        np.zeros(n),
    )
    mask = field < 1.0
    tissue = tissue + _col(p["mass_density"]) * soft_inside(field, edge_px, p["edge_width"])
    # spicules: thin radiating lines from the mass edge
    angles = p["spicule_angle"]  # (n, k)
    r0 = 0.8 * (0.5 * (p["a"] + p["b"]))[:, None]
    r1 = r0 + p["spicule_length"]
    y0 = p["cy"][:, None] + r0 * np.sin(angles)
    x0 = p["cx"][:, None] + r0 * np.cos(angles)
    y1 = p["cy"][:, None] + r1 * np.sin(angles)
    x1 = p["cx"][:, None] + r1 * np.cos(angles)
    width = max(0.45, size / 110.0)
    spic = np.zeros((n, size, size), dtype=np.float32)
    for k in range(angles.shape[1]):
        sel = np.flatnonzero(p["spicule_active"][:, k] > 0)
        for part in chunks(sel.size, 4 * size * size):
            rows = sel[part]
            d = segment_distance(size, y0[rows, k], x0[rows, k], y1[rows, k], x1[rows, k])
            spic[rows] = np.maximum(spic[rows], np.exp(-0.5 * (d / width) ** 2))
    tissue = tissue + _col(p["spicule_intensity"]) * spic
    # calcifications: small bright dots
    calc = np.zeros((n, size, size), dtype=np.float32)
    dot = max(0.5, size / 100.0)
    m = p["calc_y"].size
    splat(
        calc,
        p["calc_index"],
        p["calc_y"],
        p["calc_x"],
        dot * p["calc_scale"],
        dot * p["calc_scale"],
        np.zeros(m),
        np.ones(m),
        edge=0.6,
    )
    tissue = tissue + 95.0 * calc
    image = tissue * breast + 4.0 * (1.0 - breast)
    image = ndimage.gaussian_filter(image, (0, 0.5, 0.5))
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    image = image + 2.5 * noise * (0.3 + 0.7 * breast)
    return np.clip(image, 0.0, 255.0), mask


# --------------------------------------------------------------------------- pathology


def render_pathology(rng, size, p):
    """Draw H&E tiles ``(n, size, size, 3)``: pink stroma with purple nuclei.

    Stain concentrations ``E`` (eosin: fibrous stroma with a few clear spaces) and ``H``
    (haematoxylin: the nuclei, drawn as filled ellipses) are mixed by Beer-Lambert's law,
    ``RGB = 250 exp(-(H od_H + E od_E))``.
    """
    n = p["stroma"].shape[0]
    fibres = smooth_noise(rng, (n, size, size), (size / 64.0, size / 14.0))
    gaps = smooth_noise(rng, (n, size, size), size / 10.0)
    eosin = _col(p["stroma"]) * (1.0 + 0.25 * fibres)
    eosin = eosin * (1.0 - 0.85 * (gaps > 1.3))  # a few clear spaces (fat, lumina)
    eosin = np.maximum(eosin, np.float32(0.02))
    hema = np.zeros((n, size, size), dtype=np.float32)
    splat(
        hema,
        p["nuc_index"],
        p["nuc_y"],
        p["nuc_x"],
        p["nuc_ry"],
        p["nuc_rx"],
        p["nuc_angle"],
        p["nuc_stain"],
        edge=0.3,
    )
    chromatin = smooth_noise(rng, (n, size, size), max(0.5, size / 128.0))
    hema = hema * (1.0 + 0.15 * chromatin)
    od_h = _HEMATOXYLIN_OD.astype(np.float32)
    od_e = _EOSIN_OD.astype(np.float32)
    density = hema[..., None] * od_h + eosin[..., None] * od_e
    rgb = 250.0 * np.exp(-density)
    rgb = rgb + 2.0 * rng.standard_normal(rgb.shape, dtype=np.float32)
    return np.clip(rgb, 0.0, 255.0)
