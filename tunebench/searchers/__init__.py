"""Searchers (L1): *what* configuration a new trial gets."""

from tunebench.searchers.base import Searcher, check_mode
from tunebench.searchers.grid import GridSearcher
from tunebench.searchers.random import RandomSearcher

__all__ = ["Searcher", "check_mode", "RandomSearcher", "GridSearcher"]
