"""Compression of a task's backbone (``compression=`` config group): the contract (``base.py``), low-rank
factors of linear and pointwise layers (``factors.py``, ``lowrank.py``), the source checkpoint of
``compression.from_ckpt`` (``source.py``) and where a sweep's SVD jobs find theirs (``sweep_source.py``)."""
