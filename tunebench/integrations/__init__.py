"""Helpers for training scripts written with a deep-learning framework (layer L4).

* :mod:`tunebench.integrations.torch` — PyTorch (``pip install 'tunebench[torch]'``): one
  checkpoint per epoch holding the model, optimizer, LR scheduler, epoch and every RNG state
  (:func:`~tunebench.integrations.torch.save_training_state` /
  :func:`~tunebench.integrations.torch.load_training_state`, which starts a trial from scratch
  when its checkpoint is corrupted), the device to train on, a file lock so that parallel trials
  prepare a dataset once (:func:`~tunebench.integrations.torch.data_lock`,
  :func:`~tunebench.integrations.torch.cached_arrays`), and the end of a diverged trial
  (:func:`~tunebench.integrations.torch.check_finite`).

This package imports nothing itself: ``import tunebench.integrations.torch`` imports torch, so
only scripts that use torch pay for it. The scripts in :mod:`tunebench.examples`
(``resnet_images.py``, ``transformer_wikitext2.py``) show how to use it.
"""
