"""The synthetic HTS screen: plates of wells of fields, bright-field z-stacks, three stains and true labels.

Every biological difference lives in the two tables below, so a scientist can read and change them:
cell types differ in nucleus and cell size, shape, density, clustering and bright-field contrast; toxic
phenotypes shrink and round cells, condense and fragment nuclei, lower density and add DNA-damage foci.
Bright-field is formed from cell thickness (absorption plus a defocus halo, per z-plane), under a per-plate
illumination field, with Poisson-Gaussian camera noise; stains are masks times texture, blurred by a PSF.
Breast cells are small, crowded, clustered and faint in bright-field; lung and ovarian differ mostly in size and
shape. What that does to transfer is measured, not assumed (``analysis/README.md``: the 6 × 6 design, 3 seeds,
transfer scored against each test condition's own model): breast-trained models lose most on other cell types at
every level (beyond the seed spread at the instance and feature levels); lung-trained models transfer to ovarian
cells almost fully, ovarian-trained ones to lung cells partly; non-toxic training loses less on toxic cells than
the reverse at every level, but beyond the seed spread only at the instance level.
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


# How a cell is drawn. Sizes vary log-normally around the type's means; a nucleus fills at most 70 % of its cell
CELL_SIZE_SPREAD, NUCLEUS_SIZE_SPREAD, ELONGATION_SPREAD = 0.12, 0.10, 0.08
MAX_NUCLEUS_FRACTION = 0.7
ROUNDED_HEIGHT_GAIN = 0.8  # a fully rounded (toxic) cell stands 1.8 times as tall: it detaches and balls up
CELL_HARMONICS, NUCLEUS_HARMONICS = (2, 3, 4), (3, 5)  # boundary modes: broad lobes for cells, finer for nuclei
NUCLEUS_BASE_IRREGULARITY = 0.04  # even a healthy nucleus is not a perfect ellipse
NUCLEUS_OFFSET_SPREAD = 0.12  # nuclei sit off-centre by about 12 % of the cytoplasm rim
NUCLEUS_ELONGATION_SHARE = 0.5  # a nucleus is half as elongated as its cell
NUCLEUS_DOME = 0.35  # the nucleus bulges the cell by 35 % of the cell's height
NUCLEUS_PHASE = 0.6  # extra optical path of the denser nucleus (per unit cell height), seen in bright-field
NUCLEUS_RIM_SIGNAL = 0.75  # DNA stain at the nuclear rim relative to its centre
FOCI_ZONE = 0.8  # foci form inside the inner 80 % of the nucleus radius
FOCUS_BRIGHTNESS = (0.7, 1.3)  # relative brightness range of single foci

# How the stains look: multiplicative texture of unit-variance smooth noise, floored so signal never vanishes
CHROMATIN_TEXTURE, FRAGMENTED_CHROMATIN_TEXTURE, CHROMATIN_GRAIN_PX = 0.18, 0.8, 1.2
CYTOPLASM_TEXTURE, CYTOPLASM_GRAIN_PX = 0.25, 3.0
TEXTURE_FLOOR = 0.2
ROUNDED_CYTOPLASM_GAIN = 0.3  # the same cytoplasm in a smaller, rounder cell stains brighter per pixel
CYTOPLASM_OVER_NUCLEUS = 0.55  # cytoplasm stain above and below the nucleus is thinner, hence dimmer
DNA_DAMAGE_BACKGROUND = 0.06  # diffuse nuclear γH2AX signal, as a fraction of the stain's peak
FOCUS_SIGMA_PX = 0.6  # a focus is a diffraction-limited spot before the PSF

# How bright-field forms: Beer–Lambert absorption of the cell's thickness, and a defocus halo from the phase's
# Laplacian that flips sign across focus; each plane is blurred more the further it is from focus
BF_ABSORPTION = 0.015
BF_HALO = 0.03
PHASE_BLUR_PX, PHASE_BLUR_PER_PLANE = 1.0, 0.4
PLANE_BLUR_PX, PLANE_BLUR_PER_PLANE = 0.5, 0.5


@dataclass
class CellMaps:
    """Per-pixel maps of a field's cells, from which stains and bright-field are imaged."""

    cells: np.ndarray  # int32 cell labels (each cell's nucleus included)
    nuclei: np.ndarray  # int32 nucleus labels, the same label as the cell
    height: np.ndarray  # cell thickness
    phase: np.ndarray  # extra optical path of the nuclei
    nucleus_signal: np.ndarray  # DNA stain density, 0 outside nuclei
    foci: np.ndarray  # DNA-damage foci, one impulse each
    rho: np.ndarray  # normalised distance to the nearest cell centre (< 1 inside a cell), for overlaps

    @classmethod
    def empty(cls, size: int) -> CellMaps:
        zeros = np.zeros((size, size))
        return cls(
            np.zeros((size, size), np.int32), np.zeros((size, size), np.int32), zeros.copy(), zeros.copy(),
            zeros.copy(), zeros.copy(), np.full((size, size), np.inf),
        )  # fmt: skip


