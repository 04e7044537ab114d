"""The channel protocol af-ssh and the user's server share (``jhub_af.lab``), as tables."""

from __future__ import annotations

import json

import pytest

from jhub_af.lab import (
    EOF_FRAME,
    BadChannelRequest,
    ChannelEnd,
    ChannelFrame,
    ChannelRequest,
    clamp_pty_size,
    data_frame,
    is_pty_size,
    parse_channel_end,
    parse_channel_request,
    parse_terminal_exit,
    resize_frame,
)
from jhub_af.lab.channel_protocol import (
    error_message,
    exit_message,
    parse_resize_frame,
    terminal_exit_body,
)


def test_frames_are_one_stream_byte_then_the_payload():
    assert data_frame(ChannelFrame.STDIN, b"\x00\xff") == b"\x00\x00\xff"
    assert data_frame(ChannelFrame.STDOUT, b"out") == b"\x01out"
    assert data_frame(ChannelFrame.STDERR, b"") == b"\x02"
    assert EOF_FRAME == b"\x03"
    assert resize_frame(80, 24) == b"\x04\x00\x50\x00\x18"


@pytest.mark.parametrize(
    ("frame", "size"),
    [
        (b"\x04\x00\x50\x00\x18", (80, 24)),
        (b"\x04\x03\xe8\x03\xe8", (1000, 1000)),
        (b"\x04\x03\xe9\x00\x18", None),  # 1001 columns
        (b"\x04\x00\x00\x00\x18", None),  # 0 columns
        (b"\x04\x00\x50\x00", None),  # short
        (b"\x04\x00\x50\x00\x18\x00", None),  # long
        (b"\x00\x00\x50\x00\x18", None),  # stdin, not a resize
    ],
)
def test_resize_frames_are_read_back_or_ignored(frame, size):
    assert parse_resize_frame(frame) == size


@pytest.mark.parametrize(("cols", "rows"), [(0, 24), (80, 1001), (70000, 24)])
def test_a_resize_frame_is_not_built_for_an_impossible_size(cols, rows):
    with pytest.raises(ValueError, match="not a pty size"):
        resize_frame(cols, rows)


@pytest.mark.parametrize(
    ("size", "ok"),
    [
        ([80, 24], True),
        ([1, 1000], True),
        ([0, 24], False),
        ([80, 1001], False),
        ([80, 24, 1], False),
        ((80, 24), False),  # JSON gives lists
        ([True, 24], False),
        ([80.0, 24], False),
        ("80x24", False),
    ],
)
def test_pty_sizes(size, ok):
    assert is_pty_size(size) is ok


def test_sizes_an_ssh_client_gives_are_clamped():
    assert clamp_pty_size(0, 5000) == [1, 1000]
    assert clamp_pty_size(80, 24) == [80, 24]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (ChannelRequest("sftp"), {"kind": "sftp"}),
        (ChannelRequest("exec", "ls -l"), {"kind": "exec", "command": "ls -l"}),
        (
            ChannelRequest("exec", "top", "xterm", [80, 24]),
            {"kind": "exec", "command": "top", "term": "xterm", "pty": [80, 24]},
        ),
    ],
)
def test_requests_go_over_as_json_and_come_back_the_same(request_, message):
    assert json.loads(request_.to_message()) == message
    assert parse_channel_request(request_.to_message()) == request_


FIRST = 'The first message must be {"kind": "exec"|"sftp", ...}.'
COMMAND = "The command must be non-empty text."
PTY = "pty must be [cols, rows], each from 1 to 1000."


@pytest.mark.parametrize(
    ("message", "refusal"),
    [
        ("not json", FIRST),
        ("[]", FIRST),
        (b'{"kind": "exec", "command": "ls"}', FIRST),  # a binary first frame
        (json.dumps({"kind": "shell"}), FIRST),
        (json.dumps({"kind": "exec"}), COMMAND),
        (json.dumps({"kind": "exec", "command": ""}), COMMAND),
        (json.dumps({"kind": "exec", "command": "a\0b"}), COMMAND),
        (json.dumps({"kind": "exec", "command": ["ls"]}), COMMAND),
        (json.dumps({"kind": "exec", "command": "true", "pty": [0, 24]}), PTY),
        (json.dumps({"kind": "exec", "command": "true", "pty": "80x24"}), PTY),
        (json.dumps({"kind": "exec", "command": "true", "pty": [80, 24, 1]}), PTY),
    ],
)
def test_bad_requests_are_refused_with_their_sentence(message, refusal):
    with pytest.raises(BadChannelRequest) as refused:
        parse_channel_request(message)
    assert str(refused.value) == refusal


@pytest.mark.parametrize("term", ["x" * 64, "a\nb", 7])
def test_an_odd_term_is_dropped_not_refused(term):
    message = json.dumps({"kind": "exec", "command": "ls", "term": term})
    assert parse_channel_request(message) == ChannelRequest("exec", "ls")


@pytest.mark.parametrize(
    ("message", "end"),
    [
        (exit_message(0), ChannelEnd(exit_status=0)),
        (exit_message(6), ChannelEnd(exit_status=6)),
        (exit_message(-9), ChannelEnd(exit_signal="KILL")),
        (exit_message(-15), ChannelEnd(exit_signal="TERM")),
        (error_message("No sftp-server."), ChannelEnd(error="No sftp-server.")),
    ],
)
def test_the_last_message_says_how_the_channel_ended(message, end):
    assert parse_channel_end(message) == end


def test_the_last_message_keeps_its_json_shape():
    assert exit_message(6) == json.dumps({"exit_status": 6})
    assert exit_message(-9) == json.dumps({"exit_signal": "KILL"})
    assert error_message("no") == json.dumps({"error": "no"})


def test_a_terminals_exit_status_is_read_back():
    assert parse_terminal_exit(terminal_exit_body(3).encode()) == 3
    assert terminal_exit_body(3) == json.dumps({"exit_status": 3})
