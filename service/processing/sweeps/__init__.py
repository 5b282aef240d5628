"""Sweeps: rules that go over existing opportunities on a schedule.

A sweep rule (`schedule` + `find` beside the usual `if`/`then`) lists its opportunities
from Close page by page (run.py, paging.py, fields.py), judges each as a job will, and
queues one job per deal to change on the normal update path (service/processing/jobs.py). The
workers run each scheduled time once (schedule.py); `dealkeeper sweep NAME` runs one now.
Part of processing: it imports the job (jobs.py) and what processing may import.
"""
