"""Person names and addresses (姓名、地址): a character-level linear-chain CRF (CRFsuite).

Trained only on public NER training splits (CLUENER2020 ``train.json``; MSRA, Weibo and Resume NER training
data fetched by ``bench/scanner/ner_data.py``; see ``yinsi.scan.ner.train``). The shipped artefact
(``yinsi/scan/data/ner_crf.crfsuite.gz``, described by ``ner_crf.json``) holds feature weights only, no sentences.
"""

from yinsi.scan.ner.model import NerModel, load_default_model

__all__ = ["NerModel", "load_default_model"]
