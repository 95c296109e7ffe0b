"""Concept banks: cohort-level k-means centres of backbone features, with provenance."""

from unseg.concepts.bank import ConceptBank
from unseg.concepts.fit import DEFAULT_KS, fit_bank
from unseg.concepts.published import PUBLISHED, load_bank

__all__ = ["DEFAULT_KS", "PUBLISHED", "ConceptBank", "fit_bank", "load_bank"]