def _harmonics(rng: np.random.Generator, modes: tuple[int, ...], amplitude: Callable[[], float]) -> np.ndarray:
    return np.array([(k, amplitude(), rng.uniform(0, 2 * np.pi)) for k in modes])


def _draw_cell(
    rng: np.random.Generator,
    maps: CellMaps,
    label: int,
    centre: np.ndarray,
    radius: float,
    nucleus_radius: float,
    cell_type: CellType,
    phenotype: Phenotype,
) -> None:
    """Adds one cell (body, nucleus and its foci) to ``maps``; a cell drawn later does not cover an earlier one."""
    size = len(maps.cells)
    cy, cx = centre
    elongation = (1 + (cell_type.elongation - 1) * (1 - phenotype.rounding)) * rng.lognormal(0, ELONGATION_SPREAD)
    cell_height = cell_type.thickness * (1 + ROUNDED_HEIGHT_GAIN * phenotype.rounding)
    angle = rng.uniform(0, np.pi)
    cell_harmonics = _harmonics(rng, CELL_HARMONICS, lambda: cell_type.irregularity * rng.uniform(0.3, 1))
    nucleus_harmonics = _harmonics(
        rng, NUCLEUS_HARMONICS, lambda: NUCLEUS_BASE_IRREGULARITY + phenotype.fragmentation * rng.uniform(0.5, 1)
    )
    half = int(np.ceil(radius * np.sqrt(elongation) * (1 + 3 * cell_type.irregularity))) + 2  # holds the lobes
    y0, y1 = max(0, int(cy) - half), min(size, int(cy) + half + 1)
    x0, x1 = max(0, int(cx) - half), min(size, int(cx) + half + 1)
    dy, dx = np.mgrid[y0:y1, x0:x1]
    dy, dx = dy - cy, dx - cx
    box = (slice(y0, y1), slice(x0, x1))

    rho = _shape_rho(dy, dx, radius, elongation, angle, cell_harmonics)
    mine = (rho < 1) & (rho < maps.rho[box])
    maps.rho[box][mine] = rho[mine]
    maps.cells[box][mine] = label
    body = np.where(rho < 1, cell_height * np.sqrt(np.clip(1 - rho**2, 0, 1)), 0)  # a dome
    maps.height[box] = np.maximum(maps.height[box], body)

    offset = rng.normal(0, NUCLEUS_OFFSET_SPREAD * (radius - nucleus_radius), 2)
    nucleus_elongation = 1 + (elongation - 1) * NUCLEUS_ELONGATION_SHARE
    rho_n = _shape_rho(dy - offset[0], dx - offset[1], nucleus_radius, nucleus_elongation, angle, nucleus_harmonics)
    inside = rho_n < 1
    maps.nuclei[box][inside] = label
    dome = np.sqrt(np.clip(1 - rho_n**2, 0, 1))
    maps.height[box] += NUCLEUS_DOME * cell_height * dome
    maps.phase[box] += np.where(inside, NUCLEUS_PHASE * cell_height * dome, 0)
    signal = np.where(inside, NUCLEUS_RIM_SIGNAL + (1 - NUCLEUS_RIM_SIGNAL) * dome, 0)
    maps.nucleus_signal[box] = np.maximum(maps.nucleus_signal[box], signal)
    spots = _place_foci(rng, np.argwhere(inside & (rho_n < FOCI_ZONE)), rng.poisson(phenotype.foci_per_nucleus))
    if len(spots):
        np.add.at(maps.foci, (spots[:, 0] + y0, spots[:, 1] + x0), rng.uniform(*FOCUS_BRIGHTNESS, len(spots)))


