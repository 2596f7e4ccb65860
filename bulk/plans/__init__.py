"""Reviewed plans: ``--plan-out`` writes what a run would do, ``bulk execute`` sends exactly
that, ``bulk sync`` turns a desired membership into actions.

Its modules import the job's machinery; this package imports none of them itself, so the job
can use :mod:`bulk.plans._sight` without a cycle.
"""
