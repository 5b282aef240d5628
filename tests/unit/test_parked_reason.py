"""The reason a parked event keeps: the frame that raised and the exception, Close's answer
whole, within its size."""

from __future__ import annotations

from service.adapters.parked import TRIMMED_HEADER, compact_reason

ANSWER = (
    "service.config.errors.CloseClientError: 400 Bad Request for PUT opportunity/oppo_1/: "
    "custom.cf_1.add: 'Enterprise' is not one of the field's choices."
)
CHAINED = f"""Traceback (most recent call last):
  File "/app/service/adapters/transport.py", line 80, in send
    return session.request(method, url)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
requests.exceptions.HTTPError: 400

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/service/jobs.py", line 173, in process_event
    return _process(event, job_id=job_id)
  File "/app/service/adapters/close.py", line 277, in _request_object
    raise error_for(
{ANSWER}
field-errors: {{"custom.cf_1": "not a choice"}}
"""


def test_parked_reason_is_the_frame_that_raised_and_the_whole_exception() -> None:
    assert [
        TRIMMED_HEADER,
        '  File "/app/service/adapters/close.py", line 277, in _request_object',
        "    raise error_for(",
        ANSWER,
        'field-errors: {"custom.cf_1": "not a choice"}',
    ] == compact_reason(CHAINED).splitlines()


def test_parked_reason_too_long_loses_its_beginning_not_closes_answer() -> None:
    reason = compact_reason(CHAINED, limit=120)

    assert (120, True) == (len(reason), reason.endswith('{"custom.cf_1": "not a choice"}'))
    assert reason.startswith("…")


def test_parked_reason_without_a_traceback_is_kept_as_it_is() -> None:
    assert "Job stopped by user, work-horse terminated." == compact_reason(
        "Job stopped by user, work-horse terminated.\n"
    )
