"""Helpers for training scripts written with a deep-learning framework (layer L4).

* :mod:`tunebench.integrations.torch` — PyTorch (``pip install 'tunebench[torch]'``): one
  checkpoint per epoch holding the model, optimizer, LR scheduler, epoch and every RNG state
  (:func:`~tunebench.integrations.torch.save_training_state` /
  :func:`~tunebench.integrations.torch.load_training_state`, which starts a trial from scratch
  when its checkpoint is corrupted), the device to train on, a file lock so that parallel trials
  prepare a dataset once (:func:`~tunebench.integrations.torch.data_lock`,
  :func:`~tunebench.integrations.torch.cached_arrays`), and the end of a diverged trial
  (:func:`~tunebench.integrations.torch.check_finite`).
* :mod:`tunebench.integrations.lightning` — PyTorch Lightning (``pip install 'tunebench[lightning]'``):
  ``ReportCallback`` reports the monitored metrics each validation epoch after writing the
  trainer's checkpoint into the trial's folder; ``resume_checkpoint_path()`` is the ``ckpt_path``
  that resumes a paused trial (``tunebench/examples/lightning_mlp.py``).
* :mod:`tunebench.integrations.transformers` — the Hugging Face ``Trainer``
  (``pip install 'tunebench[transformers]'``): ``ReportCallback`` reports each evaluation after
  the checkpoint that follows it; ``trial_output_dir()`` and ``resume_checkpoint_path()`` keep
  the Trainer's checkpoints in the trial's folder and resume from the newest complete one
  (``tunebench/examples/hf_tiny.py``).
* :mod:`tunebench.integrations.sklearn` — scikit-learn (``pip install 'tunebench[sklearn]'``):
  :class:`~tunebench.integrations.sklearn.TuneSearchCV`, a search estimator (``fit``,
  ``best_params_``, ``best_estimator_``, ``cv_results_``) whose trials any tunebench method
  decides, with ``n_samples`` or ``max_iter`` as the resource of multi-fidelity methods.
* :mod:`tunebench.integrations.mlflow` — :class:`~tunebench.integrations.mlflow.MLflowCallback`
  (``tunebench[mlflow]``) and :mod:`tunebench.integrations.tensorboard` —
  :class:`~tunebench.integrations.tensorboard.TensorBoardCallback` (``tunebench[tensorboard]``):
  tuner callbacks that log one run per trial (``tunebench run --mlflow / --tensorboard``); what
  they share (runs kept across resumes, a failing backend turned off) is
  :class:`tunebench.integrations.run_logging.TrialRunLogger`.

This package imports nothing itself: ``import tunebench.integrations.torch`` imports torch (and
``.lightning`` lightning, ``.transformers`` transformers, ``.mlflow`` mlflow, ``.tensorboard``
tensorboard), so only code that uses one pays for it. The scripts in :mod:`tunebench.examples`
(``resnet_images.py``, ``transformer_wikitext2.py``, ``lightning_mlp.py``, ``hf_tiny.py``) show
how to use them.
"""
