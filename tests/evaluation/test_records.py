"""Reading a run's records files that hold lines no writer of this package wrote."""

from captum_bilinear.evaluation.records import RecordWriter, block_settings, complete_blocks


def test_lines_that_are_json_but_not_records_are_skipped_like_damaged_ones(tmp_path):
    """A "done" line without an example id (or with a count that is not a number) ended
    every read -- and ``evaluate --resume`` -- in a KeyError traceback."""
    writer = RecordWriter(str(tmp_path), settings="abc")
    writer.write_example("e1", [{"kind": "object", "method": "BII", "object": 0, "PGA": 1.0}])
    writer.close()
    with open(writer.path, "a", encoding="utf-8") as handle:
        handle.write('{"block": "x", "kind": "done", "records": 0}\n'
                     '{"block": "y", "kind": "done", "example_id": ["not", "an", "id"], "records": 0}\n'
                     '{"block": ["unhashable"], "kind": "object"}\n'
                     '[1, 2]\n"text"\n')
    blocks = complete_blocks(str(tmp_path))
    assert list(blocks) == ["e1"] and blocks["e1"][0]["PGA"] == 1.0
    assert block_settings(str(tmp_path)) == {"abc"}
