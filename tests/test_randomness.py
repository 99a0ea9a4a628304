"""``leakguard.randomness``: random bytes handed out once each, never shared with a forked
child; SHA-256 of small inputs without letting go of the GIL, equal to hashlib's."""

from __future__ import annotations

import hashlib
import os
import threading

from hypothesis import given
from hypothesis import strategies as st

from leakguard import randomness
from leakguard.holds.tokens import TOKEN_RE, new_hold_id, new_token


def test_bytes_are_handed_out_once_and_big_requests_go_to_the_kernel() -> None:
    seen = [randomness.random_bytes(10) for _ in range(2000)]  # several 4 KiB refills
    assert len(set(seen)) == len(seen) and all(len(b) == 10 for b in seen)
    assert len(randomness.random_bytes(5000)) == 5000


def test_threads_never_get_the_same_bytes() -> None:
    got: list[bytes] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [randomness.random_bytes(16) for _ in range(500)]
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == len(got) == 2000


def test_a_forked_child_does_not_repeat_its_parents_bytes() -> None:
    randomness.random_bytes(8)  # the parent has a partly used buffer
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, randomness.random_bytes(32))
        os._exit(0)
    os.close(w)
    child = os.read(r, 32)
    os.waitpid(pid, 0)
    os.close(r)
    parent = randomness.random_bytes(32)
    assert len(child) == 32 and child != parent


def test_tokens_and_ids_keep_their_form() -> None:
    assert TOKEN_RE.match(new_token())
    assert new_hold_id().startswith("H-") and len(new_hold_id()) == 12
    assert len({new_token() for _ in range(1000)}) == 1000


@given(st.binary(max_size=20000))
def test_sha256_small_is_sha256(data: bytes) -> None:
    assert randomness.sha256_small(data) == hashlib.sha256(data).hexdigest()
