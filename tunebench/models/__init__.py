"""Models used by model-based searchers (L1, below schedulers and searchers): a Gaussian
process, acquisition functions, a kernel density estimator.  They work on encoded arrays
(see :class:`tunebench.space.SpaceEncoder`), never on config dicts, and import nothing from
tunebench apart from L0 modules.

``tunebench.models.curve_prior`` (a prior over learning curves for training a curve-extrapolating
PFN) needs torch, so it is not imported here: import it by its full name.  So are
``tunebench.models.pfn`` (that PFN's numpy inference and shipped weights: ``PFNSurrogate``) and
``tunebench.models.pfn_train`` (the same network in torch, for training only)."""
