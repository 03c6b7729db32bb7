"""Progress bars of the bench: tqdm when it is installed and stderr is a terminal, else nothing."""

from __future__ import annotations


class _NullBar:
    total = n = 0

    def update(self, n=1):
        pass

    def refresh(self):
        pass

    def close(self):
        pass


def progress_bar(total, desc, enabled=True):
    try:
        import sys

        from tqdm.auto import tqdm

        # In a redirected log a bar writes every update: none there (the table follows).
        return tqdm(total=total, desc=desc, unit="it", disable=not (enabled and sys.stderr.isatty()), dynamic_ncols=True, leave=False)
    except ImportError:  # the bench must run with numpy + onnxruntime alone
        return _NullBar()
