"""The synthetic HTS screen: plates of wells of fields, bright-field z-stacks, three stains and true labels.

Every biological difference lives in the two tables below, so a scientist can read and change them:
cell types differ in nucleus and cell size, shape, density, clustering and bright-field contrast; toxic
phenotypes shrink and round cells, condense and fragment nuclei, lower density and add DNA-damage foci.
Bright-field is formed from cell thickness (absorption plus a defocus halo, per z-plane), under a per-plate
illumination field, with Poisson-Gaussian camera noise; stains are masks times texture, blurred by a PSF.
Breast cells are small, crowded, clustered and faint in bright-field, so models trained on them transfer
worst, as Tonks et al. found; lung and ovarian differ mostly in size and shape, so they transfer partly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from vsearch.data.dataset import DatasetWriter
from vsearch.data.fields import FieldImages
from vsearch.data.manifest import DEFAULT_ROLES, DatasetInfo, split_group


@dataclass(frozen=True)
class CellType:
    nucleus_radius: float  # px, mean nucleus radius
    cell_radius: float  # px, mean cell radius
    elongation: float  # major/minor axis ratio of the cell body
    irregularity: float  # amplitude of the cell boundary's low harmonics
    density: float  # cells per 10,000 px² in untreated wells
    clustering: float  # fraction of cells that grow in colonies
    bf_contrast: float  # bright-field absorption and phase per unit thickness
    thickness: float  # peak cell height, arbitrary units


@dataclass(frozen=True)
class Phenotype:
    cell_scale: float  # multiplies cell radius
    nucleus_scale: float  # multiplies nucleus radius
    density_scale: float  # multiplies cell density (cell loss)
    rounding: float  # 0 keeps the type's elongation, 1 makes cells round (and taller)
    condensation: float  # multiplies nuclear stain intensity (condensed chromatin)
    fragmentation: float  # amplitude of lobes and clumps in the nucleus
    foci_per_nucleus: float  # mean number of DNA-damage foci


# fmt: off
CELL_TYPES: dict[str, CellType] = {
    #                  nucleus  cell   elong  irreg  density  cluster  bf_contrast  thickness
    "lung":    CellType(7.0,    15.0,  1.6,   0.10,  5.5,     0.15,    1.00,        8.0),
    "ovarian": CellType(8.5,    19.0,  1.2,   0.16,  3.6,     0.05,    1.25,        10.0),
    "breast":  CellType(5.5,    11.0,  1.1,   0.08,  8.5,     0.70,    0.55,        6.0),
}

PHENOTYPES: dict[str, Phenotype] = {
    #                       cell  nucleus  density  round  condense  fragment  foci
    "non_toxic": Phenotype(1.00,  1.00,    1.00,    0.0,   1.0,      0.00,     0.4),
    "toxic":     Phenotype(0.72,  0.78,    0.55,    0.8,   1.7,      0.22,     4.0),
}
# fmt: on

STAINS = ["nuclei", "cytoplasm", "dna_damage"]
LABELS = ["nuclei", "cells"]
NEGATIVE_CONTROL = ("non_toxic", "DMSO", 0.0)
POSITIVE_CONTROL = ("toxic", "staurosporine", 1.0)
CONTROL_WELLS_PER_TYPE = 2  # negative and positive control wells of each cell type, on every plate
TOXIC_CONCENTRATIONS_UM = (1.0, 3.0, 10.0)

STAIN_PEAK = {"nuclei": 2400.0, "cytoplasm": 1100.0, "dna_damage": 2600.0}
CAMERA_OFFSET = 100.0
READ_NOISE = 3.0
BF_LEVEL = 9000.0
PSF_SIGMA = 1.0
FOCI_SPACING = 4.0  # px between DNA-damage foci centres
FOCI_PEAK = 9000.0  # counts at a focus centre before the PSF blur
ROWS = "ABCDEFGHIJKLMNOP"  # a 384-well plate: 16 rows x 24 columns; controls in columns 1-2 and 23-24


@dataclass(frozen=True)
class SynthSpec:
    cell_types: tuple[str, ...] = ("lung", "ovarian", "breast")
    phenotypes: tuple[str, ...] = ("non_toxic", "toxic")
    plates: int = 2
    wells_per_condition: int = 3
    sites: int = 2
    size: int = 256
    bf_planes: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        for name, table, kind in (
            (self.cell_types, CELL_TYPES, "cell type"),
            (self.phenotypes, PHENOTYPES, "phenotype"),
        ):
            unknown = [n for n in name if n not in table]
            if unknown:
                raise ValueError(f"unknown {kind} {unknown[0]!r}; known: {', '.join(table)}")
        for key in ("plates", "wells_per_condition", "sites", "bf_planes"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.size < 64:
            raise ValueError(f"size must be at least 64 px, got {self.size}")


@dataclass(frozen=True)
class WellPlan:
    plate: str
    plate_index: int
    well: str
    cell_type: str
    phenotype: str
    treatment: str
    concentration: float
    is_control: str
    severity: float  # 0 = untreated, 1 = full phenotype


def plan_wells(spec: SynthSpec) -> list[WellPlan]:
    """Every well of every plate: treated wells of each condition plus negative and positive controls."""
    plans = []
    treated_slots = [f"{r}{c:02d}" for r in ROWS for c in range(3, 23)]
    control_slots = {
        "neg": [f"{r}{c:02d}" for c in (1, 2) for r in ROWS],
        "pos": [f"{r}{c:02d}" for c in (23, 24) for r in ROWS],
    }
    needed = len(spec.cell_types) * len(spec.phenotypes) * spec.wells_per_condition
    if needed > len(treated_slots) or len(spec.cell_types) * CONTROL_WELLS_PER_TYPE > len(control_slots["neg"]):
        raise ValueError(f"{needed} treated wells do not fit a 384-well plate; lower wells_per_condition")
    for p in range(spec.plates):
        plate = f"P{p + 1:02d}"
        slot = iter(treated_slots)
        for cell_type in spec.cell_types:
            for phenotype in spec.phenotypes:
                for w in range(spec.wells_per_condition):
                    toxic = PHENOTYPES[phenotype] != PHENOTYPES["non_toxic"]
                    conc = TOXIC_CONCENTRATIONS_UM[w % len(TOXIC_CONCENTRATIONS_UM)]
                    plans.append(
                        WellPlan(
                            plate,
                            p,
                            next(slot),
                            cell_type,
                            phenotype,
                            treatment=f"{phenotype}-cmpd-{w % 4 + 1}",
                            concentration=conc,
                            is_control="none",
                            severity=conc / (conc + 0.3) if toxic else 0.0,
                        )
                    )
        for kind, (phenotype, treatment, conc) in (("neg", NEGATIVE_CONTROL), ("pos", POSITIVE_CONTROL)):
            slots = iter(control_slots[kind])
            for cell_type in spec.cell_types:
                for _ in range(CONTROL_WELLS_PER_TYPE):
                    severity = 1.0 if kind == "pos" else 0.0
                    plans.append(WellPlan(plate, p, next(slots), cell_type, phenotype, treatment, conc, kind, severity))
    return plans


def phenotype_at(phenotype: Phenotype, severity: float) -> Phenotype:
    """The phenotype's effect scaled by treatment severity (0 = untreated, 1 = full effect)."""
    base = PHENOTYPES["non_toxic"]
    mixed = {
        k: getattr(base, k) + severity * (getattr(phenotype, k) - getattr(base, k)) for k in base.__dataclass_fields__
    }
    return replace(base, **mixed)


