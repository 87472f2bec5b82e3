"""The drain engine: cordon, evict in parallel, wait by watching, fenced force-cleanup.

One :class:`~.run.Drain` works on one node of one cluster, against a deadline. Read it first: its
``run()`` is the whole drain in order; each step's work is a module of its own.

- :mod:`.deadline`: the drain's clock, deadline and condition, shared by every part.
- :mod:`.cordon`: the node made unschedulable, pinned to its UID; a cordon before ours is remembered.
- :mod:`.pods`: the pods it acts on (classified by :mod:`functions.decisions.policy`), kept current
  by a watch on the node's pods; what is recorded about each.
- :mod:`.budgets` and :mod:`.evictions`: policy/v1 evictions (pod UID as precondition), the pods of
  one PodDisruptionBudget in turn, system-critical pods last.
- :mod:`.fence`: whether the VM is verified off (Compute Engine outranks the Node rule; storm
  protection caps the Node rule alone), and the out-of-service taint.
- :mod:`.force`: only then, what is left is force-deleted (grace 0, UID precondition).
- :mod:`.report`: each pod's result, the outcome and the summary the audit record carries.
"""