def draw_cells(rng: np.random.Generator, size: int, cell_type: CellType, phenotype: Phenotype) -> CellMaps:
    """A field's cells: how many (Poisson on the density), how large, where, then each drawn."""
    n = rng.poisson(cell_type.density * phenotype.density_scale * size * size / 1e4)
    radii = cell_type.cell_radius * phenotype.cell_scale * rng.lognormal(0, CELL_SIZE_SPREAD, max(n, 1))
    nucleus_radii = np.minimum(
        cell_type.nucleus_radius * phenotype.nucleus_scale * rng.lognormal(0, NUCLEUS_SIZE_SPREAD, max(n, 1)),
        MAX_NUCLEUS_FRACTION * radii,
    )
    centres = _place_cells(rng, n, size, radii, nucleus_radii, cell_type.clustering)
    maps = CellMaps.empty(size)
    for i, centre in enumerate(centres):
        _draw_cell(rng, maps, i + 1, centre, radii[i], nucleus_radii[i], cell_type, phenotype)
    maps.cells[maps.nuclei > 0] = maps.nuclei[maps.nuclei > 0]
    return maps


def image_stains(rng: np.random.Generator, maps: CellMaps, phenotype: Phenotype) -> dict[str, np.ndarray]:
    """The three stains as a camera records them (PSF blur, Poisson-Gaussian noise), uint16."""
    size = len(maps.cells)
    cell_mask, nucleus_mask = maps.cells > 0, maps.nuclei > 0
    texture = FRAGMENTED_CHROMATIN_TEXTURE * phenotype.fragmentation + CHROMATIN_TEXTURE
    chromatin = 1 + texture * _smooth_noise(rng, (size, size), CHROMATIN_GRAIN_PX)
    nuclei = (
        STAIN_PEAK["nuclei"] * phenotype.condensation * maps.nucleus_signal * np.clip(chromatin, TEXTURE_FLOOR, None)
    )
    cytoplasm_texture = 1 + CYTOPLASM_TEXTURE * _smooth_noise(rng, (size, size), CYTOPLASM_GRAIN_PX)
    cytoplasm = (
        STAIN_PEAK["cytoplasm"]
        * (1 + ROUNDED_CYTOPLASM_GAIN * phenotype.rounding)
        * cell_mask
        * np.where(nucleus_mask, CYTOPLASM_OVER_NUCLEUS, 1.0)
        * np.clip(cytoplasm_texture, TEXTURE_FLOOR, None)
    )
    # each focus keeps FOCI_PEAK at its centre: the Gaussian's area restores the impulse's height
    foci = FOCI_PEAK * ndimage.gaussian_filter(maps.foci, FOCUS_SIGMA_PX) * 2 * np.pi * FOCUS_SIGMA_PX**2
    damage = STAIN_PEAK["dna_damage"] * DNA_DAMAGE_BACKGROUND * nucleus_mask + foci
    return {
        name: _camera(rng, ndimage.gaussian_filter(image, PSF_SIGMA))
        for name, image in (("nuclei", nuclei), ("cytoplasm", cytoplasm), ("dna_damage", damage))
    }


def image_bright_field(
    rng: np.random.Generator, maps: CellMaps, cell_type: CellType, bf_planes: int, illumination: np.ndarray
) -> np.ndarray:
    """The bright-field z-stack ``[Z,H,W]`` uint16, the focal plane in the middle."""
    size = len(maps.cells)
    bf = np.empty((bf_planes, size, size), np.uint16)
    absorption = np.exp(-BF_ABSORPTION * cell_type.bf_contrast * maps.height)
    phase = maps.phase + maps.height
    for z in range(bf_planes):
        defocus = 1.0 + (z - (bf_planes - 1) / 2)
        blurred = ndimage.gaussian_filter(phase, PHASE_BLUR_PX + PHASE_BLUR_PER_PLANE * abs(defocus))
        halo = BF_HALO * cell_type.bf_contrast * defocus * ndimage.laplace(blurred)
        plane = ndimage.gaussian_filter(absorption - halo, PLANE_BLUR_PX + PLANE_BLUR_PER_PLANE * abs(defocus))
        bf[z] = _camera(rng, BF_LEVEL * illumination * plane)
    return bf


def synth_field(
    rng: np.random.Generator,
    size: int,
    bf_planes: int,
    cell_type: CellType,
    phenotype: Phenotype,
    illumination: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One field: bright-field ``[Z,H,W]``, stains and labels, all uint16 / int32."""
    maps = draw_cells(rng, size, cell_type, phenotype)
    stains = image_stains(rng, maps, phenotype)
    bf = image_bright_field(rng, maps, cell_type, bf_planes, illumination)
    return bf, stains, {"nuclei": maps.nuclei, "cells": maps.cells}


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
