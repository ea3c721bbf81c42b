"""seqfunc: sequence models as pure functions over parameter pytrees, trained with torch.func.

The stable public face is the modules below; everything else is reachable by its module path
(``seqfunc.models``, ``seqfunc.data``, ``seqfunc.tasks``, ``seqfunc.fit``, ...).
"""

from seqfunc import metrics, nn, optim, rng, tree
from seqfunc.train import TrainState, init_state, make_step

__version__ = "0.1.0"

__all__ = ["metrics", "nn", "optim", "rng", "tree", "TrainState", "init_state", "make_step"]
