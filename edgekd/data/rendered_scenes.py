"""``--data synthetic``: the procedural scenes rendered on the fly (see scene_render.py), nothing on disk.

Scenes written to disk by ``edgekd data synth`` are the ``edgekd-scenes`` format (formats/edgekd_scenes.py).
"""

from __future__ import annotations

from .scene_render import CLASSES, OBJECT_CLASSES, render_scene


class SyntheticScenes:
    """``n`` scenes of ``split`` rendered at ``image_size``; scene ``i`` is a pure function of (seed, split, i).

    The same ``n`` scenes are seen every epoch: a finite training set, like a
    real dataset (the paper's regularisation effects only show there).
    """

    format = "synthetic"

    def __init__(self, split: str, n: int, image_size, seed: int = 0, cache: bool = True):
        self.split, self.n, self.seed = split, int(n), int(seed)
        self.height, self.width = int(image_size[0]), int(image_size[1])
        self.classes = list(CLASSES)
        self.object_classes = list(OBJECT_CLASSES)
        self._cache = {} if cache else None

    def __len__(self):
        return self.n

    def prerender(self, workers: int = 0, progress=None) -> int:
        """Render every scene once into the memory cache, in ``workers`` processes; returns how many were read from
        the disk cache (scene_cache.py) instead of rendered.  ``progress(done, total)`` is called as scenes arrive.

        Done before the data loader starts, so its forked workers share the cache and training never waits
        for the ray caster.
        """
        if self._cache is None:
            return 0
        from . import scene_cache

        folder = scene_cache.scene_folder(self.height, self.width, self.seed, self.split)
        todo, from_disk = [], 0
        for i in range(self.n):
            if i in self._cache:
                continue
            scene = scene_cache.load(folder, i)
            if scene is None:
                todo.append(i)
            else:
                self._cache[i], from_disk = scene, from_disk + 1
        total, done = len(todo), 0
        if progress is not None and total:
            progress(0, total)
        for i, scene in self._render(todo, workers, folder):
            self._cache[i] = scene
            done += 1
            if progress is not None:
                progress(done, total)
        return from_disk

    def _render(self, todo: list, workers: int, folder):
        """(index, scene) of every index in ``todo``, rendered (in a pool when it pays) and stored on disk."""
        args = [(self.height, self.width, self.seed, self.split, i, folder) for i in todo]
        if workers > 1 and len(todo) > 8:
            import multiprocessing as mp

            with mp.get_context("fork").Pool(workers, initializer=_worker_signals) as pool:
                yield from pool.imap_unordered(_render_and_store, args, chunksize=max(1, min(16, len(todo) // (8 * workers))))
        else:
            for a in args:
                yield _render_and_store(a)

    def __getitem__(self, i: int) -> dict:
        if i < 0 or i >= self.n:
            raise IndexError(i)
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        s = render_scene(self.height, self.width, self.seed, self.split, i)
        if self._cache is not None:
            self._cache[i] = s
        return s


def _render_and_store(args) -> tuple:
    from . import scene_cache

    h, w, seed, split, i, folder = args
    scene = render_scene(h, w, seed, split, i)
    scene_cache.store(folder, i, scene)
    return i, scene


def _worker_signals() -> None:
    """A render worker: SIGTERM (how the pool ends its workers) kills it quietly; Ctrl-C is the main process's to handle."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
