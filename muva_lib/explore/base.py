"""The explorers' common shape: controls, a figure output and an info line in one ipywidgets container.

An :class:`Explorer` is an ``ipywidgets.VBox`` (controls, info, figure) with a ``render`` function from the
controls' values to a :class:`View` (a matplotlib figure from :mod:`muva_lib.viz`, a state dict, an info
text). Every change of a control calls :meth:`Explorer.redraw`, which records ``state``, ``figure`` and
``png`` (the figure's bytes) so tests can assert on them without a browser.

Without a front end (papermill, nbval, plain Python) nothing renders widgets, so :meth:`_repr_mimebundle_`
also carries the current figure as ``image/png`` and a stable one-line ``text/plain`` summary: an executed
notebook keeps the initial figure in its cell output and nbval compares only the summary. JupyterLab shows
the widget view instead (it ranks the widget mime type first), so the figure is not shown twice. The figure
goes into the ``Output`` widget as display data set directly (``Output.outputs``), which needs no kernel.
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import ipywidgets as widgets
from matplotlib.figure import Figure

from ..viz.grounding import SCREEN_DPI

__all__ = ["View", "Explorer", "figure_png"]


@dataclass
class View:
    """What one redraw shows: the figure, the state tests assert on, and an info text (plain, may be multi-line)."""

    figure: Figure
    state: dict[str, Any] = field(default_factory=dict)
    info: str = ""


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes at the screen dpi, without metadata that changes between runs."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=SCREEN_DPI, metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()


class Explorer(widgets.VBox):
    """Controls over an info box and a figure; ``render(values) -> View`` draws from the controls' values.

    ``title``: a short name for the text summary. ``controls``: name -> widget (each has ``value``).
    After every redraw: ``state`` (the View's state plus the values), ``figure``, ``png``, ``info``,
    ``error`` (None, or the message of a failed redraw: a callback must not raise into the front end).
    """

    def __init__(self, title: str, controls: Mapping[str, widgets.ValueWidget],
                 render: Callable[[dict[str, Any]], View], **kwargs: Any) -> None:
        self.title = title
        self.controls = dict(controls)
        self.render = render
        self.output = widgets.Output()
        self.info_box = widgets.HTML()
        self.state: dict[str, Any] = {}
        self.figure: Figure | None = None
        self.png = b""
        self.info = ""
        self.error: str | None = None
        super().__init__(children=[widgets.HBox(list(self.controls.values()),
                                                layout=widgets.Layout(flex_flow="row wrap")),
                                   self.info_box, self.output], **kwargs)
        self.redraw(raise_errors=True)  # the initial view: a broken setup fails at once, not in a callback
        for w in self.controls.values():
            w.observe(self._changed, names="value")

    @property
    def values(self) -> dict[str, Any]:
        return {name: w.value for name, w in self.controls.items()}

    def set(self, **values: Any) -> "Explorer":
        """Set several controls at once (one redraw per changed control, as a person moving them would)."""
        for name, value in values.items():
            if name not in self.controls:
                raise KeyError(f"{self.title} explorer has no control {name!r}; it has {sorted(self.controls)}")
            self.controls[name].value = value
        return self

    def _changed(self, change: Mapping[str, Any]) -> None:
        self.redraw(changed=change.get("owner"))

    def redraw(self, raise_errors: bool = False, changed: widgets.ValueWidget | None = None) -> None:
        """Render the current values; record and show the result (an error is shown in the info box).

        Under the figure a marker line ``drawn <description>=<value>`` names the control that changed (every
        control on the first draw): what a browser test waits for before comparing figures."""
        values = self.values
        try:
            view = self.render(values)
        except Exception as exc:  # noqa: BLE001 - shown to the person moving the slider
            if raise_errors:
                raise
            self.error = f"{type(exc).__name__}: {exc}"
            self.info_box.value = f"<pre style='color:#b00'>{html.escape(self.error)}</pre>"
            return
        self.error = None
        self.state = {**values, **view.state}
        self.figure, self.info = view.figure, view.info
        self.png = figure_png(view.figure)
        self.info_box.value = f"<pre style='margin:0'>{html.escape(view.info)}</pre>" if view.info else ""
        shown = [changed] if changed is not None else list(self.controls.values())
        markers = "".join(f"drawn {w.description or name}={w.value}\n" for name, w in self.controls.items()
                          if w in shown and not isinstance(w.value, (list, tuple)))
        self.output.outputs = ({"output_type": "display_data", "metadata": {},
                                "data": {"image/png": base64.b64encode(self.png).decode("ascii"),
                                         "text/plain": f"<{self.title} figure>"}},
                               {"output_type": "stream", "name": "stdout", "text": markers})

    def summary(self) -> str:
        """One stable line: the explorer and its control values (what nbval compares)."""
        shown = ", ".join(f"{k}={v!r}" for k, v in self.values.items() if not isinstance(v, (list, tuple)))
        return f"{self.title} explorer ({shown})"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        data = dict(bundle[0] if isinstance(bundle, tuple) else bundle)
        data["image/png"] = base64.b64encode(self.png).decode("ascii")
        data["text/plain"] = self.summary() + (f"\n{self.info}" if self.info else "")
        return data
