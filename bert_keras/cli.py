"""How every entrypoint reports a user's mistake: one line naming the flag, file or line.

Bad flags, files and records raise ValueError (DataError is one), FileNotFoundError or a
tf.errors.NotFoundError/InvalidArgumentError with a message that already says what is wrong
and where; a traceback would only bury it. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import tensorflow as tf

USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    tf.errors.NotFoundError,
    tf.errors.InvalidArgumentError,
)


def exit_on_user_error(program: str) -> Callable[[Callable], Callable]:
    """Decorates an absl `main`: a user error exits with `PROGRAM: error: MESSAGE` (code 2)."""

    def decorate(main: Callable) -> Callable:
        @functools.wraps(main)
        def wrapped(argv):
            try:
                return main(argv)
            except USER_ERRORS as e:
                message = e.message if isinstance(e, tf.errors.OpError) else str(e)
                print(f"{program}: error: {message}", file=sys.stderr, flush=True)
                sys.exit(2)

        return wrapped

    return decorate
