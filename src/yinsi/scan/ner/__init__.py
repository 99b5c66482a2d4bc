"""Person names and addresses (姓名、地址): a character-level averaged-perceptron tagger in pure Python.

Trained only on CLUENER2020 ``train.json`` (see ``yinsi.scan.ner.train``); the shipped artefact
(``yinsi/scan/data/ner_model.json.gz``) holds derived statistics only: feature weights, no sentences.
"""

from yinsi.scan.ner.model import NerModel, load_default_model

__all__ = ["NerModel", "load_default_model"]
