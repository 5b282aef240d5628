"""`dealkeeper doctor`'s judgments, pure: what Close and Redis answered comes in as data
(service/commands/doctor.py asks them), and each check returns one result saying what
holds, or what is wrong and what to do next. diagnosis.py judges the key, admin rights, the
clock and the rate limits; delivery.py the rules' names in Close, the webhook subscription,
the event log and the write probe; results.py holds the results and prints them.

It imports the rest of service.core and service.config only.
"""
