"""Models used by model-based searchers (L1, below schedulers and searchers): a Gaussian
process, acquisition functions, a kernel density estimator.  They work on encoded arrays
(see :class:`tunebench.space.SpaceEncoder`), never on config dicts, and import nothing from
tunebench apart from L0 modules."""
