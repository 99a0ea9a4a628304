"""The extraction worker process: ``python -m leakguard.extract.worker FD``.

Started by :class:`leakguard.extract.pool.ExtractPool`; talks over the socket ``FD`` with
``multiprocessing.connection`` framing. It first receives its settings (``Limits``, the
address-space limit, whether test hooks are on), limits its own memory, then answers one
job at a time: ``(name, content type, transfer encoding, charset)`` and the encoded body
in, an ``Output`` (or a ``Failure``) out as JSON and byte frames (``encode_result``). It
exits when the pool closes the socket.
"""

from __future__ import annotations

import contextlib
import multiprocessing.connection
import os
import signal
import sys
import time
import warnings


def serve(conn: multiprocessing.connection.Connection) -> None:
    from leakguard.extract.formats import Limits, extract
    from leakguard.extract.pool import (
        TEST_CRASH,
        TEST_HANG,
        TEST_MEMORY,
        Failure,
        encode_result,
    )
    from leakguard.message.parse import decode_transfer_encoding
    from leakguard.procpool import set_memory_limit

    limits, memory_bytes, test_hooks = conn.recv()
    if not isinstance(limits, Limits):
        return
    set_memory_limit(memory_bytes)
    while True:
        try:
            name, ctype, cte, charset = conn.recv()
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if test_hooks:
            if ctype == TEST_CRASH:
                os.kill(os.getpid(), signal.SIGSEGV)
            elif ctype == TEST_HANG:
                while True:
                    time.sleep(1)
            elif ctype == TEST_MEMORY:
                hog = [bytearray(64 * 1024 * 1024) for _ in range(10_000)]
                del hog
        try:
            body = decode_transfer_encoding(data, cte)
            del data
            out = extract(name, ctype, body, limits, charset)
            del body
            encode_result(conn, out)
        except MemoryError:
            encode_result(conn, Failure("over the worker's memory limit"))
        except Exception as exc:  # never leave the parent waiting for an answer
            encode_result(conn, Failure(f"extraction failed: {type(exc).__name__}"))


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.simplefilter("ignore")  # library warnings about broken files are expected here
    fd = int(sys.argv[1])
    conn = multiprocessing.connection.Connection(fd)
    with contextlib.suppress(EOFError, OSError, KeyboardInterrupt):
        serve(conn)


if __name__ == "__main__":
    main()
