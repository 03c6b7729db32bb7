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

    def prerender(self, workers: int = 0) -> None:
        """Render every scene once into the cache, in ``workers`` processes.

        Done before the data loader starts, so its forked workers share the
        cache and training never waits for the ray caster.
        """
        if self._cache is None:
            return
        todo = [i for i in range(self.n) if i not in self._cache]
        if not todo:
            return
        args = [(self.height, self.width, self.seed, self.split, i) for i in todo]
        if workers > 1 and len(todo) > 8:
            import multiprocessing as mp

            with mp.get_context("fork").Pool(workers, initializer=_worker_signals) as pool:
                scenes = pool.starmap(render_scene, args, chunksize=max(1, len(todo) // (4 * workers)))
        else:
            scenes = [render_scene(*a) for a in args]
        self._cache.update(zip(todo, scenes))

    def __getitem__(self, i: int) -> dict:
        if i < 0 or i >= self.n:
            raise IndexError(i)
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        s = render_scene(self.height, self.width, self.seed, self.split, i)
        if self._cache is not None:
            self._cache[i] = s
        return s


def _worker_signals() -> None:
    """A render worker: SIGTERM (how the pool ends its workers) kills it quietly; Ctrl-C is the main process's to handle."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
