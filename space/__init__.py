"""NAS-FPN search space: genotype value, canonical hash, decision sequence, JSON format.

The torch builder lives in `space.pyramid` and is not imported here, so the genotype,
the search space and the controller never need torch to describe an architecture.
"""

from space.canonical import canonical_hash
from space.expansion import MergeNode, expand, output_indices
from space.genotype import OPS, Cell, Genotype, GenotypeError, make_genotype
from space.search_space import Decision, SearchSpace
from space.serialization import BUILTIN_NAMES, builtin_path, dumps, load, load_builtin, load_spec, loads, save

__all__ = [
    "BUILTIN_NAMES",
    "OPS",
    "Cell",
    "Decision",
    "Genotype",
    "GenotypeError",
    "MergeNode",
    "SearchSpace",
    "builtin_path",
    "canonical_hash",
    "dumps",
    "expand",
    "load",
    "load_builtin",
    "load_spec",
    "loads",
    "make_genotype",
    "output_indices",
    "save",
]
