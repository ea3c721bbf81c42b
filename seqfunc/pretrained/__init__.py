"""Pretrained models in and out: Hugging Face folders <-> seqfunc run folders.

* :mod:`~seqfunc.pretrained.architectures`: what is supported, config translation both ways;
* :mod:`~seqfunc.pretrained.tables` / :mod:`~seqfunc.pretrained.key_table`: the declarative
  name mapping, one table per architecture;
* :mod:`~seqfunc.pretrained.reader`: the lazy reader of a folder's weights;
* :mod:`~seqfunc.pretrained.convert`: parameters through a table, shape-checked;
* :mod:`~seqfunc.pretrained.importer` / :mod:`~seqfunc.pretrained.exporter`: the commands.
"""

from seqfunc.pretrained.architectures import ARCHITECTURES, supported_names
from seqfunc.pretrained.exporter import export_run
from seqfunc.pretrained.importer import import_folder

__all__ = ["ARCHITECTURES", "export_run", "import_folder", "supported_names"]
