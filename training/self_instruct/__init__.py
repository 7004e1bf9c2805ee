"""Self-OSS-Instruct: align a code model on instructions and tested responses it writes itself.

Stages (one module each): ``seeds`` (gathering and filters), ``typecheck`` (pyright), ``judge``
(docstring quality), ``concepts`` (S->C), ``instructions`` (C->I), ``responses`` (I->R),
``validate`` (sandboxed self-validation and dedup); ``pipeline`` runs them resumably.
"""
