"""An independent model of the business rules (shared/docs/business-rules.md), in plain Python.

Given the source as each successful run saw it (``history.History``), the model says what every fact,
bridge and mart must hold; ``tests/model/compare.py`` puts that beside what the warehouse holds. It is
written from the business rules and the source contract, never from the procedures: where the two
disagree, one of them is wrong, and the randomized comparison (``tests/model/scenario.py``) says where.
"""
