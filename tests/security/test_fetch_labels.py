"""A label table's errors name the row, and never repeat a line of the file."""

from __future__ import annotations

import pytest

from service.reasons import AlvoError, Reason
from service.vo.label_tables import parse_labels


def test_a_typo_in_a_verdict_is_shown():
    with pytest.raises(AlvoError, match="row 0: label 'emision' is not one of") as caught:
        parse_labels(b"pubdid,label\nivo://x?1,emision\n")
    assert caught.value.reason is Reason.BAD_LABEL_FILE


@pytest.mark.parametrize(
    "value",
    ["root:x:0:0:root:/root:/bin/bash", "AKIAIOSFODNN7EXAMPLE/wJalrXUtnFEMI", "a" * 200],
)
def test_file_content_in_the_label_column_is_not_echoed(value):
    with pytest.raises(AlvoError) as caught:
        parse_labels(f"pubdid,label\nivo://x?1,{value}\n".encode())
    message = caught.value.detail
    assert caught.value.reason is Reason.BAD_LABEL_FILE
    assert message.startswith("row 0: label is not one of") and value.lower() not in str(
        caught.value
    )