def plate_illumination(seed: int, plate_index: int, size: int) -> np.ndarray:
    """A smooth per-plate vignetting field around 1."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(plate_index, 1 << 20)))
    cy, cx = rng.uniform(0.3, 0.7, 2) * size
    strength = rng.uniform(0.15, 0.35)
    gain = rng.uniform(0.85, 1.15)
    yy, xx = np.mgrid[0:size, 0:size]
    return gain * (1.0 - strength * ((yy - cy) ** 2 + (xx - cx) ** 2) / size**2)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return noise / (noise.std() + 1e-12)


def _place_cells(
    rng: np.random.Generator, n: int, size: int, radii: np.ndarray, nuc: np.ndarray, clustering: float
) -> np.ndarray:
    """Centres (y, x) with nuclei kept apart; a ``clustering`` fraction grows in colonies."""
    candidates = []
    n_clusters = max(1, round(n * clustering / 8))
    centres = rng.uniform(0, size, (n_clusters, 2))
    for i in range(4 * n):
        if rng.random() < clustering:
            centre = centres[rng.integers(n_clusters)]
            candidates.append(centre + rng.normal(0, 1.8 * radii[i % n], 2))
        else:
            candidates.append(rng.uniform(0, size, 2))
    accepted: list[np.ndarray] = []
    accepted_idx: list[int] = []
    for i, point in enumerate(candidates):
        k = len(accepted)
        if k == n:
            break
        if not (0 <= point[0] < size and 0 <= point[1] < size):
            continue
        if k:
            pts = np.asarray(accepted)
            dist = np.hypot(*(pts - point).T)
            j = np.asarray(accepted_idx)
            if np.any(dist < 1.25 * (nuc[j] + nuc[k]) + 3) or np.any(dist < 0.75 * (radii[j] + radii[k])):
                continue
        accepted.append(point)
        accepted_idx.append(i % n)
    return np.asarray(accepted).reshape(-1, 2)


def _place_foci(rng: np.random.Generator, pixels: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` foci at candidate ``pixels``, at least ``FOCI_SPACING`` px apart (resolvable, as in real images)."""
    chosen: list[np.ndarray] = []
    for index in rng.permutation(len(pixels)):
        if len(chosen) == n:
            break
        if all(np.hypot(*(pixels[index] - c)) >= FOCI_SPACING for c in chosen):
            chosen.append(pixels[index])
    return np.asarray(chosen, np.intp).reshape(-1, 2)


