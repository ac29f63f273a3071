"""Strategy experiments: design (power, sample size, MDE), deterministic assignment, SRM.

``design.py`` sizes a champion/challenger test per segment, ``assign.py`` splits customers
into arms with a salted hash on the engine, ``srm.py`` checks the split against the design.
"""

from .assign import assign_arms, hash_bucket
from .design import ArmWeights, design
from .run import readout_experiment
from .srm import srm_check

__all__ = ["ArmWeights", "assign_arms", "design", "hash_bucket", "readout_experiment", "srm_check"]
