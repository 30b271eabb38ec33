"""The nemesis's checker finds what it is there to find, in the client's
acknowledged operations and in the exported record stream: a lost instance,
one that never ended, a job completed twice, a message correlated twice;
and nothing in a clean history."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nemesis import check, check_stream  # noqa: E402


def history(tmp_path, ops):
    path = os.path.join(tmp_path, "operations.jsonl")
    with open(path, "w") as f:
        for op in ops:
            f.write(json.dumps(op) + "\n")
    return path


def instance(n, key, work_job, finish_jobs, completions=None):
    ops = [{"op": "create", "id": n, "key": key}, {"op": "publish", "id": n, "message": f"go-{n}"}]
    ops.append({"op": "activate", "type": "work", "job": work_job, "instance": key})
    ops.append({"op": "complete", "type": "work", "job": work_job, "instance": key})
    for job in finish_jobs:
        ops.append({"op": "activate", "type": "finish", "job": job, "instance": key})
    for job in completions if completions is not None else finish_jobs[:1]:
        ops.append({"op": "complete", "type": "finish", "job": job, "instance": key})
    return ops


def test_the_client_history_counts_what_it_was_told(tmp_path):
    ops = (
        instance(0, 100, 1, [2])
        # Its finish job's completion never answered.
        + instance(1, 200, 3, [4], completions=[])
        # Its finish job acknowledged as completed twice.
        + instance(2, 300, 5, [6], completions=[6, 6])
        # Two finish jobs: the message correlated twice.
        + instance(3, 400, 7, [8, 9])
        # Acknowledged, then never seen again.
        + [{"op": "create", "id": 4, "key": 500}]
        # An unanswered completion, then NOT_FOUND: that one completed it.
        + instance(5, 600, 10, [11], completions=[])
        + [{"op": "complete-gone", "type": "finish", "job": 11, "instance": 600}]
    )
    result = check(history(tmp_path, ops))
    assert result["acknowledged"] == 6 and sorted(result["created"]) == [100, 200, 300, 400, 500, 600]
    assert result["client_unfinished"] == 2
    assert result["never_activated"] == 1
    assert result["duplicate_completions"] == 1
    assert result["duplicate_correlations"] == 1
    assert result["indeterminate_completions"] == 1


def event(key, intent, value_type, value):
    return {"key": key, "record_type": "Event", "intent": intent, "value": {value_type: value}}


def stream(records):
    return {(1, i, 0): r for i, r in enumerate(records)}


def process(key, intent):
    return event(key, intent, "ProcessInstance", {"bpmn_element_type": "Process", "process_instance_key": key})


def job(key, intent, job_type, instance_key):
    return event(key, intent, "Job", {"job_type": job_type, "process_instance_key": instance_key})


def test_the_exported_stream_tells_lost_from_unfinished_and_finds_doubles():
    records = stream(
        [
            process(100, "ElementActivating"),
            job(1, "Created", "finish", 100),
            job(1, "Completed", "finish", 100),
            process(100, "ElementCompleted"),
            # Started, never ended; a finish job completed twice; two finish jobs.
            process(200, "ElementActivating"),
            job(2, "Created", "finish", 200),
            job(3, "Created", "finish", 200),
            job(2, "Completed", "finish", 200),
            job(2, "Completed", "finish", 200),
            # A rejection is not an event.
            {"key": 300, "record_type": "CommandRejection", "intent": "ElementActivating",
             "value": {"ProcessInstance": {"bpmn_element_type": "Process"}}},
        ]
    )
    result = check_stream(records, {100: 0, 200: 1, 300: 2})
    assert result["lost"] == [300]
    assert result["unfinished"] == [200]
    assert result["duplicate_completions"] == 1
    assert result["duplicate_correlations"] == 1
    clean = check_stream(stream(records_of_one := [process(100, "ElementActivating"), process(100, "ElementCompleted")]), {100: 0})
    assert clean["lost"] == clean["unfinished"] == [] and clean["exported_records"] == len(records_of_one)