def _shape_rho(
    dy: np.ndarray, dx: np.ndarray, radius: float, elongation: float, angle: float, harmonics: np.ndarray
) -> np.ndarray:
    """Normalised radial distance: < 1 inside an ellipse whose boundary is modulated by ``harmonics``."""
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    a, b = radius * np.sqrt(elongation), radius / np.sqrt(elongation)
    phi = np.arctan2(v, u)
    boundary = 1.0 + sum(amp * np.cos(k * phi + ph) for k, amp, ph in harmonics)
    return np.hypot(u / a, v / b) / boundary


def synth_field(
    rng: np.random.Generator,
    size: int,
    bf_planes: int,
    cell_type: CellType,
    phenotype: Phenotype,
    illumination: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One field: bright-field ``[Z,H,W]``, stains and labels, all uint16 / int32."""
    n = rng.poisson(cell_type.density * phenotype.density_scale * size * size / 1e4)
    radii = cell_type.cell_radius * phenotype.cell_scale * rng.lognormal(0, 0.12, max(n, 1))
    nuc = np.minimum(
        cell_type.nucleus_radius * phenotype.nucleus_scale * rng.lognormal(0, 0.10, max(n, 1)), 0.7 * radii
    )
    centres = _place_cells(rng, n, size, radii, nuc, cell_type.clustering)

    cell_rho = np.full((size, size), np.inf)
    cells = np.zeros((size, size), np.int32)
    nuclei = np.zeros((size, size), np.int32)
    height = np.zeros((size, size))
    phase = np.zeros((size, size))
    nucleus_signal = np.zeros((size, size))
    foci = np.zeros((size, size))
    elongation = 1 + (cell_type.elongation - 1) * (1 - phenotype.rounding)
    cell_height = cell_type.thickness * (1 + 0.8 * phenotype.rounding)
    for i, (cy, cx) in enumerate(centres):
        label = i + 1
        r, rn = radii[i], nuc[i]
        e = elongation * rng.lognormal(0, 0.08)
        angle = rng.uniform(0, np.pi)
        cell_harm = np.array(
            [(k, cell_type.irregularity * rng.uniform(0.3, 1), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4)]
        )
        nuc_harm = np.array(
            [(k, 0.04 + phenotype.fragmentation * rng.uniform(0.5, 1), rng.uniform(0, 2 * np.pi)) for k in (3, 5)]
        )
        half = int(np.ceil(r * np.sqrt(e) * (1 + 3 * cell_type.irregularity))) + 2
        y0, y1 = max(0, int(cy) - half), min(size, int(cy) + half + 1)
        x0, x1 = max(0, int(cx) - half), min(size, int(cx) + half + 1)
        dy, dx = np.mgrid[y0:y1, x0:x1]
        dy, dx = dy - cy, dx - cx
        rho = _shape_rho(dy, dx, r, e, angle, cell_harm)
        box = (slice(y0, y1), slice(x0, x1))
        mine = (rho < 1) & (rho < cell_rho[box])
        cell_rho[box][mine] = rho[mine]
        cells[box][mine] = label
        height[box] = np.maximum(height[box], np.where(rho < 1, cell_height * np.sqrt(np.clip(1 - rho**2, 0, 1)), 0))
        offset = rng.normal(0, 0.12 * (r - rn), 2)
        rho_n = _shape_rho(dy - offset[0], dx - offset[1], rn, 1 + (e - 1) * 0.5, angle, nuc_harm)
        inside = rho_n < 1
        nuclei[box][inside] = label
        dome = np.sqrt(np.clip(1 - rho_n**2, 0, 1))
        height[box] += 0.35 * cell_height * dome
        phase[box] += np.where(inside, 0.6 * cell_height * dome, 0)
        nucleus_signal[box] = np.maximum(nucleus_signal[box], np.where(inside, 0.75 + 0.25 * dome, 0))
        spots = _place_foci(rng, np.argwhere(inside & (rho_n < 0.8)), rng.poisson(phenotype.foci_per_nucleus))
        if len(spots):
            np.add.at(foci, (spots[:, 0] + y0, spots[:, 1] + x0), rng.uniform(0.7, 1.3, len(spots)))
    cells[nuclei > 0] = nuclei[nuclei > 0]
    cell_mask = cells > 0
    nucleus_mask = nuclei > 0

    chromatin = 1 + (0.18 + 0.8 * phenotype.fragmentation) * _smooth_noise(rng, (size, size), 1.2)
    nuclei_img = STAIN_PEAK["nuclei"] * phenotype.condensation * nucleus_signal * np.clip(chromatin, 0.2, None)
    cyto_texture = 1 + 0.25 * _smooth_noise(rng, (size, size), 3.0)
    cyto_img = (
        STAIN_PEAK["cytoplasm"]
        * (1 + 0.3 * phenotype.rounding)
        * cell_mask
        * np.where(nucleus_mask, 0.55, 1.0)
        * np.clip(cyto_texture, 0.2, None)
    )
    foci_sigma = 0.6
    damage_img = (
        STAIN_PEAK["dna_damage"] * (0.06 * nucleus_mask)
        + FOCI_PEAK * ndimage.gaussian_filter(foci, foci_sigma) * 2 * np.pi * foci_sigma**2
    )
    stains = {
        name: _camera(rng, ndimage.gaussian_filter(img, PSF_SIGMA))
        for name, img in (("nuclei", nuclei_img), ("cytoplasm", cyto_img), ("dna_damage", damage_img))
    }

    bf = np.empty((bf_planes, size, size), np.uint16)
    absorption = np.exp(-0.015 * cell_type.bf_contrast * height)
    phase += height
    for z in range(bf_planes):
        defocus = 1.0 + (z - (bf_planes - 1) / 2)
        blurred = ndimage.gaussian_filter(phase, 1.0 + 0.4 * abs(defocus))
        halo = 0.03 * cell_type.bf_contrast * defocus * ndimage.laplace(blurred)
        plane = ndimage.gaussian_filter(absorption - halo, 0.5 + 0.5 * abs(defocus))
        bf[z] = _camera(rng, BF_LEVEL * illumination * plane)
    return bf, stains, {"nuclei": nuclei, "cells": cells}


def _camera(rng: np.random.Generator, signal: np.ndarray) -> np.ndarray:
    counts = rng.poisson(np.clip(signal, 0, None)) + rng.normal(CAMERA_OFFSET, READ_NOISE, signal.shape)
    return np.clip(np.rint(counts), 0, 65535).astype(np.uint16)


def iter_screen(spec: SynthSpec) -> Iterator[tuple[dict[str, object], FieldImages]]:
    """(manifest metadata, pixels) of every field, reproducible from ``spec.seed``."""
    illumination = {p: plate_illumination(spec.seed, p, spec.size) for p in range(spec.plates)}
    for well_index, plan in enumerate(plan_wells(spec)):
        for site in range(spec.sites):
            rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(well_index, site)))
            bf, stains, labels = synth_field(
                rng,
                spec.size,
                spec.bf_planes,
                CELL_TYPES[plan.cell_type],
                phenotype_at(PHENOTYPES[plan.phenotype], plan.severity),
                illumination[plan.plate_index],
            )
            meta = {
                "plate": plan.plate,
                "well": plan.well,
                "site": site,
                "tile": 0,
                "origin_y": 0,
                "origin_x": 0,
                "cell_type": plan.cell_type,
                "phenotype": plan.phenotype,
                "treatment": plan.treatment,
                "concentration": plan.concentration,
                "is_control": plan.is_control,
                "split_group": split_group(plan.plate, plan.well),
            }
            yield meta, FieldImages(f"{plan.plate}-{plan.well}-s{site}", bf, stains, labels)


def count_fields(spec: SynthSpec) -> int:
    return len(plan_wells(spec)) * spec.sites


def synthesize(
    spec: SynthSpec,
    out: str,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> DatasetInfo:
    """Write the synthetic screen to ``out`` (a folder or ``s3://`` prefix) and return its info."""
    info = DatasetInfo(
        name="synthetic-screen",
        stains=STAINS,
        labels=LABELS,
        bf_planes=spec.bf_planes,
        pixel_size_um=0.65,
        source=f"vsearch synth {spec}",
        roles=DEFAULT_ROLES,
    )
    total = count_fields(spec)
    with DatasetWriter(out, info, overwrite=overwrite) as writer:
        for done, (meta, images) in enumerate(iter_screen(spec), start=1):
            writer.add(meta, images)
            if progress:
                progress(done, total)
    return info
